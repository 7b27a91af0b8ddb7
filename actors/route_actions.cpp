#include "actors/route_actions.hpp"

#include "actors/metrics.hpp"
#include "messages/codec.hpp"

#include <msgpack.hpp>

#include <algorithm>

#include <fmt/format.h>

namespace sluice {

// -- compiling ----------------------------------------------------------------------------------

namespace {

constexpr std::string_view envelope_names[] = {"id",  "type", "device_id", "profile_id",
                                               "ts", "ingest_ts", "offset"};

bool is_envelope(std::string_view path) {
  return std::find(std::begin(envelope_names), std::end(envelope_names), path)
         != std::end(envelope_names);
}

std::string_view action_name(field_action a) {
  switch (a) {
    case field_action::drop: return "drop";
    case field_action::mask: return "mask";
    case field_action::hash: return "hash";
    default: return "none";
  }
}

// Splits `path` (without `attrs.`) into segments; false when a segment is empty.
bool split(std::string_view path, std::vector<std::string_view>& out) {
  out.clear();
  size_t start = 0;
  for (;;) {
    auto dot = path.find('.', start);
    auto seg = path.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (seg.empty())
      return false;
    out.push_back(seg);
    if (dot == std::string_view::npos)
      return true;
    start = dot + 1;
  }
}

route_actions::node& descend(route_actions::node& root, const std::vector<std::string_view>& segs) {
  auto* n = &root;
  for (auto seg : segs) {
    auto i = std::find_if(n->children.begin(), n->children.end(),
                          [&](const route_actions::node& c) { return c.key == seg; });
    if (i == n->children.end()) {
      n->children.push_back({});
      n->children.back().key = std::string{seg};
      n = &n->children.back();
    } else {
      n = &*i;
    }
  }
  return *n;
}

bool any_hash(const route_actions::node& n) {
  if (n.action == field_action::hash)
    return true;
  for (auto& c : n.children)
    if (any_hash(c))
      return true;
  return false;
}

} // namespace

bool route_actions::uses_hash() const noexcept {
  return pii == pii_mode::hash || id == field_action::hash || device_id == field_action::hash
         || profile_id == field_action::hash || any_hash(attrs);
}

std::string route_actions::compile(const std::vector<std::string>& keep,
                                   const std::vector<std::string>& drop,
                                   const std::vector<std::string>& mask,
                                   const std::vector<std::string>& hash,
                                   const std::vector<std::string>& rename, const std::string& pii,
                                   route_actions& out) {
  out = route_actions{};
  if (pii == "mask" || pii.empty())
    out.pii = pii_mode::mask;
  else if (pii == "hash")
    out.pii = pii_mode::hash;
  else if (pii == "off")
    out.pii = pii_mode::off;
  else
    return fmt::format("'pii' is \"{}\"; use \"mask\" (the default), \"hash\" or \"off\"", pii);
  if (!keep.empty() && !drop.empty())
    return "'keep' and 'drop' are both set; use one: keep lists the attributes to keep, drop the "
           "ones to remove";
  std::vector<std::string_view> segs;
  auto attr_path = [&](std::string_view key, std::string_view path,
                       std::string& error) -> route_actions::node* {
    std::string_view p = path;
    if (p.rfind("attrs.", 0) == 0)
      p.remove_prefix(6);
    if (!split(p, segs)) {
      error = fmt::format("'{}' names \"{}\", which is not a field path (use names joined by "
                          "dots, such as player.codec)",
                          key, path);
      return nullptr;
    }
    return &descend(out.attrs, segs);
  };
  // Envelope fields: which actions each allows.
  auto envelope_action = [&](std::string_view key, std::string_view path, field_action a,
                             std::string& error) -> bool {
    field_action* slot = path == "id"           ? &out.id
                         : path == "device_id"  ? &out.device_id
                         : path == "profile_id" ? &out.profile_id
                                                : nullptr;
    if (slot == nullptr || (a == field_action::drop && path != "profile_id")) {
      error = fmt::format("'{}' names the envelope field \"{}\", which cannot be {}; {}", key,
                          path, a == field_action::drop ? "dropped" : (a == field_action::mask ? "masked" : "hashed"),
                          a == field_action::drop && slot != nullptr
                            ? "mask or hash it instead"
                            : "only id, device_id and profile_id can be masked or hashed (write "
                              "attrs." + std::string{path} + " for an attribute of that name)");
      return false;
    }
    if (*slot != field_action::none) {
      error = fmt::format("'{}' names \"{}\", which already has the action '{}'; give each field "
                          "one action",
                          key, path, action_name(*slot));
      return false;
    }
    *slot = a;
    return true;
  };
  std::string error;
  auto set = [&](std::string_view key, const std::vector<std::string>& paths, field_action a) {
    for (auto& path : paths) {
      if (is_envelope(path)) {
        if (!envelope_action(key, path, a, error))
          return false;
        continue;
      }
      auto n = attr_path(key, path, error);
      if (n == nullptr)
        return false;
      if (n->action != field_action::none) {
        error = fmt::format("'{}' names \"{}\", which already has the action '{}'; give each "
                            "field one action",
                            key, path, action_name(n->action));
        return false;
      }
      n->action = a;
      out.attr_actions = true;
    }
    return true;
  };
  if (!set("drop", drop, field_action::drop) || !set("mask", mask, field_action::mask)
      || !set("hash", hash, field_action::hash))
    return error;
  for (auto& path : keep) {
    if (is_envelope(path))
      return fmt::format("'keep' names the envelope field \"{}\"; the envelope is always kept, "
                         "keep lists attributes",
                         path);
    auto n = attr_path("keep", path, error);
    if (n == nullptr)
      return error;
    n->keep = true;
    // Mark the ancestors.
    auto* a = &out.attrs;
    for (size_t i = 0; i + 1 < segs.size(); ++i) {
      a = const_cast<route_actions::node*>(a->child(segs[i]));
      a->keep_path = true;
    }
    out.keep_mode = true;
    out.attr_actions = true;
  }
  for (auto& entry : rename) {
    auto colon = entry.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == entry.size())
      return fmt::format("'rename' entry \"{}\" is not \"from:to\" (e.g. \"cc:card\" or "
                         "\"player.codec:player.video_codec\")",
                         entry);
    std::string_view from{entry.data(), colon};
    std::string_view to{entry.data() + colon + 1, entry.size() - colon - 1};
    if (is_envelope(from))
      return fmt::format("'rename' entry \"{}\" renames the envelope field \"{}\"; envelope fields "
                         "keep their names",
                         entry, from);
    auto n = attr_path("rename", from, error);
    if (n == nullptr)
      return error;
    if (to.rfind("attrs.", 0) == 0)
      to.remove_prefix(6);
    auto parent = from.rfind("attrs.", 0) == 0 ? from.substr(6) : from;
    auto dot = parent.rfind('.');
    auto prefix = dot == std::string_view::npos ? std::string_view{} : parent.substr(0, dot + 1);
    if (to.find('.') != std::string_view::npos) {
      if (prefix.empty() || to.substr(0, prefix.size()) != prefix
          || to.find('.', prefix.size()) != std::string_view::npos)
        return fmt::format("'rename' entry \"{}\" moves the field to another map; rename keeps a "
                           "field in its map (write \"{}:{}new_name\")",
                           entry, from, prefix);
      to.remove_prefix(prefix.size());
    }
    if (to.empty())
      return fmt::format("'rename' entry \"{}\" has an empty new name", entry);
    if (prefix.empty() && is_envelope(to))
      return fmt::format("'rename' entry \"{}\" renames to the envelope field name \"{}\"; pick "
                         "another name",
                         entry, to);
    if (!n->rename_to.empty())
      return fmt::format("'rename' renames \"{}\" twice", from);
    n->rename_to = std::string{to};
    out.attr_actions = true;
  }
  return {};
}

