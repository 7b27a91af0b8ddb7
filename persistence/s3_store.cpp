// S3 object store: libcurl with CURLOPT_AWS_SIGV4, OpenSSL for payload hashes, minimal XML reading.

#include "persistence/s3_store.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sluice::persistence {

namespace {

constexpr std::string_view s3_scheme = "s3://";
/// Region when neither the config nor AWS_REGION / AWS_DEFAULT_REGION name one (AWS's default).
constexpr const char* default_region = "us-east-1";
/// S3 allows at most 10 000 parts per multipart upload.
constexpr uint64_t s3_max_parts = 10000;
/// Ceiling of one backoff sleep: beyond this, waiting longer only delays the caller's own retry.
constexpr std::chrono::milliseconds max_backoff{10000};
/// Read size when hashing a file before uploading it.
constexpr size_t hash_buffer_bytes = size_t{1} << 20;
/// S3's bucket naming rules: 3 to 63 characters.
constexpr size_t min_bucket_chars = 3;
constexpr size_t max_bucket_chars = 63;
constexpr long http_ok_min = 200;
constexpr long http_ok_max = 299;
constexpr long http_not_found = 404;
constexpr long http_conflict = 409;
constexpr long http_precondition_failed = 412;
constexpr long http_too_many_requests = 429;
constexpr long http_server_error_min = 500;

std::once_flag curl_init_once;

std::string getenv_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string{} : std::string{v};
}

std::string hex(const unsigned char* data, size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(digits[data[i] >> 4]);
    out.push_back(digits[data[i] & 0xf]);
  }
  return out;
}

/// Incremental SHA-256 (OpenSSL EVP), hex output.
class sha256 {
public:
  sha256() : ctx_(EVP_MD_CTX_new()) {
    if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1)
      throw store_error("S3 object store: OpenSSL SHA-256 initialisation failed", false);
  }
  ~sha256() {
    EVP_MD_CTX_free(ctx_);
  }
  sha256(const sha256&) = delete;
  sha256& operator=(const sha256&) = delete;
  void update(const void* data, size_t n) {
    EVP_DigestUpdate(ctx_, data, n);
  }
  std::string hex_digest() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    return hex(md, len);
  }
  static std::string of(std::string_view data) {
    sha256 h;
    h.update(data.data(), data.size());
    return h.hex_digest();
  }

private:
  EVP_MD_CTX* ctx_;
};

/// SigV4 URI encoding: everything but unreserved characters (and '/' when `keep_slash`) as %XX.
std::string uri_encode(std::string_view s, bool keep_slash) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'
        || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 0xf]);
    }
  }
  return out;
}

