#include "proto/example_row_convert.h"

namespace pcsweep::proto {

void ToProto(const jobfile::ExampleRow& in, v1::ExampleRow* out) {
  out->set_eval_set(in.eval_set);
  out->set_variant(in.variant);
  out->set_question_id(in.question_id);
  out->set_pair_id(in.pair_id);
  out->set_image(in.image);
  out->set_phenomenon(in.phenomenon);
  out->set_label(in.label);
  out->set_margin_original(in.margin_original);
  out->set_margin_paraphrase(in.margin_paraphrase);
}

jobfile::ExampleRow FromProto(const v1::ExampleRow& in) {
  jobfile::ExampleRow out;
  out.eval_set = in.eval_set();
  out.variant = in.variant();
  out.question_id = in.question_id();
  out.pair_id = in.pair_id();
  out.image = in.image();
  out.phenomenon = in.phenomenon();
  out.label = in.label();
  out.margin_original = in.margin_original();
  out.margin_paraphrase = in.margin_paraphrase();
  return out;
}

}  // namespace pcsweep::proto
