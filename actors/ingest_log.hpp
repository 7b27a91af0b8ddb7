#pragma once

#include "actors/admission.hpp"
#include "actors/interfaces.hpp"
#include "actors/placement.hpp"
#include "persistence/log_store.hpp"
#include "persistence/session_store.hpp"

#include <caf/message.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {

class metrics_registry;
class counter;
class gauge;
class histogram;
class route_registry;

/// One consumer of the log as the log sees it: the offset key it records and which events it
/// receives.
struct consumer_spec {
  /// Which events of a committed batch the consumer keeps. Every consumer receives the whole
  /// batch (one shared message); a shard skips the events of other shards' keys itself, and the
  /// log counts only a shard's own events against its window.
  enum class slice : uint8_t {
    all,     ///< every event (sink runners)
    device,  ///< events whose `device_id` hashes to `index` of `count` shards
    profile, ///< events whose `profile_id` hashes to `index` of `count` shards
  };
  /// Offset key in LMDB: `sink.<name>`, `devices.<i>`, `profiles.<i>`.
  std::string name;
  slice filter = slice::all;
  size_t index = 0;
  size_t count = 1;

  /// The key a shard slice partitions by (`slice::all` has none).
  static placement_key placement(slice filter) noexcept {
    return filter == slice::device ? placement_key::device : placement_key::profile;
  }
};

/// Everything the ingest log needs at spawn.
struct ingest_log_deps {
  persistence::environment* env = nullptr;
  metrics_registry* metrics = nullptr;
  /// Every consumer; their recorded offsets bound replay and trimming. The actors come later with
  /// `connect_atom`, in this order.
  std::vector<consumer_spec> consumers;
  /// With durability = periodic: fsync this often.
  caf::timespan sync_interval = std::chrono::seconds{1};
  /// At most this many dispatched events may await a consumer's `processed` (bounds memory); a
  /// consumer further behind catches up from LMDB in shared chunks (`catch_up_events`).
  size_t window_events = 131072;
  /// Log events per catch-up read; one read serves every lagging consumer at that position.
  /// 0: `default_catch_up_events`, but at most twice the window (a small window is a memory bound
  /// the operator chose; catch-up keeps up to `max_cached_chunks` chunks) and at least half of it.
  size_t catch_up_events = 0;
  /// Larger chunks mean fewer entity messages and state encodes per event in the shards (with
  /// ~10,000 devices, 16,384 events are ~1.6 per device), at the price of memory while catching
  /// up. Measured (`bench/run.sh --only replay`, 1,000,000 entries): 16,384: 10-11 s; 32,768:
  /// 5.8-7.7 s; 65,536: 4.5-6.3 s (peak RSS ~0.75 GB); 131,072: 4.4-5.2 s (~0.9 GB).
  static constexpr size_t default_catch_up_events = 65536;
  /// Decoded chunks kept for consumers that have not been sent them yet (read-ahead included).
  size_t max_cached_chunks = 3;
  /// The gate closes while the stored (untrimmed) log exceeds this many bytes; 0: no limit.
  uint64_t max_log_bytes = 0;
  /// The gate closes while this many events wait for the next commit (bounds memory).
  size_t max_pending_events = 262144;
  /// State entries of consumer checkpoints one commit writes at most (0: no bound). A divisible
  /// checkpoint (`checkpoint::divisible`) larger than this lands over several commits, its offset
  /// with its last entries, so no commit carrying acks writes thousands of entity states at once.
  /// Measured under the reference job at 400k events/s: a shard checkpoint of ~5,000 entries took
  /// 4-15 ms to put and sync, and every batch waiting for that commit waited as long.
  size_t checkpoint_entries_per_commit = 512;
  /// ... but a checkpoint lands over at most this many commits: a larger one takes 1/n of its
  /// entries per commit. The shards' state must be written as fast as it changes: with a million
  /// new devices and profiles in a few seconds (`bench/run.sh --only memory`), checkpoints of
  /// ~250,000 entries at 512 per commit fell behind, entities waited in memory for their commit
  /// (passivation needs it), and RSS after passivation went from 238 to 591 MB.
  size_t checkpoint_max_commits = 16;
  /// Log records one commit trims at most (0: no bound); the rest goes in the next commits.
  /// Trimming costs ~3-5 µs per record, and consumers' offsets advance in steps (at their
  /// checkpoints), so an unbounded trim deletes hundreds of records in one commit.
  size_t trim_records_per_commit = 64;
  /// Shared with the gateway (may be null in tests).
  std::shared_ptr<admission> gate;
  /// Run the log reader (spawned and linked by the log) on its own thread.
  bool detached_reader = false;
  /// Hot reload of routes (may be null in tests): the log decides the routes in effect at start
  /// (`open_route_history`) and handles swaps between commits (`swap_routes`).
  std::shared_ptr<route_registry> routes;
  /// The config file's routes as INI text (see `render_routes_ini`).
  std::string config_routes_text;
  /// Session ids assigned at append (see `persistence::session_tracker`); off unless enabled.
  persistence::session_options sessions{false};
};

