#include "common/table/listing.h"

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace pcsweep::table {
namespace {

using ::pcsweep::testutil::StatusIs;

using ::testing::HasSubstr;

Listing SampleListing() {
  Listing listing;
  listing.columns = {"job", "x", "note"};
  listing.rows.push_back({"a", ListingCell::Number(1), "plain"});
  listing.rows.push_back({"bb", ListingCell::Number(0.25), "has, comma \"q\" | pipe"});
  return listing;
}

TEST(RenderListingTest, TextAlignsColumns) {
  EXPECT_EQ(RenderListing(SampleListing(), ListingFormat::kText),
            "job  x     note\n"
            "---  ----  ---------------------\n"
            "a    1     plain\n"
            "bb   0.25  has, comma \"q\" | pipe\n");
}

TEST(RenderListingTest, CsvQuotesFieldsWithCommasAndQuotes) {
  EXPECT_EQ(RenderListing(SampleListing(), ListingFormat::kCsv),
            "job,x,note\n"
            "a,1,plain\n"
            "bb,0.25,\"has, comma \"\"q\"\" | pipe\"\n");
}

TEST(RenderListingTest, JsonKeepsNumbersNumericAndEmptyAsNull) {
  Listing listing = SampleListing();
  listing.rows.push_back({"c", ListingCell(), ListingCell()});
  const auto json = nlohmann::json::parse(RenderListing(listing, ListingFormat::kJson));
  ASSERT_EQ(json.size(), 3u);
  EXPECT_EQ(json[0]["x"], 1);
  EXPECT_DOUBLE_EQ(json[1]["x"].get<double>(), 0.25);
  EXPECT_EQ(json[1]["note"], "has, comma \"q\" | pipe");
  EXPECT_TRUE(json[2]["x"].is_null());
}

TEST(RenderListingTest, MarkdownEscapesPipes) {
  EXPECT_EQ(RenderListing(SampleListing(), ListingFormat::kMarkdown),
            "| job | x | note |\n"
            "|---|---|---|\n"
            "| a | 1 | plain |\n"
            "| bb | 0.25 | has, comma \"q\" \\| pipe |\n");
}

TEST(RenderListingTest, ShortRowsReadAsEmptyCellsAndCellsAreKeptAsTheyAre) {
  Listing listing;
  listing.columns = {"a", "b", "a"};
  listing.rows.push_back({"x"});
  listing.rows.push_back({ListingCell::Number(2), "two\nlines", "z", "beyond the columns"});
  EXPECT_EQ(RenderListing(listing, ListingFormat::kText),
            "a  b          a\n"
            "-  ---------  -\n"
            "x\n"
            "2  two\nlines  z\n");
  EXPECT_EQ(RenderListing(listing, ListingFormat::kCsv), "a,b,a\nx,,\n2,\"two\nlines\",z\n");
  // A repeated header keeps its first place and its last value.
  const auto json = nlohmann::ordered_json::parse(RenderListing(listing, ListingFormat::kJson));
  EXPECT_EQ(json[1].dump(), R"({"a":"z","b":"two\nlines"})");
  EXPECT_EQ(json[0].dump(), R"({"a":null,"b":null})");
}

TEST(ParseListingFormatTest, AcceptsKnownNamesAndRejectsOthers) {
  EXPECT_EQ(*ParseListingFormat("table"), ListingFormat::kText);
  EXPECT_EQ(*ParseListingFormat("CSV"), ListingFormat::kCsv);
  EXPECT_EQ(*ParseListingFormat("md"), ListingFormat::kMarkdown);
  auto bad = ParseListingFormat("xml");
  ASSERT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument,
                            "unknown format 'xml' (expected table, csv, json or markdown)"));
  EXPECT_THAT(bad.status().message(), HasSubstr("unknown format 'xml'"));
}

}  // namespace
}  // namespace pcsweep::table
