// `sluice replay` input: decompression (zlib, libzstd), physical lines, NDJSON and CSV (libcsv)
// records turned into event objects.

#include "app/replay_input.hpp"

#include "messages/codec.hpp"

#include <csv.h>
#include <openssl/evp.h>
#include <simdjson.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>
#include <stdexcept>
#include <sys/stat.h>

#include <fmt/format.h>
#include "messages/text.hpp"

namespace sluice::replay {

namespace {

/// Raw read size: large enough that a read costs little per byte, small enough that the progress
/// (raw bytes consumed) of a small compressed file does not jump.
constexpr size_t raw_chunk_bytes = 64 << 10;

/// A CSV record longer than this is refused (and parsing resynchronises on the next line): such a
/// record is almost always an unclosed quote swallowing the rest of the file.
constexpr size_t max_csv_record_bytes = 1 << 20;

/// Digits of the content key used in derived ids (64 bits: collisions between files are not a
/// practical concern, and ids stay short).
constexpr size_t id_key_digits = 16;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

} // namespace

compression detect_compression(std::string_view b) noexcept {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(b[i]); };
  if (b.size() >= 2 && byte(0) == 0x1f && byte(1) == 0x8b)
    return compression::gzip;
  if (b.size() >= 4 && byte(0) == 0x28 && byte(1) == 0xb5 && byte(2) == 0x2f && byte(3) == 0xfd)
    return compression::zstd;
  return compression::none;
}

const char* to_string(compression c) noexcept {
  switch (c) {
    case compression::gzip:
      return "gzip";
    case compression::zstd:
      return "zstd";
    default:
      return "plain";
  }
}

std::string file_content_key(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr)
    fail(path, std::string{"cannot open: "} + std::strerror(errno));
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx{EVP_MD_CTX_new(), EVP_MD_CTX_free};
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(raw_chunk_bytes);
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0)
    EVP_DigestUpdate(ctx.get(), buf.data(), n);
  bool bad = std::ferror(f) != 0;
  std::fclose(f);
  if (bad)
    fail(path, "read error while hashing");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  std::string hex;
  for (unsigned i = 0; i < len; ++i)
    hex += fmt::format("{:02x}", md[i]);
  return hex;
}

std::string derived_id(std::string_view key, uint64_t line) {
  return fmt::format("replay-{}-{}", key.substr(0, id_key_digits), line);
}

// -- byte_source ------------------------------------------------------------------------------

struct byte_source::codec {
  z_stream z{};
  bool z_open = false;
  ZSTD_DCtx* zstd = nullptr;
  ~codec() {
    if (z_open)
      inflateEnd(&z);
    if (zstd != nullptr)
      ZSTD_freeDCtx(zstd);
  }
};

byte_source::byte_source(std::string path) : path_(std::move(path)), raw_(raw_chunk_bytes) {
  file_ = std::fopen(path_.c_str(), "rb");
  if (file_ == nullptr)
    fail(path_, std::string{"cannot open: "} + std::strerror(errno));
  struct stat st {};
  if (fstat(fileno(file_), &st) == 0)
    raw_size_ = static_cast<uint64_t>(st.st_size);
  fill_raw();
  kind_ = detect_compression({raw_.data() + raw_begin_, raw_end_ - raw_begin_});
  codec_ = std::make_unique<codec>();
  if (kind_ == compression::gzip) {
    // 15 + 32: a gzip (or zlib) header, detected by zlib.
    if (inflateInit2(&codec_->z, 15 + 32) != Z_OK)
      fail(path_, "cannot initialise zlib");
    codec_->z_open = true;
  } else if (kind_ == compression::zstd) {
    codec_->zstd = ZSTD_createDCtx();
    if (codec_->zstd == nullptr)
      fail(path_, "cannot initialise zstd");
  }
}

byte_source::~byte_source() {
  if (file_ != nullptr)
    std::fclose(file_);
}

bool byte_source::fill_raw() {
  if (raw_begin_ > 0) {
    std::memmove(raw_.data(), raw_.data() + raw_begin_, raw_end_ - raw_begin_);
    raw_end_ -= raw_begin_;
    raw_begin_ = 0;
  }
  if (raw_eof_ || raw_end_ == raw_.size())
    return raw_end_ > 0;
  size_t n = std::fread(raw_.data() + raw_end_, 1, raw_.size() - raw_end_, file_);
  if (n == 0) {
    if (std::ferror(file_))
      fail(path_, std::string{"read error: "} + std::strerror(errno));
    raw_eof_ = true;
  }
  raw_end_ += n;
  raw_read_ += n;
  return raw_end_ > 0;
}