// -- applying -----------------------------------------------------------------------------------

namespace {

// Strings and binaries stay in the event's buffer while it is rewritten.
bool reference_everything(msgpack::type::object_type, std::size_t, void*) {
  return true;
}

struct string_out {
  std::string* out;
  void write(const char* data, size_t size) {
    out->append(data, size);
  }
};

} // namespace

struct route_transformer::impl {
  std::shared_ptr<const pii_detector> pii;
  std::unique_ptr<pii_scanner> scanner;
  std::unique_ptr<keyed_hasher> hasher;
  metrics_registry* metrics = nullptr;
  std::string sink;
  msgpack::zone zone;
  std::string out;
  string_out stream{&out};
  msgpack::packer<string_out> pk{stream};
  std::string text;
  std::string norm;
  std::string path;
  std::string scratch;
  std::vector<pii_span> spans;
  pii_mode mode = pii_mode::mask;
  bool changed = false;
  std::array<uint32_t, pii_kind_count>* detections = nullptr;
  std::map<std::string, std::array<counter*, pii_kind_count>, std::less<>> counters;

  bool hashing() const {
    return hasher != nullptr;
  }

  void pseudonym(std::string_view value, std::string& into) {
    hasher->append(value, into);
  }

  // Replaces the spans of `s` into `into` (cleared first).
  void replace_spans(std::string_view s, std::string& into) {
    into.clear();
    size_t pos = 0;
    for (auto& sp : spans) {
      into.append(s.data() + pos, sp.begin - pos);
      auto value = s.substr(sp.begin, sp.end - sp.begin);
      if (mode == pii_mode::hash && hashing()) {
        normalize_pii(sp.kind, value, norm);
        pseudonym(norm, into);
      } else {
        into += "[masked:";
        into += to_string(sp.kind);
        into += ']';
      }
      ++(*detections)[static_cast<size_t>(sp.kind)];
      pos = sp.end;
    }
    into.append(s.data() + pos, s.size() - pos);
  }

