// pcsweep-run: the job runner child process of a pcsweep worker, and the engine's
// verification tool. Subcommands: forward (engine vs transformers), run --job FILE, and
// preprocess when experiments/inputs provides it.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "experiments/runner/forward_command.h"
#include "experiments/runner/job_dispatch.h"

#if defined(PCSWEEP_HAVE_INPUTS_COMMANDS)
#include "experiments/inputs/inputs_commands.h"
#endif
#if defined(PCSWEEP_HAVE_TRAIN_JOBS)
#include "experiments/jobs/jobs.h"
#endif
#if defined(PCSWEEP_HAVE_SAE_JOBS)
#include "experiments/sae/sae_jobs.h"
#endif

int main(int argc, char** argv) {
  CLI::App app{"pcsweep-run: runs pcsweep ML jobs and engine checks"};
  app.require_subcommand(1);

  pcsweep::runner::ForwardCommandOptions fwd;
  CLI::App* forward =
      app.add_subcommand("forward", "Run the model on inputs from a safetensors file");
  forward->add_option("--model", fwd.model_dir, "Hugging Face model folder")->required();
  forward->add_option("--adapter", fwd.adapter_dir, "PEFT LoRA adapter folder");
  forward->add_option("--dtype", fwd.dtype, "auto|fp32|bf16")
      ->check(CLI::IsMember({"auto", "fp32", "bf16", "fp16"}));
  forward->add_option("--device", fwd.device, "cpu, cuda, cuda:N");
  forward->add_flag("--bf16-rope-freqs", fwd.bf16_rope_frequencies,
                    "round RoPE inv_freq to bf16, like a transformers model cast to bf16 and back");
  forward
      ->add_option("--inputs", fwd.inputs,
                   "safetensors with input_ids, attention_mask, token_type_ids, pixel_values")
      ->required();
  forward
      ->add_option("--out", fwd.out,
                   "output safetensors (logits, hidden_states.<i>, image_features, text_logits)")
      ->required();
#if defined(PCSWEEP_HAVE_SAE_JOBS)
  std::vector<std::string> sae_specs;
  forward->add_option("--sae", sae_specs,
                      "L:DIR: also write sae_recon.L (the SAE in DIR on layer L's output)");
#endif

  std::string job_file;
  CLI::App* run = app.add_subcommand("run", "Run one job described by a JSON job file");
  run->add_option("--job", job_file, "job file")->required();

#if defined(PCSWEEP_HAVE_INPUTS_COMMANDS)
  pcsweep::inputs::AddInputsCommands(app);
#endif

  CLI11_PARSE(app, argc, argv);
  // The facade: nothing a bad input can throw (c10::Error, nlohmann's type_error) escapes as
  // an abort; it ends as the one error line below.
  absl::Status status;
  try {
    if (forward->parsed()) {
      status = pcsweep::runner::RunForwardCommand(fwd);
#if defined(PCSWEEP_HAVE_SAE_JOBS)
      if (status.ok()) status = pcsweep::sae::AddSaeReconstructions(fwd.out, sae_specs);
#endif
    } else if (run->parsed()) {
#if defined(PCSWEEP_HAVE_TRAIN_JOBS)
      status = pcsweep::jobs::RegisterTrainJobKinds();  // pretrain, eval, train_eval
#if defined(PCSWEEP_HAVE_SAE_JOBS)
      if (status.ok())
        status = pcsweep::sae::RegisterSaeJobKinds();  // sae_train, sae_transfer, ...
      if (status.ok()) status = pcsweep::sae::RunJobFileWithClamp(job_file);  // eval + clamp
#else
      if (status.ok()) status = pcsweep::runner::RunJobFile(job_file);
#endif
#else
      status = pcsweep::runner::RunJobFile(job_file);
#endif
    } else {
      return 0;  // a subcommand added by AddInputsCommands ran from its own callback
    }
  } catch (const std::exception& e) {
    const std::string what = e.what();  // c10::Error appends a backtrace: keep the first line
    status = absl::InternalError(absl::StrCat("internal error: ", what.substr(0, what.find('\n'))));
  }
  if (!status.ok()) {
    std::fprintf(stderr, "pcsweep-run: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
