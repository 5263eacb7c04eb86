// syctl output: aligned tables and JSON escaping/structure.
#include "services/syctl/output.h"

#include <sstream>

#include <gtest/gtest.h>

namespace sy::syctl {
namespace {

TEST(TableTest, ColumnsAreAlignedToTheWidestCellAndLinesHaveNoTrailingSpaces) {
  Table t({"NODE", "ACTORS", "ENDPOINT"});
  t.AddRow({"host-10", "3", "tcp://a:1"});
  t.AddRow({"h", "12", ""});
  std::ostringstream out;
  t.Print(out);
  EXPECT_EQ(out.str(),
            "NODE     ACTORS  ENDPOINT\n"
            "host-10  3       tcp://a:1\n"
            "h        12\n");
}

TEST(JsonWriterTest, NestsAndSeparatesAndEscapes) {
  std::ostringstream out;
  JsonWriter j(out);
  j.BeginObject();
  j.Key("name");
  j.String("a\"b\\c\n\x01");
  j.Key("list");
  j.BeginArray();
  j.Uint(1);
  j.Int(-2);
  j.Double(0.5);
  j.Bool(false);
  j.BeginObject();
  j.EndObject();
  j.EndArray();
  j.Key("inf");
  j.Double(1.0 / 0.0);
  j.EndObject();
  EXPECT_EQ(out.str(), R"({"name":"a\"b\\c\n\u0001","list":[1,-2,0.5,false,{}],"inf":null})");
}

TEST(FormatTest, FixedDecimals) {
  EXPECT_EQ(FormatFixed(1.256, 2), "1.26");
  EXPECT_EQ(FormatFixed(400, 1), "400.0");
}

}  // namespace
}  // namespace sy::syctl
