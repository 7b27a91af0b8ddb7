// Exactly-once application of local and forwarded events: `source_offsets` (the highest offset
// applied per source log) and its use by device_model and profile_model, including states stored
// before the cluster (a single local `applied_upto`).

#include "actor_fixture.hpp"

#include "actors/device_model.hpp"
#include "actors/profile_model.hpp"
#include "actors/source_offsets.hpp"

#include <map>

using namespace sluice;
using namespace sluice::testing;

namespace {

constexpr int64_t sec = 1000;
constexpr int64_t day0 = 1732233600000; // 2024-11-22T00:00:00Z

/// An event this node accepted, at `offset` of its own log.
event local(log_offset offset, std::string id = {}) {
  auto e = make_event(id.empty() ? "l" + std::to_string(offset) : id, "play", "tv-1", "p", day0);
  e.offset = offset;
  return e;
}

/// An event `origin` accepted at `origin_offset` of its log, appended here at `offset`.
event forwarded(std::string origin, log_offset origin_offset, log_offset offset,
                std::string id = {}) {
  auto e = make_event(id.empty() ? origin + "-" + std::to_string(origin_offset) : id, "play",
                      "tv-1", "p", day0);
  e.offset = offset;
  e.origin = std::move(origin);
  e.origin_offset = origin_offset;
  return e;
}

std::string pack(const source_offsets& s) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, s);
  return std::string{buf.data(), buf.size()};
}

source_offsets unpack(const std::string& bytes) {
  auto handle = msgpack::unpack(bytes.data(), bytes.size());
  source_offsets s;
  handle.get().convert(s);
  return s;
}

template <class T>
std::string packed(const T& v) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, v);
  return std::string{buf.data(), buf.size()};
}

event playback(event e, const std::string& type, int64_t ts, int64_t position) {
  e.type = type;
  e.ts = ts;
  e.attrs = playback_attrs("t", position);
  return e;
}

} // namespace

TEST(source_offsets, an_event_at_or_below_the_highest_offset_of_its_source_is_refused) {
  source_offsets s;
  EXPECT_TRUE(s.admit(local(3)));
  EXPECT_FALSE(s.admit(local(3)));
  EXPECT_FALSE(s.admit(local(2)));
  EXPECT_TRUE(s.admit(local(4)));
  EXPECT_TRUE(s.admit(forwarded("node-2", 1, 5)));
  EXPECT_FALSE(s.admit(forwarded("node-2", 1, 9))) << "a resend lands at a new local offset";
  EXPECT_TRUE(s.applied(forwarded("node-2", 1, 9)));
  EXPECT_FALSE(s.applied(forwarded("node-2", 2, 9)));
  EXPECT_EQ(s.upto(""), 4u);
  EXPECT_EQ(s.upto("node-2"), 1u);
  EXPECT_EQ(s.upto("node-3"), 0u);
}

TEST(source_offsets, the_same_offset_from_two_origins_and_the_local_log_is_admitted_three_times) {
  source_offsets s;
  EXPECT_TRUE(s.admit(forwarded("node-3", 7, 1)));
  EXPECT_TRUE(s.admit(forwarded("node-2", 7, 2)));
  EXPECT_TRUE(s.admit(local(7)));
  EXPECT_EQ(s.entries(), (std::vector<source_offsets::entry>{{"", 7}, {"node-2", 7}, {"node-3", 7}}));
}

TEST(source_offsets, offset_zero_is_always_admitted_and_recorded_nowhere) {
  source_offsets s;
  EXPECT_TRUE(s.admit(local(0)));
  EXPECT_TRUE(s.admit(local(0)));
  EXPECT_TRUE(s.admit(forwarded("node-2", 0, 4)));
  EXPECT_TRUE(s.entries().empty());
  EXPECT_FALSE(s.applied(local(0)));
}

TEST(source_offsets, only_the_local_source_packs_as_the_bare_offset_stored_before_the_cluster) {
  source_offsets s;
  EXPECT_EQ(pack(s), packed(uint64_t{0}));
  s.admit(local(300));
  EXPECT_EQ(pack(s), packed(uint64_t{300}));
  EXPECT_EQ(unpack(pack(s)), s);
  // The scalar `applied_upto` of an old state reads as the local source.
  auto old = unpack(packed(uint64_t{42}));
  EXPECT_EQ(old.upto(""), 42u);
  EXPECT_EQ(old.entries().size(), 1u);
  EXPECT_TRUE(unpack(packed(uint64_t{0})).entries().empty());
}