/// State of the ingest log: the node's single LMDB writer and the dispatcher of what it stored.
///
/// Lifecycle: spawned after the environment is open; `connect` hands it the consumers and
/// `replay` starts dispatching: each consumer catches up from its recorded offset by reads of the
/// stored log, then receives live batches. `append` requests and consumer `commit` checkpoints
/// are gathered while a commit runs and committed together in the next one (natural group commit:
/// one transaction, one fsync with durability = sync). After the commit each request's callback is
/// answered in order, then the committed batch goes to every live consumer as one shared message.
/// A commit writes at most `checkpoint_entries_per_commit` checkpoint entries (a divisible
/// checkpoint lands in slices, its offset with the last one) and trims at most
/// `trim_records_per_commit` records; while either is unfinished the log commits again at once.
/// `drain` commits what is pending and waits until every consumer made its offset durable.
///
/// Flow control: a consumer may have at most `window-events` dispatched events it has not
/// reported `processed`; when a batch would exceed that, the consumer stops receiving live batches
/// and later catches up from LMDB until it reaches the head. So memory is bounded per consumer and
/// a slow consumer never slows the others; what it has not consumed stays on disk.
///
/// Catch-up (after a restart every consumer starts there): the log reader (its own thread) reads
/// and decodes chunks of `catch_up_events` stored events; the log keeps up to
/// `max_cached_chunks` decoded chunks, and every lagging consumer at a chunk's position gets it
/// from there: all consumers share one message (as with live batches). So the log is read and
/// decoded once, not once per consumer, and no event is copied per consumer.
/// The reader stays one chunk ahead of the fastest lagging consumer (read-ahead, bounded by the
/// cache), and a lagging consumer is sent the next chunk while it has at most
/// max(window/2, one chunk) unprocessed events, so reading, decoding and applying overlap. A chunk
/// leaves the cache once every lagging consumer was sent it; a consumer at a position no chunk
/// covers gets a read of its own. The gate (`admission`) closes while the stored log exceeds
/// `max-log-bytes` or `max-pending-events` wait, and after a commit failed for lack of space;
/// the gateway then refuses batches with 503 and `Retry-After`.
///
/// Concurrency: runs detached (fsync blocks); the only writer of the environment. Limits: one log
/// record per client batch; the map grows by doubling on MDB_MAP_FULL up to
/// `storage.max-map-bytes`; beyond it appends fail (503) while checkpoints still commit, so
/// consumers can trim the log and make room.
struct ingest_log_state {
  static inline const char* name = "ingest-log";
  /// A consumer's dispatch position.
  struct link {
    consumer_actor actor;
    /// Highest offset dispatched to (or passed over for) this consumer.
    log_offset sent_upto = 0;
    /// Dispatched batches awaiting `processed`: (upto, events).
    std::deque<std::pair<log_offset, size_t>> inflight;
    size_t inflight_events = 0;
    /// Receives batches as they commit; false while catching up from LMDB.
    bool live = false;
  };
  /// A decoded catch-up chunk: the stored events `from..upto`.
  struct chunk {
    log_offset from = 0;
    log_offset upto = 0;
    /// `(dispatch_atom, committed_batch)` with every event, shared by every consumer (the shards
    /// pick their keys' events themselves).
    caf::message all;
    size_t events = 0;
    /// Per shard kind (index: `consumer_spec::slice`), the events of each shard, counted on first
    /// use (for the shards' windows).
    std::vector<size_t> shard_events[3];
  };

  ingest_log_deps deps;
  std::unique_ptr<persistence::log_store> log;
  /// Assigns `session_id` to appended events; null when sessions are off.
  std::unique_ptr<persistence::session_tracker> sessions;
  std::vector<ingest_request> pending;
  size_t pending_events = 0;
  /// A consumer's checkpoint waiting to be committed. A divisible one may land over several
  /// commits: its first `written` entries are committed; its offset lands with its last entries.
  struct pending_checkpoint {
    checkpoint cp;
    caf::typed_response_promise<caf::ok_atom> rp;
    size_t written = 0;
    /// Entries per commit while it is the first waiting (`checkpoint_entries_per_commit`, or more
    /// to land within `checkpoint_max_commits`).
    size_t slice = 0;
  };
  /// Checkpoints in arrival order; those whose offset landed leave from the front.
  std::deque<pending_checkpoint> pending_checkpoints;
  /// The last commit's trim stopped at `trim_records_per_commit` with more records to trim.
  bool trim_more = false;
  bool commit_scheduled = false;
  bool dispatching = false;
  /// The last append commit failed for lack of space (cleared by the next successful commit).
  bool out_of_space = false;
  /// Whether the gate was open at the last update (to log transitions only).
  bool gate_open_state = true;
  std::map<std::string, log_offset> offsets;
  std::vector<link> links;
  /// Serves catch-up reads off the writer's thread.
  log_reader_actor reader;
  /// Catch-up events per read (resolved from `deps.catch_up_events`).
  size_t chunk_events = 0;
  /// Decoded catch-up chunks not yet sent to every lagging consumer, by position.
  std::deque<chunk> chunks;
  /// A catch-up read is under way at the reader (one at a time).
  bool chunk_reading = false;
  /// Per consumer (in `deps.consumers` order): its lag and offset gauges, registered once.
  struct lag_gauges {
    gauge* lag_bytes = nullptr;
    gauge* lagging = nullptr;
    gauge* offset = nullptr;
    gauge* lag_events = nullptr;
  };
  std::vector<lag_gauges> consumer_gauges;
  /// Whether the gate was last told of lagging consumers.
  bool reported_lagging = false;
  counter* appended_events = nullptr;
  counter* appended_bytes = nullptr;
  counter* commits = nullptr;
  counter* commit_failures = nullptr;
  counter* refused = nullptr;
  counter* trimmed = nullptr;
  counter* caught_up = nullptr;
  counter* catch_up_reads = nullptr;
  gauge* stored_bytes = nullptr;
  gauge* stored_records = nullptr;
  gauge* next_offset = nullptr;
  gauge* gate_open = nullptr;
  gauge* checkpoint_entries_waiting = nullptr;
  histogram* commit_latency = nullptr;
  histogram* group_size = nullptr;
};

ingest_log_actor::behavior_type ingest_log(ingest_log_actor::stateful_pointer<ingest_log_state> self,
                                           ingest_log_deps deps);

} // namespace sluice
