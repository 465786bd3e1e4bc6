// The per-example result row in both of its forms: jobfile::ExampleRow (what a job writes to
// examples.jsonl, what the coordinator stores) and v1::ExampleRow (how CompleteJob carries it
// from the worker to the coordinator). One mapping, field by field, used in both directions:
// the worker converts to the proto, the coordinator back (coordinator/proto_convert.cc).
//
// It lives beside the generated protos so that the worker and the coordinator can share it
// without either linking the other's libraries; it needs only pcsweep::proto and
// pcsweep::jobfile (no torch, no gRPC service code).
//
// Thread-safety: pure functions.
#ifndef PCSWEEP_PROTO_EXAMPLE_ROW_CONVERT_H_
#define PCSWEEP_PROTO_EXAMPLE_ROW_CONVERT_H_

#include "common/jobfile/example_row.h"
#include "pcsweep/v1/coordinator.pb.h"

namespace pcsweep::proto {

// Sets every field of `*out` (not owned; a fresh or `add_examples()`ed message).
void ToProto(const jobfile::ExampleRow& in, v1::ExampleRow* out);
jobfile::ExampleRow FromProto(const v1::ExampleRow& in);

}  // namespace pcsweep::proto

#endif  // PCSWEEP_PROTO_EXAMPLE_ROW_CONVERT_H_
