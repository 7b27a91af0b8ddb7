#pragma once

// Shared by the libFuzzer targets (tests/fuzz/fuzz_*.cpp): oracles that turn a wrong answer into a
// crash libFuzzer keeps, so that "no crash" also means "every reply is well formed".

#include "messages/codec.hpp"

#include <simdjson.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace sluice::fuzz {

/// The ingest time stamped on decoded events (fixed: runs are reproducible).
inline constexpr int64_t fixed_ingest_ts = 1732233600000;

/// Aborts with `what` and the offending text (libFuzzer saves the input that got here).
[[noreturn]] inline void fail(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz oracle failed: %s\n%.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

namespace detail {

namespace od = simdjson::ondemand;

inline simdjson::error_code walk(od::value v, int depth) {
  if (depth > 1024)
    return simdjson::DEPTH_ERROR;
  od::json_type t;
  if (auto err = v.type().get(t))
    return err;
  switch (t) {
    case od::json_type::array: {
      od::array a;
      if (auto err = v.get_array().get(a))
        return err;
      for (auto element : a) {
        od::value x;
        if (auto err = element.get(x))
          return err;
        if (auto err = walk(x, depth + 1))
          return err;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::object: {
      od::object o;
      if (auto err = v.get_object().get(o))
        return err;
      for (auto field : o) {
        std::string_view key;
        if (auto err = field.unescaped_key().get(key))
          return err;
        od::value x;
        if (auto err = field.value().get(x))
          return err;
        if (auto err = walk(x, depth + 1))
          return err;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::number: {
      double d; // a double takes integers beyond 64 bits too
      return v.get_double().get(d);
    }
    case od::json_type::string: {
      std::string_view s;
      return v.get_string().get(s);
    }
    case od::json_type::boolean: {
      bool b;
      return v.get_bool().get(b);
    }
    case od::json_type::null: {
      bool null = false;
      if (auto err = v.is_null().get(null))
        return err;
      return null ? simdjson::SUCCESS : simdjson::N_ATOM_ERROR;
    }
  }
  return simdjson::TAPE_ERROR;
}

} // namespace detail

/// Aborts unless `text` is one well-formed JSON document (what clients and sinks get). simdjson's
/// DOM refuses integers beyond 64 bits (valid JSON: a client's numeric batch id is echoed as sent)
/// with NUMBER_ERROR; such a document is walked with On-Demand instead, which reads every number
/// as a double (that walk cannot see trailing content after the root in simdjson 3.0).
inline void require_valid_json(std::string_view text, const char* what) {
  namespace od = simdjson::ondemand;
  static simdjson::dom::parser dom;
  static od::parser parser;
  simdjson::padded_string copy{text};
  auto err = dom.parse(copy).error();
  if (err == simdjson::NUMBER_ERROR) {
    od::document doc;
    err = parser.iterate(copy).get(doc);
    od::json_type t = od::json_type::null;
    if (!err)
      err = doc.type().get(t);
    if (!err) {
      if (t == od::json_type::array || t == od::json_type::object) {
        od::value v;
        err = doc.get_value().get(v);
        if (!err)
          err = detail::walk(v, 0);
      } else if (t == od::json_type::number) {
        double d;
        err = doc.get_double().get(d);
      } else {
        err = simdjson::NUMBER_ERROR;
      }
    }
  }
  if (err)
    fail(what, std::string{simdjson::error_message(err)} + ": " + std::string{text});
}

/// Checks what any decoded batch promises: counts add up, rejected indices are in range and
/// ascending, accepted events carry the envelope, and every accepted event survives the log
/// encoding unchanged and renders as valid JSON.
inline void check_decoded(const decoded_batch& b) {
  if (!b.ok()) {
    if (!b.events.empty() || !b.rejected.empty())
      fail("a failed batch carries events or rejections", b.error);
    return;
  }
  if (b.events.size() + b.rejected.size() != b.total)
    fail("accepted + rejected != total");
  for (size_t i = 0; i < b.rejected.size(); ++i) {
    if (b.rejected[i].index >= b.total)
      fail("rejection index out of range", b.rejected[i].error);
    if (i > 0 && b.rejected[i].index <= b.rejected[i - 1].index)
      fail("rejections not in ascending index order", b.rejected[i].error);
    if (b.rejected[i].error.empty())
      fail("a rejection without a reason");
  }
  if (!b.batch_id.empty())
    require_valid_json(b.batch_id, "batch id is not JSON text");
  for (const auto& e : b.events) {
    if (e.type.empty() || e.device_id.empty() || e.id.empty())
      fail("accepted event without type, device_id or id", e.type);
    if (e.ingest_ts != fixed_ingest_ts)
      fail("ingest_ts not stamped");
    std::string json;
    append_json(json, e, "node-1");
    require_valid_json(json, "append_json rendered invalid JSON");
  }
  if (b.events.empty())
    return;
  std::string record;
  encode_log_record(b.events, record);
  event_batch back;
  if (!decode_log_record(record, 7, back))
    fail("decode_log_record refused encode_log_record output");
  if (back.size() != b.events.size())
    fail("log record round trip changed the event count");
  for (size_t i = 0; i < back.size(); ++i) {
    auto expected = b.events[i];
    expected.offset = 7 + i;
    if (!(back[i] == expected))
      fail("log record round trip changed an event", back[i].id);
  }
}

} // namespace sluice::fuzz
