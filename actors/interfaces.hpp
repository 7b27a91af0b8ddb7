#pragma once

// The typed interfaces of every sluice actor, side by side: what each one accepts and answers.

#include "messages/type_ids.hpp"

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

namespace sluice {

/// Something that consumes committed log batches in offset order and can be asked to drain (finish
/// what it holds and make its offset durable) before shutdown. The sink runners and the device and
/// profile shards are consumers. Flow control: after handling a batch a consumer sends the log
/// `(processed_atom, upto)`; the log keeps at most `actors.consumer-window-events` unprocessed events
/// in flight per consumer, and a consumer that falls further behind catches up from the stored log.
using consumer_actor = caf::typed_actor<
  caf::reacts_to<dispatch_atom, committed_batch>,
  caf::replies_to<drain_atom>::with<caf::ok_atom>>;

/// The single LMDB writer: appends ingest batches to the log with group commit, commits state
/// checkpoints from consumers, replays the log on start and dispatches what it committed.
using ingest_log_actor = caf::typed_actor<
  /// Appends a client batch; its reply callback runs after the commit.
  caf::reacts_to<append_atom, ingest_request>,
  /// Commits state entries and a consumer offset in one transaction; answers after the commit.
  caf::replies_to<commit_atom, checkpoint>::with<caf::ok_atom>,
  /// Wires the consumers in after they were spawned with this log's handle, in the order of
  /// `ingest_log_deps::consumers`.
  caf::reacts_to<connect_atom, std::vector<consumer_actor>>,
  /// A consumer handled every dispatched event up to this offset (flow-control credit).
  caf::reacts_to<processed_atom, log_offset>,
  /// Internal: run the pending group commit.
  caf::reacts_to<commit_atom>,
  /// Internal (durability = periodic): fsync what was committed since the last sync.
  caf::reacts_to<sync_atom>,
  /// Starts dispatching: every consumer catches up from its recorded offset (replay after a
  /// restart), then receives live batches; answers the number of stored events above the lowest
  /// consumer offset.
  caf::replies_to<replay_atom>::with<uint64_t>,
  /// Commits what is pending, then drains every consumer; answers when all are durable.
  caf::replies_to<drain_atom>::with<caf::ok_atom>,
  /// Hot reload: stores new routes as a version effective from the next offset and publishes
  /// them before dispatching any event they route; answers through the request's callback.
  caf::reacts_to<route_atom, route_swap_request>>;

/// Reads the stored log for consumers that catch up, off the writer's thread: answers the events
/// after `from` that a consumer with filter (slice, index, count) receives, at most `max_events`
/// of them (scanning a bounded number of records), as a batch whose `upto` is the last offset read.
using log_reader_actor = caf::typed_actor<
  caf::replies_to<read_atom, log_offset, uint8_t, uint64_t, uint64_t, uint64_t>::with<
    committed_batch>>;

/// A shard owning the entities (devices or profiles) of the keys that hash to it.
using shard_actor = consumer_actor::extend<
  /// Answers a query (`what`) about `key` through the callback.
  caf::reacts_to<query_atom, std::string, std::string, query_reply>,
  /// Internal: checkpoint dirty state and passivate idle entities.
  caf::reacts_to<tick_atom>>;

/// The aggregator: a consumer of every event that keeps trending titles, popular genres and
/// co-completion counts (actors/aggregator.hpp).
using aggregator_actor = consumer_actor::extend<
  /// Answers a trending, genres or also-watched query with a JSON document through the callback.
  caf::reacts_to<query_atom, aggregate_query, query_reply>,
  /// Internal: checkpoint the changed state with the offset.
  caf::reacts_to<tick_atom>>;

/// A sink runner: a log consumer that keeps the events its routes send to its sink, batches,
/// writes through the sink, retries, records its offset.
using sink_actor = consumer_actor::extend<
  /// Internal: the flush interval elapsed.
  caf::reacts_to<tick_atom>,
  /// Internal: a backoff elapsed; try the pending write again.
  caf::reacts_to<retry_atom>>;

/// The dead-letter sink: durable, inspectable record of events given up on after acceptance.
using dead_letter_actor = caf::typed_actor<
  /// Records the letters durably (fdatasync) before it answers; an error leaves them unrecorded.
  caf::replies_to<dead_atom, std::vector<dead_letter>>::with<caf::ok_atom>,
  caf::replies_to<drain_atom>::with<caf::ok_atom>>;

/// The dead-letter sink's full interface, for the node and the admin API: inspection and replay.
using dead_letter_admin_actor = dead_letter_actor::extend<
  /// Wires in the ingest log that replays append to.
  caf::reacts_to<connect_atom, ingest_log_actor>,
  /// Lists a page (`after`, `limit`, `reason`); answers the JSON page through the callback.
  caf::reacts_to<query_atom, dead_letter_query, query_reply>,
  /// Replays a selection into the ingest log; answers `{"replayed":n,"skipped":k}` through the
  /// callback once the log committed them.
  caf::reacts_to<replay_atom, dead_letter_query, query_reply>,
  /// Internal: the log committed (empty error) or refused one replay chunk: (ticket, chunk, error).
  caf::reacts_to<replayed_atom, uint64_t, uint64_t, std::string>>;

} // namespace sluice