TEST(source_offsets, forwarded_sources_pack_as_a_map_and_read_back) {
  source_offsets s;
  s.admit(local(9));
  s.admit(forwarded("node-2", 123456789012ull, 10));
  s.admit(forwarded("node-3", 5, 11));
  auto bytes = pack(s);
  EXPECT_EQ(bytes, packed(std::map<std::string, uint64_t>{
                     {"", 9}, {"node-2", 123456789012ull}, {"node-3", 5}}));
  EXPECT_EQ(unpack(bytes), s);
  source_offsets only_forwarded;
  only_forwarded.admit(forwarded("node-2", 1, 1));
  EXPECT_EQ(unpack(pack(only_forwarded)), only_forwarded);
  EXPECT_EQ(unpack(pack(only_forwarded)).upto(""), 0u);
}

TEST(source_offsets, a_stored_value_of_another_shape_is_a_type_error) {
  EXPECT_THROW(unpack(packed(std::string{"7"})), msgpack::type_error);
  EXPECT_THROW(unpack(packed(int64_t{-7})), msgpack::type_error);
  EXPECT_THROW(unpack(packed(std::map<int, int>{{1, 2}})), msgpack::type_error);
  EXPECT_THROW(unpack(packed(std::map<std::string, std::string>{{"n", "2"}})),
               msgpack::type_error);
}

TEST(device_model_sources, a_forwarded_event_resent_by_its_origin_is_applied_once) {
  device_model m;
  EXPECT_TRUE(m.apply({forwarded("node-2", 1, 1), forwarded("node-2", 2, 2)}));
  // The origin resends both (its ack was lost) and a new one; here they get new local offsets.
  EXPECT_TRUE(m.apply({forwarded("node-2", 1, 3), forwarded("node-2", 2, 4),
                       forwarded("node-2", 3, 5)}));
  EXPECT_FALSE(m.apply({forwarded("node-2", 3, 6)}));
  EXPECT_EQ(m.events(), 3u);
  EXPECT_EQ(m.duplicates(), 0u) << "a resend is not a client duplicate";
  EXPECT_EQ(m.applied().upto("node-2"), 3u);
  EXPECT_EQ(m.applied_upto(), 0u) << "no local event applied";
}

TEST(device_model_sources, the_same_offset_from_two_origins_is_two_events) {
  device_model m;
  m.apply({forwarded("node-2", 5, 1), forwarded("node-3", 5, 2)});
  EXPECT_EQ(m.events(), 2u);
  EXPECT_EQ(m.duplicates(), 0u);
}

TEST(device_model_sources, local_and_forwarded_events_interleave_each_source_in_its_own_order) {
  device_model m;
  m.apply({local(10), forwarded("node-2", 3, 11), local(12), forwarded("node-2", 4, 13)});
  // A replay of the local log after a restart (offsets 10..13) and a resend from node-2.
  EXPECT_FALSE(m.apply({local(10), forwarded("node-2", 3, 11), local(12),
                        forwarded("node-2", 4, 13), forwarded("node-2", 4, 20)}));
  m.apply({forwarded("node-2", 5, 14), local(15)});
  EXPECT_EQ(m.events(), 6u);
  EXPECT_EQ(m.applied_upto(), 15u);
  EXPECT_EQ(m.applied().upto("node-2"), 5u);
  device_model restored;
  ASSERT_TRUE(restored.decode(m.encode()));
  EXPECT_EQ(restored.applied(), m.applied());
  EXPECT_FALSE(restored.apply({forwarded("node-2", 5, 16), local(15)}));
  EXPECT_TRUE(restored.apply({forwarded("node-2", 6, 16)}));
  EXPECT_EQ(restored.events(), 7u);
}

