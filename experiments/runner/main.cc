// pcsweep-run: the job runner child process of a pcsweep worker, and the engine's
// verification tool. Subcommands: forward (engine vs transformers), run --job FILE,
// random-checkpoint and smoke (the full-size path on a checkpoint in MedGemma's layout), and
// preprocess when experiments/inputs provides it.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "experiments/inputs/inputs_commands.h"
#include "experiments/jobs/job_registry.h"
#include "experiments/jobs/jobs.h"
#include "experiments/runner/forward_command.h"
#include "experiments/sae/sae_jobs.h"
#include "experiments/train/random_checkpoint.h"
#include "experiments/train/smoke.h"

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
  std::vector<std::string> sae_specs;
  forward->add_option("--sae", sae_specs,
                      "L:DIR: also write sae_recon.L (the SAE in DIR on layer L's output)");

  std::string job_file;
  CLI::App* run = app.add_subcommand("run", "Run one job described by a JSON job file");
  run->add_option("--job", job_file, "job file")->required();

  pcsweep::train::RandomCheckpointOptions rc;
  CLI::App* random_checkpoint = app.add_subcommand(
      "random-checkpoint", "Write random weights in the exact layout of a model folder");
  random_checkpoint
      ->add_option(
          "--like", rc.like_dir,
          "folder with config.json and model.safetensors.index.json (or model.safetensors)")
      ->required();
  random_checkpoint->add_option("--out", rc.out_dir, "new model folder")->required();
  random_checkpoint->add_option("--text-layers", rc.text_layers, "keep the first N decoder layers");
  random_checkpoint->add_option("--vision-layers", rc.vision_layers,
                                "keep the first N SigLIP layers");
  random_checkpoint->add_option("--dtype", rc.dtype, "bf16|fp32|fp16")
      ->check(CLI::IsMember({"bf16", "fp32", "fp16"}));
  random_checkpoint->add_option("--seed", rc.seed, "random seed");

  pcsweep::train::SmokeOptions smoke_options;
  CLI::App* smoke = app.add_subcommand(
      "smoke", "Load, score a pair, one LoRA step, save and reload: time and peak memory");
  smoke->add_option("--model", smoke_options.model_dir, "Hugging Face model folder")->required();
  smoke->add_option("--work", smoke_options.work_dir, "folder for the adapter (default: temp)");
  smoke->add_option("--device", smoke_options.device, "cpu, cuda, cuda:N");
  smoke->add_option("--dtype", smoke_options.dtype, "auto|fp32|bf16|fp16")
      ->check(CLI::IsMember({"auto", "fp32", "bf16", "fp16"}));
  smoke->add_option("--threads", smoke_options.threads, "intra-op threads (0: libtorch default)");
  smoke->add_option("--layers", smoke_options.layers,
                    "LoRA layers: a-b, a list, or early / middle / late (default 15-19)");
  smoke->add_option("--rank", smoke_options.lora_rank, "LoRA rank");
  smoke->add_option("--stop-after", smoke_options.stop_after, "load|score|train|reload")
      ->check(CLI::IsMember({"load", "score", "train", "reload"}));
  smoke->add_option("--max-rss-gb", smoke_options.max_rss_gb,
                    "fail when the peak resident set ends above this many GB");
  smoke->add_option("--seed", smoke_options.seed, "seed of the prompts, pixels and adapter");

  pcsweep::inputs::AddInputsCommands(app);

  // Usage errors end as one line and status 1, like every other bad input; --help is not one.
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::RuntimeError& e) {  // preprocess failed and printed its own line
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "pcsweep-run: %s (see pcsweep-run --help)\n", e.what());
    return 1;
  } catch (const std::exception& e) {  // a subcommand's callback (preprocess) failing
    std::fprintf(stderr, "pcsweep-run: %s\n", e.what());
    return 1;
  }
  // The facade: nothing a bad input can throw (c10::Error, nlohmann's type_error) escapes as
  // an abort; it ends as the one error line below.
  absl::Status status;
  try {
    if (forward->parsed()) {
      status = pcsweep::runner::RunForwardCommand(fwd);
      if (status.ok()) status = pcsweep::sae::AddSaeReconstructions(fwd.out, sae_specs);
    } else if (random_checkpoint->parsed()) {
      auto report = pcsweep::train::WriteRandomCheckpoint(rc);
      status = report.status();
      if (report.ok()) {
        std::printf("wrote %lld tensors (%.2f GB) in %d shard(s) to %s in %.1f s\n",
                    static_cast<long long>(report->tensors), report->bytes / 1e9, report->shards,
                    rc.out_dir.c_str(), report->seconds);
      }
    } else if (smoke->parsed()) {
      status = pcsweep::train::RunSmoke(smoke_options);
    } else if (run->parsed()) {
      status = pcsweep::jobs::RegisterTrainJobKinds();  // pretrain, benchmark, eval, train_eval
      if (status.ok())
        status = pcsweep::sae::RegisterSaeJobKinds();  // sae_train, sae_transfer, ...
      if (status.ok()) status = pcsweep::jobs::RunJobFile(job_file);
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
