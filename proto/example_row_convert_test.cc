#include "proto/example_row_convert.h"

#include "gtest/gtest.h"

namespace pcsweep::proto {
namespace {

jobfile::ExampleRow Row() {
  jobfile::ExampleRow row;
  row.eval_set = "eval_mimic";
  row.variant = "adapted";
  row.question_id = "q17";
  row.pair_id = "p17-2";
  row.image = "images/17.png";
  row.phenomenon = "negation";
  row.label = 1;
  row.margin_original = 2.5;
  row.margin_paraphrase = -0.75;
  return row;
}

TEST(ExampleRowConvertTest, ToProtoSetsEveryField) {
  v1::ExampleRow out;
  ToProto(Row(), &out);
  EXPECT_EQ(out.eval_set(), "eval_mimic");
  EXPECT_EQ(out.variant(), "adapted");
  EXPECT_EQ(out.question_id(), "q17");
  EXPECT_EQ(out.pair_id(), "p17-2");
  EXPECT_EQ(out.image(), "images/17.png");
  EXPECT_EQ(out.phenomenon(), "negation");
  EXPECT_EQ(out.label(), 1);
  EXPECT_EQ(out.margin_original(), 2.5);
  EXPECT_EQ(out.margin_paraphrase(), -0.75);
}

TEST(ExampleRowConvertTest, RowSurvivesTheRoundTrip) {
  v1::ExampleRow message;
  ToProto(Row(), &message);
  const jobfile::ExampleRow back = FromProto(message);
  const jobfile::ExampleRow row = Row();
  EXPECT_EQ(back.eval_set, row.eval_set);
  EXPECT_EQ(back.variant, row.variant);
  EXPECT_EQ(back.question_id, row.question_id);
  EXPECT_EQ(back.pair_id, row.pair_id);
  EXPECT_EQ(back.image, row.image);
  EXPECT_EQ(back.phenomenon, row.phenomenon);
  EXPECT_EQ(back.label, row.label);
  EXPECT_EQ(back.margin_original, row.margin_original);
  EXPECT_EQ(back.margin_paraphrase, row.margin_paraphrase);
}

TEST(ExampleRowConvertTest, MessageSurvivesTheRoundTrip) {
  v1::ExampleRow message;
  message.set_eval_set("eval_base");
  message.set_question_id("q3");
  message.set_label(0);
  message.set_margin_original(-1.25);
  v1::ExampleRow again;
  ToProto(FromProto(message), &again);
  EXPECT_EQ(again.SerializeAsString(), message.SerializeAsString());
}

}  // namespace
}  // namespace pcsweep::proto
