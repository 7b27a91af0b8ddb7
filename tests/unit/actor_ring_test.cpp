#include "actors/cluster/ring.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

using sluice::cluster::hash_ring;

namespace {

std::string key(int i) {
  return "dev-" + std::to_string(i);
}

} // namespace

TEST(hash_ring, gives_every_node_the_same_owners_whatever_the_order_of_the_members) {
  hash_ring a({"n1", "n2", "n3"});
  hash_ring b({"n3", "n1", "n2", "n1"});
  for (int i = 0; i < 10000; ++i) {
    ASSERT_EQ(a.owner(key(i)), b.owner(key(i)));
    ASSERT_EQ(a.owners(key(i), 2), b.owners(key(i), 2));
  }
}

TEST(hash_ring, spreads_keys_within_ten_percent_of_an_even_share) {
  hash_ring ring({"n1", "n2", "n3"});
  std::map<std::string, int> counts;
  constexpr int keys = 300000;
  for (int i = 0; i < keys; ++i)
    ++counts[ring.owner(key(i))];
  for (const auto& [node, share] : ring.shares()) {
    EXPECT_NEAR(share, 1.0 / 3, 0.1 / 3) << node;
    EXPECT_NEAR(counts[node], keys / 3, keys / 30) << node;
  }
}

TEST(hash_ring, moves_only_the_keys_of_a_node_that_leaves) {
  hash_ring before({"n1", "n2", "n3"});
  hash_ring after({"n1", "n3"});
  int moved = 0;
  for (int i = 0; i < 50000; ++i) {
    const auto& was = before.owner(key(i));
    const auto& now = after.owner(key(i));
    if (was != "n2") {
      ASSERT_EQ(was, now) << key(i);
    } else {
      ++moved;
      // the key goes to the node that was its replica: the state is already there
      ASSERT_EQ(now, before.owners(key(i), 2)[1]) << key(i);
    }
  }
  EXPECT_GT(moved, 0);
}

TEST(hash_ring, lists_distinct_successors_and_never_more_than_the_members) {
  hash_ring ring({"a", "b", "c"});
  auto all = ring.owners("x", 5);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_NE(all[0], all[1]);
  EXPECT_NE(all[1], all[2]);
  EXPECT_NE(all[0], all[2]);
  EXPECT_EQ(all[0], ring.owner("x"));
  EXPECT_TRUE(hash_ring{}.owners("x", 2).empty());
  EXPECT_THROW(hash_ring{}.owner("x"), std::logic_error);
}

TEST(hash_ring, gives_a_lone_node_the_whole_space) {
  hash_ring ring({"solo"}, 1);
  EXPECT_EQ(ring.owner("anything"), "solo");
  EXPECT_NEAR(ring.shares().at("solo"), 1.0, 1e-9);
}
