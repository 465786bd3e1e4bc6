#include "experiments/data/synth.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "common/status/status_macros.h"
#include "experiments/data/loaders.h"
#include "experiments/data/rng.h"
#include "experiments/data/synth_render.h"
#include "nlohmann/json.hpp"

namespace pcsweep::data {
namespace {

#include "experiments/data/synth_grammar.inc"

using synth_internal::Anatomy;
using synth_internal::PatientAnatomy;
using synth_internal::Render;
using synth_internal::StudyJitter;
namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

constexpr int kCardiomegaly = 1;

// ---------------------------------------------------------------------------------------
// Questions.

const char* WordingName(int reg) { return reg > 0 ? "formal" : (reg < 0 ? "casual" : "neutral"); }

int Combine(int frame_reg, int term_reg) { return frame_reg != 0 ? frame_reg : term_reg; }

std::string Fill(const char* frame, const char* term) {
  return absl::StrReplaceAll(frame, {{"{t}", term}});
}

struct Candidate {
  std::string text;
  int reg;
};

// The register a text should take. Biased: aligned with the answer the text expects (formal
// for yes, casual for no) with p_aligned, neutral with p_neutral, else the opposite register.
// Unbiased: each register with probability 1/3.
int DrawRegister(Rng& rng, bool biased, Answer expected, const SynthOptions& o) {
  if (!biased) return static_cast<int>(rng.Below(3)) - 1;
  const int aligned = expected == Answer::kYes ? 1 : -1;
  const double u = rng.Uniform();
  if (u < o.pretrain_aligned) return aligned;
  if (u < o.pretrain_aligned + o.pretrain_neutral) return 0;
  return -aligned;
}

// A candidate of register `reg`, else one of `fallback` with it, else any candidate.
const Candidate& Pick(Rng& rng, const std::vector<Candidate>& candidates,
                      const std::vector<Candidate>& fallback, int reg) {
  for (const std::vector<Candidate>* list : {&candidates, &fallback}) {
    std::vector<size_t> matching;
    for (size_t i = 0; i < list->size(); ++i) {
      if ((*list)[i].reg == reg) matching.push_back(i);
    }
    if (!matching.empty()) return (*list)[matching[rng.Below(matching.size())]];
  }
  return candidates[rng.Below(candidates.size())];
}

template <size_t N>
std::vector<Candidate> WithTerm(const Phrase (&frames)[N], const Phrase& term) {
  std::vector<Candidate> out;
  for (const Phrase& f : frames) out.push_back({Fill(f.text, term.text), Combine(f.reg, term.reg)});
  return out;
}

struct SplitPlan {
  const char* name;
  size_t questions;
  bool biased;    // Wording tied to answers.
  bool balanced;  // Exactly balanced yes/no per finding.
  double open_fraction;
};

struct Generated {
  std::vector<Question> questions;  // Image paths relative to the output folder.
  SplitSummary summary;
};

// One question asked of an image: its finding, the answer it should get, and its kind.
struct Slot {
  int finding;
  Answer answer;
  bool open;  // Location question.
};

// Draws the asked findings/answers of one image's `num_slots` questions.
std::vector<Slot> DrawSlots(Rng& rng, const SplitPlan& plan, int num_slots,
                            size_t* balanced_counter) {
  std::vector<Slot> slots;
  std::vector<int> order = {0, 1, 2, 3, 4};
  rng.Shuffle(order);
  for (int s = 0; s < num_slots; ++s) {
    Slot slot;
    if (plan.balanced) {
      slot.finding = static_cast<int>(*balanced_counter % kNumFindings);
      slot.answer = (*balanced_counter / kNumFindings) % 2 == 0 ? Answer::kYes : Answer::kNo;
      ++*balanced_counter;
    } else {
      slot.finding = order[s];
      slot.answer = rng.Bernoulli(0.5) ? Answer::kYes : Answer::kNo;
    }
    slot.open = plan.open_fraction > 0 && rng.Bernoulli(plan.open_fraction) &&
                slot.finding != kCardiomegaly;
    slots.push_back(slot);
  }
  return slots;
}

// What one image shows: each finding drawn or not, how subtle a present one is (-1 when
// absent), and whether it is ambiguous (a subtle present finding or an absent one mimicked).
struct ImageFindings {
  FindingDraw draws[kNumFindings];
  double subtlety[kNumFindings];
  bool ambiguous[kNumFindings];
};

ImageFindings DrawFindings(Rng& rng, const SynthOptions& o, const std::vector<Slot>& slots) {
  ImageFindings image;
  for (int f = 0; f < kNumFindings; ++f) {
    bool present = rng.Bernoulli(o.background_prevalence);
    for (const Slot& slot : slots) {
      if (slot.finding == f) present = slot.open || slot.answer == Answer::kYes;
    }
    FindingDraw& d = image.draws[f];
    d.side = rng.Bernoulli(0.5) ? 1 : -1;
    d.pos_u = rng.Uniform(-0.6, 0.6);
    d.pos_v = f == 4 ? rng.Uniform(0.45, 0.8) : rng.Uniform(0.25, 0.75);
    if (o.conspicuous_findings) {
      // The same draws, squeezed into a fixed zone: the other images stay byte-identical.
      d.conspicuous = true;
      d.pos_u *= 0.15;
      d.pos_v = f == 4 ? 0.6 + (d.pos_v - 0.625) * (0.1 / 0.35) : 0.35 + (d.pos_v - 0.5) * 0.2;
    }
    image.subtlety[f] = -1;
    image.ambiguous[f] = false;
    if (present) {
      const bool ambiguous = rng.Bernoulli(o.ambiguous_fraction);
      image.ambiguous[f] = ambiguous;
      image.subtlety[f] = ambiguous ? rng.Uniform(o.ambiguous_subtlety_min, 1.0)
                                    : rng.Uniform(0.0, o.clear_subtlety_max);
      d.drawn = true;
      d.strength = 1 - image.subtlety[f];
    } else if (rng.Bernoulli(o.mimic_fraction)) {
      d.drawn = true;
      d.strength = rng.Uniform(0.0, 1 - o.ambiguous_subtlety_min);
      image.ambiguous[f] = true;
    }
  }
  return image;
}

// Renders the image and writes it as `out_dir`/`image` (a PNG).
absl::Status WriteImage(const SynthOptions& o, const Anatomy& anatomy, const ImageFindings& image,
                        const std::string& out_dir, const std::string& relative_path) {
  const std::vector<uint8_t> pixels = Render(o.image_size, anatomy, image.draws);
  PCSWEEP_ASSIGN_OR_RETURN(std::string png, EncodeGrayPng(pixels, o.image_size, o.image_size));
  const std::string path = (fs::path(out_dir) / relative_path).string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(png.data(), static_cast<std::streamsize>(png.size()));
  if (!out) return absl::InternalError(absl::StrCat(path, ": cannot write image"));
  return absl::OkStatus();
}

// A location question (answers left/right, the patient's side) and its two paraphrases.
void FillLocationQuestion(Rng& rng, const Slot& slot, const ImageFindings& image, Question* q) {
  const Phrase* terms = kTerms[slot.finding];
  q->question_type = "location";
  q->answer = Answer::kOther;
  q->answer_text = image.draws[slot.finding].side < 0 ? "right" : "left";
  const int term = static_cast<int>(rng.Below(2));
  q->original_question = Fill(kLocationFrames[0].text, terms[term].text);
  q->wording = "neutral";
  const Phrase& other_term = terms[2 + rng.Below(4)];
  q->paraphrases.push_back({Fill(kLocationFrames[0].text, other_term.text),
                            std::string(kLexicalSubstitution), true, WordingName(other_term.reg)});
  q->paraphrases.push_back({Fill(kLocationFrames[1].text, terms[term].text),
                            std::string(kSyntacticRestructuring), true, "neutral"});
}

// The paraphrase of `phenomenon` for a presence question asked with frame `base_frame` and
// term `term` of the slot's finding. Frames keep the original's term; when that term's
// register makes the drawn register unreachable (a formal term under neutral frames), the
// frames are filled with a neutral term instead.
Paraphrase DrawParaphrase(Rng& rng, const SynthOptions& o, const Slot& slot, bool biased,
                          int base_frame, int term, std::string_view phenomenon) {
  const Phrase* terms = kTerms[slot.finding];
  std::vector<Candidate> candidates, fallback;
  const Phrase& neutral_term = terms[rng.Below(2)];
  bool op_match = true;
  if (phenomenon == kLexicalSubstitution) {
    for (int t = 0; t < 6; ++t) {
      if (t == term) continue;
      candidates.push_back({Fill(kBaseFrames[base_frame].text, terms[t].text),
                            Combine(kBaseFrames[base_frame].reg, terms[t].reg)});
    }
  } else if (phenomenon == kSyntacticRestructuring) {
    candidates = WithTerm(kSyntacticFrames, terms[term]);
    fallback = WithTerm(kSyntacticFrames, neutral_term);
    const Phrase& other_base = kBaseFrames[1 - base_frame];
    candidates.push_back(
        {Fill(other_base.text, terms[term].text), Combine(other_base.reg, terms[term].reg)});
  } else if (phenomenon == kNegationPattern) {
    op_match = !rng.Bernoulli(o.inverting_negation_fraction);
    if (op_match) {
      candidates = WithTerm(kDoubleNegationFrames, terms[term]);
      fallback = WithTerm(kDoubleNegationFrames, neutral_term);
    } else {
      candidates = WithTerm(kInvertingNegationFrames, terms[term]);
      fallback = WithTerm(kInvertingNegationFrames, neutral_term);
    }
  } else if (phenomenon == kScopeQuantification) {
    candidates = WithTerm(kScopeFrames, terms[term]);
    fallback = WithTerm(kScopeFrames, neutral_term);
  } else {
    for (const Phrase& p : kSpecificity[slot.finding]) candidates.push_back({p.text, p.reg});
  }
  const Answer expected = op_match ? slot.answer : Invert(slot.answer);
  const int reg = DrawRegister(rng, biased, expected, o);
  const Candidate& chosen = Pick(rng, candidates, fallback, reg);
  return {chosen.text, std::string(phenomenon), op_match, WordingName(chosen.reg)};
}

// A yes/no presence question and one paraphrase per phenomenon. In a biased split (all of
// the image's questions, or only those of ambiguous findings) the wording leans on the answer.
void FillPresenceQuestion(Rng& rng, const SynthOptions& o, const SplitPlan& plan, const Slot& slot,
                          const ImageFindings& image, Question* q) {
  const Phrase* terms = kTerms[slot.finding];
  q->question_type = "presence";
  const bool biased =
      plan.biased && (!o.pretrain_bias_ambiguous_only || image.ambiguous[slot.finding]);
  q->answer = slot.answer;
  q->answer_text = std::string(AnswerName(slot.answer));
  // Original: neutral frame; biased splits pick a term of the drawn register.
  const int base_frame = static_cast<int>(rng.Below(2));
  int term = static_cast<int>(rng.Below(2));  // A neutral term.
  if (biased) {
    const int reg = DrawRegister(rng, true, slot.answer, o);
    std::vector<int> matching;
    for (int t = 0; t < 6; ++t) {
      if (terms[t].reg == reg) matching.push_back(t);
    }
    term = matching[rng.Below(matching.size())];
  }
  q->original_question = Fill(kBaseFrames[base_frame].text, terms[term].text);
  q->wording = WordingName(terms[term].reg);
  for (std::string_view phenomenon : kAllPhenomena)
    q->paraphrases.push_back(DrawParaphrase(rng, o, slot, biased, base_frame, term, phenomenon));
}

// One image of `patient_id` (study `study` of the patient) and its questions, appended to g.
absl::Status GenerateStudy(Rng& rng, const SynthOptions& o, const SplitPlan& plan,
                           const Anatomy& anatomy, const std::string& patient_id, int study,
                           const std::string& image_dir, const std::string& out_dir,
                           size_t* balanced_counter, Generated* g) {
  const size_t remaining = plan.questions - g->questions.size();
  const int num_slots =
      static_cast<int>(std::min<size_t>(remaining, static_cast<size_t>(o.questions_per_image)));
  const std::vector<Slot> slots = DrawSlots(rng, plan, num_slots, balanced_counter);
  const ImageFindings findings = DrawFindings(rng, o, slots);
  Anatomy study_anatomy = anatomy;
  StudyJitter(study_anatomy, rng);
  const std::string image = absl::StrFormat("%s/%s_s%d.png", image_dir, patient_id, study);
  PCSWEEP_RETURN_IF_ERROR(WriteImage(o, study_anatomy, findings, out_dir, image));
  ++g->summary.images;
  for (const Slot& slot : slots) {
    Question q;
    q.question_id = absl::StrFormat("%s-%05d", plan.name, g->questions.size());
    q.image = image;
    q.patient_id = patient_id;
    q.study_id = absl::StrCat("s", study);
    q.finding = kFindings[slot.finding];
    q.subtlety = findings.subtlety[slot.finding] >= 0
                     ? std::floor(findings.subtlety[slot.finding] * 1000 + 0.5) / 1000
                     : -1;
    if (slot.open) {
      FillLocationQuestion(rng, slot, findings, &q);
    } else {
      FillPresenceQuestion(rng, o, plan, slot, findings, &q);
    }
    g->questions.push_back(std::move(q));
  }
  return absl::OkStatus();
}

void CountQuestions(Generated* g) {
  for (const Question& q : g->questions) {
    ++g->summary.questions;
    if (q.answer == Answer::kYes) ++g->summary.yes;
    if (q.answer == Answer::kNo) ++g->summary.no;
    if (q.answer == Answer::kOther) ++g->summary.other;
    for (const Paraphrase& p : q.paraphrases) {
      ++g->summary.paraphrases_per_phenomenon[p.phenomenon];
      if (!p.op_match) ++g->summary.inverting_paraphrases;
    }
  }
}

absl::StatusOr<Generated> GenerateSplit(const SynthOptions& o, const SplitPlan& plan,
                                        int split_index, const std::string& out_dir) {
  Generated g;
  const uint64_t split_seed = MixSeed(o.seed, static_cast<uint64_t>(split_index) + 1);
  const std::string image_dir = absl::StrCat("images/", plan.name);
  std::error_code ec;
  fs::create_directories(fs::path(out_dir) / image_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat(out_dir, "/", image_dir, ": cannot create folder: ", ec.message()));
  }
  size_t balanced_counter = 0;
  for (size_t patient = 0; g.questions.size() < plan.questions; ++patient) {
    Rng rng(MixSeed(split_seed, patient));
    const std::string patient_id = absl::StrFormat("%s-p%05d", plan.name, patient);
    const Anatomy anatomy = PatientAnatomy(rng);
    const int studies = 1 + static_cast<int>(rng.Below(o.max_studies_per_patient));
    ++g.summary.patients;
    for (int study = 0; study < studies && g.questions.size() < plan.questions; ++study) {
      PCSWEEP_RETURN_IF_ERROR(GenerateStudy(rng, o, plan, anatomy, patient_id, study, image_dir,
                                            out_dir, &balanced_counter, &g));
    }
  }
  CountQuestions(&g);
  return g;
}

std::vector<std::string> CorpusLines() {
  std::set<std::string> texts;
  auto add_frames = [&](const Phrase* frames, size_t n, const Phrase& term) {
    for (size_t i = 0; i < n; ++i) texts.insert(Fill(frames[i].text, term.text));
  };
  for (int f = 0; f < kNumFindings; ++f) {
    for (const Phrase& term : kTerms[f]) {
      add_frames(kBaseFrames, std::size(kBaseFrames), term);
      add_frames(kSyntacticFrames, std::size(kSyntacticFrames), term);
      add_frames(kScopeFrames, std::size(kScopeFrames), term);
      add_frames(kInvertingNegationFrames, std::size(kInvertingNegationFrames), term);
      add_frames(kDoubleNegationFrames, std::size(kDoubleNegationFrames), term);
      if (f != kCardiomegaly) add_frames(kLocationFrames, std::size(kLocationFrames), term);
    }
    for (const Phrase& p : kSpecificity[f]) texts.insert(p.text);
  }
  std::vector<std::string> lines(texts.begin(), texts.end());
  for (const char* extra : {"Answer with only 'yes' or 'no'.", "yes", "no", "Yes", "No", "left",
                            "right", "Left", "Right"}) {
    lines.push_back(extra);
  }
  return lines;
}

absl::Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.flush();
  if (!out) return absl::InternalError(absl::StrCat(path, ": cannot write"));
  return absl::OkStatus();
}

