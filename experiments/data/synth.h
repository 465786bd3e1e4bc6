// A synthetic chest-X-ray VQA benchmark, byte-for-byte deterministic for a seed: procedural
// grayscale radiograph-like PNG images with five findings of varying subtlety, yes/no
// questions with PSF-Med-style paraphrase families, and four patient-disjoint splits written
// as canonical JSONL (see loaders.h) plus a SentencePiece training corpus.
//
// Output folder:
//   images/<patient>_<study>.png        8-bit grayscale, image_size x image_size
//   pretrain.jsonl train.jsonl eval_mimic.jsonl eval_balanced.jsonl
//   eval_mimic.json                     eval_mimic again in the MIMIC split layout
//   corpus.txt                          every text the grammar can produce + answers + prompt
//   manifest.json                       options, counts, wording statistics
//
// Design (why the benchmark produces paraphrase flips): every question text has a wording
// register, "formal" (clinical: "Does the radiograph demonstrate ..."), "neutral" ("Is there
// ...?") or "casual" (hedged/lay: "Any chance you can see a big heart?"). In `pretrain` the
// register is tied to the answer the text expects (formal mostly "yes", casual mostly "no",
// with counter-examples), while a share of the findings are nearly invisible (subtlety close
// to 1) and a share of the absent findings are drawn as faint look-alikes (mimics). A model
// pretrained on it learns the image where the image is clear and falls back on wording where
// it is not: on the eval sets, whose originals are neutral and whose paraphrases take the
// three registers at random, that yields flips on the ambiguous images. `train` (for LoRA)
// and the eval splits have no wording bias.
//
// Determinism: own PRNG (rng.h), every pixel from +,-,*,/ and sqrt only (IEEE-exact), one
// random stream per (split, patient), so a split's content depends only on the seed and the
// options that concern it.
// Thread-safety: free functions without shared state; do not write two runs into one folder.
#ifndef PCSWEEP_EXPERIMENTS_DATA_SYNTH_H_
#define PCSWEEP_EXPERIMENTS_DATA_SYNTH_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "experiments/data/types.h"

namespace pcsweep::data {

inline constexpr const char* kFindings[] = {"effusion", "cardiomegaly", "pneumothorax", "nodule",
                                            "consolidation"};
inline constexpr int kNumFindings = 5;

struct SynthOptions {
  uint64_t seed = 0;
  int image_size = 64;  // Pixels per side; anatomy scales with it.

  // Questions per split (each image carries questions_per_image of them).
  size_t pretrain_questions = 4000;
  size_t train_questions = 500;          // The paper's n=500 binary training set.
  size_t eval_mimic_questions = 158;     // The paper's MIMIC binary n.
  size_t eval_balanced_questions = 250;  // Exactly balanced per finding when a multiple of 10.
  int questions_per_image = 2;           // About distinct findings, 1..5.
  int max_studies_per_patient = 2;       // Each patient has 1..this many images.

  // Chance that a finding not asked about is present anyway (realistic co-occurrence).
  double background_prevalence = 0.15;

  // Subtlety in [0, 1] (0 obvious, 1 invisible) of present findings: with probability
  // ambiguous_fraction it is drawn from [ambiguous_subtlety_min, 1), else from
  // [0, clear_subtlety_max].
  double ambiguous_fraction = 0.35;
  double clear_subtlety_max = 0.6;
  double ambiguous_subtlety_min = 0.8;
  // Absent findings are drawn, with this probability, as a faint look-alike whose strength
  // overlaps the ambiguous present ones (1 - subtlety in [0, 1 - ambiguous_subtlety_min]).
  double mimic_fraction = 0.35;

  // Wording bias of `pretrain`: each text's register is the one aligned with the answer it
  // expects (formal for yes, casual for no) with probability pretrain_aligned, neutral with
  // probability pretrain_neutral, and the opposite register otherwise (counter-examples).
  double pretrain_aligned = 0.8;
  double pretrain_neutral = 0.1;
  // When true, only questions whose image is ambiguous for the asked finding (a nearly
  // invisible finding or a look-alike) get biased wording; clear images get the unbiased mix.
  // The wording cue then never competes with a clear image, which keeps the pretrained
  // model's accuracy up while it still leans on wording where the image is ambiguous.
  bool pretrain_bias_ambiguous_only = false;
  // When true, nodules and consolidations sit in fixed lung zones (upper and lower; the side
  // stays random) and clear ones are drawn larger and denser, as the other three findings
  // already are. A from-scratch model reads findings at a fixed place far more easily: a
  // vision encoder trained alone reaches 0.97 held-out accuracy in 300 steps instead of 0.83
  // (benchmark without ambiguous images). Changes every image that shows either finding.
  bool conspicuous_findings = false;

  // Share of negation_pattern paraphrases that invert the answer ("Can X be ruled out?",
  // op_match=false); the rest are answer-preserving double negations.
  double inverting_negation_fraction = 0.6;
  // Share of eval_mimic questions that are not yes/no ("Which lung shows X?": left/right),
  // as in MIMIC, where about half the questions are not binary.
  double eval_mimic_open_fraction = 0.1;

  bool write_mimic_json = true;
};

// Possible errors: InvalidArgument (option out of range, e.g. image_size < 16 or a
// probability outside [0, 1]; the message names the option).
absl::Status ValidateSynthOptions(const SynthOptions& options);

struct SplitSummary {
  size_t questions = 0;
  size_t images = 0;
  size_t patients = 0;
  size_t yes = 0;
  size_t no = 0;
  size_t other = 0;
  size_t inverting_paraphrases = 0;
  std::map<std::string, size_t> paraphrases_per_phenomenon;
};

struct SynthSummary {
  std::map<std::string, SplitSummary> splits;  // By split name.
  std::string out_dir;
};

// Writes the benchmark into out_dir (created if needed). Possible errors: InvalidArgument
// (options), Internal (cannot create or write a file; the message names it).
absl::StatusOr<SynthSummary> GenerateSyntheticBenchmark(const SynthOptions& options,
                                                        const std::string& out_dir);

// A fingerprint of a benchmark folder: a stable 64-bit hash (16 hex digits) of every regular
// file's relative path and bytes, in path order. Two folders get the same fingerprint only
// when they hold the same files, so a model trained on one generator's output can tell that
// the generator of today writes something else. Possible errors: NotFound (no such folder),
// Internal (a file cannot be read; the message names it).
absl::StatusOr<std::string> BenchmarkFingerprint(const std::string& dir);

// The split names, in generation order.
inline constexpr const char* kSplits[] = {"pretrain", "train", "eval_mimic", "eval_balanced"};

// Renders one image for tests and previews: `present` / `strength` per finding (strength =
// 1 - subtlety, 0 = not drawn), anatomy from `seed`. Returns size*size 8-bit pixels.
struct FindingDraw {
  bool drawn = false;
  double strength = 0;
  int side = 1;                   // -1 image left (patient right), +1 image right.
  double pos_u = 0, pos_v = 0.5;  // Where in the lung (nodule, consolidation).
  bool conspicuous = false;       // Nodule and consolidation larger (conspicuous_findings).
};
std::vector<uint8_t> RenderRadiograph(int size, uint64_t seed,
                                      const FindingDraw (&findings)[kNumFindings]);

// Encodes 8-bit grayscale pixels as PNG bytes (deterministic). Possible errors: Internal.
absl::StatusOr<std::string> EncodeGrayPng(const std::vector<uint8_t>& pixels, int width,
                                          int height);

}  // namespace pcsweep::data

#endif  // PCSWEEP_EXPERIMENTS_DATA_SYNTH_H_
