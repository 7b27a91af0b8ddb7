#include "gateway/audit.hpp"

#include "messages/codec.hpp"

#include <chrono>
#include <ctime>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace sluice::gateway {

std::string rfc3339_now() {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::time_t t = system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

std::string audit_log::render(const audit_record& rec, std::string_view time_rfc3339) {
  std::string out = "{\"time\":";
  append_json_string(out, time_rfc3339);
  out += ",\"principal\":";
  append_json_string(out, rec.principal);
  out += ",\"peer\":";
  append_json_string(out, rec.peer);
  out += ",\"action\":";
  append_json_string(out, rec.action);
  out += ",\"method\":";
  append_json_string(out, rec.method);
  out += ",\"path\":";
  append_json_string(out, rec.path);
  out += ",\"status\":" + std::to_string(rec.status);
  out += ",\"summary\":";
  append_json_string(out, rec.summary);
  out += '}';
  return out;
}

audit_log::audit_log(std::string path, size_t memory_records)
  : path_(std::move(path)), memory_records_(std::max<size_t>(1, memory_records)) {
  if (path_.empty())
    return;
  if (std::ifstream in{path_, std::ios::binary}; in) {
    in.seekg(0, std::ios::end);
    auto size = static_cast<size_t>(in.tellg());
    auto from = size > tail_bytes ? size - tail_bytes : 0;
    in.seekg(static_cast<std::streamoff>(from));
    std::string line;
    if (from > 0)
      std::getline(in, line); // a partial first line
    while (std::getline(in, line))
      if (!line.empty() && line.front() == '{' && line.back() == '}') {
        recent_.push_back(line);
        if (recent_.size() > memory_records_)
          recent_.pop_front();
      }
  }
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0)
    throw std::runtime_error("cannot open audit log " + path_);
}

audit_log::~audit_log() {
  if (fd_ >= 0)
    ::close(fd_);
}

void audit_log::append(const audit_record& rec) {
  auto line = render(rec, rfc3339_now());
  std::lock_guard<std::mutex> guard{mtx_};
  if (fd_ >= 0) {
    line += '\n';
    auto n = ::write(fd_, line.data(), line.size()); // O_APPEND: one record, one write
    if (n != static_cast<ssize_t>(line.size()))
      ++write_failures_;
    line.pop_back();
  }
  recent_.push_back(std::move(line));
  if (recent_.size() > memory_records_)
    recent_.pop_front();
}

std::vector<std::string> audit_log::newest(size_t limit) const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<std::string> out;
  for (auto i = recent_.rbegin(); i != recent_.rend() && out.size() < limit; ++i)
    out.push_back(*i);
  return out;
}

std::string audit_log::newest_json(size_t limit) const {
  auto lines = newest(limit);
  std::string out = "{\"records\":[";
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0)
      out += ',';
    out += lines[i];
  }
  out += "],\"file\":";
  append_json_string(out, path_);
  return out + "}";
}

uint64_t audit_log::write_failures() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return write_failures_;
}

} // namespace sluice::gateway