ojson OptionsJson(const SynthOptions& o) {
  ojson j;
  j["seed"] = o.seed;
  j["image_size"] = o.image_size;
  j["pretrain_questions"] = o.pretrain_questions;
  j["train_questions"] = o.train_questions;
  j["eval_mimic_questions"] = o.eval_mimic_questions;
  j["eval_balanced_questions"] = o.eval_balanced_questions;
  j["questions_per_image"] = o.questions_per_image;
  j["max_studies_per_patient"] = o.max_studies_per_patient;
  j["background_prevalence"] = o.background_prevalence;
  j["ambiguous_fraction"] = o.ambiguous_fraction;
  j["clear_subtlety_max"] = o.clear_subtlety_max;
  j["ambiguous_subtlety_min"] = o.ambiguous_subtlety_min;
  j["mimic_fraction"] = o.mimic_fraction;
  j["pretrain_aligned"] = o.pretrain_aligned;
  j["pretrain_neutral"] = o.pretrain_neutral;
  j["pretrain_bias_ambiguous_only"] = o.pretrain_bias_ambiguous_only;
  j["conspicuous_findings"] = o.conspicuous_findings;
  j["inverting_negation_fraction"] = o.inverting_negation_fraction;
  j["eval_mimic_open_fraction"] = o.eval_mimic_open_fraction;
  return j;
}

}  // namespace

