#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {

/// The entities of one shard by key: an open-addressing hash table owning heap objects `T`,
/// looked up with a hash the caller computed (`key_hash`, the one `shard_index` places keys by),
/// so each event's key is hashed once for the shard filter and the lookup.
///
/// Layout: one array of {hash, pointer} entries (16 bytes each), at most half full, linear
/// probing from the hash's top bits (the low bits pick the shard: they are the same for every key
/// of a shard); erasure shifts the following entries back (no tombstones). A lookup reads one or
/// two adjacent entries from a small array (5,000 entities: 256 KB) and reads a value's key
/// (`KeyOf{}(value)`) only when the full hashes are equal, instead of a node-based table's bucket,
/// node chain and key behind three dependent pointers.
///
/// Lifecycle: values are made by the caller and owned by the table until erased; they never move
/// (pointers to them stay valid while they are in the table). The capacity doubles above half
/// full and halves in `erase_if` below one eighth full (never below 16 entries), so memory
/// follows the number of entities. Concurrency: none (one actor owns it).
template <class T, class KeyOf>
class entity_table {
public:
  size_t size() const noexcept {
    return size_;
  }

  bool empty() const noexcept {
    return size_ == 0;
  }

  /// Entries allocated (a power of two, or 0 before the first insert).
  size_t capacity() const noexcept {
    return entries_.size();
  }

  /// The value of `key`, whose hash is `hash`; null when absent.
  T* find(std::string_view key, size_t hash) const noexcept {
    auto i = index_of(key, hash);
    return i == npos ? nullptr : entries_[i].value.get();
  }

  /// Asks the CPU to load the entry a lookup of `hash` reads first (a hint; no effect on state).
  void prefetch(size_t hash) const noexcept {
    if (!entries_.empty())
      __builtin_prefetch(&entries_[home(hash)]);
  }

  /// Asks the CPU to load the value (its first and last bytes' cache lines) in the entry a lookup
  /// of `hash` reads first, if that entry holds one: called once `prefetch(hash)` had time to load
  /// the entry, it overlaps the value's cache miss with others instead of stalling the lookup.
  void prefetch_value(size_t hash) const noexcept {
    if (entries_.empty())
      return;
    if (auto* v = entries_[home(hash)].value.get()) {
      __builtin_prefetch(v);
      __builtin_prefetch(reinterpret_cast<const char*>(v) + sizeof(T) - 1);
    }
  }

  /// Adds `value` (not null), whose key has hash `hash` and is not in the table yet; returns it.
  T* insert(size_t hash, std::unique_ptr<T> value) {
    if ((size_ + 1) * 2 > entries_.size())
      rehash(entries_.empty() ? min_capacity : entries_.size() * 2);
    auto* result = value.get();
    place(hash, std::move(value));
    ++size_;
    return result;
  }

  /// Removes (and destroys) the value of `key`; false when absent.
  bool erase(std::string_view key, size_t hash) {
    auto i = index_of(key, hash);
    if (i == npos)
      return false;
    erase_at(i);
    return true;
  }

  /// Removes (and destroys) every value `pred(const T&)` is true for; returns how many. `pred`
  /// may be called more than once for a value it keeps (an entry shifted back across the end of
  /// the array is seen again), so it must not depend on how often it was called.
  template <class Pred>
  size_t erase_if(Pred pred) {
    size_t erased = 0;
    for (size_t i = 0; i < entries_.size();) {
      auto& e = entries_[i];
      if (e.value && pred(static_cast<const T&>(*e.value))) {
        erase_at(i); // an entry shifted into `i` is looked at next
        ++erased;
      } else {
        ++i;
      }
    }
    if (entries_.size() > min_capacity && size_ * 8 < entries_.size()) {
      auto cap = entries_.size();
      while (cap > min_capacity && size_ * 8 < cap)
        cap /= 2;
      rehash(cap);
    }
    return erased;
  }

  /// Calls `f(T&)` for every value, in no particular order.
  template <class F>
  void for_each(F f) const {
    for (auto& e : entries_)
      if (e.value)
        f(*e.value);
  }

  /// Removes (and destroys) every value and frees the array.
  void clear() noexcept {
    entries_.clear();
    entries_.shrink_to_fit();
    size_ = 0;
    shift_ = 0;
  }

private:
  static constexpr size_t min_capacity = 16;
  static constexpr size_t npos = static_cast<size_t>(-1);

  struct entry {
    size_t hash = 0;
    std::unique_ptr<T> value; ///< null: free
  };

  // The first entry a key of `hash` may be in: the hash's top bits.
  size_t home(size_t hash) const noexcept {
    return hash >> shift_;
  }

  // The entry holding `key` (whose hash is `hash`), or npos: probes from its home to the first
  // free entry, comparing key bytes only when the full hashes are equal.
  size_t index_of(std::string_view key, size_t hash) const noexcept {
    if (size_ == 0)
      return npos;
    auto mask = entries_.size() - 1;
    for (auto i = home(hash);; i = (i + 1) & mask) {
      auto& e = entries_[i];
      if (!e.value)
        return npos;
      if (e.hash == hash && KeyOf{}(*e.value) == key)
        return i;
    }
  }

  // Puts `value` in the first free entry from its home (there is one: at most half full).
  void place(size_t hash, std::unique_ptr<T> value) noexcept {
    auto mask = entries_.size() - 1;
    auto i = home(hash);
    while (entries_[i].value)
      i = (i + 1) & mask;
    entries_[i].hash = hash;
    entries_[i].value = std::move(value);
  }

  // Frees entry `i` and shifts back the entries after it that could not be in their home or
  // before it, so every lookup still finds its key before the first free entry.
  void erase_at(size_t i) noexcept {
    entries_[i].value.reset();
    --size_;
    auto mask = entries_.size() - 1;
    for (auto j = (i + 1) & mask; entries_[j].value; j = (j + 1) & mask) {
      auto k = home(entries_[j].hash);
      // Entry j may move to the hole i unless its home lies cyclically in (i, j].
      bool home_between = i <= j ? (i < k && k <= j) : (i < k || k <= j);
      if (!home_between) {
        entries_[i] = std::move(entries_[j]); // leaves j free
        i = j;
      }
    }
  }

  // Moves every value into a new array of `cap` entries (a power of two >= min_capacity).
  void rehash(size_t cap) {
    std::vector<entry> old;
    old.swap(entries_);
    entries_.resize(cap);
    unsigned bits = 0;
    while ((size_t{1} << bits) < cap)
      ++bits;
    shift_ = static_cast<unsigned>(sizeof(size_t) * 8) - bits;
    for (auto& e : old)
      if (e.value)
        place(e.hash, std::move(e.value));
  }

  std::vector<entry> entries_;
  size_t size_ = 0;
  /// 64 minus log2(capacity): `hash >> shift_` is an entry index.
  unsigned shift_ = 0;
};

} // namespace sluice
