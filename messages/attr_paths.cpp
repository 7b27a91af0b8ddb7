#include "messages/attr_paths.hpp"

#include "messages/codec_internal.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>

namespace sluice {

namespace {

using detail::mp_reader;
using detail::mp_token;
using detail::mp_type;

/// Maps nested deeper than this are not looked into (their keys hold no attribute path).
constexpr size_t max_depth = 32;

// String equality that rejects on the length and the last byte first and compares short strings
// without a call to memcmp.
bool same(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size())
    return false;
  if (a.empty())
    return true;
  if (a.back() != b.back())
    return false;
  constexpr size_t short_string = 16;
  if (a.size() > short_string)
    return std::memcmp(a.data(), b.data(), a.size()) == 0;
  for (size_t i = 0; i + 1 < a.size(); ++i)
    if (a[i] != b[i])
      return false;
  return true;
}


// Fills the slot of every path equal to `key` that has none yet with `value` (converted once, in
// place: a converted value copied into the slot was read back while its bytes were still being
// stored, a stall that showed in profiles).
void fill(const std::vector<std::string>& paths, attr_slot* slots, std::string_view key,
          const mp_token& value) noexcept {
  const attr_slot* first = nullptr;
  for (size_t i = 0; i < paths.size(); ++i) {
    if (slots[i].found || !same(paths[i], key))
      continue;
    if (first != nullptr) {
      slots[i].found = true;
      slots[i].value = first->value;
    } else {
      new (&slots[i]) attr_slot{true, detail::to_attr_value(value, {})};
      first = &slots[i];
    }
  }
}

// One lookup: the paths, their slots, and the dotted path of the current key (in a buffer as
// long as the longest path: a longer key path matches nothing and leads nowhere).
struct lookup {
  const std::vector<std::string>& paths;
  attr_slot* slots;
  char* buf;
  size_t cap;
  std::string_view path;

  // The value of the current key (`path`) is `value`: the first one found fills the slot.
  void found(const mp_token& value) noexcept {
    fill(paths, slots, path, value);
  }

  // Whether some path continues below `path` (starts with `path.`).
  bool below() const noexcept {
    for (auto& p : paths)
      if (p.size() > path.size() && p[path.size()] == '.'
          && std::memcmp(p.data(), path.data(), path.size()) == 0)
        return true;
    return false;
  }

  // Sets `path` to the prefix of `base` bytes joined with `key`; false when longer than any path.
  bool join(size_t base, std::string_view key) noexcept {
    size_t len = base + (base > 0 ? 1 : 0) + key.size();
    if (len > cap)
      return false;
    char* p = buf + base;
    if (base > 0)
      *p++ = '.';
    std::memcpy(p, key.data(), key.size());
    path = std::string_view{buf, len};
    return true;
  }

  // Skips the elements of the container whose header `t` was just read.
  static bool skip_contents(mp_reader& r, const mp_token& t) noexcept {
    uint64_t n = t.type == mp_type::map ? uint64_t{t.count} * 2 : t.count;
    for (uint64_t k = 0; k < n; ++k)
      if (!r.skip())
        return false;
    return true;
  }

  static bool container(const mp_token& t) noexcept {
    return t.type == mp_type::array || t.type == mp_type::map;
  }

  // Reads the `count` pairs of the map whose header `r` has read, at nesting level `depth`.
  bool map(mp_reader& r, uint32_t count, size_t depth) noexcept {
    size_t base = path.size();
    for (uint32_t n = 0; n < count; ++n) {
      mp_token key;
      if (!r.next(key))
        return false;
      if (key.type != mp_type::str || !join(base, key.bytes)) {
        // A container or other non-string key is never a path, nor a key path longer than every
        // path: skip the key's rest and its value.
        if ((container(key) && !skip_contents(r, key)) || !r.skip())
          return false;
        continue;
      }
      mp_token value;
      if (!r.next(value))
        return false;
      found(value);
      if (!container(value))
        continue;
      if (value.type == mp_type::map && depth < max_depth && below()) {
        if (!map(r, value.count, depth + 1))
          return false;
      } else if (!skip_contents(r, value)) {
        return false;
      }
    }
    return true;
  }
};

// Only top-level keys can match paths without a dot: reads the root map's pairs without building
// key paths or looking into nested maps (they are skipped whole, which still checks them).
bool find_top_level(mp_reader& r, uint32_t count, const std::vector<std::string>& paths,
                    attr_slot* slots) noexcept {
  for (uint32_t n = 0; n < count; ++n) {
    mp_token key;
    if (!r.next(key))
      return false;
    if (key.type != mp_type::str) {
      if ((lookup::container(key) && !lookup::skip_contents(r, key)) || !r.skip())
        return false;
      continue;
    }
    mp_token value;
    if (!r.next(value))
      return false;
    fill(paths, slots, key.bytes, value);
    if (lookup::container(value) && !lookup::skip_contents(r, value))
      return false;
  }
  return true;
}

} // namespace

bool find_attrs(std::string_view attrs, const std::vector<std::string>& paths, attr_slot* slots) {
  for (size_t i = 0; i < paths.size(); ++i)
    new (&slots[i]) attr_slot{};
  if (attrs.empty() || paths.empty())
    return true;
  // Paths are a few short names: a byte loop, not a call to memchr per path.
  bool dotted = false;
  for (auto& p : paths)
    for (char c : p)
      dotted = dotted || c == '.';
  if (!dotted) {
    mp_reader r{attrs};
    mp_token root;
    if (!r.next(root))
      return false;
    if (root.type != mp_type::map) {
      mp_reader whole{attrs};
      return whole.skip();
    }
    return find_top_level(r, root.count, paths, slots);
  }
  size_t longest = 0;
  for (auto& p : paths)
    longest = std::max(longest, p.size());
  // The path buffer keeps its capacity across events on a thread.
  thread_local std::string buf;
  if (buf.size() < longest)
    buf.resize(longest);
  mp_reader r{attrs};
  mp_token root;
  if (!r.next(root))
    return false;
  if (root.type != mp_type::map) { // no attributes; still the whole value must be msgpack
    mp_reader whole{attrs};
    return whole.skip();
  }
  lookup l{paths, slots, buf.data(), longest, {}};
  return l.map(r, root.count, 1);
}

void read_attrs(std::string_view attrs, const std::vector<std::string>& paths, attr_slot* slots) {
  if (find_attrs(attrs, paths, slots))
    return;
  for (size_t i = 0; i < paths.size(); ++i) {
    auto v = find_attr(attrs, paths[i]);
    slots[i].found = v.has_value();
    slots[i].value = v ? *v : attr_value{};
  }
}

void find_attrs(std::string_view attrs, const std::vector<std::string>& paths,
                std::optional<attr_value>* out) {
  // Left uninitialized here: zeroing a few hundred bytes per event showed in profiles.
  constexpr size_t on_stack = 8;
  attr_slot_buffer<on_stack> stack_slots;
  std::vector<attr_slot> heap_slots;
  auto* slots = stack_slots.get();
  if (paths.size() > on_stack) {
    heap_slots.resize(paths.size());
    slots = heap_slots.data();
  }
  read_attrs(attrs, paths, slots);
  for (size_t i = 0; i < paths.size(); ++i)
    out[i] = slots[i].found ? std::optional<attr_value>{slots[i].value} : std::nullopt;
}

} // namespace sluice
