#include "actor_fixture.hpp"

#include "actors/ingest_log.hpp"
#include "actors/sinks/dead_letter/dead_letter_sink.hpp"
#include "actors/sinks/dead_letter/dead_letter_store.hpp"
#include "messages/codec.hpp"
#include "persistence/log_store.hpp"

#include <cctype>
#include <fstream>

using namespace sluice;
using namespace sluice::testing;

namespace {

/// msgpack attrs holding a binary value, which JSON cannot carry: only the stored record keeps it.
std::string binary_attrs() {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk{buf};
  pk.pack_map(1);
  pk.pack(std::string{"blob"});
  pk.pack_bin(3);
  pk.pack_bin_body("\x00\x01\xff", 3);
  return std::string{buf.data(), buf.size()};
}

std::vector<dead_letter> letters(size_t first, size_t n, const std::string& reason) {
  std::vector<dead_letter> out;
  for (size_t i = first; i < first + n; ++i) {
    auto e = make_event("e" + std::to_string(i), "play", "dev-" + std::to_string(i), "p", 1000 + i);
    e.offset = i;
    e.attrs = binary_attrs();
    out.push_back(dead_letter{e, reason, "sink.files"});
  }
  return out;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in{p, std::ios::binary};
  return std::string{std::istreambuf_iterator<char>{in}, {}};
}

/// Ids of the items of a rendered page, in order.
std::vector<uint64_t> item_ids(const std::string& page) {
  std::vector<uint64_t> out;
  // Items start with `{"id":<number>`; events inside them with `{"id":"<text>"`.
  for (size_t at = page.find("{\"id\":"); at != std::string::npos;
       at = page.find("{\"id\":", at + 1))
    if (std::isdigit(static_cast<unsigned char>(page[at + 6])))
      out.push_back(std::stoull(page.substr(at + 6)));
  return out;
}

struct dead_letter_store_test : actor_test {
  std::string file() const {
    return (dir_.path / "dead-letters" / "dead-letters.ndjson").string();
  }
  std::string page(dead_letter_store& store, uint64_t after, uint32_t limit,
                   std::string reason = {}) {
    dead_letter_query q;
    q.after = after;
    q.limit = limit;
    q.reason = std::move(reason);
    std::string out;
    std::string error;
    EXPECT_TRUE(store.list(q, out, error)) << error;
    return out;
  }
};

TEST_F(dead_letter_store_test, dead_letters_get_dense_ids_and_keep_them_across_a_reopen) {
  {
    dead_letter_store store{file()};
    ASSERT_EQ(store.open(), "");
    ASSERT_EQ(store.append(letters(1, 2, "disk full"), 77, "n1"), "");
    ASSERT_EQ(store.append(letters(3, 1, "bad field"), 78, "n1"), "");
  }
  dead_letter_store store{file()};
  ASSERT_EQ(store.open(), "");
  EXPECT_EQ(store.size(), 3u);
  ASSERT_EQ(store.append(letters(4, 1, "bad field"), 79, "n1"), "");
  auto all = page(store, 0, 10);
  EXPECT_EQ(item_ids(all), (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_NE(all.find("\"reason\":\"disk full\",\"origin\":\"sink.files\""), std::string::npos);
  EXPECT_NE(all.find("\"at\":79"), std::string::npos);
  EXPECT_NE(all.find("\"device_id\":\"dev-4\""), std::string::npos);
  EXPECT_EQ(all.find("\"record\""), std::string::npos) << "the API shows the event, not its bytes";
  EXPECT_NE(all.find("\"replayed\":false"), std::string::npos);
}

TEST_F(dead_letter_store_test, a_torn_last_line_from_a_crash_is_cut_off_on_open) {
  {
    dead_letter_store store{file()};
    ASSERT_EQ(store.open(), "");
    ASSERT_EQ(store.append(letters(1, 2, "r"), 1, "n1"), "");
  }
  auto whole = read_file(file());
  {
    std::ofstream out{file(), std::ios::app | std::ios::binary};
    out << "{\"id\":3,\"at\":2,\"reason\":\"half";
  }
  dead_letter_store store{file()};
  ASSERT_EQ(store.open(), "");
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(read_file(file()), whole);
  ASSERT_EQ(store.append(letters(3, 1, "r"), 3, "n1"), "");
  EXPECT_EQ(item_ids(page(store, 0, 10)), (std::vector<uint64_t>{1, 2, 3}));
}

TEST_F(dead_letter_store_test, a_file_of_another_format_is_refused_naming_the_line) {
  std::filesystem::create_directories(dir_.path / "dead-letters");
  {
    std::ofstream out{file()};
    out << "{\"reason\":\"old\",\"event\":{}}\n";
  }
  dead_letter_store store{file()};
  auto err = store.open();
  EXPECT_NE(err.find("line 1"), std::string::npos) << err;
  EXPECT_NE(err.find("move it away"), std::string::npos) << err;
}

TEST_F(dead_letter_store_test, pages_follow_the_next_cursor_and_total_counts_every_match) {
  dead_letter_store store{file()};
  ASSERT_EQ(store.open(), "");
  ASSERT_EQ(store.append(letters(1, 3, "gave up after 5 attempts: \"disk\" full"), 1, "n"), "");
  ASSERT_EQ(store.append(letters(4, 2, "rejected: field 'x'\nmissing"), 1, "n"), "");
  ASSERT_EQ(store.append(letters(6, 2, "gave up after 5 attempts: timeout"), 1, "n"), "");

  auto p1 = page(store, 0, 2, "gave up");
  EXPECT_EQ(item_ids(p1), (std::vector<uint64_t>{1, 2}));
  EXPECT_NE(p1.find("\"next\":2,\"total\":5"), std::string::npos) << p1;
  auto p2 = page(store, 2, 2, "gave up");
  EXPECT_EQ(item_ids(p2), (std::vector<uint64_t>{3, 6}));
  EXPECT_NE(p2.find("\"next\":6,\"total\":5"), std::string::npos) << p2;
  auto p3 = page(store, 6, 2, "gave up");
  EXPECT_EQ(item_ids(p3), (std::vector<uint64_t>{7}));
  EXPECT_NE(p3.find("\"next\":null,\"total\":5"), std::string::npos) << p3;
  // Reasons with quotes and newlines are matched on their text, not on their JSON escapes.
  EXPECT_EQ(item_ids(page(store, 0, 10, "'x'\nmiss")), (std::vector<uint64_t>{4, 5}));
  EXPECT_EQ(item_ids(page(store, 0, 10, "\"disk\"")), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(item_ids(page(store, 0, 10, "no such reason")), std::vector<uint64_t>{});
}

TEST_F(dead_letter_store_test, bad_list_parameters_are_refused_naming_the_parameter) {
  dead_letter_query q;
  EXPECT_EQ(parse_dead_letter_list_params({}, q), "");
  EXPECT_EQ(q.limit, dead_letter_default_page);
  EXPECT_EQ(parse_dead_letter_list_params({{"after", "12"}, {"limit", "5"}, {"reason", "x"}}, q),
            "");
  EXPECT_EQ(q.after, 12u);
  EXPECT_EQ(q.limit, 5u);
  EXPECT_EQ(q.reason, "x");
  for (auto [key, value] : std::vector<std::pair<std::string, std::string>>{
         {"after", "-1"}, {"after", "x"}, {"limit", "0"}, {"limit", "1001"}, {"limit", ""},
         {"reason", ""}, {"bogus", "1"}}) {
    auto err = parse_dead_letter_list_params({{key, value}}, q);
    EXPECT_NE(err.find("\"parameter\":\"" + key + "\""), std::string::npos)
      << key << "=" << value << ": " << err;
  }
  dead_letter_query sel;
  EXPECT_NE(validate_dead_letter_selection(sel), "") << "an empty selection is refused";
  sel.all = true;
  EXPECT_EQ(validate_dead_letter_selection(sel), "");
  sel.reason = "x";
  EXPECT_NE(validate_dead_letter_selection(sel), "") << "two selectors are refused";
}

TEST_F(dead_letter_store_test, the_stored_record_gives_back_the_exact_event_with_binary_attrs) {
  dead_letter_store store{file()};
  ASSERT_EQ(store.open(), "");
  auto in = letters(1, 2, "r");
  ASSERT_EQ(store.append(in, 1, "n"), "");
  event_batch out;
  ASSERT_EQ(store.load({2, 1}, out), "");
  ASSERT_EQ(out.size(), 2u);
  auto expected = in[1].ev;
  expected.offset = 0; // the log assigns a new offset
  EXPECT_EQ(out[0], expected);
  EXPECT_EQ(out[0].attrs, binary_attrs());
}

/// The dead-letter actor with a real ingest log on the test coordinator.
struct dead_letter_actor_test : dead_letter_store_test {
  struct answer {
    bool done = false;
    query_reply::status status = query_reply::status::failed;
    std::string json;
  };
  ingest_log_actor log;
  dead_letter_admin_actor dlq;
  /// Set before `start` to have the sink mask PII.
  std::shared_ptr<const pii_detector> pii_;

  void start() {
    ingest_log_deps deps;
    deps.env = env_.get();
    deps.metrics = &metrics_;
    log = spawn(ingest_log, std::move(deps));
    dlq = spawn(dead_letter_sink, file(), std::string{"n1"}, &metrics_, pii_);
    caf::anon_send(dlq, connect_atom_v, log);
    run();
  }

  std::shared_ptr<answer> ask(bool replay, dead_letter_query q) {
    auto out = std::make_shared<answer>();
    query_reply reply;
    reply.fn = [out](query_reply::status st, std::string json) {
      out->done = true;
      out->status = st;
      out->json = std::move(json);
    };
    if (replay)
      caf::anon_send(dlq, replay_atom_v, std::move(q), std::move(reply));
    else
      caf::anon_send(dlq, query_atom_v, std::move(q), std::move(reply));
    run();
    return out;
  }

  std::shared_ptr<answer> replay_ids(std::vector<uint64_t> ids) {
    dead_letter_query q;
    q.ids = std::move(ids);
    return ask(true, std::move(q));
  }

  /// Every event in the ingest log, in offset order.
  event_batch logged() {
    event_batch out;
    persistence::log_store store{*env_};
    store.open();
    store.read(1, [&](uint64_t first, uint32_t, std::string_view value) {
      EXPECT_TRUE(decode_log_record(value, first, out));
      return true;
    });
    return out;
  }
};

TEST_F(dead_letter_actor_test, dead_letters_written_by_the_actor_are_listed_through_it) {
  start();
  caf::anon_send(dlq, dead_atom_v, letters(1, 3, "gave up"));
  run();
  dead_letter_query q;
  q.limit = 2;
  auto a = ask(false, q);
  ASSERT_TRUE(a->done);
  EXPECT_EQ(a->status, query_reply::status::found);
  EXPECT_EQ(item_ids(a->json), (std::vector<uint64_t>{1, 2}));
  EXPECT_NE(a->json.find("\"next\":2,\"total\":3"), std::string::npos) << a->json;
  EXPECT_EQ(metrics_.value("sluice_dead_letters_total", {{"origin", "sink.files"}}), 3.0);
}

TEST_F(dead_letter_actor_test, pii_in_a_dead_letter_is_masked_before_it_is_stored) {
  std::string error;
  pii_ = pii_detector::make(pii_options{}, error);
  ASSERT_TRUE(pii_) << error;
  start();
  auto batch = decode_json(R"([{"id":"s1","type":"play","device_id":"d1","ts":5,)"
                           R"("note":"card 4111 1111 1111 1111 by bob@example.com"}])",
                           7);
  ASSERT_EQ(batch.events.size(), 1u);
  caf::anon_send(dlq, dead_atom_v,
                 std::vector<dead_letter>{{batch.events[0], "schema play@1: field x", "schema"}});
  run();
  auto stored = read_file(file());
  EXPECT_EQ(stored.find("4111"), std::string::npos) << stored;
  EXPECT_EQ(stored.find("bob@example.com"), std::string::npos) << stored;
  dead_letter_query q;
  q.limit = 10;
  auto a = ask(false, q);
  ASSERT_TRUE(a->done);
  EXPECT_NE(a->json.find("[masked:card]"), std::string::npos) << a->json;
  EXPECT_NE(a->json.find("[masked:email]"), std::string::npos) << a->json;
}

TEST_F(dead_letter_actor_test, a_replay_appends_the_events_to_the_log_and_answers_after_commit) {
  start();
  auto in = letters(1, 3, "gave up");
  caf::anon_send(dlq, dead_atom_v, in);
  run();
  auto a = replay_ids({3, 1});
  ASSERT_TRUE(a->done);
  EXPECT_EQ(a->status, query_reply::status::found) << a->json;
  EXPECT_EQ(a->json, "{\"replayed\":2,\"skipped\":0}");
  auto events = logged();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].id, "e1");
  EXPECT_EQ(events[1].id, "e3");
  EXPECT_EQ(events[1].attrs, in[2].ev.attrs);
  EXPECT_EQ(metrics_.value("sluice_dead_letters_replayed_total"), 2.0);
}

TEST_F(dead_letter_actor_test, a_second_replay_of_the_same_ids_is_skipped_even_after_a_restart) {
  start();
  caf::anon_send(dlq, dead_atom_v, letters(1, 2, "gave up"));
  run();
  ASSERT_EQ(replay_ids({1})->json, "{\"replayed\":1,\"skipped\":0}");
  EXPECT_EQ(replay_ids({1, 2})->json, "{\"replayed\":1,\"skipped\":1}");
  EXPECT_EQ(logged().size(), 2u);
  // A new store over the same files (a restart) still knows what was replayed.
  dead_letter_store store{file()};
  ASSERT_EQ(store.open(), "");
  EXPECT_TRUE(store.replayed(1));
  EXPECT_TRUE(store.replayed(2));
  dead_letter_query all;
  all.all = true;
  EXPECT_TRUE(store.select(all).ids.empty());
  auto listed = page(store, 0, 10);
  EXPECT_EQ(listed.find("\"replayed\":false"), std::string::npos) << listed;
}

TEST_F(dead_letter_actor_test, a_replay_by_reason_sends_only_the_matching_dead_letters) {
  start();
  caf::anon_send(dlq, dead_atom_v, letters(1, 2, "timeout"));
  caf::anon_send(dlq, dead_atom_v, letters(3, 2, "schema: missing title_id"));
  run();
  dead_letter_query q;
  q.reason = "schema";
  auto a = ask(true, q);
  EXPECT_EQ(a->json, "{\"replayed\":2,\"skipped\":0}");
  auto events = logged();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].id, "e3");
  EXPECT_EQ(events[1].id, "e4");
}

TEST_F(dead_letter_actor_test, a_replay_naming_unknown_ids_sends_nothing_and_names_them) {
  start();
  caf::anon_send(dlq, dead_atom_v, letters(1, 1, "r"));
  run();
  auto a = replay_ids({1, 9});
  ASSERT_TRUE(a->done);
  EXPECT_EQ(a->status, query_reply::status::not_found);
  EXPECT_NE(a->json.find("\"unknown\":[9]"), std::string::npos) << a->json;
  EXPECT_TRUE(logged().empty());
  EXPECT_EQ(replay_ids({1})->json, "{\"replayed\":1,\"skipped\":0}")
    << "a refused request leaves the known ids replayable";
}

} // namespace
