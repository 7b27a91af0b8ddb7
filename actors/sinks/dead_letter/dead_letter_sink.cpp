#include "actors/sinks/dead_letter/dead_letter_sink.hpp"

#include "actors/metrics.hpp"
#include "messages/codec.hpp"

#include <caf/all.hpp>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

namespace sluice {

dead_letter_state::~dead_letter_state() {
  if (fd >= 0)
    ::close(fd);
}

dead_letter_actor::behavior_type
dead_letter_sink(dead_letter_actor::stateful_pointer<dead_letter_state> self, std::string path,
                 std::string node, metrics_registry* metrics) {
  auto& st = self->state;
  st.path = std::move(path);
  st.node = std::move(node);
  st.metrics = metrics;
  st.failures = &metrics->get_counter("sluice_dead_letter_write_failures_total",
                                      "Dead-letter batches that could not be written");
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path{st.path}.parent_path(), ec);
  st.fd = ::open(st.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (st.fd < 0)
    aout(self) << "dead-letters: cannot open " << st.path << ": " << std::strerror(errno) << '\n';
  return {
    [self](dead_atom, std::vector<dead_letter>& letters) {
      auto& st = self->state;
      auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
      st.buffer.clear();
      for (auto& dl : letters) {
        st.buffer += "{\"reason\":";
        append_json_string(st.buffer, dl.reason);
        st.buffer += ",\"origin\":";
        append_json_string(st.buffer, dl.origin);
        fmt::format_to(std::back_inserter(st.buffer), ",\"dead_at\":{},\"event\":", now);
        append_json(st.buffer, dl.ev, st.node);
        st.buffer += "}\n";
        st.metrics->get_counter("sluice_dead_letters_total",
                                "Events sent to the dead-letter sink, by the component that gave up",
                                {{"origin", dl.origin}})
          .inc();
      }
      bool ok = st.fd >= 0;
      const char* data = st.buffer.data();
      size_t left = st.buffer.size();
      while (ok && left > 0) {
        auto n = ::write(st.fd, data, left);
        if (n < 0 && errno == EINTR)
          continue;
        if (n < 0) {
          ok = false;
          break;
        }
        data += n;
        left -= static_cast<size_t>(n);
      }
      ok = ok && ::fdatasync(st.fd) == 0;
      if (!ok) {
        st.failures->inc();
        aout(self) << "dead-letters: write to " << st.path << " failed: " << std::strerror(errno)
                   << '\n';
      }
    },
    [](drain_atom) { return caf::ok_atom_v; },
  };
}

} // namespace sluice