size_t byte_source::read(char* buf, size_t n) {
  if (n == 0)
    return 0;
  for (;;) {
    if (raw_begin_ == raw_end_ && !raw_eof_)
      fill_raw();
    size_t avail = raw_end_ - raw_begin_;
    if (kind_ == compression::none) {
      size_t k = std::min(avail, n);
      std::memcpy(buf, raw_.data() + raw_begin_, k);
      raw_begin_ += k;
      position_ += k;
      return k; // 0 only at the end of the file
    }
    if (avail == 0) {
      if (!stream_end_)
        fail(path_, fmt::format("truncated {} stream (the file ends inside a compressed frame)",
                                to_string(kind_)));
      return 0;
    }
    size_t produced = 0;
    size_t consumed = 0;
    if (kind_ == compression::gzip) {
      auto& z = codec_->z;
      z.next_in = reinterpret_cast<Bytef*>(raw_.data() + raw_begin_);
      z.avail_in = static_cast<uInt>(avail);
      z.next_out = reinterpret_cast<Bytef*>(buf);
      z.avail_out = static_cast<uInt>(n);
      stream_end_ = false;
      int rc = inflate(&z, Z_NO_FLUSH);
      consumed = avail - z.avail_in;
      produced = n - z.avail_out;
      if (rc == Z_STREAM_END) {
        stream_end_ = true;
        inflateReset(&z); // a further gzip member may follow (concatenated .gz files)
      } else if (rc != Z_OK && !(rc == Z_BUF_ERROR && (consumed > 0 || produced > 0))) {
        fail(path_, fmt::format("corrupt gzip data near compressed byte {}: {}",
                                raw_read_ - (raw_end_ - raw_begin_),
                                z.msg != nullptr ? z.msg : "inflate failed"));
      }
    } else {
      ZSTD_inBuffer in{raw_.data() + raw_begin_, avail, 0};
      ZSTD_outBuffer out{buf, n, 0};
      size_t rc = ZSTD_decompressStream(codec_->zstd, &out, &in);
      if (ZSTD_isError(rc))
        fail(path_, fmt::format("corrupt zstd data near compressed byte {}: {}",
                                raw_read_ - (raw_end_ - raw_begin_), ZSTD_getErrorName(rc)));
      stream_end_ = rc == 0; // 0: a frame is complete (another may follow)
      consumed = in.pos;
      produced = out.pos;
    }
    raw_begin_ += consumed;
    position_ += produced;
    if (produced > 0)
      return produced;
  }
}

void byte_source::skip_to(uint64_t offset) {
  if (offset < position_)
    fail(path_, fmt::format("cannot go back to byte {} (at {})", offset, position_));
  if (kind_ == compression::none) {
    uint64_t delta = offset - position_;
    if (delta <= raw_end_ - raw_begin_) {
      raw_begin_ += delta;
    } else {
      if (offset > raw_size_)
        fail(path_, fmt::format("the file has {} bytes, the state says {} were sent: it changed",
                                raw_size_, offset));
      if (fseeko(file_, static_cast<off_t>(offset), SEEK_SET) != 0)
        fail(path_, std::string{"cannot seek: "} + std::strerror(errno));
      raw_begin_ = raw_end_ = 0;
      raw_eof_ = false;
      raw_read_ = offset;
    }
    position_ = offset;
    return;
  }
  std::vector<char> scratch(1 << 20);
  while (position_ < offset) {
    auto want = static_cast<size_t>(std::min<uint64_t>(scratch.size(), offset - position_));
    if (read(scratch.data(), want) == 0)
      fail(path_, fmt::format("the data ends at byte {}, the state says {} were sent: it changed",
                              position_, offset));
  }
}

// -- line_reader ------------------------------------------------------------------------------

bool line_reader::next(std::string_view& line, uint64_t& number) {
  long_line_.clear();
  bool spanning = false;
  for (;;) {
    if (begin_ < end_) {
      const char* p = buf_.data() + begin_;
      auto* nl = static_cast<const char*>(std::memchr(p, '\n', end_ - begin_));
      if (nl != nullptr) {
        auto len = static_cast<size_t>(nl - p);
        if (spanning) {
          long_line_.append(p, len);
          line = long_line_;
        } else {
          line = {p, len};
        }
        begin_ += len + 1;
        offset_ += line.size() + 1;
        number = ++line_;
        return true;
      }
      long_line_.append(p, end_ - begin_);
      spanning = true;
      begin_ = end_;
    }
    if (eof_)
      break;
    end_ = src_.read(buf_.data(), buf_.size());
    begin_ = 0;
    eof_ = end_ == 0;
  }
  if (!spanning)
    return false;
  line = long_line_; // a last line without `\n`
  offset_ += line.size();
  number = ++line_;
  return true;
}