absl::Status ValidateSynthOptions(const SynthOptions& o) {
  auto probability = [](const char* name, double p) -> absl::Status {
    if (!(p >= 0 && p <= 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("synth option ", name, " = ", p, " must be in [0, 1]"));
    }
    return absl::OkStatus();
  };
  if (o.image_size < 16 || o.image_size > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("synth option image_size = ", o.image_size, " must be in [16, 1024]"));
  }
  if (o.questions_per_image < 1 || o.questions_per_image > kNumFindings) {
    return absl::InvalidArgumentError(absl::StrCat(
        "synth option questions_per_image = ", o.questions_per_image, " must be in [1, 5]"));
  }
  if (o.max_studies_per_patient < 1) {
    return absl::InvalidArgumentError("synth option max_studies_per_patient must be >= 1");
  }
  PCSWEEP_RETURN_IF_ERROR(probability("background_prevalence", o.background_prevalence));
  PCSWEEP_RETURN_IF_ERROR(probability("ambiguous_fraction", o.ambiguous_fraction));
  PCSWEEP_RETURN_IF_ERROR(probability("clear_subtlety_max", o.clear_subtlety_max));
  PCSWEEP_RETURN_IF_ERROR(probability("ambiguous_subtlety_min", o.ambiguous_subtlety_min));
  PCSWEEP_RETURN_IF_ERROR(probability("mimic_fraction", o.mimic_fraction));
  PCSWEEP_RETURN_IF_ERROR(probability("pretrain_aligned", o.pretrain_aligned));
  PCSWEEP_RETURN_IF_ERROR(probability("pretrain_neutral", o.pretrain_neutral));
  PCSWEEP_RETURN_IF_ERROR(
      probability("pretrain_aligned + pretrain_neutral", o.pretrain_aligned + o.pretrain_neutral));
  PCSWEEP_RETURN_IF_ERROR(
      probability("inverting_negation_fraction", o.inverting_negation_fraction));
  PCSWEEP_RETURN_IF_ERROR(probability("eval_mimic_open_fraction", o.eval_mimic_open_fraction));
  return absl::OkStatus();
}

