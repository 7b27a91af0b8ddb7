#pragma once

// The one type-ID block of sluice: every atom and message type that actors exchange.

#include "messages/event.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/type_id.hpp>

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

/// Outcome of one ingest request, delivered to the gateway after the commit.
struct ingest_outcome {
  /// Empty on success; otherwise why nothing of the batch was committed.
  std::string error;
  log_offset first = 0;
  log_offset last = 0;
  /// With `error`: seconds the sender should wait before trying again (0: no advice).
  uint32_t retry_after_s = 0;
};

/// A decoded client batch on its way into the log, with the callback that acknowledges it. Local
/// only: the callback is not serializable (the gateway posts the answer onto its connection strand).
struct ingest_request {
  event_batch events;
  std::function<void(ingest_outcome)> reply;
};

/// Named LMDB key spaces that actors may write through the ingest log's single writer.
enum class state_space : uint8_t { devices, profiles, aggregates, routes, meta };

/// A set of state writes plus a consumer offset, committed by the single LMDB writer in one
/// transaction (exactly-once state: the state and the offset it reflects land together).
struct checkpoint {
  state_space space = state_space::meta;
  /// key → value; an empty value deletes the key.
  std::vector<std::pair<std::string, std::string>> entries;
  /// Consumer name whose offset is recorded; empty for none.
  std::string consumer;
  /// Highest log offset the consumer is durably done with (inclusive).
  log_offset done_upto = 0;
  /// The entries may be committed over several transactions before the offset (which lands with
  /// the last of them): each entry is safe to have durable alone, because it is a state that
  /// records the offsets it applied, and replay skips events already applied. False: all entries
  /// and the offset land in one transaction. Local only (not serialized).
  bool divisible = false;
};

/// Committed events on their way to one consumer, in offset order. `upto` is the last offset of the
/// commit they came from, so a consumer that got no events still learns how far the log has gone.
struct committed_batch {
  event_batch events;
  log_offset upto = 0;
  /// The placement hash (`key_hash`, actors/placement.hpp) of each event's `device_id` and
  /// `profile_id`, parallel to `events`: computed once by the ingest log for every shard of that
  /// kind (which reads its events' hashes instead of hashing every key of the batch). Empty when
  /// no consumer of the batch places by that key, or when the sender did not compute them (a
  /// shard then computes them itself). Derived data, local only: not serialized (`inspect`), so a
  /// batch read from elsewhere has none and its hashes are recomputed by this library's hash.
  std::vector<size_t> device_hashes{};
  std::vector<size_t> profile_hashes{};
};

/// An event that could not be delivered after acceptance, with the reason.
struct dead_letter {
  event ev;
  std::string reason;
  /// Component that gave up on the event (sink or route name).
  std::string origin;
};

/// Answers a query. Local only.
struct query_reply {
  enum class status { found, not_found, failed };
  /// `json` is the document when found, the reason when failed.
  std::function<void(status, std::string json)> fn;
};

/// A request to the dead-letter sink: a page to list (`after`, `limit`, `reason`) or a selection to
/// replay (exactly one of `ids`, `reason`, `all`).
struct dead_letter_query {
  /// List: only ids greater than this (the `next` cursor of the previous page; 0 = from the start).
  uint64_t after = 0;
  /// List: most items in the page.
  uint32_t limit = 0;
  /// List and replay: only dead letters whose reason contains this text (empty: any).
  std::string reason;
  /// Replay: these ids.
  std::vector<uint64_t> ids;
  /// Replay: every dead letter not yet replayed.
  bool all = false;
};

/// A request to the ingest log to make `text` the routes in effect (hot reload); `reply` gets
/// (error, invalid, version, effective_from) once the new version is stored. Local only.
struct route_swap_request {
  std::string text;
  /// Who or what asked ("api", "rollback to 3").
  std::string comment;
  std::function<void(std::string error, bool invalid, uint64_t version, log_offset effective_from)>
    reply;
};

/// A query to the aggregator (trending, popular genres, also-watched); see docs/aggregates.md.
struct aggregate_query {
  enum class kind : uint8_t { trending, genres, also_watched };
  kind what = kind::trending;
  /// Trending: window length in ms (a multiple of `trending.bucket`).
  int64_t window_ms = 0;
  /// Genres: the UTC day (days since 1970-01-01).
  int64_t day = 0;
  /// Also-watched: the title.
  std::string title_id;
  /// Most items in the answer.
  uint32_t k = 0;
};

/// A cluster member as nodes tell each other (actors/cluster): its node name, the host:port it
/// publishes its cluster actor on, and its gateway's base URL.
struct member_info {
  std::string name;
  std::string address;
  std::string http;
};

