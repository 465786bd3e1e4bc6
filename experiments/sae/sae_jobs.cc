// Registration of the SAE job kinds and of the `clamp` option of `eval` (sae_jobs.h). The
// kinds live in one file each: sae_train_job.cc, sae_transfer_job.cc, layer_select_job.cc,
// clamp_eval_job.cc; `forward --sae` in sae_forward.cc.
#include "experiments/sae/sae_jobs.h"

#include "common/status/status_macros.h"
#include "experiments/jobs/job_io.h"
#include "experiments/jobs/job_registry.h"
#include "experiments/jobs/jobs.h"

namespace pcsweep::sae {

using jobs::Guarded;

absl::Status RegisterSaeJobKinds() {
  PCSWEEP_RETURN_IF_ERROR(jobs::RegisterJobKind("sae_train", Guarded("sae_train", RunSaeTrainJob)));
  PCSWEEP_RETURN_IF_ERROR(
      jobs::RegisterJobKind("sae_transfer", Guarded("sae_transfer", RunSaeTransferJob)));
  PCSWEEP_RETURN_IF_ERROR(
      jobs::RegisterJobKind("layer_select", Guarded("layer_select", RunLayerSelectJob)));
  PCSWEEP_RETURN_IF_ERROR(
      jobs::RegisterJobKind("clamp_eval", Guarded("clamp_eval", RunClampEvalJob)));
  // An `eval` job with a `clamp` object runs as clamp_eval, inside eval's own Guarded.
  return jobs::RegisterEvalOption({"clamp", RunClampEvalJob});
}

}  // namespace pcsweep::sae