void line_reader::skip_to(uint64_t offset, uint64_t next_line) {
  if (offset < offset_)
    throw std::runtime_error(
      fmt::format("{}: cannot go back to byte {} (at {})", src_.path(), offset, offset_));
  uint64_t delta = offset - offset_;
  if (delta <= end_ - begin_) {
    begin_ += static_cast<size_t>(delta);
  } else {
    src_.skip_to(offset);
    begin_ = end_ = 0;
    eof_ = false;
  }
  offset_ = offset;
  line_ = next_line - 1;
}

// -- records ----------------------------------------------------------------------------------

namespace {


/// True when `cell` is a JSON number (an integer when `integer`), by simdjson's grammar.
bool is_json_number(simdjson::dom::parser& parser, std::string_view cell, bool integer) {
  if (cell.empty() || !(cell[0] == '-' || (cell[0] >= '0' && cell[0] <= '9')))
    return false;
  simdjson::dom::element e;
  if (parser.parse(cell.data(), cell.size()).get(e) != simdjson::SUCCESS)
    return false;
  return integer ? e.is_int64() : e.is_number();
}

class ndjson_reader final : public record_reader {
public:
  ndjson_reader(const std::string& path, std::string key, position start)
    : src_(path), lines_(src_), key_(std::move(key)) {
    if (start.byte > 0 || start.line > 1)
      lines_.skip_to(start.byte, start.line);
  }

  bool next(record& out) override {
    std::string_view line;
    uint64_t number = 0;
    while (lines_.next(line, number)) {
      auto t = trim_blanks(line);
      if (t.empty())
        continue;
      out.line = number;
      out.raw.assign(t);
      out.json.clear();
      out.error.clear();
      simdjson::dom::element doc;
      if (auto err = parser_.parse(t.data(), t.size()).get(doc); err) {
        out.error = fmt::format("malformed JSON: {}", simdjson::error_message(err));
        return true;
      }
      simdjson::dom::object obj;
      if (doc.get_object().get(obj) != simdjson::SUCCESS) {
        out.error = "the line is not a JSON object";
        return true;
      }
      std::string_view id;
      if (obj["id"].get_string().get(id) == simdjson::SUCCESS && !id.empty()) {
        out.json.assign(t);
        return true;
      }
      // No usable id: append one. A later key wins in the node's decoder, so this also replaces
      // an `"id": null` or `""` (which the node would otherwise replace by a random UUID).
      out.json.assign(t.substr(0, t.size() - 1));
      if (obj.size() > 0)
        out.json += ',';
      out.json += "\"id\":";
      append_json_string(out.json, derived_id(key_, number));
      out.json += '}';
      return true;
    }
    return false;
  }

  position after() const override {
    return {lines_.offset(), lines_.next_line()};
  }

  const byte_source& source() const override {
    return src_;
  }

private:
  byte_source src_;
  line_reader lines_;
  std::string key_;
  simdjson::dom::parser parser_;
};

/// A CSV header column's place in the event object: a leaf (column >= 0) or a nested object.
struct column_node {
  std::string name;
  int column = -1;
  std::vector<column_node> children;
};

class csv_reader final : public record_reader {
public:
  csv_reader(const std::string& path, std::string key, const csv_options& opts, position start)
    : src_(path), lines_(src_), key_(std::move(key)), opts_(opts) {
    init_parser();
    parsed p;
    if (!next_parsed(p))
      return; // an empty file: no header, no records
    if (!p.error.empty())
      fail(path, fmt::format("line {}: the header row is not valid CSV: {}", p.line, p.error));
    build_header(path, p);
    header_end_ = p.end;
    if (start.byte > header_end_.byte) {
      lines_.skip_to(start.byte, start.line);
      after_ = start;
    }
  }

  ~csv_reader() override {
    csv_free(&parser_);
  }

  bool next(record& out) override {
    parsed p;
    if (!next_parsed(p))
      return false;
    out.line = p.line;
    out.raw = std::move(p.raw);
    out.json.clear();
    out.error = std::move(p.error);
    after_ = p.end;
    if (!out.error.empty())
      return true;
    if (p.cells.size() != header_.size()) {
      out.error = fmt::format("wrong column count: {} cells, the header has {}", p.cells.size(),
                              header_.size());
      return true;
    }
    render(out.json, p.cells, p.line);
    return true;
  }

