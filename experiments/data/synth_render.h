// How the synthetic benchmark draws a chest radiograph (synth.h): a patient's anatomy, the
// jitter of each study, and the pixels with the drawn findings. Internal to
// experiments/data; synth.cc chooses what to draw, this file only draws it.
//
// Coordinates are in [0, 1] (x right, y down); only +,-,*,/ and sqrt are used so the pixels
// are bit-identical on every IEEE platform. Thread-safety: pure functions of their arguments.
#ifndef PCSWEEP_EXPERIMENTS_DATA_SYNTH_RENDER_H_
#define PCSWEEP_EXPERIMENTS_DATA_SYNTH_RENDER_H_

#include <cstdint>
#include <vector>

#include "experiments/data/rng.h"
#include "experiments/data/synth.h"

namespace pcsweep::data::synth_internal {

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

// A patient's anatomy, drawn from `rng`.
Anatomy PatientAnatomy(Rng& rng);

// Moves and re-exposes `a` a little, as a new study of the same patient.
void StudyJitter(Anatomy& a, Rng& rng);

// The `size`x`size` 8-bit grayscale image of `a` showing `findings`.
std::vector<uint8_t> Render(int size, const Anatomy& a,
                            const FindingDraw (&findings)[kNumFindings]);

}  // namespace pcsweep::data::synth_internal

#endif  // PCSWEEP_EXPERIMENTS_DATA_SYNTH_RENDER_H_
