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
#include "nlohmann/json.hpp"
#include "stb/stb_image_write.h"

namespace pcsweep::data {
namespace {

#include "experiments/data/synth_grammar.inc"

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

constexpr int kCardiomegaly = 1;

// ---------------------------------------------------------------------------------------
// Images. Coordinates are in [0, 1] (x right, y down); only +,-,*,/ and sqrt are used so the
// pixels are bit-identical on every IEEE platform.

double Clamp01(double x) { return x < 0 ? 0 : (x > 1 ? 1 : x); }

// 0 at e0, 1 at e1 (either order), smooth in between.
double Smooth(double e0, double e1, double x) {
  const double t = Clamp01((x - e0) / (e1 - e0));
  return t * t * (3 - 2 * t);
}

double HashUnit(uint64_t seed, int64_t ix, int64_t iy) {
  const uint64_t h = MixSeed(MixSeed(seed, static_cast<uint64_t>(ix)), static_cast<uint64_t>(iy));
  return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0);
}

// Smooth value noise in [0, 1) with `freq` lattice cells per unit.
double ValueNoise(uint64_t seed, double x, double y, double freq) {
  const double fx = x * freq, fy = y * freq;
  const double flx = std::floor(fx), fly = std::floor(fy);
  const int64_t ix = static_cast<int64_t>(flx), iy = static_cast<int64_t>(fly);
  const double tx = Smooth(0, 1, fx - flx), ty = Smooth(0, 1, fy - fly);
  const double a = HashUnit(seed, ix, iy), b = HashUnit(seed, ix + 1, iy);
  const double c = HashUnit(seed, ix, iy + 1), d = HashUnit(seed, ix + 1, iy + 1);
  return (a * (1 - tx) + b * tx) * (1 - ty) + (c * (1 - tx) + d * tx) * ty;
}

// Per-patient anatomy plus per-study exposure.
struct Anatomy {
  double cx, cy;       // Thorax centre.
  double thorax_half;  // Half the thorax width.
  double lung_top, lung_base, dome, lung_half;
  double ctr;  // Cardiothoracic ratio of the normal heart.
  double tissue, lung_dark, gain;
  double rib_spacing, rib_offset;
  uint64_t texture_seed, grain_seed;
};

Anatomy PatientAnatomy(Rng& rng) {
  Anatomy a;
  a.cx = 0.5 + rng.Uniform(-0.02, 0.02);
  a.cy = 0.5 + rng.Uniform(-0.02, 0.02);
  a.thorax_half = rng.Uniform(0.38, 0.43);
  a.lung_half = a.thorax_half * rng.Uniform(0.40, 0.44);
  a.lung_top = a.cy - rng.Uniform(0.30, 0.34);
  a.lung_base = a.cy + rng.Uniform(0.20, 0.25);
  a.dome = rng.Uniform(0.05, 0.08);
  a.ctr = rng.Uniform(0.40, 0.47);
  a.tissue = rng.Uniform(0.52, 0.62);
  a.lung_dark = rng.Uniform(0.34, 0.42);
  a.gain = 1;
  a.rib_spacing = rng.Uniform(0.072, 0.082);
  a.rib_offset = rng.Uniform(-0.01, 0.01);
  a.texture_seed = rng.Next();
  a.grain_seed = 0;
  return a;
}

void StudyJitter(Anatomy& a, Rng& rng) {
  a.cx += rng.Uniform(-0.015, 0.015);
  a.cy += rng.Uniform(-0.01, 0.01);
  a.lung_top += rng.Uniform(-0.01, 0.01);
  a.gain = rng.Uniform(0.92, 1.08);
  a.grain_seed = rng.Next();
}

double SegmentDistance(double px, double py, double ax, double ay, double bx, double by) {
  const double vx = bx - ax, vy = by - ay;
  const double t = Clamp01(((px - ax) * vx + (py - ay) * vy) / (vx * vx + vy * vy));
  const double dx = px - (ax + t * vx), dy = py - (ay + t * vy);
  return std::sqrt(dx * dx + dy * dy);
}

std::vector<uint8_t> Render(int size, const Anatomy& a,
                            const FindingDraw (&findings)[kNumFindings]) {
  const FindingDraw& effusion = findings[0];
  const FindingDraw& cardio = findings[1];
  const FindingDraw& ptx = findings[2];
  const FindingDraw& nodule = findings[3];
  const FindingDraw& consol = findings[4];
  const double lung_height = a.lung_base - a.lung_top;
  const double ctr = a.ctr + (cardio.drawn ? 0.17 * cardio.strength : 0.0);
  const double heart_half = ctr * a.thorax_half;
  const double heart_cx = a.cx + 0.25 * heart_half;
  const double heart_cy = a.lung_base - 0.09;
  const double heart_hh = 0.12;

  std::vector<uint8_t> pixels(static_cast<size_t>(size) * size);
  for (int j = 0; j < size; ++j) {
    const double y = (j + 0.5) / size;
    for (int i = 0; i < size; ++i) {
      const double x = (i + 0.5) / size;
      const double dxc = x - a.cx;
      // Body silhouette (thorax and abdomen) and neck.
      const double bx = dxc / (a.thorax_half * 1.18), by = (y - (a.cy + 0.12)) / 0.64;
      double body = Smooth(1.0, 0.9, bx * bx + by * by);
      body = std::max(body, Smooth(0.1, 0.08, std::fabs(dxc)) * Smooth(0.0, 0.1, a.lung_top - y));
      double intensity = 0.03 + body * a.tissue * (0.85 + 0.3 * y);
      // Spine, visible through the mediastinum.
      intensity += body * 0.08 * Smooth(0.032, 0.022, std::fabs(dxc));
      // Mediastinum, aortic knob and heart hide the lungs behind them.
      const double mediastinum =
          Smooth(0.06, 0.045, std::fabs(dxc)) * Smooth(a.lung_top - 0.05, a.lung_top + 0.02, y);
      const double kx = (x - (a.cx + 0.06)) / 0.035, ky = (y - (a.lung_top + 0.12)) / 0.035;
      const double knob = Smooth(1.0, 0.7, kx * kx + ky * ky);
      const double hx = (x - heart_cx) / heart_half, hy = (y - heart_cy) / heart_hh;
      const double heart = Smooth(1.0, 0.85, hx * hx + hy * hy);
      const double occluded = std::max(heart, std::max(mediastinum, knob));

      double air_dark = 0, markings = 0, bright = 0;
      for (int side = -1; side <= 1; side += 2) {
        const double lcx = a.cx + side * a.thorax_half * 0.48;
        const double u = (x - lcx) / a.lung_half;
        const double lateral = side * u;  // > 0 towards the chest wall.
        const double v = (y - a.lung_top) / lung_height;
        double width = -1;
        if (v >= 0) width = v < 0.3 ? std::sqrt(1 - (1 - v / 0.3) * (1 - v / 0.3)) : 1.0;
        const double uc = u < -1 ? -1 : (u > 1 ? 1 : u);
        const double bottom = a.lung_base - a.dome * (1 - uc * uc);
        const double inside = std::min((width - std::fabs(u)) * a.lung_half, bottom - y);
        const double lung = Smooth(0.0, 0.02, inside);
        if (lung <= 0) continue;
        double air = lung * (1 - occluded);
        double texture = 1;
        if (effusion.drawn && effusion.side == side) {
          const double h = lung_height * (0.015 + 0.27 * effusion.strength);
          const double level = a.lung_base - h - 0.6 * h * Clamp01(lateral);
          const double opacity = 0.3 + 0.62 * effusion.strength;
          air *= 1 - opacity * Smooth(level - 0.008, level + 0.008, y);
        }
        if (consol.drawn && consol.side == side) {
          const double ccx = lcx + side * consol.pos_u * a.lung_half * 0.5;
          const double ccy = a.lung_top + consol.pos_v * lung_height;
          const double r =
              consol.conspicuous ? 0.09 + 0.07 * consol.strength : 0.08 + 0.04 * consol.strength;
          const double d2 = ((x - ccx) * (x - ccx) + (y - ccy) * (y - ccy)) / (r * r);
          if (d2 < 1) {
            const double blob = (1 - d2) * (1 - d2);
            const double mod = 0.5 + 0.5 * ValueNoise(a.texture_seed ^ 0x5bd1e995ULL, x, y, 10);
            const double density = consol.conspicuous ? 0.9 : 0.75;
            air *= 1 - Clamp01(blob * mod * (0.1 + density * consol.strength));
          }
        }
        if (ptx.drawn && ptx.side == side && width > 0.05) {
          const double rim = 0.06 + 0.3 * ptx.strength;
          const double rel = lateral / width;
          const double zone = Smooth(0.85, 0.7, v);
          const double pleural_gap = Smooth(1 - rim - 0.03, 1 - rim + 0.02, rel) * zone * lung;
          texture *= 1 - pleural_gap;
          air_dark += pleural_gap * (0.05 + 0.12 * ptx.strength);
          const double line = std::fabs(rel - (1 - rim));
          bright += lung * zone * (0.03 + 0.08 * ptx.strength) * Smooth(0.03, 0.0, line);
        }
        // Vessel markings, denser towards the hilum.
        const double hilar = 0.6 + 0.4 * Clamp01(1 - (lateral + 1) / 2);
        const double n = ValueNoise(a.texture_seed, x, y, 14) * 0.6 +
                         ValueNoise(a.texture_seed + 1, x, y, 29) * 0.4;
        markings += air * texture * hilar * 0.09 * (n - 0.3);
        // Lungs are darkest in the mid zones: soft tissue overlaps the apex, base and wall.
        const double zone_gain = 0.72 + 0.28 * Smooth(0.0, 0.35, v) - 0.18 * Smooth(0.55, 1.0, v) -
                                 0.12 * Clamp01(lateral);
        air_dark += a.lung_dark * zone_gain * air;
      }
      intensity += markings - air_dark + bright;
      // Posterior ribs and clavicles.
      const double in_thorax = Smooth(a.thorax_half * 1.02, a.thorax_half * 0.9, std::fabs(dxc)) *
                               Smooth(0.035, 0.055, std::fabs(dxc));
      if (in_thorax > 0) {
        double rib = 0;
        for (int k = 0; k < 10; ++k) {
          const double yk = a.lung_top - 0.03 + a.rib_offset + k * a.rib_spacing + 0.9 * dxc * dxc;
          rib = std::max(rib, Smooth(0.013, 0.006, std::fabs(y - yk)));
        }
        intensity += 0.07 * rib * in_thorax * Smooth(a.lung_base + 0.06, a.lung_base - 0.02, y);
      }
      for (int side = -1; side <= 1; side += 2) {
        const double d = SegmentDistance(x, y, a.cx + side * 0.04, a.lung_top + 0.03,
                                         a.cx + side * a.thorax_half * 0.85, a.lung_top - 0.05);
        intensity += 0.1 * body * Smooth(0.016, 0.008, d);
      }
      // Nodule: a small round density.
      if (nodule.drawn) {
        const double lcx = a.cx + nodule.side * a.thorax_half * 0.48;
        const double nx = lcx + nodule.side * nodule.pos_u * a.lung_half;
        const double ny = a.lung_top + nodule.pos_v * lung_height;
        const double r =
            nodule.conspicuous ? 0.03 + 0.05 * nodule.strength : 0.028 + 0.02 * nodule.strength;
        const double d2 = ((x - nx) * (x - nx) + (y - ny) * (y - ny)) / (r * r);
        const double density = nodule.conspicuous ? 0.4 : 0.28;
        if (d2 < 1) intensity += (1 - d2) * (1 - d2) * (0.02 + density * nodule.strength);
      }
      // Exposure and quantum mottle.
      intensity = intensity * a.gain + (HashUnit(a.grain_seed, i, j) - 0.5) * 0.03;
      pixels[static_cast<size_t>(j) * size + i] =
          static_cast<uint8_t>(std::floor(Clamp01(intensity) * 255.0 + 0.5));
    }
  }
  return pixels;
}

void AppendToString(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size);
}

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

