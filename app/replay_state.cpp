// The resume state of `sluice replay` as a small JSON file (written here, read with simdjson).

#include "app/replay_state.hpp"

#include "messages/codec.hpp"

#include <simdjson.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <unistd.h>

#include <fmt/format.h>

namespace sluice::replay {

namespace {

/// Version of the state file layout; other versions are refused.
constexpr uint64_t state_version = 1;

} // namespace

file_state* replay_state::find(const std::string& path) {
  for (auto& f : files)
    if (f.path == path)
      return &f;
  return nullptr;
}

replay_state load_state(const std::string& path) {
  replay_state out;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return out;
  simdjson::padded_string text;
  if (simdjson::padded_string::load(path).get(text) != simdjson::SUCCESS)
    throw std::runtime_error(path + ": cannot read the state file");
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  auto bad = [&](const std::string& why) {
    return std::runtime_error(path + ": not a replay state file (" + why
                              + "); remove it or use --restart");
  };
  if (auto err = parser.parse(text).get(root); err)
    throw bad(simdjson::error_message(err));
  uint64_t version = 0;
  if (root["version"].get_uint64().get(version) != simdjson::SUCCESS || version != state_version)
    throw bad(fmt::format("expected version {}", state_version));
  simdjson::dom::array files;
  if (root["files"].get_array().get(files) != simdjson::SUCCESS)
    throw bad("no 'files' array");
  for (auto f : files) {
    file_state s;
    std::string_view p;
    std::string_view key;
    bool ok = f["path"].get_string().get(p) == simdjson::SUCCESS
              && f["key"].get_string().get(key) == simdjson::SUCCESS
              && f["byte"].get_uint64().get(s.next.byte) == simdjson::SUCCESS
              && f["line"].get_uint64().get(s.next.line) == simdjson::SUCCESS
              && f["records"].get_uint64().get(s.records) == simdjson::SUCCESS
              && f["accepted"].get_uint64().get(s.accepted) == simdjson::SUCCESS
              && f["rejected"].get_uint64().get(s.rejected) == simdjson::SUCCESS
              && f["done"].get_bool().get(s.done) == simdjson::SUCCESS;
    if (!ok)
      throw bad("a file entry lacks path, key, byte, line, records, accepted, rejected or done");
    s.path.assign(p);
    s.key.assign(key);
    out.files.push_back(std::move(s));
  }
  return out;
}

void save_state(const std::string& path, const replay_state& state) {
  std::string text = fmt::format("{{\"version\":{},\"files\":[", state_version);
  for (size_t i = 0; i < state.files.size(); ++i) {
    auto& f = state.files[i];
    text += i ? ",\n" : "\n";
    text += "{\"path\":";
    append_json_string(text, f.path);
    text += ",\"key\":";
    append_json_string(text, f.key);
    text += fmt::format(",\"byte\":{},\"line\":{},\"records\":{},\"accepted\":{},\"rejected\":{},"
                        "\"done\":{}}}",
                        f.next.byte, f.next.line, f.records, f.accepted, f.rejected,
                        f.done ? "true" : "false");
  }
  text += "\n]}\n";
  auto tmp = path + ".tmp";
  std::FILE* out = std::fopen(tmp.c_str(), "wb");
  if (out == nullptr)
    throw std::runtime_error(tmp + ": cannot write the state file: " + std::strerror(errno));
  bool ok = std::fwrite(text.data(), 1, text.size(), out) == text.size() && std::fflush(out) == 0
            && fsync(fileno(out)) == 0;
  int saved = errno;
  ok = std::fclose(out) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error(path + ": cannot write the state file: "
                             + std::strerror(ok ? errno : saved));
}

std::string state_path(const std::string& state_file, const std::string& state_dir,
                       const std::string& first_input) {
  if (!state_file.empty())
    return state_file;
  auto name = std::filesystem::path{first_input}.filename().string() + ".replay-state";
  if (!state_dir.empty())
    return (std::filesystem::path{state_dir} / name).string();
  return first_input + ".replay-state";
}

} // namespace sluice::replay