/// A query string in SigV4 canonical form (libcurl 7.88 signs the query exactly as sent): encoded,
/// sorted by name then value, value-less parameters as `name=`.
std::string canonical_query(std::vector<std::pair<std::string, std::string>> params) {
  for (auto& [k, v] : params) {
    k = uri_encode(k, false);
    v = uri_encode(v, false);
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (auto& [k, v] : params) {
    if (!out.empty())
      out.push_back('&');
    out += k;
    out.push_back('=');
    out += v;
  }
  return out;
}

void append_utf8(std::string& out, unsigned long cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

/// XML character data with the five predefined entities and numeric references resolved.
std::string xml_unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (s[i] != '&') {
      out.push_back(s[i++]);
      continue;
    }
    auto semi = s.find(';', i);
    if (semi == std::string_view::npos) {
      out.append(s.substr(i));
      break;
    }
    auto ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp")
      out.push_back('&');
    else if (ent == "lt")
      out.push_back('<');
    else if (ent == "gt")
      out.push_back('>');
    else if (ent == "quot")
      out.push_back('"');
    else if (ent == "apos")
      out.push_back('\'');
    else if (ent.size() > 1 && ent[0] == '#') {
      bool is_hex = ent[1] == 'x' || ent[1] == 'X';
      auto digits = std::string{ent.substr(is_hex ? 2 : 1)};
      char* end = nullptr;
      auto cp = std::strtoul(digits.c_str(), &end, is_hex ? 16 : 10);
      if (digits.empty() || *end != '\0')
        out.append(s.substr(i, semi - i + 1));
      else
        append_utf8(out, cp);
    } else {
      out.append(s.substr(i, semi - i + 1)); // unknown entity: keep as is
    }
    i = semi + 1;
  }
  return out;
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

/// The unescaped text of the first `<tag>...</tag>` in `doc`, if any.
std::optional<std::string> xml_text(std::string_view doc, std::string_view tag) {
  std::string open = "<" + std::string{tag} + ">";
  std::string close = "</" + std::string{tag} + ">";
  auto b = doc.find(open);
  if (b == std::string_view::npos)
    return std::nullopt;
  b += open.size();
  auto e = doc.find(close, b);
  if (e == std::string_view::npos)
    return std::nullopt;
  return xml_unescape(doc.substr(b, e - b));
}

/// Every `<tag>...</tag>` element body in `doc`.
std::vector<std::string_view> xml_elements(std::string_view doc, std::string_view tag) {
  std::string open = "<" + std::string{tag} + ">";
  std::string close = "</" + std::string{tag} + ">";
  std::vector<std::string_view> out;
  for (size_t pos = 0;;) {
    auto b = doc.find(open, pos);
    if (b == std::string_view::npos)
      break;
    b += open.size();
    auto e = doc.find(close, b);
    if (e == std::string_view::npos)
      break;
    out.push_back(doc.substr(b, e - b));
    pos = e + close.size();
  }
  return out;
}

[[noreturn]] void throw_local(const std::string& what, int err) {
  throw store_error("S3 object store: " + what + ": " + std::strerror(err), err == ENOSPC || err == EMFILE);
}

/// Reads exactly `n` bytes at `offset` into `out` (throws on error or short file).
void pread_all(int fd, char* out, size_t n, uint64_t offset, const std::string& path) {
  while (n > 0) {
    auto r = ::pread(fd, out, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR)
        continue;
      throw_local("read " + path, errno);
    }
    if (r == 0)
      throw store_error("S3 object store: " + path + " shrank while being uploaded", false);
    out += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
}

bool transient_s3_code(const std::string& code) {
  return code == "SlowDown" || code == "RequestTimeout" || code == "InternalError"
         || code == "ServiceUnavailable" || code == "Throttling" || code == "ThrottlingException";
}

bool transient_curl_code(CURLcode rc) {
  switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_OUT_OF_MEMORY:
      return false;
    default:
      return true;
  }
}

/// Where a request body comes from: memory, or a range of a file.
struct body_source {
  const char* mem = nullptr;
  int fd = -1;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t pos = 0;
  int read_errno = 0;
};

size_t read_body(char* buf, size_t size, size_t nitems, void* userdata) {
  auto* src = static_cast<body_source*>(userdata);
  auto n = static_cast<size_t>(std::min<uint64_t>(size * nitems, src->size - src->pos));
  if (n == 0)
    return 0;
  if (src->mem != nullptr) {
    std::memcpy(buf, src->mem + src->pos, n);
  } else {
    ssize_t r;
    do {
      r = ::pread(src->fd, buf, n, static_cast<off_t>(src->offset + src->pos));
    } while (r < 0 && errno == EINTR);
    if (r <= 0) {
      src->read_errno = r < 0 ? errno : EIO;
      return CURL_READFUNC_ABORT;
    }
    n = static_cast<size_t>(r);
  }
  src->pos += n;
  return n;
}

int seek_body(void* userdata, curl_off_t offset, int origin) {
  auto* src = static_cast<body_source*>(userdata);
  if (origin != SEEK_SET || offset < 0 || static_cast<uint64_t>(offset) > src->size)
    return CURL_SEEKFUNC_CANTSEEK;
  src->pos = static_cast<uint64_t>(offset);
  return CURL_SEEKFUNC_OK;
}

size_t write_body(char* data, size_t size, size_t nmemb, void* userdata) {
  static_cast<std::string*>(userdata)->append(data, size * nmemb);
  return size * nmemb;
}

size_t read_header(char* data, size_t size, size_t nitems, void* userdata) {
  auto n = size * nitems;
  std::string_view line{data, n};
  constexpr std::string_view etag = "etag:";
  if (line.size() > etag.size()) {
    std::string name{line.substr(0, etag.size())};
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    if (name == etag) {
      auto value = line.substr(etag.size());
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
      while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
        value.remove_suffix(1);
      *static_cast<std::string*>(userdata) = std::string{value};
    }
  }
  return n;
}

