#pragma once

// The actions of a route (keep/drop, mask, hash, rename, PII) and the engine that applies them to
// a sink's copy of an event.

#include "actors/pii.hpp"
#include "messages/event.hpp"

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

class counter;
class metrics_registry;

/// What a route does with the PII values the detector finds in its events.
enum class pii_mode : uint8_t {
  /// Replace each value by `[masked:<kind>]` (the default: secure unless configured otherwise).
  mask,
  /// Replace each value by its keyed pseudonym (HMAC-SHA256 of the normalized value).
  hash,
  /// Leave values as they are (a deliberate choice, e.g. for a restricted sink).
  off,
};

/// An action on one named field.
enum class field_action : uint8_t { none, drop, mask, hash };

/// The compiled actions of one route.
///
/// Field paths: envelope `id`, `device_id`, `profile_id` (mask, hash; `profile_id` may also be
/// dropped), or attributes (`title_id`, `player.codec`, with or without `attrs.`); a path
/// reaches into maps and through arrays (`items.sku` is `sku` in every map of the array `items`).
/// Lifecycle: built once by `compile`, then immutable (shared with the route table).
struct route_actions {
  /// One attribute path segment.
  struct node {
    std::string key;
    field_action action = field_action::none;
    /// Named by `keep`: kept whole (actions below still apply).
    bool keep = false;
    /// An ancestor of a kept path: kept, its other children are removed.
    bool keep_path = false;
    std::string rename_to;
    std::vector<node> children;

    const node* child(std::string_view k) const noexcept {
      for (auto& c : children)
        if (c.key == k)
          return &c;
      return nullptr;
    }
  };

  pii_mode pii = pii_mode::mask;
  field_action id = field_action::none;
  field_action device_id = field_action::none;
  field_action profile_id = field_action::none;
  /// Attribute actions; `keep` set: only kept paths remain.
  node attrs;
  bool keep_mode = false;
  bool attr_actions = false;

  /// Whether the route needs the PII secret (a `hash` field or `pii = "hash"`).
  bool uses_hash() const noexcept;
  /// Whether the route changes events at all (besides PII).
  bool field_actions() const noexcept {
    return attr_actions || id != field_action::none || device_id != field_action::none
           || profile_id != field_action::none;
  }

  /// Compiles the lists of a route section. Returns an error naming the key (`keep`, `drop`,
  /// `mask`, `hash`, `rename`, `pii`) and the entry, empty on success.
  static std::string compile(const std::vector<std::string>& keep,
                             const std::vector<std::string>& drop,
                             const std::vector<std::string>& mask,
                             const std::vector<std::string>& hash,
                             const std::vector<std::string>& rename, const std::string& pii,
                             route_actions& out);
};

/// Applies route actions to the copies of events a sink receives.
///
/// Order, on the sink's copy only (the log keeps the original): `keep`/`drop`, then `mask` and
/// `hash` of named fields, then PII in the remaining string values (per the route's `pii`
/// mode), then `rename`. Events without actions and without a PII pre-filter hit are left
/// untouched (the common, fast path: one vectored Hyperscan scan), and so are the attributes of
/// events whose top-level keys name no attribute action (a search for the named keys' bytes in
/// the encoded map, then, when one occurs, an allocation-free pass over the keys, `any_attr_key`;
/// `keep` always rewrites); others have their `attrs` map rewritten (msgpack-c, zone and output
/// buffer reused). The `const event&` overload copies only events it changes.
///
/// Lifecycle: one per sink runner; not thread-safe. Counts `sluice_pii_detected_total{route,
/// kind, sink}` (each delivered copy counts). Hashing without a secret (prevented at start and
/// by route validation) masks instead: never an unsalted hash.
class route_transformer {
public:
  /// `pii` may be null (no detection); `metrics` may be null (no counting).
  route_transformer(std::shared_ptr<const pii_detector> pii, metrics_registry* metrics,
                    std::string sink);
  ~route_transformer();
  route_transformer(const route_transformer&) = delete;
  route_transformer& operator=(const route_transformer&) = delete;

  /// Applies the actions of route `route` to `e`.
  void apply(std::string_view route, const route_actions& actions, event& e);

  /// The sink's copy of `in` under the actions of route `route`: `in` itself when they leave it
  /// as it is (no action applies to it and the PII pre-filter finds nothing to scan), else `out`,
  /// assigned from `in` (reusing `out`'s buffers) and changed. The sink runner keeps a pointer to
  /// `in` in the first case, so only the events a route changes are copied.
  const event& apply(std::string_view route, const route_actions& actions, const event& in,
                     event& out);

  /// Detections per kind counted by the last `apply` (tests).
  const std::array<uint32_t, pii_kind_count>& last_detections() const noexcept {
    return detections_;
  }

private:
  /// What `apply` has to do for one event, decided without changing (or copying) it.
  struct plan {
    bool scan = false;          ///< the PII pre-filter hit: scan the strings
    bool attr_work = false;     ///< the attributes hold a key an action names (or `keep`)
    bool envelope_work = false; ///< an action on id, device_id or profile_id
    bool changes() const noexcept {
      return scan || attr_work || envelope_work;
    }
  };
  plan plan_for(const route_actions& actions, const event& e) const;
  void apply(std::string_view route, const route_actions& actions, const plan& p, event& e);

  struct impl;
  std::unique_ptr<impl> impl_;
  std::array<uint32_t, pii_kind_count> detections_{};
};

} // namespace sluice
