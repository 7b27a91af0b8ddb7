// find_attr: dotted lookups in attrs without copying.

#include "messages/codec.hpp"
#include "tests/unit/codec_test_helpers.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

using namespace sluice;
using sluice::test::mp_builder;

// Counts allocations made by this test binary, to prove find_attr makes none.
namespace {
std::atomic<size_t> allocations{0};
} // namespace

void* operator new(size_t size) {
  ++allocations;
  if (void* p = std::malloc(size ? size : 1))
    return p;
  throw std::bad_alloc{};
}

void operator delete(void* p) noexcept {
  std::free(p);
}

void operator delete(void* p, size_t) noexcept {
  std::free(p);
}

namespace {

std::string sample_attrs() {
  mp_builder b;
  b.map(9);
  b.str("title").str("Heat");
  b.str("player").map(3).str("codec").str("h264").str("buffer_ms").val(1200);
  b.str("caps").map(1).str("hdr").val(true);
  b.str("neg").val(-5);
  b.str("big").val(uint64_t{18446744073709551615u});
  b.str("ratio").f64(0.25);
  b.str("f32").f32(1.5f);
  b.str("none").nil();
  b.str("list").array(2).val(1).val(2);
  b.str("player.codec").str("flat-key");
  return b.bytes;
}

} // namespace

TEST(find_attr, finds_a_top_level_string) {
  auto attrs = sample_attrs();
  auto v = find_attr(attrs, "title");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->type, attr_value::kind::string);
  EXPECT_EQ(v->s, "Heat");
  EXPECT_GE(v->s.data(), attrs.data());
  EXPECT_LT(v->s.data(), attrs.data() + attrs.size()) << "a view into the attrs bytes";
}

TEST(find_attr, follows_dotted_paths_into_nested_maps) {
  auto attrs = sample_attrs();
  auto codec = find_attr(attrs, "player.codec");
  ASSERT_TRUE(codec);
  EXPECT_EQ(codec->s, "h264");
  auto buffer = find_attr(attrs, "player.buffer_ms");
  ASSERT_TRUE(buffer);
  EXPECT_EQ(buffer->type, attr_value::kind::integer);
  EXPECT_EQ(buffer->i, 1200);
  auto hdr = find_attr(attrs, "player.caps.hdr");
  ASSERT_TRUE(hdr);
  EXPECT_EQ(hdr->type, attr_value::kind::boolean);
  EXPECT_TRUE(hdr->b);
}

TEST(find_attr, reports_each_scalar_kind) {
  auto attrs = sample_attrs();
  auto neg = find_attr(attrs, "neg");
  ASSERT_TRUE(neg);
  EXPECT_EQ(neg->type, attr_value::kind::integer);
  EXPECT_EQ(neg->i, -5);
  auto ratio = find_attr(attrs, "ratio");
  ASSERT_TRUE(ratio);
  EXPECT_EQ(ratio->type, attr_value::kind::floating);
  EXPECT_EQ(ratio->d, 0.25);
  auto f32 = find_attr(attrs, "f32");
  ASSERT_TRUE(f32);
  EXPECT_EQ(f32->type, attr_value::kind::floating);
  EXPECT_EQ(f32->d, 1.5);
  auto none = find_attr(attrs, "none");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->type, attr_value::kind::nil);
}

TEST(find_attr, hands_back_containers_and_huge_unsigned_values_as_raw_bytes) {
  auto attrs = sample_attrs();
  auto list = find_attr(attrs, "list");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->type, attr_value::kind::other);
  EXPECT_EQ(list->s, std::string("\x92\x01\x02"));
  auto caps = find_attr(attrs, "player.caps");
  ASSERT_TRUE(caps);
  EXPECT_EQ(caps->type, attr_value::kind::other);
  EXPECT_EQ(caps->s, std::string("\x81\xa3hdr\xc3"));
  auto big = find_attr(attrs, "big");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->type, attr_value::kind::other);
  EXPECT_EQ(big->s, std::string(9, '\xff').replace(0, 1, "\xcf"));
}

TEST(find_attr, matches_a_flat_key_that_contains_dots_when_no_nested_path_matches_first) {
  mp_builder b;
  b.map(1).str("a.b").val(7);
  auto v = find_attr(b.bytes, "a.b");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->i, 7);
  // In sample_attrs the nested `player` map comes first, so the nested value wins.
  EXPECT_EQ(find_attr(sample_attrs(), "player.codec")->s, "h264");
  mp_builder mixed;
  mixed.map(2).str("a").map(1).str("x").val(1).str("a.b").val(2);
  auto flat = find_attr(mixed.bytes, "a.b");
  ASSERT_TRUE(flat) << "a failed descent into `a` goes on with the next key";
  EXPECT_EQ(flat->i, 2);
}

TEST(find_attr, returns_nothing_for_absent_paths) {
  auto attrs = sample_attrs();
  EXPECT_FALSE(find_attr(attrs, "missing"));
  EXPECT_FALSE(find_attr(attrs, "player.missing"));
  EXPECT_FALSE(find_attr(attrs, "title.length")) << "title is not a map";
  EXPECT_FALSE(find_attr(attrs, "play"));
  EXPECT_FALSE(find_attr(attrs, "player."));
  EXPECT_FALSE(find_attr(attrs, ""));
  EXPECT_FALSE(find_attr("", "title"));
}

TEST(find_attr, skips_non_string_keys_including_container_keys) {
  mp_builder b;
  b.map(3).val(1).str("one").array(1).str("k").str("v").str("k").str("found");
  auto v = find_attr(b.bytes, "k");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->s, "found");
}

TEST(find_attr, returns_nothing_on_corrupt_bytes_without_crashing) {
  auto attrs = sample_attrs();
  // Any cut before the end of the `list` value loses it; the walk never reads past the cut.
  const size_t list_end = attrs.find("\x92\x01\x02") + 3;
  for (size_t cut = 0; cut < list_end; ++cut) {
    std::string_view prefix{attrs.data(), cut};
    EXPECT_FALSE(find_attr(prefix, "list")) << cut;
  }
  EXPECT_TRUE(find_attr(std::string_view{attrs.data(), list_end}, "list"));
  EXPECT_FALSE(find_attr(std::string("\xc1", 1), "x"));
  EXPECT_FALSE(find_attr(std::string("\x92\x01\x02", 3), "x")) << "not a map";
}

TEST(find_attr, does_not_allocate) {
  auto attrs = sample_attrs();
  size_t before = allocations.load();
  size_t found = 0;
  for (const char* path : {"title", "player.codec", "player.caps.hdr", "list", "missing", "big"})
    found += find_attr(attrs, path).has_value();
  EXPECT_EQ(allocations.load(), before);
  EXPECT_EQ(found, 5u);
}