struct slist_guard {
  curl_slist* list = nullptr;
  ~slist_guard() {
    curl_slist_free_all(list);
  }
  void add(const std::string& header) {
    auto* next = curl_slist_append(list, header.c_str());
    if (next == nullptr)
      throw store_error("S3 object store: out of memory building headers", false);
    list = next;
  }
};

} // namespace

struct s3_store::request {
  /// For messages: "PUT", "GET"... and the store key or prefix concerned.
  const char* method = "GET";
  std::string what;
  std::string url; ///< complete, with its canonical query
  std::string content_type;
  body_source body;
  bool has_body = false;
  std::string payload_sha256;
  bool allow_not_found = false;
  /// Conditional PUT: sends `If-None-Match: *` and returns 412 and 409 answers to the caller.
  bool if_none_match = false;
  /// CompleteMultipartUpload may answer 200 with an <Error> body.
  bool error_in_ok_body = false;
};

std::string validate_s3_root(const std::string& root) {
  if (root.compare(0, s3_scheme.size(), s3_scheme) != 0)
    return "root '" + root + "' is not an s3:// URL";
  auto rest = std::string_view{root}.substr(s3_scheme.size());
  auto slash = rest.find('/');
  auto bucket = rest.substr(0, slash);
  if (bucket.size() < min_bucket_chars || bucket.size() > max_bucket_chars)
    return "root '" + root + "': bucket name must have 3 to 63 characters";
  for (char c : bucket) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
      return "root '" + root + "': bucket names allow only a-z, 0-9, '-' and '.'";
  }
  if (slash != std::string_view::npos) {
    auto prefix = rest.substr(slash + 1);
    while (!prefix.empty() && prefix.back() == '/')
      prefix.remove_suffix(1);
    if (!prefix.empty()) {
      try {
        check_object_key(prefix);
      } catch (const store_error& e) {
        return "root '" + root + "': invalid key prefix: " + e.what();
      }
    }
  }
  return {};
}

