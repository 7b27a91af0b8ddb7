// `sluice replay FILE...`: history files → `POST /v1/events` of a running node (libcurl multi),
// with progress, rejected rows by file and line, and resume from a state file.

#include "app/cmd_replay.hpp"

#include "app/config.hpp"
#include "app/replay_input.hpp"
#include "app/replay_state.hpp"
#include "messages/codec.hpp"

#include "app/client_token.hpp"

#include <curl/curl.h>
#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

#include <fmt/format.h>

namespace sluice {

namespace {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int exit_ok = 0;
constexpr int exit_fatal = 1;
constexpr int exit_rejected = 2;
/// 128 + SIGINT, as shells report an interrupted command.
constexpr int exit_interrupted = 130;
/// EX_USAGE (sysexits.h): 2 already means "some rows were rejected".
constexpr int exit_usage = 64;

/// Wait before resending after a 503/429 without a usable Retry-After header.
constexpr auto default_retry_after = std::chrono::seconds{1};
/// Backoff after a connection error or a 5xx other than 503: doubles from `backoff_base` up to
/// `backoff_cap`.
constexpr auto backoff_base = milliseconds{200};
constexpr auto backoff_cap = milliseconds{10000};
/// The state file is rewritten at most this often while acks arrive (and always at the end).
constexpr auto state_save_interval = milliseconds{250};
/// The terminal progress bar is redrawn at most this often; also the longest poll wait.
constexpr auto redraw_interval = milliseconds{100};
constexpr int bar_width = 24;

constexpr const char* usage
  = "usage: sluice replay FILE... [options]\n"
    "Sends NDJSON or CSV (with a header row) history files, plain, gzip or zstd, to a running\n"
    "node's POST /v1/events. Options:\n"
    "  --url=http://HOST:PORT     the node (default: from --config-file, else\n"
    "                             http://127.0.0.1:8080)\n"
    "  --config-file=FILE         find the node through gateway.host and <data-dir>/gateway.port\n"
    "  --token-file=FILE          bearer token for a node with access control (default: the\n"
    "                             SLUICE_TOKEN environment variable; none: anonymous)\n"
    "  --format=csv|ndjson        record format (default: by extension; .csv is CSV, else NDJSON)\n"
    "  --csv-strings              CSV cells stay strings (default: JSON numbers, true and false\n"
    "                             become numbers and booleans)\n"
    "  --csv-flat                 dotted CSV headers stay flat keys (default: a.b → {\"a\":{\"b\"}})\n"
    "  --batch-events=N           events per request (default 1000)\n"
    "  --batch-bytes=N            request body size limit (default 1048576)\n"
    "  --concurrency=N            requests in flight (default 4; 1 keeps file order)\n"
    "  --state=FILE               resume state (default <first FILE>.replay-state)\n"
    "  --state-dir=DIR            put the default state file in DIR\n"
    "  --restart                  ignore an existing state file and start from the beginning\n"
    "  --rejects=FILE             also write rejected rows as NDJSON {file,line,reason,row}\n"
    "  --progress-interval=S      seconds between progress lines when stderr is not a terminal\n"
    "                             (default 5; 0: none)\n"
    "  --max-retries=N            resends of one batch after connection errors or 5xx (default\n"
    "                             10; 503/429 with Retry-After are always waited for)\n"
    "  --request-timeout=S        seconds before a request counts as failed (default 60)\n"
    "  --stop-after-batches=N     test hook: behave as if interrupted after N acknowledged batches\n"
    "Exit: 0 all accepted, 2 some rows rejected, 1 fatal error, 130 interrupted (state saved),\n"
    "64 usage. See docs/replay.md.\n";

struct options {
  std::vector<std::string> files;
  std::optional<std::string> url;
  std::optional<std::string> config_file;
  std::optional<std::string> token_file;
  /// Bearer token (from --token-file or SLUICE_TOKEN); empty: anonymous.
  std::string token;
  std::optional<replay::format> format;
  replay::csv_options csv;
  size_t batch_events = 1000;
  size_t batch_bytes = 1 << 20;
  size_t concurrency = 4;
  std::string state_file;
  std::string state_dir;
  bool restart = false;
  std::string rejects;
  double progress_interval_s = 5;
  int max_retries = 10;
  long request_timeout_s = 60;
  uint64_t stop_after_batches = 0;
};

std::string parse_options(int argc, char** argv, options& out) {
  std::vector<std::string> args(argv + std::min(argc, 2), argv + argc);
  auto number = [](const std::string& key, const std::string& v, auto& dst, double min) {
    try {
      size_t used = 0;
      double d = std::stod(v, &used);
      if (used != v.size() || d < min)
        throw std::invalid_argument{v};
      dst = static_cast<std::decay_t<decltype(dst)>>(d);
      return std::string{};
    } catch (const std::exception&) {
      return fmt::format("{} must be a number >= {} (got '{}')", key, min, v);
    }
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a.rfind("--", 0) != 0) {
      out.files.push_back(a);
      continue;
    }
    std::string key = a;
    std::string value;
    bool has_value = false;
    if (auto eq = a.find('='); eq != std::string::npos) {
      key = a.substr(0, eq);
      value = a.substr(eq + 1);
      has_value = true;
    }
    auto flag = [&](bool& dst) {
      if (has_value)
        return key + " takes no value";
      dst = true;
      return std::string{};
    };
    auto val = [&]() -> std::optional<std::string> {
      if (has_value)
        return value;
      if (i + 1 < args.size())
        return args[++i];
      return std::nullopt;
    };
    std::string err;
    if (key == "--csv-strings") {
      err = flag(out.csv.strings);
    } else if (key == "--csv-flat") {
      err = flag(out.csv.flat);
    } else if (key == "--restart") {
      err = flag(out.restart);
    } else {
      static const std::set<std::string> valued
        = {"--url",          "--config-file",  "--token-file",   "--format",       "--batch-events",
           "--batch-bytes",  "--concurrency",  "--state",        "--state-dir",
           "--rejects",      "--progress-interval", "--max-retries", "--request-timeout",
           "--stop-after-batches"};
      if (valued.count(key) == 0)
        return "unknown option '" + key + "'";
      auto v = val();
      if (!v)
        return key + " needs a value";
      if (key == "--url")
        out.url = *v;
      else if (key == "--config-file")
        out.config_file = *v;
      else if (key == "--token-file")
        out.token_file = *v;
      else if (key == "--format") {
        if (*v == "csv")
          out.format = replay::format::csv;
        else if (*v == "ndjson" || *v == "jsonl")
          out.format = replay::format::ndjson;
        else
          err = "--format must be csv or ndjson (got '" + *v + "')";
      } else if (key == "--batch-events")
        err = number(key, *v, out.batch_events, 1);
      else if (key == "--batch-bytes")
        err = number(key, *v, out.batch_bytes, 1);
      else if (key == "--concurrency")
        err = number(key, *v, out.concurrency, 1);
      else if (key == "--state")
        out.state_file = *v;
      else if (key == "--state-dir")
        out.state_dir = *v;
      else if (key == "--rejects")
        out.rejects = *v;
      else if (key == "--progress-interval")
        err = number(key, *v, out.progress_interval_s, 0);
      else if (key == "--max-retries")
        err = number(key, *v, out.max_retries, 0);
      else if (key == "--request-timeout")
        err = number(key, *v, out.request_timeout_s, 1);
      else if (key == "--stop-after-batches")
        err = number(key, *v, out.stop_after_batches, 1);
      else
        err = "unknown option '" + key + "'";
    }
    if (!err.empty())
      return err;
  }
  if (out.files.empty())
    return "no input files";
  std::set<std::string> seen;
  for (auto& f : out.files)
    if (!seen.insert(f).second)
      return "file " + f + " is named twice";
  if (out.url && out.config_file)
    return "give --url or --config-file, not both";
  return {};
}

/// The node's base URL (`http://HOST:PORT`): --url, or the config file's host and port file.
std::string resolve_url(const options& opts, std::string& out) {
  out = "http://127.0.0.1:8080";
  if (opts.url) {
    if (opts.url->rfind("http://", 0) != 0 && opts.url->rfind("https://", 0) != 0)
      return "--url must start with http:// (got '" + *opts.url + "')";
    out = *opts.url;
    while (!out.empty() && out.back() == '/')
      out.pop_back();
    return {};
  }
  if (!opts.config_file)
    return {};
  if (!std::filesystem::exists(*opts.config_file))
    return "config file " + *opts.config_file + " does not exist";
  node_config cfg;
  if (auto err = cfg.parse(std::vector<std::string>{"--config-file=" + *opts.config_file}); err)
    return "cannot read " + *opts.config_file + ": " + caf::to_string(err);
  std::string port = std::to_string(cfg.gateway_port);
  std::ifstream in{std::filesystem::path{cfg.data_dir} / "gateway.port"};
  if (std::string p; in >> p)
    port = p; // the port the running node bound (gateway.port = 0 picks one)
  out = "http://" + cfg.gateway_host + ":" + port;
  return {};
}

std::atomic<int> signals_seen{0};

extern "C" void on_stop_signal(int) {
  signals_seen.fetch_add(1);
}

/// One record sent to the node, kept until its batch is answered (to report a rejection).
struct sent_record {
  uint64_t line = 0;
  std::string raw;
  std::string json;
};

/// Consecutive records of one file; the unit of the acknowledged prefix.
struct batch {
  size_t file = 0;
  std::vector<sent_record> records;
  /// Where the file continues after this batch.
  replay::position end;
  uint64_t record_count = 0; // including local rejects
  uint64_t local_rejected = 0;
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  size_t parts_open = 0;
  bool done = false;
};

/// One HTTP request: records [from, to) of a batch (a whole batch, or a half after a 400/413).
struct request {
  batch* owner = nullptr;
  size_t from = 0;
  size_t to = 0;
  std::string body;
  std::string response;
  int attempts = 0;
  steady::time_point not_before{};
  CURL* easy = nullptr;
};

struct input {
  std::string path;
  replay::format fmt = replay::format::ndjson;
  std::string key;
  uint64_t raw_size = 0;
  size_t state_index = 0;
  std::unique_ptr<replay::record_reader> reader;
  bool reading_done = false;
  /// Sealed batches beyond the acknowledged prefix, in file order.
  std::deque<std::unique_ptr<batch>> open;
  uint64_t raw_progress = 0;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000 && u < 4) {
    b /= 1000;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} {}", b, units[u]) : fmt::format("{:.1f} {}", b, units[u]);
}

