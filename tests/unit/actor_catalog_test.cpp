// The title catalog: CSV parsing (libcsv), errors naming the line, durations, the holder.

#include "actor_fixture.hpp"

#include "actors/catalog.hpp"

#include <fstream>

using namespace sluice;
using namespace sluice::testing;

namespace {

std::string parse_error(std::string_view csv) {
  std::string err;
  auto cat = catalog::parse(csv, err);
  EXPECT_EQ(cat, nullptr) << "parsed although it should not: " << csv;
  return err;
}

void write(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out{p, std::ios::binary | std::ios::trunc};
  out << text;
}

} // namespace

TEST(catalog, the_shipped_titles_csv_parses_with_about_fifty_titles) {
  auto path = std::filesystem::path{__FILE__}.parent_path() / ".." / ".." / "conf" / "titles.csv";
  std::string err;
  auto cat = catalog::load(path.string(), err);
  ASSERT_TRUE(cat) << err;
  EXPECT_GE(cat->size(), 40u);
  auto* t = cat->find("t-14");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->name, "Cooking, Slowly"); // a quoted comma
  EXPECT_EQ(t->genres, (std::vector<std::string>{"Food", "Documentary"}));
  EXPECT_EQ(t->duration_ms, 28 * 60'000);
  EXPECT_EQ(cat->titles().front().id, "t-1");
  EXPECT_EQ(cat->find("nope"), nullptr);
}

TEST(catalog, columns_may_come_in_any_order_with_quotes_blank_lines_and_a_bom) {
  std::string err;
  auto cat = catalog::parse("\xEF\xBB\xBF"
                            "duration,genres,id,name\r\n"
                            "\r\n"
                            "5400, Drama | Crime ,a,\"The \"\"A\"\" film\"\r\n"
                            "\n"
                            "90s,,b,\"Two\nlines\"\n",
                            err);
  ASSERT_TRUE(cat) << err;
  ASSERT_EQ(cat->size(), 2u);
  EXPECT_EQ(cat->find("a")->name, "The \"A\" film");
  EXPECT_EQ(cat->find("a")->genres, (std::vector<std::string>{"Drama", "Crime"}));
  EXPECT_EQ(cat->find("a")->duration_ms, 5'400'000);
  EXPECT_EQ(cat->find("b")->name, "Two\nlines");
  EXPECT_TRUE(cat->find("b")->genres.empty());
  EXPECT_EQ(cat->find("b")->duration_ms, 90'000);
}

TEST(catalog, durations_are_seconds_or_hours_minutes_seconds_in_that_order) {
  int64_t ms = 0;
  ASSERT_TRUE(parse_catalog_duration("1h32m", ms));
  EXPECT_EQ(ms, (3600 + 32 * 60) * 1000);
  ASSERT_TRUE(parse_catalog_duration("1h2m3s", ms));
  EXPECT_EQ(ms, 3723'000);
  ASSERT_TRUE(parse_catalog_duration("2h", ms));
  EXPECT_EQ(ms, 7200'000);
  ASSERT_TRUE(parse_catalog_duration("45m", ms));
  EXPECT_EQ(ms, 2700'000);
  ASSERT_TRUE(parse_catalog_duration("5520", ms));
  EXPECT_EQ(ms, 5520'000);
  for (auto bad : {"", "0", "0m", "1m2h", "1h1h", "h", "12x", "-5", "1.5h", "1h 2m", "9999999999"})
    EXPECT_FALSE(parse_catalog_duration(bad, ms)) << bad;
}

TEST(catalog, errors_name_the_line_and_the_problem) {
  auto head = std::string{"id,name,genres,duration\n"};
  EXPECT_EQ(parse_error(head + "a,A,Drama,1h\nb,B,Drama\n"),
            "line 3: expected 4 fields (id, name, genres, duration), found 3");
  EXPECT_EQ(parse_error(head + "a,A,Drama,1h\n\na,Again,Drama,2h\n"),
            "line 4: duplicate id \"a\" (first on line 2)");
  EXPECT_NE(parse_error(head + "a,A,Drama,abc\n").find("line 2: title \"a\": duration \"abc\""),
            std::string::npos);
  EXPECT_EQ(parse_error(head + "a,A,Drama||Crime,1h\n"),
            "line 2: title \"a\": empty genre in \"Drama||Crime\"");
  EXPECT_EQ(parse_error(head + "a,,Drama,1h\n"), "line 2: title \"a\" has an empty name");
  EXPECT_EQ(parse_error(head + ",A,Drama,1h\n"), "line 2: empty id");
  EXPECT_EQ(parse_error("id,name,genre,duration\n"),
            "line 1: unknown column \"genre\" in the header; expected id,name,genres,duration");
  EXPECT_EQ(parse_error("id,name,duration\n"),
            "line 1: the header lacks the column \"genres\"; expected id,name,genres,duration");
  EXPECT_EQ(parse_error("id,name,name,genres,duration\n"),
            "line 1: column \"name\" appears twice in the header");
  EXPECT_EQ(parse_error(""), "line 1: missing header id,name,genres,duration");
  // A quote that never closes: the record starting on line 3.
  EXPECT_EQ(parse_error(head + "a,A,Drama,1h\nb,\"B,Drama,1h\nc,C,Drama,1h\n").rfind("line 3: ", 0),
            0u);
  // A stray quote inside an unquoted field (strict mode).
  EXPECT_EQ(parse_error(head + "a,A\"x\",Drama,1h\n").rfind("line 2: malformed CSV", 0), 0u);
}

TEST(catalog, a_missing_file_names_the_path) {
  std::string err;
  EXPECT_EQ(catalog::load("/nonexistent/titles.csv", err), nullptr);
  EXPECT_EQ(err, "cannot read the title catalog /nonexistent/titles.csv");
}

TEST(catalog_holder, a_bad_reload_keeps_the_current_catalog_and_a_good_one_swaps_it) {
  temp_dir dir;
  auto path = dir.path / "titles.csv";
  write(path, "id,name,genres,duration\na,A,Drama,1h\n");
  metrics_registry metrics;
  catalog_holder holder{path.string()};
  EXPECT_EQ(holder.get()->size(), 0u);
  EXPECT_EQ(reload_catalog(holder, metrics), "");
  auto first = holder.get();
  ASSERT_EQ(first->size(), 1u);
  write(path, "id,name,genres,duration\na,A,Drama,1h\nb,B,Drama,oops\n");
  auto err = reload_catalog(holder, metrics);
  EXPECT_EQ(err.rfind(path.string() + ": line 3: title \"b\": duration \"oops\"", 0), 0u) << err;
  EXPECT_EQ(holder.get(), first);
  write(path, "id,name,genres,duration\na,A2,Drama,1h\nb,B,Drama,2h\n");
  EXPECT_EQ(reload_catalog(holder, metrics), "");
  EXPECT_EQ(holder.get()->size(), 2u);
  EXPECT_EQ(first->find("a")->name, "A") << "a reader keeps the catalog it got";
  EXPECT_EQ(metrics.value("sluice_catalog_reloads_total", {{"result", "ok"}}), 2.0);
  EXPECT_EQ(metrics.value("sluice_catalog_reloads_total", {{"result", "error"}}), 1.0);
  EXPECT_EQ(metrics.value("sluice_catalog_titles"), 2.0);
  catalog_holder none;
  std::string none_err;
  EXPECT_FALSE(none.reload(none_err));
  EXPECT_NE(none_err.find("catalog.titles-file"), std::string::npos);
}