/// Events one cluster node forwards to a node that keeps their keys' state. Every event carries
/// `origin` (= `origin` here) and `origin_offset` (its offset in the origin's log).
struct forward_batch {
  std::string origin;
  event_batch events;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member_info& x) {
  return f(caf::meta::type_name("member_info"), x.name, x.address, x.http);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, forward_batch& x) {
  return f(caf::meta::type_name("forward_batch"), x.origin, x.events);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, aggregate_query& x) {
  return f(caf::meta::type_name("aggregate_query"), x.what, x.window_ms, x.day, x.title_id, x.k);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, dead_letter_query& x) {
  return f(caf::meta::type_name("dead_letter_query"), x.after, x.limit, x.reason, x.ids, x.all);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, checkpoint& x) {
  return f(caf::meta::type_name("checkpoint"), x.space, x.entries, x.consumer, x.done_upto);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, committed_batch& x) {
  // Not the hashes (derived, local only): a receiver recomputes them (see `committed_batch`).
  return f(caf::meta::type_name("committed_batch"), x.events, x.upto);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, dead_letter& x) {
  return f(caf::meta::type_name("dead_letter"), x.ev, x.reason, x.origin);
}

} // namespace sluice

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::ingest_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::query_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::route_swap_request)

CAF_BEGIN_TYPE_ID_BLOCK(sluice, caf::first_custom_type_id)

CAF_ADD_TYPE_ID(sluice, (sluice::event))
CAF_ADD_TYPE_ID(sluice, (sluice::event_batch))
CAF_ADD_TYPE_ID(sluice, (sluice::checkpoint))
CAF_ADD_TYPE_ID(sluice, (sluice::committed_batch))
CAF_ADD_TYPE_ID(sluice, (sluice::dead_letter))
CAF_ADD_TYPE_ID(sluice, (sluice::ingest_request))
CAF_ADD_TYPE_ID(sluice, (sluice::query_reply))
CAF_ADD_TYPE_ID(sluice, (sluice::dead_letter_query))
CAF_ADD_TYPE_ID(sluice, (sluice::aggregate_query))
CAF_ADD_TYPE_ID(sluice, (sluice::route_swap_request))
CAF_ADD_TYPE_ID(sluice, (sluice::member_info))
CAF_ADD_TYPE_ID(sluice, (std::vector<sluice::member_info>))
CAF_ADD_TYPE_ID(sluice, (sluice::forward_batch))

CAF_ADD_ATOM(sluice, sluice, append_atom, "append")
CAF_ADD_ATOM(sluice, sluice, commit_atom, "commit")
CAF_ADD_ATOM(sluice, sluice, sync_atom, "sync")
CAF_ADD_ATOM(sluice, sluice, replay_atom, "replay")
CAF_ADD_ATOM(sluice, sluice, drain_atom, "drain")
CAF_ADD_ATOM(sluice, sluice, dispatch_atom, "dispatch")
CAF_ADD_ATOM(sluice, sluice, tick_atom, "tick")
CAF_ADD_ATOM(sluice, sluice, query_atom, "query")
CAF_ADD_ATOM(sluice, sluice, route_atom, "route")
CAF_ADD_ATOM(sluice, sluice, write_atom, "write")
CAF_ADD_ATOM(sluice, sluice, flush_atom, "flush")
CAF_ADD_ATOM(sluice, sluice, retry_atom, "retry")
CAF_ADD_ATOM(sluice, sluice, dead_atom, "dead")
CAF_ADD_ATOM(sluice, sluice, done_atom, "done")
CAF_ADD_ATOM(sluice, sluice, connect_atom, "connect")
CAF_ADD_ATOM(sluice, sluice, processed_atom, "processed")
CAF_ADD_ATOM(sluice, sluice, read_atom, "read")
CAF_ADD_ATOM(sluice, sluice, replayed_atom, "replayed")
CAF_ADD_ATOM(sluice, sluice, hello_atom, "hello")
CAF_ADD_ATOM(sluice, sluice, heartbeat_atom, "heartbeat")
CAF_ADD_ATOM(sluice, sluice, forward_atom, "forward")
CAF_ADD_ATOM(sluice, sluice, head_atom, "head")
CAF_ADD_ATOM(sluice, sluice, peer_atom, "peer")
CAF_ADD_ATOM(sluice, sluice, acked_atom, "acked")
CAF_ADD_ATOM(sluice, sluice, settle_atom, "settle")
CAF_ADD_ATOM(sluice, sluice, forget_atom, "forget")

CAF_END_TYPE_ID_BLOCK(sluice)

namespace sluice {

/// Registers every message type with an actor system config (needed for remote actors and for
/// CAF's rendering of messages).
void register_message_types(caf::actor_system_config& cfg);

} // namespace sluice