std::string human_duration(double s) {
  if (s < 0 || s > 1e7)
    return "?";
  auto t = static_cast<long>(s + 0.5);
  if (t >= 3600)
    return fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
  return fmt::format("{}:{:02}", t / 60, t % 60);
}

/// One `sluice replay` run.
///
/// Lifecycle: constructed from the options, `run` once. Single-threaded: one loop reads records,
/// seals batches, drives libcurl's multi interface and handles answers; a SIGINT/SIGTERM only sets
/// a flag the loop reads. Memory: at most `concurrency` requests (batches) exist at a time, each
/// holding its records' raw text and JSON.
class replay_run {
public:
  replay_run(options opts, std::string base_url)
    : opts_(std::move(opts)), events_url_(base_url + "/v1/events") {
  }

  ~replay_run() {
    for (auto& [easy, r] : inflight_) {
      curl_multi_remove_handle(multi_, easy);
      curl_easy_cleanup(easy);
    }
    if (headers_ != nullptr)
      curl_slist_free_all(headers_);
    if (multi_ != nullptr)
      curl_multi_cleanup(multi_);
  }

  int run() {
    tty_ = isatty(STDERR_FILENO) != 0;
    if (auto rc = prepare(); rc != exit_ok)
      return rc;
    multi_ = curl_multi_init();
    curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(opts_.concurrency));
    headers_ = curl_slist_append(headers_, "Content-Type: application/json");
    headers_ = curl_slist_append(headers_, "Expect:"); // no 100-continue round trip
    if (!opts_.token.empty())
      headers_ = curl_slist_append(headers_, ("Authorization: Bearer " + opts_.token).c_str());
    started_ = steady::now();
    last_line_ = started_;
    for (auto& in : inputs_)
      bytes_at_start_ += in.raw_progress;
    bool aborted = false;
    while (fatal_.empty()) {
      int sigs = signals_seen.load();
      if (sigs > 0 && !stopping_) {
        stopping_ = true;
        note(fmt::format("replay: interrupted; waiting for {} request(s) in flight (interrupt "
                         "again to abandon them)",
                         inflight_.size()));
      }
      if (sigs > 1) {
        aborted = true;
        break;
      }
      if (!stopping_)
        fill();
      if (!fatal_.empty())
        break;
      start_ready();
      if (inflight_.empty() && (stopping_ || (waiting_.empty() && current_ >= inputs_.size())))
        break;
      int running = 0;
      curl_multi_perform(multi_, &running);
      collect();
      auto now = steady::now();
      auto wait = redraw_interval;
      if (inflight_.empty() && !waiting_.empty()) {
        auto next = std::min_element(waiting_.begin(), waiting_.end(),
                                     [](auto& a, auto& b) { return a->not_before < b->not_before; });
        wait = std::clamp(std::chrono::duration_cast<milliseconds>((*next)->not_before - now),
                          milliseconds{0}, redraw_interval);
      }
      if (wait.count() > 0)
        curl_multi_poll(multi_, nullptr, 0, static_cast<int>(wait.count()), nullptr);
      progress(false);
      if (state_dirty_ && steady::now() - last_save_ >= state_save_interval)
        save();
    }
    save();
    progress(true);
    return finish(aborted);
  }