  position after() const override {
    return after_.byte == 0 ? header_end_ : after_;
  }

  const byte_source& source() const override {
    return src_;
  }

private:
  struct parsed {
    uint64_t line = 0;
    std::string raw;
    std::vector<std::optional<std::string>> cells;
    std::string error;
    position end;
  };

  static constexpr unsigned char parser_options
    = CSV_STRICT | CSV_STRICT_FINI | CSV_EMPTY_IS_NULL; // `""` is an empty string, `` is absent

  void init_parser() {
    if (csv_init(&parser_, parser_options) != 0)
      throw std::runtime_error("cannot initialise libcsv");
  }

  void reset_parser() {
    csv_free(&parser_);
    init_parser();
    cells_.clear();
    start_line_ = 0;
    raw_.clear();
  }

  static void on_field(void* s, size_t len, void* self) {
    auto* r = static_cast<csv_reader*>(self);
    if (s == nullptr)
      r->cells_.emplace_back();
    else
      r->cells_.emplace_back(std::string{static_cast<const char*>(s), len});
  }

  static void on_record(int, void* self) {
    auto* r = static_cast<csv_reader*>(self);
    auto& p = r->ready_.emplace_back();
    p.line = r->start_line_ != 0 ? r->start_line_ : r->current_line_;
    p.raw = std::move(r->raw_);
    p.cells = std::move(r->cells_);
    p.end = {r->lines_.offset(), r->lines_.next_line()};
    r->raw_.clear();
    r->cells_.clear();
    r->start_line_ = 0;
  }

  void push_error(std::string why) {
    auto& p = ready_.emplace_back();
    p.line = start_line_ != 0 ? start_line_ : current_line_;
    p.raw = std::move(raw_);
    p.error = std::move(why);
    p.end = {lines_.offset(), lines_.next_line()};
    reset_parser();
  }

  /// Feeds lines to libcsv until a record (or an error) is complete.
  bool next_parsed(parsed& out) {
    while (ready_.empty()) {
      if (finished_)
        return false;
      std::string_view line;
      uint64_t number = 0;
      if (!lines_.next(line, number)) {
        finished_ = true;
        if (csv_fini(&parser_, on_field, on_record, this) != 0)
          push_error("unterminated quoted field (the file ends inside quotes)");
        continue;
      }
      current_line_ = number;
      if (start_line_ == 0) {
        if (trim_blanks(line).empty())
          continue; // a blank line between records
        start_line_ = number;
        raw_.clear();
      } else {
        raw_ += '\n';
      }
      // The raw text drops the `\r` of CRLF line ends (it is for people reading rejects).
      raw_.append(!line.empty() && line.back() == '\r' ? line.substr(0, line.size() - 1) : line);
      if (csv_parse(&parser_, line.data(), line.size(), on_field, on_record, this) != line.size()
          || csv_parse(&parser_, "\n", 1, on_field, on_record, this) != 1) {
        push_error("malformed CSV: a quote inside an unquoted cell or text after a closing "
                   "quote (RFC 4180: quote the whole cell and double inner quotes)");
        continue;
      }
      if (start_line_ != 0 && raw_.size() > max_csv_record_bytes)
        push_error(fmt::format("the record is longer than {} bytes (an unclosed quote?)",
                               max_csv_record_bytes));
    }
    out = std::move(ready_.front());
    ready_.pop_front();
    return true;
  }

  void build_header(const std::string& path, parsed& p) {
    for (size_t i = 0; i < p.cells.size(); ++i) {
      if (!p.cells[i] || p.cells[i]->empty())
        fail(path, fmt::format("line {}: header column {} is empty; every column needs a name",
                               p.line, i + 1));
      header_.push_back(*p.cells[i]);
      if (header_.back() == "id")
        id_column_ = static_cast<int>(i);
    }
    for (size_t i = 0; i < header_.size(); ++i) {
      for (size_t j = 0; j < i; ++j)
        if (header_[i] == header_[j])
          fail(path, fmt::format("line {}: header columns {} and {} are both named '{}'", p.line,
                                 j + 1, i + 1, header_[i]));
      std::vector<std::string> parts;
      if (opts_.flat) {
        parts.push_back(header_[i]);
      } else {
        size_t from = 0;
        for (;;) {
          auto dot = header_[i].find('.', from);
          parts.push_back(header_[i].substr(from, dot - from));
          if (dot == std::string::npos)
            break;
          from = dot + 1;
        }
        for (auto& part : parts)
          if (part.empty())
            fail(path, fmt::format("line {}: header column {} '{}' has an empty path segment "
                                   "(use --csv-flat to keep dotted names as they are)",
                                   p.line, i + 1, header_[i]));
      }
      std::vector<column_node>* level = &tree_;
      for (size_t k = 0; k < parts.size(); ++k) {
        bool leaf = k + 1 == parts.size();
        auto it = std::find_if(level->begin(), level->end(),
                               [&](const column_node& n) { return n.name == parts[k]; });
        if (it == level->end()) {
          level->push_back(column_node{parts[k], leaf ? static_cast<int>(i) : -1, {}});
          it = level->end() - 1;
        } else if (leaf || it->column >= 0) {
          fail(path, fmt::format("line {}: header column {} '{}' conflicts with another column "
                                 "on '{}' (one is a value, the other an object)",
                                 p.line, i + 1, header_[i], parts[k]));
        }
        level = &it->children;
      }
    }
  }

