#include "actors/sinks/dead_letter/dead_letter_store.hpp"

#include "messages/codec.hpp"

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

namespace sluice {

namespace {

constexpr std::string_view id_prefix = "{\"id\":";
constexpr std::string_view reason_key = ",\"reason\":";
constexpr std::string_view record_key = ",\"record\":\"";
constexpr char hex_digits[] = "0123456789abcdef";

std::string error_body(std::string_view message, std::string_view parameter) {
  std::string out = "{\"error\":";
  append_json_string(out, message);
  out += ",\"parameter\":";
  append_json_string(out, parameter);
  out += '}';
  return out;
}

bool parse_u64(std::string_view text, uint64_t& out) {
  if (text.empty())
    return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

void append_hex(std::string& out, std::string_view bytes) {
  for (unsigned char c : bytes) {
    out += hex_digits[c >> 4];
    out += hex_digits[c & 0xf];
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

bool decode_hex(std::string_view hex, std::string& out) {
  if (hex.size() % 2 != 0)
    return false;
  out.clear();
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = hex_value(hex[i]);
    int lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0)
      return false;
    out += static_cast<char>(hi << 4 | lo);
  }
  return true;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | cp >> 6);
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xe0 | cp >> 12);
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

/// Reads the JSON string literal at the start of `in` as `append_json_string` writes it (which
/// escapes only `"`, `\`, and control characters, as short escapes or `\u00XX`). Sets `used` to
/// the bytes consumed; returns false on anything else.
bool read_json_string(std::string_view in, std::string& out, size_t& used) {
  if (in.empty() || in[0] != '"')
    return false;
  out.clear();
  for (size_t i = 1; i < in.size(); ++i) {
    char c = in[i];
    if (c == '"') {
      used = i + 1;
      return true;
    }
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i >= in.size())
      return false;
    switch (in[i]) {
      case '"':
      case '\\':
      case '/':
        out += in[i];
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        if (i + 4 >= in.size())
          return false;
        uint32_t cp = 0;
        for (size_t k = 1; k <= 4; ++k) {
          int v = hex_value(static_cast<char>(std::tolower(static_cast<unsigned char>(in[i + k]))));
          if (v < 0)
            return false;
          cp = cp << 4 | static_cast<uint32_t>(v);
        }
        append_utf8(out, cp);
        i += 4;
        break;
      }
      default:
        return false;
    }
  }
  return false;
}

bool write_all(int fd, const std::string& data) {
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    auto n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return false;
    p += n;
    left -= static_cast<size_t>(n);
  }
  return true;
}

/// Reads `file` line by line; a last line without its newline is torn (a crash during a write)
/// and the file is cut back to the end of the last complete line. Calls `fn(line, offset, no)`.
template <class F>
std::string scan_lines(int fd, const std::string& file, uint64_t& size, F fn) {
  std::ifstream in{file, std::ios::binary};
  if (!in)
    return fmt::format("cannot read {}: {}", file, std::strerror(errno));
  std::string line;
  uint64_t offset = 0;
  size_t no = 0;
  while (std::getline(in, line)) {
    if (in.eof()) // no newline after the last line: torn
      break;
    ++no;
    if (auto err = fn(std::string_view{line}, offset, no); !err.empty())
      return err;
    offset += line.size() + 1;
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0)
    return fmt::format("fstat {}: {}", file, std::strerror(errno));
  bool torn = static_cast<uint64_t>(st.st_size) != offset;
  if (torn && ::ftruncate(fd, static_cast<off_t>(offset)) != 0)
    return fmt::format("cannot cut the torn last line of {}: {}", file, std::strerror(errno));
  size = offset;
  return {};
}

} // namespace

std::string parse_dead_letter_list_params(const std::map<std::string, std::string>& query,
                                          dead_letter_query& out) {
  out = dead_letter_query{};
  out.limit = dead_letter_default_page;
  for (auto& [key, value] : query) {
    if (key == "after") {
      if (!parse_u64(value, out.after))
        return error_body("'after' must be a dead-letter id (a non-negative integer, the 'next' "
                          "of the previous page)",
                          "after");
    } else if (key == "limit") {
      uint64_t n = 0;
      if (!parse_u64(value, n) || n == 0 || n > dead_letter_max_page)
        return error_body(fmt::format("'limit' must be an integer from 1 to {}",
                                      dead_letter_max_page),
                          "limit");
      out.limit = static_cast<uint32_t>(n);
    } else if (key == "reason") {
      if (value.empty())
        return error_body("'reason' must not be empty (omit it to list every reason)", "reason");
      out.reason = value;
    } else {
      return error_body(fmt::format("unknown query parameter '{}'; use after, limit, reason", key),
                        key);
    }
  }
  return {};
}

std::string validate_dead_letter_selection(const dead_letter_query& q) {
  int given = (q.ids.empty() ? 0 : 1) + (q.reason.empty() ? 0 : 1) + (q.all ? 1 : 0);
  if (given != 1)
    return error_body("give exactly one of 'ids' (a non-empty array of ids), 'reason' (a "
                      "substring) or 'all' (true)",
                      "ids");
  for (auto id : q.ids)
    if (id == 0)
      return error_body("dead-letter ids start at 1", "ids");
  return {};
}