s3_store::s3_store(const object_store_config& cfg) : cfg_(cfg), jitter_(std::random_device{}()) {
  if (auto err = validate_s3_root(cfg.root); !err.empty())
    throw store_error("S3 object store: " + err, false);
  auto rest = cfg.root.substr(s3_scheme.size());
  auto slash = rest.find('/');
  bucket_ = rest.substr(0, slash);
  prefix_ = slash == std::string::npos ? std::string{} : rest.substr(slash + 1);
  while (!prefix_.empty() && prefix_.back() == '/')
    prefix_.pop_back();

  if (cfg_.access_key.empty() && cfg_.secret_key.empty()) {
    cfg_.access_key = getenv_or_empty("AWS_ACCESS_KEY_ID");
    cfg_.secret_key = getenv_or_empty("AWS_SECRET_ACCESS_KEY");
    if (cfg_.session_token.empty())
      cfg_.session_token = getenv_or_empty("AWS_SESSION_TOKEN");
  }
  if (cfg_.access_key.empty() || cfg_.secret_key.empty())
    throw store_error("S3 object store " + cfg.root
                        + ": no credentials; set the access and secret key in the configuration "
                          "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment",
                      false);
  if (cfg_.region.empty())
    cfg_.region = getenv_or_empty("AWS_REGION");
  if (cfg_.region.empty())
    cfg_.region = getenv_or_empty("AWS_DEFAULT_REGION");
  if (cfg_.region.empty())
    cfg_.region = default_region;

  if (!cfg_.endpoint.empty()) {
    host_url_ = cfg_.endpoint;
    while (!host_url_.empty() && host_url_.back() == '/')
      host_url_.pop_back();
    bucket_path_ = "/" + bucket_;
  } else {
    host_url_ = "https://" + bucket_ + ".s3." + cfg_.region + ".amazonaws.com";
  }
  sigv4_ = "aws:amz:" + cfg_.region + ":s3";

  std::call_once(curl_init_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  curl_ = curl_easy_init();
  if (curl_ == nullptr)
    throw store_error("S3 object store: curl_easy_init failed", false);
}

s3_store::~s3_store() {
  curl_easy_cleanup(static_cast<CURL*>(curl_));
}

std::string s3_store::full_key(const std::string& key) const {
  check_object_key(key);
  return prefix_.empty() ? key : prefix_ + "/" + key;
}

std::string s3_store::object_url(const std::string& full) const {
  return host_url_ + bucket_path_ + "/" + uri_encode(full, true);
}

std::string s3_store::bucket_url() const {
  return host_url_ + (bucket_path_.empty() ? std::string{"/"} : bucket_path_);
}

int s3_store::attempt(const request& req, response& res, std::string& curl_error) {
  auto* curl = static_cast<CURL*>(curl_);
  curl_easy_reset(curl); // keeps the connection cache
  char errbuf[CURL_ERROR_SIZE] = {0};
  body_source body = req.body;
  res = response{};
  slist_guard headers;
  headers.add("x-amz-content-sha256: " + req.payload_sha256);
  if (!cfg_.session_token.empty())
    headers.add("x-amz-security-token: " + cfg_.session_token);
  if (!req.content_type.empty())
    headers.add("Content-Type: " + req.content_type);
  if (req.if_none_match)
    headers.add("If-None-Match: *");
  // No "Expect:" header to suppress 100-continue: libcurl 7.88 would list the empty header among
  // the signed ones and the signature would not match. Large PUTs wait for "100 Continue".

  curl_easy_setopt(curl, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4_.c_str());
  curl_easy_setopt(curl, CURLOPT_USERNAME, cfg_.access_key.c_str());
  curl_easy_setopt(curl, CURLOPT_PASSWORD, cfg_.secret_key.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.list);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(cfg_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(cfg_.request_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &res.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, read_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &res.etag);
  std::string_view method = req.method;
  if (method == "PUT") {
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_body);
    curl_easy_setopt(curl, CURLOPT_READDATA, &body);
    curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, seek_body);
    curl_easy_setopt(curl, CURLOPT_SEEKDATA, &body);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body.size));
  } else if (method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req.has_body ? body.mem : "");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size));
  } else if (method == "DELETE") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "DELETE");
  } else {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  }
  auto rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) {
    if (body.read_errno != 0)
      curl_error = std::string{"reading the upload failed: "} + std::strerror(body.read_errno);
    else
      curl_error = errbuf[0] != '\0' ? std::string{errbuf} : std::string{curl_easy_strerror(rc)};
    return rc;
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res.status);
  return CURLE_OK;
}

s3_store::response s3_store::perform(const request& req) {
  std::string last_error;
  bool transient = false;
  auto delay = cfg_.retry_backoff;
  for (uint32_t n = 1; n <= cfg_.max_attempts; ++n) {
    if (n > 1) {
      // Equal jitter: half the delay fixed, half random, so retrying clients spread out.
      auto half = delay.count() / 2;
      auto sleep = std::chrono::milliseconds{
        half + (half > 0 ? static_cast<long>(jitter_() % static_cast<unsigned long>(half + 1)) : 0)};
      std::this_thread::sleep_for(sleep);
      delay = std::min(delay * 2, max_backoff);
    }
    response res;
    std::string curl_error;
    auto rc = static_cast<CURLcode>(attempt(req, res, curl_error));
    if (rc != CURLE_OK) {
      last_error = curl_error + " (curl error " + std::to_string(rc) + ")";
      transient = transient_curl_code(rc);
      if (!transient)
        break;
      continue;
    }
    bool ok = res.status >= http_ok_min && res.status <= http_ok_max;
    auto code = xml_text(res.body, "Code").value_or("");
    if (ok && req.error_in_ok_body && res.body.find("<Error>") != std::string::npos)
      ok = false;
    else if (ok)
      return res;
    if (res.status == http_not_found && req.allow_not_found && code != "NoSuchBucket")
      return res;
    if (req.if_none_match
        && (res.status == http_precondition_failed || res.status == http_conflict))
      return res;
    auto message = xml_text(res.body, "Message").value_or("");
    last_error = "HTTP " + std::to_string(res.status) + (code.empty() ? "" : " " + code)
                 + (message.empty() ? "" : ": " + message);
    if (res.status == 403)
      last_error += " (check the access key, secret key, session token and region)";
    else if (code == "NoSuchBucket")
      last_error += " (create the bucket or fix the root)";
    transient = res.status >= http_server_error_min || res.status == http_too_many_requests
                || transient_s3_code(code) || (res.status >= http_ok_min && res.status <= http_ok_max);
    if (!transient)
      break;
  }
  std::string msg = "S3 object store: " + std::string{req.method} + " " + req.what + " failed";
  if (transient)
    msg += " after " + std::to_string(cfg_.max_attempts) + " attempts";
  throw store_error(msg + ": " + last_error, transient);
}