  void append_value(std::string& out, std::string_view name, const std::string& cell, bool top) {
    bool envelope_string = top
                           && (name == "id" || name == "type" || name == "device_id"
                               || name == "profile_id");
    if (top && name == "ts") {
      if (is_json_number(number_parser_, cell, true))
        out += cell;
      else
        append_json_string(out, cell);
      return;
    }
    if (!envelope_string && !opts_.strings) {
      if (cell == "true" || cell == "false" || is_json_number(number_parser_, cell, false)) {
        out += cell;
        return;
      }
    }
    append_json_string(out, cell);
  }

  /// Appends the object of `nodes`; false (and nothing appended) when every cell is absent.
  bool render_object(std::string& out, const std::vector<column_node>& nodes,
                     const std::vector<std::optional<std::string>>& cells, bool top) {
    size_t mark = out.size();
    out += '{';
    bool any = false;
    for (auto& n : nodes) {
      size_t before = out.size();
      if (any)
        out += ',';
      append_json_string(out, n.name);
      out += ':';
      if (n.column >= 0) {
        auto& cell = cells[static_cast<size_t>(n.column)];
        if (!cell) {
          out.resize(before);
          continue;
        }
        append_value(out, n.name, *cell, top);
      } else if (!render_object(out, n.children, cells, false)) {
        out.resize(before);
        continue;
      }
      any = true;
    }
    if (!any && !top) {
      out.resize(mark);
      return false;
    }
    out += '}';
    return true;
  }

  void render(std::string& out, const std::vector<std::optional<std::string>>& cells,
              uint64_t line) {
    render_object(out, tree_, cells, true);
    auto id = id_column_ >= 0 ? &cells[static_cast<size_t>(id_column_)] : nullptr;
    bool has_id = id != nullptr && *id && !(*id)->empty();
    if (!has_id) {
      out.pop_back(); // '}'
      if (out.size() > 1)
        out += ',';
      out += "\"id\":";
      append_json_string(out, derived_id(key_, line));
      out += '}';
    }
  }

  byte_source src_;
  line_reader lines_;
  std::string key_;
  csv_options opts_;
  csv_parser parser_{};
  simdjson::dom::parser number_parser_;
  std::vector<std::string> header_;
  std::vector<column_node> tree_;
  int id_column_ = -1;
  position header_end_;
  position after_;
  // Parse state of the record being read.
  std::vector<std::optional<std::string>> cells_;
  std::string raw_;
  uint64_t start_line_ = 0;
  uint64_t current_line_ = 0;
  std::deque<parsed> ready_;
  bool finished_ = false;
};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

} // namespace

format guess_format(const std::string& path, format fallback) {
  std::string name = path;
  for (auto& lower : name)
    lower = static_cast<char>(std::tolower(static_cast<unsigned char>(lower)));
  for (auto ext : {".gz", ".gzip", ".zst", ".zstd"})
    if (ends_with(name, ext)) {
      name.resize(name.size() - std::strlen(ext));
      break;
    }
  if (ends_with(name, ".csv"))
    return format::csv;
  if (ends_with(name, ".ndjson") || ends_with(name, ".jsonl") || ends_with(name, ".json"))
    return format::ndjson;
  return fallback;
}

std::unique_ptr<record_reader> open_reader(const std::string& path, format fmt,
                                           const std::string& key, const csv_options& csv,
                                           position start) {
  if (fmt == format::csv)
    return std::make_unique<csv_reader>(path, key, csv, start);
  return std::make_unique<ndjson_reader>(path, key, start);
}

} // namespace sluice::replay