dead_letter_store::dead_letter_store(std::string path) : path_(std::move(path)) {
  auto dir = std::filesystem::path{path_}.parent_path();
  dir_ = dir.string();
  replayed_path_ = (dir / "replayed.ids").string();
}

dead_letter_store::~dead_letter_store() {
  if (fd_ >= 0)
    ::close(fd_);
  if (replayed_fd_ >= 0)
    ::close(replayed_fd_);
}

std::string dead_letter_store::index_line(std::string_view line, uint64_t offset, size_t line_no) {
  auto bad = [&](std::string_view what) {
    return fmt::format("{} line {}: {}; the file is not a sluice dead-letter file of this "
                       "version: move it away and restart",
                       path_, line_no, what);
  };
  if (line.substr(0, id_prefix.size()) != id_prefix)
    return bad("it does not start with {\"id\":");
  auto rest = line.substr(id_prefix.size());
  auto comma = rest.find(',');
  uint64_t id = 0;
  if (comma == std::string_view::npos || !parse_u64(rest.substr(0, comma), id))
    return bad("its id is not a number");
  if (id != entries_.size() + 1)
    return bad(fmt::format("its id is {}, expected {}", id, entries_.size() + 1));
  auto r = line.find(reason_key);
  if (r == std::string_view::npos)
    return bad("it has no reason");
  std::string reason;
  size_t used = 0;
  if (!read_json_string(line.substr(r + reason_key.size()), reason, used))
    return bad("its reason is not a string");
  auto rec = line.rfind(record_key);
  if (rec == std::string_view::npos || line.size() < 2 || line.substr(line.size() - 2) != "\"}")
    return bad("it has no record");
  entry e;
  e.offset = offset;
  e.shown = static_cast<uint32_t>(rec);
  e.length = static_cast<uint32_t>(line.size());
  e.reason = intern(std::move(reason));
  entries_.push_back(e);
  return {};
}

std::string dead_letter_store::open() {
  std::error_code ec;
  if (!dir_.empty())
    std::filesystem::create_directories(dir_, ec);
  if (ec)
    return fmt::format("cannot create {}: {}", dir_, ec.message());
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0)
    return fmt::format("cannot open {}: {}", path_, std::strerror(errno));
  replayed_fd_ = ::open(replayed_path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (replayed_fd_ < 0)
    return fmt::format("cannot open {}: {}", replayed_path_, std::strerror(errno));
  entries_.clear();
  auto index = [this](std::string_view line, uint64_t offset, size_t no) {
    return index_line(line, offset, no);
  };
  auto err = scan_lines(fd_, path_, size_, index);
  if (!err.empty())
    return err;
  uint64_t replayed_size = 0;
  return scan_lines(replayed_fd_, replayed_path_, replayed_size,
                    [this](std::string_view line, uint64_t, size_t no) -> std::string {
                      uint64_t id = 0;
                      if (!parse_u64(line, id) || id == 0 || id > entries_.size())
                        return fmt::format("{} line {}: '{}' is not the id of a dead letter in {}",
                                           replayed_path_, no, line, path_);
                      entries_[id - 1].state = entry_state::replayed;
                      return {};
                    });
}

uint32_t dead_letter_store::intern(std::string reason) {
  auto i = reason_ids_.find(reason);
  if (i != reason_ids_.end())
    return i->second;
  auto id = static_cast<uint32_t>(reasons_.size());
  reasons_.push_back(reason);
  reason_ids_.emplace(std::move(reason), id);
  return id;
}

std::string dead_letter_store::append(const std::vector<dead_letter>& letters, int64_t now_ms,
                                      std::string_view node) {
  if (fd_ < 0)
    return fmt::format("{} is not open", path_);
  buffer_.clear();
  std::vector<entry> added;
  std::string record;
  uint64_t offset = size_;
  for (auto& dl : letters) {
    size_t start = buffer_.size();
    fmt::format_to(std::back_inserter(buffer_), "{{\"id\":{},\"at\":{}",
                   entries_.size() + added.size() + 1, now_ms);
    buffer_ += reason_key;
    append_json_string(buffer_, dl.reason);
    buffer_ += ",\"origin\":";
    append_json_string(buffer_, dl.origin);
    buffer_ += ",\"event\":";
    append_json(buffer_, dl.ev, node);
    entry e;
    e.offset = offset;
    e.shown = static_cast<uint32_t>(buffer_.size() - start);
    buffer_ += record_key;
    record.clear();
    encode_log_record(event_batch{dl.ev}, record);
    append_hex(buffer_, record);
    buffer_ += "\"}";
    e.length = static_cast<uint32_t>(buffer_.size() - start);
    buffer_ += '\n';
    offset += e.length + 1;
    added.push_back(e);
  }
  if (!write_all(fd_, buffer_) || ::fdatasync(fd_) != 0) {
    auto err = fmt::format("cannot write {}: {}", path_, std::strerror(errno));
    // Cut a partial write back so the file keeps only whole lines with dense ids.
    [[maybe_unused]] auto rc = ::ftruncate(fd_, static_cast<off_t>(size_));
    return err;
  }
  for (size_t i = 0; i < added.size(); ++i) {
    added[i].reason = intern(letters[i].reason);
    entries_.push_back(added[i]);
  }
  size_ = offset;
  return {};
}