absl::StatusOr<SynthSummary> GenerateSyntheticBenchmark(const SynthOptions& o,
                                                        const std::string& out_dir) {
  PCSWEEP_RETURN_IF_ERROR(ValidateSynthOptions(o));
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat(out_dir, ": cannot create: ", ec.message()));
  const SplitPlan plans[] = {
      {kSplits[0], o.pretrain_questions, true, false, 0.0},
      {kSplits[1], o.train_questions, false, false, 0.0},
      {kSplits[2], o.eval_mimic_questions, false, false, o.eval_mimic_open_fraction},
      {kSplits[3], o.eval_balanced_questions, false, true, 0.0},
  };
  SynthSummary summary;
  summary.out_dir = out_dir;
  ojson manifest;
  manifest["generator"] = "pcsweep synthetic chest X-ray VQA v1";
  manifest["options"] = OptionsJson(o);
  for (int s = 0; s < 4; ++s) {
    PCSWEEP_ASSIGN_OR_RETURN(Generated g, GenerateSplit(o, plans[s], s, out_dir));
    const std::string jsonl =
        (fs::path(out_dir) / (std::string(plans[s].name) + ".jsonl")).string();
    PCSWEEP_RETURN_IF_ERROR(WriteCanonicalJsonl(jsonl, g.questions));
    if (s == 2 && o.write_mimic_json) {
      ojson results = ojson::array();
      for (const Question& q : g.questions) {
        ojson r;
        r["question_id"] = q.question_id;
        r["question_type"] = q.question_type;
        r["filename"] = q.image;
        r["subject_id"] = q.patient_id;
        r["study_id"] = q.study_id;
        r["finding"] = q.finding;
        r["original_question"] = q.original_question;
        r["answer"] = q.answer_text;
        ojson paraphrases = ojson::array();
        for (const Paraphrase& p : q.paraphrases) {
          paraphrases.push_back(
              {{"text", p.text}, {"phenomenon", p.phenomenon}, {"op_match", p.op_match}});
        }
        r["paraphrases"] = std::move(paraphrases);
        results.push_back(std::move(r));
      }
      ojson doc;
      doc["results"] = std::move(results);
      PCSWEEP_RETURN_IF_ERROR(
          WriteText((fs::path(out_dir) / "eval_mimic.json").string(), doc.dump(1) + "\n"));
    }
    const SplitSummary& ss = g.summary;
    ojson js;
    js["questions"] = ss.questions;
    js["images"] = ss.images;
    js["patients"] = ss.patients;
    js["yes"] = ss.yes;
    js["no"] = ss.no;
    js["other"] = ss.other;
    js["inverting_paraphrases"] = ss.inverting_paraphrases;
    js["paraphrases_per_phenomenon"] = ss.paraphrases_per_phenomenon;
    manifest["splits"][plans[s].name] = std::move(js);
    summary.splits[plans[s].name] = g.summary;
  }
  std::string corpus;
  for (const std::string& line : CorpusLines()) absl::StrAppend(&corpus, line, "\n");
  PCSWEEP_RETURN_IF_ERROR(WriteText((fs::path(out_dir) / "corpus.txt").string(), corpus));
  PCSWEEP_RETURN_IF_ERROR(
      WriteText((fs::path(out_dir) / "manifest.json").string(), manifest.dump(2) + "\n"));
  return summary;
}

absl::StatusOr<std::string> BenchmarkFingerprint(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return absl::NotFoundError(absl::StrCat(dir, ": no such benchmark folder"));
  std::vector<std::string> files;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file()) files.push_back(fs::relative(it->path(), dir).generic_string());
  }
  if (ec) return absl::InternalError(absl::StrCat(dir, ": cannot list: ", ec.message()));
  std::sort(files.begin(), files.end());
  uint64_t hash = StableHash("pcsweep benchmark fingerprint v1");
  for (const std::string& name : files) {
    std::ifstream in(fs::path(dir) / name, std::ios::binary);
    if (!in) return absl::InternalError(absl::StrCat(dir, "/", name, ": cannot read"));
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    hash = StableHash(name, hash);
    hash = StableHash(bytes, hash);
  }
  return absl::StrFormat("%016x", hash);
}

}  // namespace pcsweep::data