  bool path_scanned() const {
    return pii->scans(path);
  }

  void write_string(std::string_view s, bool scan) {
    if (scan && path_scanned()) {
      spans.clear();
      scanner->find(s, spans);
      if (!spans.empty()) {
        replace_spans(s, text);
        pk.pack_str(static_cast<uint32_t>(text.size()));
        pk.pack_str_body(text.data(), static_cast<uint32_t>(text.size()));
        changed = true;
        return;
      }
    }
    pk.pack_str(static_cast<uint32_t>(s.size()));
    pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
  }

  void write_replacement(field_action action, const msgpack::object& o) {
    changed = true;
    if (action == field_action::hash && hashing()) {
      text.clear();
      if (o.type == msgpack::type::STR) {
        pseudonym({o.via.str.ptr, o.via.str.size}, text);
      } else if (o.type == msgpack::type::POSITIVE_INTEGER) {
        pseudonym(std::to_string(o.via.u64), text);
      } else if (o.type == msgpack::type::NEGATIVE_INTEGER) {
        pseudonym(std::to_string(o.via.i64), text);
      } else {
        // Other values: their msgpack encoding.
        scratch.clear();
        string_out s{&scratch};
        msgpack::packer<string_out> p{s};
        p.pack(o);
        pseudonym(scratch, text);
      }
      pk.pack_str(static_cast<uint32_t>(text.size()));
      pk.pack_str_body(text.data(), static_cast<uint32_t>(text.size()));
      return;
    }
    pk.pack_str(static_cast<uint32_t>(masked_marker.size()));
    pk.pack_str_body(masked_marker.data(), static_cast<uint32_t>(masked_marker.size()));
  }