const dead_letter_store::entry* dead_letter_store::find(uint64_t id) const noexcept {
  if (id == 0 || id > entries_.size())
    return nullptr;
  return &entries_[id - 1];
}

bool dead_letter_store::replayed(uint64_t id) const noexcept {
  auto e = find(id);
  return e != nullptr && e->state == entry_state::replayed;
}

bool dead_letter_store::read_at(uint64_t offset, size_t length, std::string& out,
                                std::string& error) const {
  out.resize(length);
  size_t done = 0;
  while (done < length) {
    auto n = ::pread(fd_, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      error = fmt::format("cannot read {} at byte {}: {}", path_, offset + done,
                          n == 0 ? "unexpected end of file" : std::strerror(errno));
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

bool dead_letter_store::list(const dead_letter_query& q, std::string& out,
                             std::string& error) const {
  if (fd_ < 0) {
    error = fmt::format("{} is not open", path_);
    return false;
  }
  // Which reasons match, once per distinct reason rather than once per dead letter.
  std::vector<bool> match(reasons_.size(), true);
  if (!q.reason.empty())
    for (size_t i = 0; i < reasons_.size(); ++i)
      match[i] = reasons_[i].find(q.reason) != std::string::npos;
  size_t total = 0;
  for (auto& e : entries_)
    total += match[e.reason] ? 1 : 0;
  out = "{\"items\":[";
  std::string line;
  size_t shown = 0;
  uint64_t last = 0;
  bool more = false;
  for (uint64_t id = q.after + 1; id <= entries_.size(); ++id) {
    auto& e = entries_[id - 1];
    if (!match[e.reason])
      continue;
    if (shown == q.limit) {
      more = true;
      break;
    }
    if (!read_at(e.offset, e.shown, line, error))
      return false;
    if (shown > 0)
      out += ',';
    out += line;
    out += e.state == entry_state::replayed ? ",\"replayed\":true}" : ",\"replayed\":false}";
    ++shown;
    last = id;
  }
  out += "],\"next\":";
  out += more ? std::to_string(last) : std::string{"null"};
  fmt::format_to(std::back_inserter(out), ",\"total\":{}}}", total);
  return true;
}

dead_letter_store::selection dead_letter_store::select(const dead_letter_query& q) const {
  selection out;
  auto take = [&](uint64_t id, const entry& e) {
    if (e.state == entry_state::stored)
      out.ids.push_back(id);
    else
      ++out.skipped;
  };
  if (!q.ids.empty()) {
    auto ids = q.ids;
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    for (auto id : ids) {
      if (auto e = find(id))
        take(id, *e);
      else
        out.unknown.push_back(id);
    }
    return out;
  }
  for (uint64_t id = 1; id <= entries_.size(); ++id) {
    auto& e = entries_[id - 1];
    if (q.all || reasons_[e.reason].find(q.reason) != std::string::npos)
      take(id, e);
  }
  return out;
}

std::string dead_letter_store::load(const std::vector<uint64_t>& ids, event_batch& out) const {
  std::string line;
  std::string bytes;
  std::string error;
  for (auto id : ids) {
    auto e = find(id);
    if (e == nullptr)
      return fmt::format("unknown dead-letter id {}", id);
    if (!read_at(e->offset, e->length, line, error))
      return error;
    auto hex = std::string_view{line}.substr(e->shown + record_key.size());
    hex.remove_suffix(2); // `"}`
    size_t before = out.size();
    if (!decode_hex(hex, bytes) || !decode_log_record(bytes, 0, out) || out.size() != before + 1)
      return fmt::format("{}: the record of dead letter {} is corrupt", path_, id);
    out.back().offset = 0;
  }
  return {};
}

void dead_letter_store::begin_replay(const std::vector<uint64_t>& ids) {
  for (auto id : ids)
    if (id > 0 && id <= entries_.size())
      entries_[id - 1].state = entry_state::replaying;
}

std::string dead_letter_store::finish_replay(const std::vector<uint64_t>& ids, bool committed) {
  if (!committed) {
    for (auto id : ids)
      if (id > 0 && id <= entries_.size())
        entries_[id - 1].state = entry_state::stored;
    return {};
  }
  // Marked in memory first: even if the record fails, the events are in the log, and replaying
  // them again in this process would only duplicate them.
  buffer_.clear();
  for (auto id : ids) {
    if (id > 0 && id <= entries_.size())
      entries_[id - 1].state = entry_state::replayed;
    fmt::format_to(std::back_inserter(buffer_), "{}\n", id);
  }
  if (replayed_fd_ < 0 || !write_all(replayed_fd_, buffer_) || ::fdatasync(replayed_fd_) != 0)
    return fmt::format("cannot record replayed ids in {}: {}", replayed_path_,
                       std::strerror(errno));
  return {};
}

} // namespace sluice
