#pragma once

// Versions of a node's routes, kept in the LMDB named database `routes`. Plain C++ (no CAF).

#include "persistence/lmdb.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sluice::persistence {

/// One stored version of the routes: the INI text as the operator wrote it, its number, and the
/// first log offset it routes.
struct route_version {
  /// 1, 2, ... in the order the versions were made.
  uint64_t version = 0;
  /// Events at or above this log offset are routed by this version (until a later one starts).
  uint64_t effective_from = 0;
  /// When the version was made, milliseconds since the epoch.
  int64_t created_ms = 0;
  /// Who or what made it: "config", "api", "rollback to 3", ...
  std::string comment;
  /// The route INI text.
  std::string text;
};

/// Reads and writes route versions in `db::routes`.
///
/// Layout: key `v` + 8-byte big-endian version → encoded `route_version` (so keys sort by
/// version); key `config-text` → the route text of the config file seen at the last start (to tell
/// whether the operator changed the file since). Stateless: every call takes the transaction, so
/// the caller decides what commits together. Writes happen only on the ingest log's thread (the
/// single LMDB writer) or before it starts. Limits: versions are never deleted (a few KB each).
class route_store {
public:
  /// Every stored version, oldest first.
  static std::vector<route_version> list(const read_txn& txn);
  /// Version `n`, if stored.
  static std::optional<route_version> get(const read_txn& txn, uint64_t n);
  /// The newest version, if any.
  static std::optional<route_version> latest(const read_txn& txn);
  /// Stores `v` (its `version` must be new).
  static void put(write_txn& txn, const route_version& v);
  /// The config file's route text seen at the last start, if recorded.
  static std::optional<std::string> config_text(const read_txn& txn);
  static void set_config_text(write_txn& txn, const std::string& text);

  /// Record encoding (exposed for tests): fixed big-endian header, then length-prefixed strings.
  static std::string encode(const route_version& v);
  /// Decodes a record; nullopt when it is truncated or malformed.
  static std::optional<route_version> decode(uint64_t version, std::string_view bytes);
};

} // namespace sluice::persistence