  // `n`: the action node of this value (null: no actions below); `keep_filter`: this map keeps
  // only the children `keep` names.
  void write_value(const msgpack::object& o, const route_actions::node* n, bool keep_filter,
                   bool scan) {
    switch (o.type) {
      case msgpack::type::STR: write_string({o.via.str.ptr, o.via.str.size}, scan); return;
      case msgpack::type::ARRAY:
        pk.pack_array(o.via.array.size);
        for (uint32_t i = 0; i < o.via.array.size; ++i)
          write_value(o.via.array.ptr[i], n, keep_filter, scan);
        return;
      case msgpack::type::MAP: {
        auto& m = o.via.map;
        auto child_of = [&](const msgpack::object& key) -> const route_actions::node* {
          if (n == nullptr || key.type != msgpack::type::STR)
            return nullptr;
          return n->child({key.via.str.ptr, key.via.str.size});
        };
        auto kept = [&](const route_actions::node* c) {
          if (c != nullptr && c->action == field_action::drop)
            return false;
          return !keep_filter || (c != nullptr && (c->keep || c->keep_path));
        };
        uint32_t count = 0;
        for (uint32_t i = 0; i < m.size; ++i)
          count += kept(child_of(m.ptr[i].key)) ? 1 : 0;
        if (count != m.size)
          changed = true;
        pk.pack_map(count);
        for (uint32_t i = 0; i < m.size; ++i) {
          auto& kv = m.ptr[i];
          auto c = child_of(kv.key);
          if (!kept(c))
            continue;
          if (c != nullptr && !c->rename_to.empty()) {
            pk.pack_str(static_cast<uint32_t>(c->rename_to.size()));
            pk.pack_str_body(c->rename_to.data(), static_cast<uint32_t>(c->rename_to.size()));
            changed = true;
          } else {
            pk.pack(kv.key);
          }
          if (c != nullptr && (c->action == field_action::mask || c->action == field_action::hash)) {
            write_replacement(c->action, kv.val);
            continue;
          }
          auto path_len = path.size();
          bool track = scan && !pii->scans_all() && kv.key.type == msgpack::type::STR;
          if (track) {
            if (!path.empty())
              path += '.';
            path.append(kv.key.via.str.ptr, kv.key.via.str.size);
          }
          write_value(kv.val, c, keep_filter && c != nullptr && !c->keep, scan);
          if (track)
            path.resize(path_len);
        }
        return;
      }
      default: pk.pack(o); return;
    }
  }

  void envelope(std::string& value, std::string_view name, field_action action, bool scan) {
    switch (action) {
      case field_action::drop: value.clear(); return;
      case field_action::mask: value.assign(masked_marker); return;
      case field_action::hash:
        if (hashing()) {
          text.clear();
          pseudonym(value, text);
          value.swap(text);
        } else {
          value.assign(masked_marker);
        }
        return;
      default: break;
    }
    if (!scan || value.empty() || !pii->scans(name))
      return;
    spans.clear();
    scanner->find(value, spans);
    if (spans.empty())
      return;
    replace_spans(value, text);
    value.swap(text);
  }

  void count(std::string_view route) {
    if (metrics == nullptr)
      return;
    auto i = counters.find(route);
    if (i == counters.end()) {
      std::array<counter*, pii_kind_count> cs{};
      for (size_t k = 0; k < pii_kind_count; ++k)
        cs[k] = &metrics->get_counter(
          "sluice_pii_detected_total",
          "PII values detected (and masked or hashed unless the route says pii = \"off\") in "
          "the copies of events a route delivers to a sink",
          {{"route", std::string{route}},
           {"kind", std::string{to_string(static_cast<pii_kind>(k))}},
           {"sink", sink}});
      i = counters.emplace(std::string{route}, cs).first;
    }
    for (size_t k = 0; k < pii_kind_count; ++k)
      if ((*detections)[k] > 0)
        i->second[k]->inc((*detections)[k]);
  }
};

