#include "actors/device_model.hpp"

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <string>
#include <vector>

using namespace sluice;

namespace {

event device_event(log_offset offset, std::string id, int64_t ts) {
  event e;
  e.id = std::move(id);
  e.type = "play";
  e.device_id = "tv-1";
  e.ts = ts;
  e.offset = offset;
  return e;
}

TEST(device_model, a_repeated_id_within_the_window_is_a_duplicate_and_one_beyond_it_is_not) {
  device_model m;
  event_batch batch;
  log_offset off = 1;
  batch.push_back(device_event(off++, "first", 1000));
  for (size_t i = 0; i < device_model::recent_id_window - 1; ++i)
    batch.push_back(device_event(off++, "id-" + std::to_string(i), 2000));
  batch.push_back(device_event(off++, "id-3", 3000)); // within the window
  m.apply(batch);
  EXPECT_EQ(m.duplicates(), 1u);
  EXPECT_EQ(m.events(), device_model::recent_id_window);
  // One more new id pushes "first" out of the window: it counts as new again.
  m.apply({device_event(off++, "new", 4000), device_event(off++, "first", 5000)});
  EXPECT_EQ(m.duplicates(), 1u);
  EXPECT_EQ(m.events(), device_model::recent_id_window + 2);
}

TEST(device_model, the_state_survives_encode_and_decode_with_its_duplicate_window) {
  device_model m;
  m.apply({device_event(1, "a", 2000), device_event(2, "b", 1000)});
  device_model restored;
  ASSERT_TRUE(restored.decode(m.encode()));
  EXPECT_EQ(restored.json("tv-1"), m.json("tv-1"));
  EXPECT_EQ(restored.applied_upto(), 2u);
  EXPECT_EQ(restored.out_of_order(), 1u);
  restored.apply({device_event(3, "a", 3000), device_event(2, "b", 3000)}); // dup; replayed
  EXPECT_EQ(restored.duplicates(), 1u);
  EXPECT_EQ(restored.events(), 2u);
}

TEST(device_model, a_state_stored_with_the_ids_as_strings_is_read_and_keeps_detecting_them) {
  // The layout before the ids were hashed: the same array with the ids themselves.
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk{buf};
  pk.pack_array(9);
  pk.pack(uint64_t{7});  // applied_upto
  pk.pack(uint64_t{2});  // events
  pk.pack(int64_t{100}); // first_ts
  pk.pack(int64_t{200}); // last_ts
  pk.pack(uint64_t{0});  // out_of_order
  pk.pack(uint64_t{0});  // duplicates
  pk.pack(std::string{"stop"});
  pk.pack(std::vector<std::string>{"x-1", "x-2"});
  pk.pack(uint64_t{0});
  device_model m;
  ASSERT_TRUE(m.decode({buf.data(), buf.size()}));
  EXPECT_EQ(m.events(), 2u);
  m.apply({device_event(8, "x-2", 300), device_event(9, "x-3", 400)});
  EXPECT_EQ(m.duplicates(), 1u);
  EXPECT_EQ(m.events(), 3u);
}

TEST(device_model, a_stored_state_of_another_shape_is_refused) {
  device_model m;
  msgpack::sbuffer buf;
  msgpack::pack(buf, std::vector<int>{1, 2, 3});
  EXPECT_FALSE(m.decode({buf.data(), buf.size()}));
  EXPECT_FALSE(m.decode("not msgpack at all"));
}

} // namespace