// Chooses the asked findings/answers of one image and draws its findings.
struct Slot {
  int finding;
  Answer answer;
  bool open;  // Location question.
};

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
      const size_t remaining = plan.questions - g.questions.size();
      const int num_slots =
          static_cast<int>(std::min<size_t>(remaining, static_cast<size_t>(o.questions_per_image)));
      std::vector<Slot> slots;
      std::vector<int> order = {0, 1, 2, 3, 4};
      rng.Shuffle(order);
      for (int s = 0; s < num_slots; ++s) {
        Slot slot;
        if (plan.balanced) {
          slot.finding = static_cast<int>(balanced_counter % kNumFindings);
          slot.answer = (balanced_counter / kNumFindings) % 2 == 0 ? Answer::kYes : Answer::kNo;
          ++balanced_counter;
        } else {
          slot.finding = order[s];
          slot.answer = rng.Bernoulli(0.5) ? Answer::kYes : Answer::kNo;
        }
        slot.open = plan.open_fraction > 0 && rng.Bernoulli(plan.open_fraction) &&
                    slot.finding != kCardiomegaly;
        slots.push_back(slot);
      }
      // Findings of this image.
      FindingDraw draws[kNumFindings];
      double subtlety[kNumFindings];
      bool ambiguous_image[kNumFindings];
      for (int f = 0; f < kNumFindings; ++f) {
        bool present = rng.Bernoulli(o.background_prevalence);
        for (const Slot& slot : slots) {
          if (slot.finding == f) present = slot.open || slot.answer == Answer::kYes;
        }
        FindingDraw& d = draws[f];
        d.side = rng.Bernoulli(0.5) ? 1 : -1;
        d.pos_u = rng.Uniform(-0.6, 0.6);
        d.pos_v = f == 4 ? rng.Uniform(0.45, 0.8) : rng.Uniform(0.25, 0.75);
        if (o.conspicuous_findings) {
          // The same draws, squeezed into a fixed zone: the other images stay byte-identical.
          d.conspicuous = true;
          d.pos_u *= 0.15;
          d.pos_v = f == 4 ? 0.6 + (d.pos_v - 0.625) * (0.1 / 0.35) : 0.35 + (d.pos_v - 0.5) * 0.2;
        }
        subtlety[f] = -1;
        ambiguous_image[f] = false;
        if (present) {
          const bool ambiguous = rng.Bernoulli(o.ambiguous_fraction);
          ambiguous_image[f] = ambiguous;
          subtlety[f] = ambiguous ? rng.Uniform(o.ambiguous_subtlety_min, 1.0)
                                  : rng.Uniform(0.0, o.clear_subtlety_max);
          d.drawn = true;
          d.strength = 1 - subtlety[f];
        } else if (rng.Bernoulli(o.mimic_fraction)) {
          d.drawn = true;
          d.strength = rng.Uniform(0.0, 1 - o.ambiguous_subtlety_min);
          ambiguous_image[f] = true;
        }
      }
      Anatomy study_anatomy = anatomy;
      StudyJitter(study_anatomy, rng);
      const std::vector<uint8_t> pixels = Render(o.image_size, study_anatomy, draws);
      PCSWEEP_ASSIGN_OR_RETURN(std::string png, EncodeGrayPng(pixels, o.image_size, o.image_size));
      const std::string image = absl::StrFormat("%s/%s_s%d.png", image_dir, patient_id, study);
      {
        const std::string path = (fs::path(out_dir) / image).string();
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(png.data(), static_cast<std::streamsize>(png.size()));
        if (!out) return absl::InternalError(absl::StrCat(path, ": cannot write image"));
      }
      ++g.summary.images;

      for (const Slot& slot : slots) {
        Question q;
        q.question_id = absl::StrFormat("%s-%05d", plan.name, g.questions.size());
        q.image = image;
        q.patient_id = patient_id;
        q.study_id = absl::StrCat("s", study);
        q.finding = kFindings[slot.finding];
        q.subtlety = subtlety[slot.finding] >= 0
                         ? std::floor(subtlety[slot.finding] * 1000 + 0.5) / 1000
                         : -1;
        const Phrase* terms = kTerms[slot.finding];
        if (slot.open) {
          // Location question: answers left/right (the patient's side).
          q.question_type = "location";
          q.answer = Answer::kOther;
          q.answer_text = draws[slot.finding].side < 0 ? "right" : "left";
          const int term = static_cast<int>(rng.Below(2));
          q.original_question = Fill(kLocationFrames[0].text, terms[term].text);
          q.wording = "neutral";
          const Phrase& other_term = terms[2 + rng.Below(4)];
          q.paraphrases.push_back({Fill(kLocationFrames[0].text, other_term.text),
                                   std::string(kLexicalSubstitution), true,
                                   WordingName(other_term.reg)});
          q.paraphrases.push_back({Fill(kLocationFrames[1].text, terms[term].text),
                                   std::string(kSyntacticRestructuring), true, "neutral"});
          g.questions.push_back(std::move(q));
          continue;
        }
        q.question_type = "presence";
        const bool biased =
            plan.biased && (!o.pretrain_bias_ambiguous_only || ambiguous_image[slot.finding]);
        q.answer = slot.answer;
        q.answer_text = std::string(AnswerName(slot.answer));
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
        q.original_question = Fill(kBaseFrames[base_frame].text, terms[term].text);
        q.wording = WordingName(terms[term].reg);

        for (std::string_view phenomenon : kAllPhenomena) {
          // Frames keep the original's term; when that term's register makes the drawn
          // register unreachable (a formal term under neutral frames), the frames are
          // filled with a neutral term instead.
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
            candidates.push_back({Fill(other_base.text, terms[term].text),
                                  Combine(other_base.reg, terms[term].reg)});
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
            for (const Phrase& p : kSpecificity[slot.finding])
              candidates.push_back({p.text, p.reg});
          }
          const Answer expected = op_match ? slot.answer : Invert(slot.answer);
          const int reg = DrawRegister(rng, biased, expected, o);
          const Candidate& chosen = Pick(rng, candidates, fallback, reg);
          q.paraphrases.push_back(
              {chosen.text, std::string(phenomenon), op_match, WordingName(chosen.reg)});
        }
        g.questions.push_back(std::move(q));
      }
    }
  }
  for (const Question& q : g.questions) {
    ++g.summary.questions;
    if (q.answer == Answer::kYes) ++g.summary.yes;
    if (q.answer == Answer::kNo) ++g.summary.no;
    if (q.answer == Answer::kOther) ++g.summary.other;
    for (const Paraphrase& p : q.paraphrases) {
      ++g.summary.paraphrases_per_phenomenon[p.phenomenon];
      if (!p.op_match) ++g.summary.inverting_paraphrases;
    }
  }
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

std::vector<uint8_t> RenderRadiograph(int size, uint64_t seed,
                                      const FindingDraw (&findings)[kNumFindings]) {
  Rng rng(seed);
  Anatomy anatomy = PatientAnatomy(rng);
  StudyJitter(anatomy, rng);
  return Render(size, anatomy, findings);
}

absl::StatusOr<std::string> EncodeGrayPng(const std::vector<uint8_t>& pixels, int width,
                                          int height) {
  if (width <= 0 || height <= 0 || pixels.size() != static_cast<size_t>(width) * height) {
    return absl::InternalError(
        absl::StrCat("PNG: ", pixels.size(), " pixels for ", width, "x", height));
  }
  std::string png;
  if (!stbi_write_png_to_func(&AppendToString, &png, width, height, 1, pixels.data(), width)) {
    return absl::InternalError("PNG encoding failed");
  }
  return png;
}

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