route_transformer::route_transformer(std::shared_ptr<const pii_detector> pii,
                                     metrics_registry* metrics, std::string sink)
  : impl_(std::make_unique<impl>()) {
  impl_->pii = std::move(pii);
  impl_->metrics = metrics;
  impl_->sink = std::move(sink);
  impl_->detections = &detections_;
  if (impl_->pii) {
    impl_->scanner = std::make_unique<pii_scanner>(impl_->pii);
    auto secret = resolve_pii_secret(impl_->pii->options());
    if (!secret.empty())
      impl_->hasher = std::make_unique<keyed_hasher>(secret,
                                                     impl_->pii->options().hash_encoding
                                                       == "base64url");
  }
}

route_transformer::~route_transformer() = default;

namespace {

bool names_attr_key(std::string_view key, const void* ctx) {
  return static_cast<const route_actions::node*>(ctx)->child(key) != nullptr;
}

/// Whether the attributes may hold a top-level key that an action names: false when none of the
/// names occurs in the encoded bytes at all (a key is stored as its bytes, whatever its msgpack
/// header), which settles most events with one short search instead of a walk over the map.
bool may_name_attr_key(const route_actions::node& attrs, std::string_view encoded) {
  constexpr size_t max_searched_keys = 4; // beyond this, walking the map is cheaper
  if (attrs.children.size() > max_searched_keys)
    return true;
  for (auto& c : attrs.children)
    if (encoded.find(c.key) != std::string_view::npos)
      return true;
  return false;
}

} // namespace

// Inline into both `apply`s: returned from a call, the plan's three flags were stored to the
// stack one byte each and read back as one 16-bit word, a store-forwarding stall that was half
// of this function's time.
[[gnu::always_inline]] inline route_transformer::plan
route_transformer::plan_for(const route_actions& a, const event& e) const {
  auto& m = *impl_;
  plan p;
  p.scan = a.pii != pii_mode::off && m.scanner && m.pii->any_kind() && m.scanner->maybe(e);
  // Attribute actions rewrite the map only when it holds a key they name (keep removes the
  // others, so it always rewrites); the check reads the top-level keys without allocating.
  p.attr_work = a.attr_actions
                && (a.keep_mode
                    || (may_name_attr_key(a.attrs, e.attrs)
                        && any_attr_key(e.attrs, names_attr_key, &a.attrs)));
  p.envelope_work = a.id != field_action::none || a.device_id != field_action::none
                    || a.profile_id != field_action::none;
  return p;
}

void route_transformer::apply(std::string_view route, const route_actions& a, event& e) {
  detections_.fill(0);
  auto p = plan_for(a, e);
  if (p.changes())
    apply(route, a, p, e);
}

const event& route_transformer::apply(std::string_view route, const route_actions& a,
                                      const event& in, event& out) {
  detections_.fill(0);
  auto p = plan_for(a, in);
  if (!p.changes())
    return in;
  out = in; // reuses out's buffers
  apply(route, a, p, out);
  return out;
}

void route_transformer::apply(std::string_view route, const route_actions& a, const plan& p,
                              event& e) {
  auto& m = *impl_;
  m.mode = a.pii;
  bool scan = p.scan;
  m.envelope(e.id, "id", a.id, scan);
  m.envelope(e.device_id, "device_id", a.device_id, scan);
  m.envelope(e.profile_id, "profile_id", a.profile_id, scan);
  if ((scan || p.attr_work) && !e.attrs.empty()) {
    m.zone.clear();
    size_t off = 0;
    bool referenced = false;
    msgpack::object root;
    try {
      root = msgpack::unpack(m.zone, e.attrs.data(), e.attrs.size(), off, referenced,
                             reference_everything);
    } catch (const std::exception&) {
      // Not msgpack (cannot happen for logged events): deliver no attributes rather than
      // unscanned ones.
      e.attrs.clear();
      return;
    }
    m.out.clear();
    m.changed = false;
    m.path.clear();
    m.write_value(root, a.attr_actions ? &a.attrs : nullptr, a.keep_mode, scan);
    if (m.changed)
      e.attrs.assign(m.out);
  }
  bool any = false;
  for (auto d : detections_)
    any = any || d > 0;
  if (any)
    m.count(route);
}

} // namespace sluice
