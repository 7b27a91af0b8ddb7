#pragma once

// The ingest log and one profile shard on CAF's test coordinator, for the shard and profile tests.

#include "actor_fixture.hpp"

#include "actors/ingest_log.hpp"
#include "actors/profile_entity.hpp"
#include "actors/shard.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <utility>

namespace sluice::testing {

struct profile_shard_test : actor_test {
  ingest_log_actor log;
  shard_actor profiles;
  /// The `shard` label of the spawned shard's metrics.
  std::string shard_label = "0";
  /// `shard_deps::checkpoint_phase` of the next spawned shard.
  caf::timespan checkpoint_phase{0};
  /// `ingest_log_deps::checkpoint_entries_per_commit` of the next spawned log.
  size_t checkpoint_entries_per_commit = 512;

  /// Spawns the log and profile shard `index` of `count` (idle timeout 10 s, checkpoints every
  /// 100 ms) resuming after `done_upto`; `make_entity` is how the shard makes an entity (default:
  /// a real profile with `opts`).
  void spawn_profile_shard(decltype(entity_kind::make) make_entity = {},
                           profile_options opts = {}, size_t index = 0, size_t count = 1,
                           log_offset done_upto = 0) {
    using namespace std::chrono_literals;
    ingest_log_deps ldeps;
    ldeps.env = env_.get();
    ldeps.metrics = &metrics_;
    ldeps.checkpoint_entries_per_commit = checkpoint_entries_per_commit;
    ldeps.consumers = {{"profiles." + std::to_string(index), consumer_spec::slice::profile, index,
                        count}};
    log = spawn(ingest_log, std::move(ldeps));
    entity_kind kind;
    kind.name = "profile";
    kind.space = state_space::profiles;
    kind.key = placement_key::profile;
    kind.make = make_entity ? std::move(make_entity)
                            : [opts](std::string_view key,
                                     std::string_view stored) -> std::unique_ptr<entity> {
                                return std::make_unique<profile_entity>(key, stored, opts);
                              };
    shard_deps deps;
    deps.kind = kind;
    deps.index = index;
    deps.count = count;
    deps.log = log;
    deps.env = env_.get();
    deps.metrics = &metrics_;
    deps.idle_timeout = 10s;
    deps.checkpoint_interval = 100ms;
    deps.checkpoint_phase = checkpoint_phase;
    deps.done_upto = done_upto;
    shard_label = std::to_string(index);
    profiles = spawn(shard, std::move(deps));
    run();
  }
};

} // namespace sluice::testing
