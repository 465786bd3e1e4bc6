#include "experiments/data/synth_render.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "stb/stb_image_write.h"

namespace pcsweep::data {
namespace {

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

void AppendToString(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size);
}

}  // namespace

namespace synth_internal {

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

}  // namespace synth_internal

using synth_internal::Anatomy;
using synth_internal::PatientAnatomy;
using synth_internal::Render;
using synth_internal::StudyJitter;

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

}  // namespace pcsweep::data