void s3_store::put(const std::string& key, std::string_view bytes) {
  track_health(healthy_, [&] {
    auto full = full_key(key);
    request req;
    req.method = "PUT";
    req.what = url(key);
    req.url = object_url(full);
    req.content_type = "application/octet-stream";
    req.body.mem = bytes.data();
    req.body.size = bytes.size();
    req.has_body = true;
    req.payload_sha256 = sha256::of(bytes);
    perform(req);
  });
}

bool s3_store::put_if_absent(const std::string& key, std::string_view bytes) {
  return track_health(healthy_, [&] {
    auto full = full_key(key);
    request req;
    req.method = "PUT";
    req.what = url(key) + " (If-None-Match: *)";
    req.url = object_url(full);
    req.content_type = "application/octet-stream";
    req.body.mem = bytes.data();
    req.body.size = bytes.size();
    req.has_body = true;
    req.payload_sha256 = sha256::of(bytes);
    req.if_none_match = true;
    auto res = perform(req);
    return res.status >= http_ok_min && res.status <= http_ok_max;
  });
}

void s3_store::put_file(const std::string& key, const std::string& local_path) {
  track_health(healthy_, [&] {
    auto full = full_key(key);
    int fd = ::open(local_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      throw_local("open " + local_path, errno);
    struct closer {
      int fd;
      ~closer() {
        ::close(fd);
      }
    } guard{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0)
      throw_local("stat " + local_path, errno);
    auto size = static_cast<uint64_t>(st.st_size);
    if (size > cfg_.multipart_threshold && size > cfg_.part_bytes) {
      put_multipart(key, fd, size);
    } else {
      sha256 hash;
      std::string buf(static_cast<size_t>(std::min<uint64_t>(size, hash_buffer_bytes)), '\0');
      for (uint64_t off = 0; off < size; off += buf.size()) {
        auto n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - off));
        pread_all(fd, buf.data(), n, off, local_path);
        hash.update(buf.data(), n);
      }
      request req;
      req.method = "PUT";
      req.what = url(key);
      req.url = object_url(full);
      req.content_type = "application/octet-stream";
      req.body.fd = fd;
      req.body.size = size;
      req.has_body = true;
      req.payload_sha256 = hash.hex_digest();
      perform(req);
    }
    if (::unlink(local_path.c_str()) != 0 && errno != ENOENT)
      throw_local("remove uploaded file " + local_path, errno);
  });
}

