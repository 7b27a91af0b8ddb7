// Shard slots keep a key's bytes inside the slot up to `shard_state::slot::inline_key` bytes and on
// the heap beyond: keys of every length around that bound are found, checkpointed under their own
// key, passivated and restored.

#include "profile_shard_fixture.hpp"

#include "actors/shard.hpp"

using namespace sluice;
using namespace sluice::testing;
using namespace std::chrono_literals;

namespace {

struct shard_keys_test : profile_shard_test {
  std::vector<std::string> answers;

  void query(const std::string& profile) {
    query_reply reply;
    reply.fn = [this](query_reply::status st, std::string json) {
      answers.push_back(st == query_reply::status::found ? json : std::string{"not found"});
    };
    caf::anon_send(profiles, query_atom_v, profile, std::string{"continue-watching"}, reply);
    run();
  }
};

TEST_F(shard_keys_test, keys_shorter_and_longer_than_the_inline_bytes_are_found_stored_and_restored) {
  spawn_profile_shard({}, {}, 0, 1);
  constexpr size_t bound = shard_state::slot::inline_key;
  std::vector<std::string> keys;
  for (size_t n : {size_t{1}, size_t{15}, size_t{16}, bound - 1, bound, bound + 1, 3 * bound})
    keys.push_back(std::string(n - 1, 'p') + "x");
  // Two keys equal but for their last byte, above and below the bound.
  keys.push_back(std::string(bound - 1, 'p') + "y");
  keys.push_back(std::string(bound, 'p') + "y");
  event_batch batch;
  log_offset offset = 0;
  for (auto& k : keys) {
    auto e = make_event("e" + std::to_string(offset + 1), "pause", "dev", k, 1000);
    e.offset = ++offset;
    e.attrs = playback_attrs("t-" + std::to_string(k.size()) + k.back(), 1000 + static_cast<int64_t>(offset));
    batch.push_back(std::move(e));
  }
  caf::anon_send(profiles, dispatch_atom_v, committed_batch{batch, offset});
  run();
  auto expect_each_own_title = [&] {
    answers.clear();
    for (auto& k : keys)
      query(k);
    ASSERT_EQ(answers.size(), keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      auto title = "\"title_id\":\"t-" + std::to_string(keys[i].size()) + keys[i].back() + "\"";
      EXPECT_NE(answers[i].find(title), std::string::npos) << keys[i].size() << ": " << answers[i];
    }
  };
  expect_each_own_title();
  EXPECT_EQ(metrics_.value("sluice_actors_spawned_total", {{"kind", "profile"}, {"shard", shard_label}}),
            static_cast<double>(keys.size()));
  // Checkpointed under each key, passivated, then restored from LMDB by key.
  advance(100ms);
  advance(11s);
  {
    persistence::read_txn txn{*env_};
    for (auto& k : keys)
      EXPECT_TRUE(txn.get(persistence::db::profiles, k).has_value()) << k.size();
  }
  EXPECT_EQ(metrics_.value("sluice_actors_active", {{"kind", "profile"}, {"shard", shard_label}}), 0.0);
  expect_each_own_title();
  EXPECT_EQ(metrics_.value("sluice_actors_restored_total", {{"kind", "profile"}, {"shard", shard_label}}),
            static_cast<double>(keys.size()));
  query(std::string(bound + 1, 'q'));
  EXPECT_EQ(answers.back(), "not found");
}

} // namespace
