#include "persistence/route_store.hpp"
#include "persistence_temp_dir.hpp"

#include <gtest/gtest.h>

using namespace sluice::persistence;

namespace {

route_version make(uint64_t n, uint64_t from, std::string text) {
  route_version v;
  v.version = n;
  v.effective_from = from;
  v.created_ms = 1732233600000 + static_cast<int64_t>(n);
  v.comment = "by test";
  v.text = std::move(text);
  return v;
}

} // namespace

TEST(route_store, a_record_survives_encoding_and_a_truncated_one_is_refused) {
  auto v = make(7, 123, std::string{"[routes.a]\nwhen = \"x\"\n\0binary", 28});
  auto bytes = route_store::encode(v);
  auto back = route_store::decode(7, bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->version, 7u);
  EXPECT_EQ(back->effective_from, 123u);
  EXPECT_EQ(back->created_ms, v.created_ms);
  EXPECT_EQ(back->comment, "by test");
  EXPECT_EQ(back->text, v.text);
  EXPECT_FALSE(route_store::decode(7, bytes.substr(0, bytes.size() - 1)));
  EXPECT_FALSE(route_store::decode(7, ""));
}

TEST(route_store, versions_are_listed_in_version_order_and_the_config_text_is_kept) {
  sluice::persistence::testing::temp_dir dir;
  env_options opts;
  opts.path = dir.sub("lmdb");
  opts.initial_map_bytes = size_t{16} << 20;
  opts.mode = durability::none;
  environment env{opts};
  {
    write_txn txn{env};
    for (uint64_t n : {1, 2, 10, 256})
      route_store::put(txn, make(n, n * 100, "text " + std::to_string(n)));
    route_store::set_config_text(txn, "config");
    txn.commit();
  }
  read_txn txn{env};
  auto all = route_store::list(txn);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[2].version, 10u);
  EXPECT_EQ(all[3].version, 256u);
  EXPECT_EQ(route_store::latest(txn)->text, "text 256");
  EXPECT_EQ(route_store::get(txn, 2)->effective_from, 200u);
  EXPECT_FALSE(route_store::get(txn, 3));
  EXPECT_EQ(route_store::config_text(txn), "config");
}