private:
  /// Hashes the inputs, loads the state and checks it against them, opens the rejects file.
  int prepare() {
    state_path_ = replay::state_path(opts_.state_file, opts_.state_dir, opts_.files.front());
    try {
      if (!opts_.restart)
        state_ = replay::load_state(state_path_);
      for (auto& path : opts_.files) {
        input in;
        in.path = path;
        in.fmt = opts_.format ? *opts_.format : replay::guess_format(path);
        in.key = replay::file_content_key(path);
        std::error_code ec;
        in.raw_size = std::filesystem::file_size(path, ec);
        auto* s = state_.find(path);
        if (s != nullptr && s->key != in.key) {
          std::cerr << "sluice replay: " << path << " changed since " << state_path_
                    << " was written (its content hash differs); use --restart to replay it "
                       "from the beginning, or another --state\n";
          return exit_fatal;
        }
        if (s == nullptr) {
          state_.files.push_back({path, in.key, {}, 0, 0, 0, false});
          s = &state_.files.back();
        } else if (s->records > 0 || s->done) {
          resumed_ = true;
          prior_accepted_ += s->accepted;
          prior_rejected_ += s->rejected;
        }
        in.state_index = static_cast<size_t>(s - state_.files.data());
        if (s->done)
          in.raw_progress = in.raw_size;
        inputs_.push_back(std::move(in));
      }
    } catch (const std::exception& e) {
      std::cerr << "sluice replay: " << e.what() << '\n';
      return exit_fatal;
    }
    // Write the state once now: an unwritable state path fails before anything is sent.
    state_dirty_ = true;
    save();
    if (!fatal_.empty()) {
      std::cerr << "sluice replay: " << fatal_ << " (see --state, --state-dir)\n";
      return exit_fatal;
    }
    if (!opts_.rejects.empty()) {
      rejects_.open(opts_.rejects, resumed_ ? std::ios::app : std::ios::trunc);
      if (!rejects_) {
        std::cerr << "sluice replay: cannot write " << opts_.rejects << '\n';
        return exit_fatal;
      }
    }
    if (resumed_) {
      uint64_t records = 0;
      for (auto& in : inputs_)
        records += state_.files[in.state_index].records;
      note(fmt::format("replay: resuming from {}: {} records already acknowledged", state_path_,
                       records));
    }
    return exit_ok;
  }

  replay::file_state& state_of(const input& in) {
    return state_.files[in.state_index];
  }

  /// Seals new batches while fewer than `concurrency` requests exist.
  void fill() {
    while (current_ < inputs_.size() && inflight_.size() + waiting_.size() < opts_.concurrency) {
      auto& in = inputs_[current_];
      if (state_of(in).done) {
        ++current_;
        continue;
      }
      try {
        if (!in.reader && !in.reading_done)
          in.reader = replay::open_reader(in.path, in.fmt, in.key, opts_.csv, state_of(in).next);
        read_batch(current_, in);
      } catch (const std::exception& e) {
        fatal_ = e.what();
        return;
      }
      if (in.reading_done) {
        in.reader.reset();
        in.raw_progress = in.raw_size;
        advance(in);
        ++current_;
      }
    }
  }

  void read_batch(size_t index, input& in) {
    auto b = std::make_unique<batch>();
    b->file = index;
    size_t bytes = 2;
    replay::record rec;
    while (b->records.size() < opts_.batch_events && bytes < opts_.batch_bytes) {
      if (!in.reader->next(rec)) {
        in.reading_done = true;
        break;
      }
      ++b->record_count;
      if (!rec.error.empty()) {
        ++b->local_rejected;
        ++local_rejected_;
        report(in.path, rec.line, rec.error, rec.raw);
        continue;
      }
      bytes += rec.json.size() + 1;
      b->records.push_back({rec.line, std::move(rec.raw), std::move(rec.json)});
    }
    in.raw_progress = in.reader->source().raw_read();
    if (b->record_count == 0)
      return;
    b->end = in.reader->after();
    if (b->records.empty()) {
      b->done = true;
      in.open.push_back(std::move(b));
      advance(in);
      return;
    }
    auto* owner = b.get();
    in.open.push_back(std::move(b));
    enqueue(owner, 0, owner->records.size());
  }

  void enqueue(batch* owner, size_t from, size_t to) {
    auto r = std::make_unique<request>();
    r->owner = owner;
    r->from = from;
    r->to = to;
    r->body = "[";
    for (size_t i = from; i < to; ++i) {
      if (i > from)
        r->body += ',';
      r->body += owner->records[i].json;
    }
    r->body += ']';
    ++owner->parts_open;
    waiting_.push_back(std::move(r));
  }

  void start_ready() {
    if (stopping_)
      return;
    auto now = steady::now();
    for (auto it = waiting_.begin();
         it != waiting_.end() && inflight_.size() < opts_.concurrency;) {
      if ((*it)->not_before > now) {
        ++it;
        continue;
      }
      auto r = std::move(*it);
      it = waiting_.erase(it);
      r->response.clear();
      CURL* e = curl_easy_init();
      curl_easy_setopt(e, CURLOPT_URL, events_url_.c_str());
      curl_easy_setopt(e, CURLOPT_POST, 1L);
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body.data());
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r->body.size()));
      curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers_);
      curl_easy_setopt(e, CURLOPT_USERAGENT, "sluice-replay");
      curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
      curl_easy_setopt(e, CURLOPT_WRITEDATA, &r->response);
      curl_easy_setopt(e, CURLOPT_TIMEOUT, opts_.request_timeout_s);
      curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
      r->easy = e;
      curl_multi_add_handle(multi_, e);
      inflight_.emplace(e, std::move(r));
    }
  }

  void collect() {
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
      if (m->msg != CURLMSG_DONE)
        continue;
      CURL* e = m->easy_handle;
      auto it = inflight_.find(e);
      if (it == inflight_.end())
        continue;
      auto r = std::move(it->second);
      inflight_.erase(it);
      long status = 0;
      curl_off_t retry_after = 0;
      CURLcode code = m->data.result;
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
      curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &retry_after);
      curl_multi_remove_handle(multi_, e);
      curl_easy_cleanup(e);
      r->easy = nullptr;
      answered(std::move(r), code, status, retry_after);
      if (!fatal_.empty())
        return;
    }
  }

  std::string where(const request& r) const {
    auto& recs = r.owner->records;
    return fmt::format("{} lines {}-{}", inputs_[r.owner->file].path, recs[r.from].line,
                       recs[r.to - 1].line);
  }

  void answered(std::unique_ptr<request> r, CURLcode code, long status, curl_off_t retry_after) {
    if (code == CURLE_OK && status == 200) {
      accepted_answer(*r);
      return;
    }
    if (code == CURLE_OK && (status == 503 || status == 429)) {
      ++retries_;
      auto wait = retry_after > 0 ? std::chrono::duration_cast<milliseconds>(
                                      std::chrono::seconds{retry_after})
                                  : milliseconds{default_retry_after};
      r->not_before = steady::now() + wait;
      waiting_.push_back(std::move(r));
      return;
    }
    if (code == CURLE_OK && (status == 400 || status == 413)) {
      // The node refused the whole body; halve it until the one row it refuses is found.
      auto* owner = r->owner;
      if (r->to - r->from > 1) {
        size_t mid = r->from + (r->to - r->from) / 2;
        enqueue(owner, r->from, mid);
        enqueue(owner, mid, r->to);
      } else {
        std::string reason = fmt::format("the node answered {}", status);
        simdjson::dom::parser parser;
        std::string_view error;
        if (parser.parse(r->response).at_key("error").get_string().get(error)
            == simdjson::SUCCESS)
          reason += ": " + std::string{error};
        auto& rec = owner->records[r->from];
        report(inputs_[owner->file].path, rec.line, reason, rec.raw);
        ++owner->rejected;
        ++rejected_;
      }
      part_done(*owner);
      return;
    }
    if (code == CURLE_OK && (status == 401 || status == 403)) {
      fatal_ = fmt::format("the node at {} refused the token (HTTP {}: {}); give a token with the "
                           "ingest scope through --token-file or SLUICE_TOKEN",
                           events_url_, status, r->response.substr(0, 300));
      return;
    }
    bool transient = code != CURLE_OK || status >= 500;
    std::string what = code != CURLE_OK
                         ? std::string{curl_easy_strerror(code)}
                         : fmt::format("HTTP {}: {}", status, r->response.substr(0, 300));
    if (!transient) {
      fatal_ = fmt::format("the node at {} refused {} with {} (is it a sluice node?)", events_url_,
                           where(*r), what);
      return;
    }
    if (stopping_)
      return; // not resent now; the state keeps it unacknowledged
    if (++r->attempts > opts_.max_retries) {
      fatal_ = fmt::format("cannot deliver {} to {} after {} attempts: {}", where(*r), events_url_,
                           r->attempts, what);
      return;
    }
    ++retries_;
    auto backoff = std::min(backoff_cap, backoff_base * (1 << std::min(r->attempts - 1, 10)));
    r->not_before = steady::now() + backoff;
    waiting_.push_back(std::move(r));
  }

  void accepted_answer(request& r) {
    auto* owner = r.owner;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    uint64_t accepted = 0;
    simdjson::dom::array rejected;
    if (parser.parse(r.response).get(doc) != simdjson::SUCCESS
        || doc["accepted"].get_uint64().get(accepted) != simdjson::SUCCESS
        || doc["rejected"].get_array().get(rejected) != simdjson::SUCCESS) {
      fatal_ = fmt::format("the node's answer to {} is not an ingest ack: {}", where(r),
                           r.response.substr(0, 300));
      return;
    }
    uint64_t refused = 0;
    for (auto item : rejected) {
      uint64_t index = 0;
      std::string_view error;
      if (item["index"].get_uint64().get(index) != simdjson::SUCCESS
          || r.from + index >= r.to) {
        fatal_ = fmt::format("the node's answer to {} names a rejection outside the batch: {}",
                             where(r), r.response.substr(0, 300));
        return;
      }
      if (item["error"].get_string().get(error) != simdjson::SUCCESS)
        error = "rejected";
      auto& rec = owner->records[r.from + index];
      report(inputs_[owner->file].path, rec.line, std::string{error}, rec.raw);
      ++refused;
    }
    owner->accepted += accepted;
    owner->rejected += refused;
    accepted_ += accepted;
    rejected_ += refused;
    part_done(*owner);
  }

  void part_done(batch& b) {
    if (--b.parts_open > 0)
      return;
    b.done = true;
    // The records are no longer needed; the batch waits only for the prefix to reach it.
    b.records.clear();
    b.records.shrink_to_fit();
    ++batches_acked_;
    advance(inputs_[b.file]);
    if (opts_.stop_after_batches != 0 && batches_acked_ == opts_.stop_after_batches)
      std::raise(SIGINT); // the same path as a user's Ctrl-C
  }

  /// Moves the file's acknowledged prefix over every leading answered batch.
  void advance(input& in) {
    auto& s = state_of(in);
    while (!in.open.empty() && in.open.front()->done) {
      auto& b = *in.open.front();
      s.next = b.end;
      s.records += b.record_count;
      s.accepted += b.accepted;
      s.rejected += b.rejected + b.local_rejected;
      in.open.pop_front();
      state_dirty_ = true;
    }
    if (in.reading_done && in.open.empty() && !s.done) {
      s.done = true;
      state_dirty_ = true;
    }
  }

  void save() {
    if (!state_dirty_)
      return;
    try {
      replay::save_state(state_path_, state_);
    } catch (const std::exception& e) {
      if (fatal_.empty())
        fatal_ = e.what();
    }
    state_dirty_ = false;
    last_save_ = steady::now();
  }

  void clear_bar() {
    if (tty_ && bar_shown_) {
      std::cerr << "\r\x1b[K";
      bar_shown_ = false;
    }
  }

  /// A message line on stderr (above the progress bar on a terminal).
  void note(const std::string& text) {
    clear_bar();
    std::cerr << text << '\n';
  }

  void report(const std::string& file, uint64_t line, const std::string& reason,
              const std::string& raw) {
    note(fmt::format("{}:{}: rejected: {}", file, line, reason));
    if (rejects_.is_open()) {
      std::string out = "{\"file\":";
      append_json_string(out, file);
      out += fmt::format(",\"line\":{},\"reason\":", line);
      append_json_string(out, reason);
      out += ",\"row\":";
      append_json_string(out, raw);
      out += "}\n";
      rejects_ << out;
      rejects_.flush();
    }
  }

  void progress(bool final) {
    auto now = steady::now();
    uint64_t total = 0;
    uint64_t read = 0;
    for (auto& in : inputs_) {
      total += in.raw_size;
      read += in.reader ? in.reader->source().raw_read() : in.raw_progress;
    }
    double elapsed = std::chrono::duration<double>(now - started_).count();
    double pct = total == 0 ? 100.0 : 100.0 * static_cast<double>(read) / static_cast<double>(total);
    double rate = elapsed > 0 ? static_cast<double>(accepted_ + rejected_) / elapsed : 0;
    double byte_rate = elapsed > 0 ? static_cast<double>(read - bytes_at_start_) / elapsed : 0;
    double eta = byte_rate > 0 ? static_cast<double>(total - read) / byte_rate : -1;
    uint64_t acc = prior_accepted_ + accepted_;
    uint64_t rej = prior_rejected_ + rejected_ + local_rejected_;
    if (tty_) {
      if (!final && now - last_draw_ < redraw_interval)
        return;
      last_draw_ = now;
      int filled = static_cast<int>(pct / 100 * bar_width);
      std::string bar(static_cast<size_t>(filled), '#');
      bar.resize(bar_width, '.');
      std::cerr << fmt::format("\r[{}] {:5.1f}%  {}/{}  {:.0f} ev/s  accepted {}  rejected {}"
                               "  retries {}  ETA {}\x1b[K",
                               bar, pct, human_bytes(static_cast<double>(read)),
                               human_bytes(static_cast<double>(total)), rate, acc, rej, retries_,
                               final ? "0:00" : human_duration(eta));
      bar_shown_ = true;
      if (final) {
        std::cerr << '\n';
        bar_shown_ = false;
      }
      std::cerr.flush();
      return;
    }
    if (final || opts_.progress_interval_s <= 0)
      return;
    if (std::chrono::duration<double>(now - last_line_).count() < opts_.progress_interval_s)
      return;
    last_line_ = now;
    std::cerr << fmt::format("replay: progress {:.1f}% ({} of {}), {:.0f} events/s, accepted {}, "
                             "rejected {}, retries {}, ETA {}\n",
                             pct, human_bytes(static_cast<double>(read)),
                             human_bytes(static_cast<double>(total)), rate, acc, rej, retries_,
                             human_duration(eta));
  }

  int finish(bool aborted) {
    uint64_t records = 0;
    uint64_t acc = 0;
    uint64_t rej = 0;
    bool all_done = true;
    for (auto& in : inputs_) {
      auto& s = state_of(in);
      records += s.records;
      acc += s.accepted;
      rej += s.rejected;
      all_done = all_done && s.done;
    }
    double elapsed = std::chrono::duration<double>(steady::now() - started_).count();
    auto this_run = fmt::format("this run: accepted {}, rejected {}, retries {}, {:.1f} s, "
                                "{:.0f} events/s",
                                accepted_, rejected_ + local_rejected_, retries_, elapsed,
                                elapsed > 0 ? static_cast<double>(accepted_ + rejected_) / elapsed
                                            : 0.0);
    auto totals = fmt::format("{} files, {} records acknowledged: accepted {}, rejected {}",
                              inputs_.size(), records, acc, rej);
    if (!fatal_.empty()) {
      note("sluice replay: " + fatal_);
      std::cout << "replay: failed; " << totals << " (" << this_run << "); state saved to "
                << state_path_ << '\n';
      return exit_fatal;
    }
    if (!all_done || aborted || stopping_) {
      std::cout << "replay: interrupted; " << totals << " (" << this_run << "); state saved to "
                << state_path_ << ": run the same command again to resume\n";
      return exit_interrupted;
    }
    std::cout << "replay: done; " << totals << " (" << this_run << ")\n";
    return rej > 0 ? exit_rejected : exit_ok;
  }

  options opts_;
  std::string events_url_;
  std::string state_path_;
  replay::replay_state state_;
  std::vector<input> inputs_;
  size_t current_ = 0;
  std::deque<std::unique_ptr<request>> waiting_;
  std::map<CURL*, std::unique_ptr<request>> inflight_;
  CURLM* multi_ = nullptr;
  curl_slist* headers_ = nullptr;
  std::ofstream rejects_;
  std::string fatal_;
  bool stopping_ = false;
  bool resumed_ = false;
  bool tty_ = false;
  bool bar_shown_ = false;
  bool state_dirty_ = false;
  uint64_t accepted_ = 0;
  uint64_t rejected_ = 0;
  uint64_t local_rejected_ = 0;
  uint64_t prior_accepted_ = 0;
  uint64_t prior_rejected_ = 0;
  uint64_t retries_ = 0;
  uint64_t batches_acked_ = 0;
  uint64_t bytes_at_start_ = 0;
  steady::time_point started_{};
  steady::time_point last_save_{};
  steady::time_point last_draw_{};
  steady::time_point last_line_{};
};

} // namespace

int run_replay_command(int argc, char** argv) {
  options opts;
  if (argc >= 3 && (std::string{argv[2]} == "--help" || std::string{argv[2]} == "-h")) {
    std::cout << usage;
    return exit_ok;
  }
  if (auto err = parse_options(argc, argv, opts); !err.empty()) {
    std::cerr << "sluice replay: " << err << '\n' << usage;
    return exit_usage;
  }
  std::string url;
  if (auto err = resolve_url(opts, url); !err.empty()) {
    std::cerr << "sluice replay: " << err << '\n';
    return exit_usage;
  }
  std::string token_error;
  opts.token = client_token(opts.token_file, token_error);
  if (!token_error.empty()) {
    std::cerr << "sluice replay: " << token_error << '\n';
    return exit_usage;
  }
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int rc = exit_fatal;
  {
    replay_run run{std::move(opts), url};
    rc = run.run();
  }
  curl_global_cleanup();
  return rc;
}

} // namespace sluice