TEST(device_model_sources, a_state_stored_before_the_cluster_reads_its_offset_as_the_local_one) {
  device_model m;
  m.apply({local(1), local(2)});
  auto bytes = m.encode();
  auto handle = msgpack::unpack(bytes.data(), bytes.size());
  ASSERT_EQ(handle.get().via.array.ptr[0].type, msgpack::type::POSITIVE_INTEGER)
    << "a device that only saw local events keeps the layout of before the cluster";
  // The layout before the cluster, written by hand: [applied_upto, events, first_ts, last_ts,
  // out_of_order, duplicates, last_type, recent_ids, recent_next].
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk{buf};
  pk.pack_array(9);
  pk.pack(uint64_t{7});
  pk.pack(uint64_t{2});
  pk.pack(int64_t{100});
  pk.pack(int64_t{200});
  pk.pack(uint64_t{0});
  pk.pack(uint64_t{0});
  pk.pack(std::string{"stop"});
  pk.pack(std::vector<uint64_t>{device_model::id_hash("x-1"), device_model::id_hash("x-2")});
  pk.pack(uint64_t{0});
  device_model old;
  ASSERT_TRUE(old.decode({buf.data(), buf.size()}));
  EXPECT_EQ(old.applied_upto(), 7u);
  EXPECT_FALSE(old.apply({local(7, "y-7")}));
  EXPECT_TRUE(old.apply({local(8, "y-8"), forwarded("node-2", 3, 9)}));
  EXPECT_EQ(old.events(), 4u);
}

TEST(profile_model_sources, a_forwarded_event_resent_by_its_origin_is_applied_once) {
  profile_model m;
  EXPECT_TRUE(m.apply({playback(forwarded("node-2", 1, 1), "play", day0, 0),
                       playback(forwarded("node-2", 2, 2), "heartbeat", day0 + 30 * sec, 30 * sec)}));
  // A resend of offset 2 under new local offsets, with content that would move the position.
  EXPECT_FALSE(m.apply({playback(forwarded("node-2", 2, 3), "pause", day0 + 99 * sec, 77 * sec)}));
  EXPECT_EQ(m.titles().at("t").position_ms, 30 * sec);
  EXPECT_EQ(m.watch_ms("t"), 30 * sec);
  EXPECT_EQ(m.applied().upto("node-2"), 2u);
}

TEST(profile_model_sources, the_same_offset_from_two_origins_and_the_local_log_is_applied_from_each) {
  profile_model m;
  EXPECT_TRUE(m.apply({playback(forwarded("node-2", 4, 1), "play", day0, 0)}));
  EXPECT_TRUE(m.apply({playback(forwarded("node-3", 4, 2), "heartbeat", day0 + 30 * sec, 30 * sec)}));
  EXPECT_TRUE(m.apply({playback(local(4), "pause", day0 + 60 * sec, 60 * sec)}));
  EXPECT_EQ(m.watch_ms("t"), 60 * sec);
  EXPECT_EQ(m.titles().at("t").last_event(), "pause");
  profile_model restored;
  ASSERT_TRUE(restored.decode(m.encode()));
  EXPECT_EQ(restored.applied(), m.applied());
  EXPECT_FALSE(restored.apply({playback(forwarded("node-3", 4, 5), "stop", day0 + 90 * sec, 0),
                               playback(local(4), "stop", day0 + 90 * sec, 0)}));
  EXPECT_EQ(restored.titles().at("t").last_event(), "pause");
}

TEST(profile_model_sources, a_state_stored_before_the_cluster_reads_its_offset_as_the_local_one) {
  // The layout before the cluster: [version 2, applied_upto, events, late, has_newest, newest_ts,
  // titles, watch].
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk{buf};
  pk.pack_array(8);
  pk.pack(uint32_t{2});
  pk.pack(uint64_t{7});
  pk.pack(uint64_t{3});
  pk.pack(uint64_t{0});
  pk.pack(true);
  pk.pack(int64_t{day0});
  std::map<std::string, title_progress> titles;
  titles["t"].position_ms = 5 * sec;
  titles["t"].updated_ts = day0;
  titles["t"].recent.push_back({day0, 5 * sec, 0});
  pk.pack(titles);
  pk.pack(std::map<int32_t, std::map<std::string, int64_t>>{});
  profile_model m;
  ASSERT_TRUE(m.decode({buf.data(), buf.size()}));
  EXPECT_EQ(m.applied_upto(), 7u);
  EXPECT_EQ(m.titles().at("t").position_ms, 5 * sec);
  EXPECT_FALSE(m.apply({playback(local(7), "pause", day0 + 10 * sec, 10 * sec)}));
  EXPECT_TRUE(m.apply({playback(local(8), "heartbeat", day0 + 10 * sec, 15 * sec)}));
  EXPECT_EQ(m.watch_ms("t"), 10 * sec);
  // Still local only: stored in the same layout, byte for byte readable by the old code.
  auto bytes = m.encode();
  auto handle = msgpack::unpack(bytes.data(), bytes.size());
  EXPECT_EQ(handle.get().via.array.ptr[1].as<uint64_t>(), 8u);
}
