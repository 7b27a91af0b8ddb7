#include "persistence/session_store.hpp"

#include "messages/enrich.hpp"
#include "persistence/lmdb.hpp"

#include <openssl/evp.h>

#include <stdexcept>

namespace sluice::persistence {

namespace {

/// Bytes of the SHA-256 digest kept in a session id (128 bits: collisions are not a concern).
constexpr size_t session_id_bytes = 16;
/// Stored state: start_ts and last_ts (8 bytes big-endian each), then the id.
constexpr size_t fixed_state_bytes = 16;

} // namespace

session_tracker::session_tracker(environment& env, session_options opts)
  : env_(env), opts_(std::move(opts)) {
  if (opts_.cache_devices == 0)
    opts_.cache_devices = 1;
}

std::string session_tracker::session_id(std::string_view device_id, int64_t start_ts) {
  std::string input{device_id};
  input.push_back('\0');
  input += encode_be64(static_cast<uint64_t>(start_ts));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &size, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 failed");
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * session_id_bytes);
  for (size_t i = 0; i < session_id_bytes; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 0xf]);
  }
  return out;
}

std::string session_tracker::encode(const device_session& s) {
  auto out = encode_be64(static_cast<uint64_t>(s.start_ts));
  out += encode_be64(static_cast<uint64_t>(s.last_ts));
  out += s.id;
  return out;
}

bool session_tracker::decode(std::string_view bytes, device_session& out) {
  if (bytes.size() <= fixed_state_bytes)
    return false;
  out.start_ts = static_cast<int64_t>(decode_be64(bytes.substr(0, 8)));
  out.last_ts = static_cast<int64_t>(decode_be64(bytes.substr(8, 8)));
  out.id.assign(bytes.substr(fixed_state_bytes));
  return true;
}

void session_tracker::begin() {
  staged_.clear();
}

device_session* session_tracker::current(const std::string& device) {
  if (auto i = staged_.find(device); i != staged_.end())
    return &i->second;
  if (auto i = cache_.find(device); i != cache_.end()) {
    lru_.splice(lru_.begin(), lru_, i->second); // most recently used
    return &i->second->second;
  }
  read_txn txn{env_};
  auto stored = txn.get(db::sessions, device);
  device_session s;
  if (!stored || !decode(*stored, s))
    return nullptr;
  remember(device, s);
  return &cache_.find(device)->second->second;
}

void session_tracker::remember(const std::string& device, const device_session& s) {
  if (auto i = cache_.find(device); i != cache_.end()) {
    i->second->second = s;
    lru_.splice(lru_.begin(), lru_, i->second);
    return;
  }
  lru_.emplace_front(device, s);
  cache_.emplace(device, lru_.begin());
  while (cache_.size() > opts_.cache_devices) {
    cache_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

void session_tracker::assign(event_batch& events) {
  // A client batch normally holds one device's events: remember the last device's staged state.
  const std::string* last_device = nullptr;
  device_session* state = nullptr;
  for (auto& e : events) {
    // Forwarded by another cluster node (`origin`): that node assigned its session already.
    if (!e.origin.empty() || has_attr(e.attrs, opts_.attribute))
      continue;
    if (last_device == nullptr || *last_device != e.device_id) {
      auto i = staged_.find(e.device_id);
      if (i == staged_.end()) {
        auto* known = current(e.device_id);
        i = staged_.emplace(e.device_id, known != nullptr ? *known : device_session{}).first;
      }
      state = &i->second;
      last_device = &i->first;
    }
    bool fresh = state->id.empty();
    if (fresh || (e.ts > state->last_ts && e.ts - state->last_ts > opts_.gap_ms)) {
      state->start_ts = e.ts;
      state->last_ts = e.ts;
      state->id = session_id(e.device_id, e.ts);
      ++started_;
    } else if (e.ts > state->last_ts) {
      state->last_ts = e.ts;
    }
    append_attr(e.attrs, opts_.attribute, state->id);
  }
}

void session_tracker::write(write_txn& txn) const {
  for (auto& [device, s] : staged_)
    txn.put(db::sessions, device, encode(s));
}

void session_tracker::commit() {
  for (auto& [device, s] : staged_)
    remember(device, s);
  staged_.clear();
}

} // namespace sluice::persistence