void s3_store::put_multipart(const std::string& key, int fd, uint64_t size) {
  auto full = full_key(key);
  auto target = object_url(full);
  auto part_size = std::max<uint64_t>(cfg_.part_bytes, (size + s3_max_parts - 1) / s3_max_parts);

  request create;
  create.method = "POST";
  create.what = url(key) + " (CreateMultipartUpload)";
  create.url = target + "?" + canonical_query({{"uploads", ""}});
  create.content_type = "application/octet-stream";
  create.payload_sha256 = sha256::of("");
  auto created = perform(create);
  auto upload_id = xml_text(created.body, "UploadId");
  if (!upload_id || upload_id->empty())
    throw store_error("S3 object store: CreateMultipartUpload of " + url(key)
                        + " returned no UploadId: " + created.body.substr(0, 200),
                      false);
  try {
    std::string parts_xml;
    std::string buf;
    uint64_t part = 1;
    for (uint64_t off = 0; off < size; off += part_size, ++part) {
      auto n = static_cast<size_t>(std::min<uint64_t>(part_size, size - off));
      buf.resize(n);
      pread_all(fd, buf.data(), n, off, url(key));
      request up;
      up.method = "PUT";
      up.what = url(key) + " (UploadPart " + std::to_string(part) + ")";
      up.url = target + "?"
               + canonical_query({{"partNumber", std::to_string(part)}, {"uploadId", *upload_id}});
      up.body.mem = buf.data();
      up.body.size = n;
      up.has_body = true;
      up.payload_sha256 = sha256::of(buf);
      auto res = perform(up);
      if (res.etag.empty())
        throw store_error("S3 object store: UploadPart " + std::to_string(part) + " of " + url(key)
                            + " returned no ETag",
                          false);
      parts_xml += "<Part><PartNumber>" + std::to_string(part) + "</PartNumber><ETag>"
                   + xml_escape(res.etag) + "</ETag></Part>";
    }
    auto complete_xml = "<CompleteMultipartUpload>" + parts_xml + "</CompleteMultipartUpload>";
    request complete;
    complete.method = "POST";
    complete.what = url(key) + " (CompleteMultipartUpload)";
    complete.url = target + "?" + canonical_query({{"uploadId", *upload_id}});
    complete.content_type = "application/xml";
    complete.body.mem = complete_xml.data();
    complete.body.size = complete_xml.size();
    complete.has_body = true;
    complete.payload_sha256 = sha256::of(complete_xml);
    complete.error_in_ok_body = true;
    perform(complete);
  } catch (...) {
    // Abort so S3 does not keep (and bill) the uploaded parts; best effort.
    try {
      request abort;
      abort.method = "DELETE";
      abort.what = url(key) + " (AbortMultipartUpload)";
      abort.url = target + "?" + canonical_query({{"uploadId", *upload_id}});
      abort.payload_sha256 = sha256::of("");
      abort.allow_not_found = true;
      perform(abort);
    } catch (const store_error&) {
      // nop: the original failure is what the caller needs to see
    }
    throw;
  }
}

std::optional<std::string> s3_store::get(const std::string& key) {
  return track_health(healthy_, [&]() -> std::optional<std::string> {
    request req;
    req.method = "GET";
    req.what = url(key);
    req.url = object_url(full_key(key));
    req.payload_sha256 = sha256::of("");
    req.allow_not_found = true;
    auto res = perform(req);
    if (res.status == http_not_found)
      return std::nullopt;
    return std::move(res.body);
  });
}

std::vector<object_info> s3_store::list(const std::string& prefix) {
  return track_health(healthy_, [&] {
    std::vector<object_info> out;
    auto root_prefix = prefix_.empty() ? std::string{} : prefix_ + "/";
    std::string token;
    for (;;) {
      std::vector<std::pair<std::string, std::string>> params{
        {"list-type", "2"},
        {"max-keys", std::to_string(cfg_.list_page_keys)},
        {"prefix", root_prefix + prefix}};
      if (!token.empty())
        params.emplace_back("continuation-token", token);
      request req;
      req.method = "GET";
      req.what = "list " + url(prefix);
      req.url = bucket_url() + "?" + canonical_query(std::move(params));
      req.payload_sha256 = sha256::of("");
      auto res = perform(req);
      for (auto contents : xml_elements(res.body, "Contents")) {
        auto key = xml_text(contents, "Key");
        auto size = xml_text(contents, "Size");
        if (!key || key->compare(0, root_prefix.size(), root_prefix) != 0)
          continue;
        out.push_back(object_info{key->substr(root_prefix.size()),
                                  size ? std::strtoull(size->c_str(), nullptr, 10) : 0});
      }
      if (xml_text(res.body, "IsTruncated").value_or("false") != "true")
        break;
      auto next = xml_text(res.body, "NextContinuationToken");
      if (!next || next->empty())
        throw store_error("S3 object store: list " + url(prefix)
                            + ": truncated page without NextContinuationToken",
                          false);
      token = std::move(*next);
    }
    std::sort(out.begin(), out.end(),
              [](const object_info& a, const object_info& b) { return a.key < b.key; });
    return out;
  });
}

void s3_store::remove(const std::string& key) {
  track_health(healthy_, [&] {
    request req;
    req.method = "DELETE";
    req.what = url(key);
    req.url = object_url(full_key(key));
    req.payload_sha256 = sha256::of("");
    req.allow_not_found = true;
    perform(req);
  });
}

std::string s3_store::url(const std::string& key) const {
  return "s3://" + bucket_ + "/" + (prefix_.empty() ? std::string{} : prefix_ + "/") + key;
}

bool s3_store::healthy() const {
  return healthy_;
}

} // namespace sluice::persistence
