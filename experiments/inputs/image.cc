#include "experiments/inputs/image.h"

#include <openssl/evp.h>
#include <stb/stb_image.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace pcsweep::inputs {
namespace {

// PIL's alpha_composite of an 8-bit sample with alpha `a` over an opaque white
// background, in Pillow's integer arithmetic (7 fractional bits, rounded /255). With an
// opaque destination its coefficients reduce to a and 255 - a.
uint8_t CompositeOverWhite(uint8_t value, uint8_t alpha) {
  if (alpha == 0) return 255;
  constexpr uint32_t kBits = 7;
  const uint32_t coef_src = static_cast<uint32_t>(alpha) << kBits;
  const uint32_t coef_dst = (255u << kBits) - coef_src;
  uint32_t t = value * coef_src + 255u * coef_dst + (0x80u << kBits);
  t = ((t >> 8) + t) >> 8;  // Pillow's SHIFTFORDIV255
  return static_cast<uint8_t>(t >> kBits);
}

RgbImage ToRgb(const uint8_t* samples, int width, int height, int channels) {
  RgbImage out;
  out.width = width;
  out.height = height;
  const size_t n = static_cast<size_t>(width) * height;
  out.pixels.resize(n * 3);
  uint8_t* dst = out.pixels.data();
  for (size_t i = 0; i < n; ++i, dst += 3) {
    const uint8_t* s = samples + i * channels;
    switch (channels) {
      case 1:
        dst[0] = dst[1] = dst[2] = s[0];
        break;
      case 2:
        dst[0] = dst[1] = dst[2] = CompositeOverWhite(s[0], s[1]);
        break;
      case 3:
        dst[0] = s[0];
        dst[1] = s[1];
        dst[2] = s[2];
        break;
      default:
        for (int c = 0; c < 3; ++c) dst[c] = CompositeOverWhite(s[c], s[3]);
        break;
    }
  }
  return out;
}

struct StbFree {
  void operator()(void* p) const { stbi_image_free(p); }
};

// Fixed-point filter taps of one resampling pass. Both backends compute the same float
// weights (Pillow's precompute_coeffs; PyTorch's _compute_indices_min_size_weights_aa is
// the same computation) and differ only in the fixed-point precision.
struct PassCoefficients {
  int precision_bits = 0;
  int taps_per_output = 0;
  std::vector<int> first;     // first input index per output sample
  std::vector<int> count;     // number of taps used per output sample
  std::vector<int32_t> taps;  // out_size * taps_per_output
};

PassCoefficients ComputeBilinearCoefficients(int in_size, int out_size, ResizeBackend backend) {
  PassCoefficients pc;
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = 1.0 * filter_scale;  // the triangle reaches one (scaled) pixel
  pc.taps_per_output = static_cast<int>(std::ceil(support)) * 2 + 1;
  pc.first.resize(out_size);
  pc.count.resize(out_size);
  std::vector<double> weights(static_cast<size_t>(out_size) * pc.taps_per_output, 0.0);
  double max_weight = 0.0;
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax = std::min(xmax - xmin, pc.taps_per_output);
    double* w = &weights[static_cast<size_t>(xx) * pc.taps_per_output];
    double total = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double t = std::fabs((x + xmin - center + 0.5) / filter_scale);
      w[x] = t < 1.0 ? 1.0 - t : 0.0;
      total += w[x];
    }
    if (total != 0.0) {
      for (int x = 0; x < xmax; ++x) {
        w[x] /= total;
        max_weight = std::max(max_weight, w[x]);
      }
    }
    pc.first[xx] = xmin;
    pc.count[xx] = xmax;
  }
  if (backend == ResizeBackend::kPillow) {
    pc.precision_bits = 22;  // Resample.c: 32 - 8 - 2
  } else {
    // PyTorch stores taps as int16: the most bits that keep the largest tap below 2^15.
    for (pc.precision_bits = 0; pc.precision_bits < 22; ++pc.precision_bits) {
      if (static_cast<int>(0.5 + max_weight * (1 << (pc.precision_bits + 1))) >= (1 << 15)) break;
    }
  }
  pc.taps.resize(weights.size());
  const double unit = static_cast<double>(1 << pc.precision_bits);
  for (size_t i = 0; i < weights.size(); ++i) {
    pc.taps[i] =
        static_cast<int32_t>(weights[i] < 0 ? -0.5 + weights[i] * unit : 0.5 + weights[i] * unit);
  }
  return pc;
}

inline uint8_t ClipFixedPoint(int32_t acc, int precision_bits) {
  const int32_t v = acc >> precision_bits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

RgbImage ResizeHorizontal(const RgbImage& in, int out_width, ResizeBackend backend) {
  const PassCoefficients pc = ComputeBilinearCoefficients(in.width, out_width, backend);
  const int32_t half = 1 << (pc.precision_bits - 1);
  RgbImage out;
  out.width = out_width;
  out.height = in.height;
  out.pixels.resize(static_cast<size_t>(out_width) * in.height * 3);
  for (int y = 0; y < in.height; ++y) {
    const uint8_t* row = &in.pixels[static_cast<size_t>(y) * in.width * 3];
    uint8_t* dst = &out.pixels[static_cast<size_t>(y) * out_width * 3];
    for (int xx = 0; xx < out_width; ++xx) {
      const int32_t* k = &pc.taps[static_cast<size_t>(xx) * pc.taps_per_output];
      const uint8_t* src = row + static_cast<size_t>(pc.first[xx]) * 3;
      int32_t acc[3] = {half, half, half};
      for (int x = 0; x < pc.count[xx]; ++x) {
        for (int c = 0; c < 3; ++c) acc[c] += src[x * 3 + c] * k[x];
      }
      for (int c = 0; c < 3; ++c) dst[xx * 3 + c] = ClipFixedPoint(acc[c], pc.precision_bits);
    }
  }
  return out;
}

RgbImage ResizeVertical(const RgbImage& in, int out_height, ResizeBackend backend) {
  const PassCoefficients pc = ComputeBilinearCoefficients(in.height, out_height, backend);
  RgbImage out;
  out.width = in.width;
  out.height = out_height;
  out.pixels.resize(static_cast<size_t>(in.width) * out_height * 3);
  const size_t stride = static_cast<size_t>(in.width) * 3;
  std::vector<int32_t> acc(stride);
  for (int yy = 0; yy < out_height; ++yy) {
    const int32_t* k = &pc.taps[static_cast<size_t>(yy) * pc.taps_per_output];
    std::fill(acc.begin(), acc.end(), 1 << (pc.precision_bits - 1));
    for (int y = 0; y < pc.count[yy]; ++y) {
      const uint8_t* row = &in.pixels[(static_cast<size_t>(pc.first[yy]) + y) * stride];
      const int32_t w = k[y];
      for (size_t i = 0; i < stride; ++i) acc[i] += row[i] * w;
    }
    uint8_t* dst = &out.pixels[static_cast<size_t>(yy) * stride];
    for (size_t i = 0; i < stride; ++i) dst[i] = ClipFixedPoint(acc[i], pc.precision_bits);
  }
  return out;
}

absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": invalid JSON: ", e.what()));
  }
}

bool IsPngOrJpeg(absl::string_view bytes) {
  constexpr absl::string_view kPng("\x89PNG\r\n\x1a\n", 8);
  constexpr absl::string_view kJpeg("\xff\xd8\xff", 3);
  return absl::StartsWith(bytes, kPng) || absl::StartsWith(bytes, kJpeg);
}

bool FileExists(const std::string& path) { return static_cast<bool>(std::ifstream(path)); }

}  // namespace

absl::StatusOr<DecodedImage> DecodeImage(absl::string_view bytes, absl::string_view source_name) {
  auto fail = [&](const char* what) {
    const char* reason = stbi_failure_reason();
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ": ", what, ": ", reason != nullptr ? reason : "unknown reason"));
  };
  if (bytes.empty())
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": empty image file"));
  if (bytes.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": image file larger than 2 GiB"));
  }
  // Debian's libstb is built with every format stb knows (GIF, PSD, HDR, PIC, PNM, TGA,
  // BMP); an X-ray is PNG or JPEG, so nothing else reaches a decoder.
  if (!IsPngOrJpeg(bytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ": not a PNG or JPEG file (first bytes ",
                     absl::BytesToHexString(bytes.substr(0, 8)), ")"));
  }
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int len = static_cast<int>(bytes.size());
  int width = 0, height = 0, channels = 0;
  if (!stbi_info_from_memory(data, len, &width, &height, &channels)) {
    return fail("cannot decode image");
  }
  // The header's size is checked before decoding: a 100-byte file may claim 60000x60000.
  if (width <= 0 || height <= 0 || width > kMaxImageSide || height > kMaxImageSide ||
      static_cast<int64_t>(width) * height > kMaxImagePixels) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": image of ", width, "x", height,
                                                   " pixels exceeds the limit of ", kMaxImageSide,
                                                   " per side and ", kMaxImagePixels, " pixels"));
  }
  DecodedImage out;
  out.source_channels = channels;
  if (stbi_is_16_bit_from_memory(data, len)) {
    out.source_bits = 16;
    std::unique_ptr<stbi_us, StbFree> samples(
        stbi_load_16_from_memory(data, len, &width, &height, &channels, 0));
    if (!samples) return fail("cannot decode 16-bit image");
    const size_t n = static_cast<size_t>(width) * height * channels;
    std::vector<uint8_t> high_bytes(n);
    for (size_t i = 0; i < n; ++i) high_bytes[i] = static_cast<uint8_t>(samples.get()[i] >> 8);
    out.rgb = ToRgb(high_bytes.data(), width, height, channels);
  } else {
    out.source_bits = 8;
    std::unique_ptr<stbi_uc, StbFree> samples(
        stbi_load_from_memory(data, len, &width, &height, &channels, 0));
    if (!samples) return fail("cannot decode image");
    out.rgb = ToRgb(samples.get(), width, height, channels);
  }
  out.source_channels = channels;
  return out;
}

absl::StatusOr<DecodedImage> LoadImageFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot open image file: ", std::strerror(errno)));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat(path, ": read error"));
  return DecodeImage(buffer.str(), path);
}

RgbImage ResizeBilinearAntialiased(const RgbImage& image, int width, int height,
                                   ResizeBackend backend) {
  // Both libraries: horizontal pass first (to uint8), then vertical; a pass whose size
  // does not change is skipped, not run with identity weights.
  if (image.width == width && image.height == height) return image;
  if (image.width != width) {
    RgbImage horizontal = ResizeHorizontal(image, width, backend);
    if (image.height == height) return horizontal;
    return ResizeVertical(horizontal, height, backend);
  }
  return ResizeVertical(image, height, backend);
}

absl::StatusOr<ResizeBackend> ParseResizeBackend(absl::string_view name) {
  if (name == "torch" || name == "torchvision") return ResizeBackend::kTorchvision;
  if (name == "pil" || name == "pillow") return ResizeBackend::kPillow;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown resize backend '", name, "' (torchvision or pil)"));
}

std::string ImageContentHash(const RgbImage& image) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  const std::string header = absl::StrCat("rgb8:", image.width, "x", image.height, ":");
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx.get(), header.data(), header.size());
  EVP_DigestUpdate(ctx.get(), image.pixels.data(), image.pixels.size());
  EVP_DigestFinal_ex(ctx.get(), digest, &digest_len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(digest_len * 2);
  for (unsigned int i = 0; i < digest_len; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 15]);
  }
  return hex;
}

absl::StatusOr<ImageProcessorConfig> LoadImageProcessorConfig(const std::string& model_dir) {
  ImageProcessorConfig config;
  const std::string preprocessor_path = model_dir + "/preprocessor_config.json";
  const std::string config_path = model_dir + "/config.json";
  if (FileExists(preprocessor_path)) {
    PCSWEEP_ASSIGN_OR_RETURN(nlohmann::json j, ReadJsonFile(preprocessor_path));
    auto bad = [&](const std::string& key, const std::string& why) {
      return absl::InvalidArgumentError(
          absl::StrCat(preprocessor_path, ": key '", key, "': ", why));
    };
    try {
      if (j.contains("size") && !j["size"].is_null()) {
        const auto& size = j["size"];
        if (size.contains("height")) config.height = size["height"].get<int>();
        if (size.contains("width")) config.width = size["width"].get<int>();
        if (size.contains("shortest_edge"))
          return bad("size", "shortest_edge resizing is not Gemma 3's");
      }
      auto flag = [&](const char* key, bool* value) {
        if (j.contains(key) && !j[key].is_null()) *value = j[key].get<bool>();
      };
      flag("do_resize", &config.do_resize);
      flag("do_rescale", &config.do_rescale);
      flag("do_normalize", &config.do_normalize);
      if (j.contains("rescale_factor") && !j["rescale_factor"].is_null()) {
        config.rescale_factor = j["rescale_factor"].get<double>();
      }
      for (const char* key : {"image_mean", "image_std"}) {
        if (!j.contains(key) || j[key].is_null()) continue;
        auto& target = std::string(key) == "image_mean" ? config.image_mean : config.image_std;
        if (j[key].is_number()) {
          target.fill(j[key].get<double>());
        } else {
          const auto values = j[key].get<std::vector<double>>();
          if (values.size() != 3) return bad(key, "expected 3 values");
          std::copy(values.begin(), values.end(), target.begin());
        }
      }
      if (j.contains("do_pan_and_scan") && j["do_pan_and_scan"].is_boolean() &&
          j["do_pan_and_scan"].get<bool>()) {
        return bad("do_pan_and_scan", "pan-and-scan is not supported");
      }
      if (j.contains("resample") && !j["resample"].is_null() && j["resample"].get<int>() != 2) {
        return bad("resample", "only PIL BILINEAR (2) is supported");
      }
    } catch (const nlohmann::json::exception& e) {
      return absl::InvalidArgumentError(absl::StrCat(preprocessor_path, ": ", e.what()));
    }
  } else if (FileExists(config_path)) {
    PCSWEEP_ASSIGN_OR_RETURN(nlohmann::json j, ReadJsonFile(config_path));
    try {
      const auto& vision = j.at("vision_config");
      const int size = vision.value("image_size", 896);
      config.height = config.width = size;
    } catch (const nlohmann::json::exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(config_path, ": vision_config.image_size: ", e.what()));
    }
  } else {
    return absl::NotFoundError(
        absl::StrCat(model_dir, ": neither preprocessor_config.json nor config.json found"));
  }
  if (config.height <= 0 || config.width <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(model_dir, ": image size must be positive, got ",
                                                   config.height, "x", config.width));
  }
  for (double s : config.image_std) {
    if (!(s > 0))
      return absl::InvalidArgumentError(absl::StrCat(model_dir, ": image_std must be positive"));
  }
  return config;
}

absl::StatusOr<PixelValues> Gemma3ImageProcessor::Preprocess(const RgbImage& image) const {
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.width) * image.height * 3) {
    return absl::InvalidArgumentError(absl::StrCat("empty or inconsistent image (", image.width,
                                                   "x", image.height, ", ", image.pixels.size(),
                                                   " bytes)"));
  }
  const RgbImage resized =
      config_.do_resize
          ? ResizeBilinearAntialiased(image, config_.width, config_.height, config_.resize_backend)
          : image;
  PixelValues out;
  out.channels = 3;
  out.height = resized.height;
  out.width = resized.width;
  const size_t plane = static_cast<size_t>(out.height) * out.width;
  out.data.resize(plane * 3);
  // Same rounding points as transformers. Slow (PIL) processor: rescale in float64, cast
  // to float32, normalise in float32. Fast (torchvision) processor: rescale folded into
  // the normalisation, (v - mean/scale) / (std/scale) in float32.
  const bool fused = config_.resize_backend == ResizeBackend::kTorchvision && config_.do_rescale &&
                     config_.do_normalize && config_.rescale_factor != 0.0;
  std::array<std::array<float, 256>, 3> lut;
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) {
      float x;
      if (fused) {
        const float mean = static_cast<float>(config_.image_mean[c] / config_.rescale_factor);
        const float std_dev = static_cast<float>(config_.image_std[c] / config_.rescale_factor);
        x = (static_cast<float>(v) - mean) / std_dev;
      } else {
        x = config_.do_rescale ? static_cast<float>(v * config_.rescale_factor)
                               : static_cast<float>(v);
        if (config_.do_normalize) {
          x = (x - static_cast<float>(config_.image_mean[c])) /
              static_cast<float>(config_.image_std[c]);
        }
      }
      lut[c][v] = x;
    }
  }
  for (size_t i = 0; i < plane; ++i) {
    for (int c = 0; c < 3; ++c) out.data[c * plane + i] = lut[c][resized.pixels[i * 3 + c]];
  }
  return out;
}

absl::StatusOr<PixelValues> Gemma3ImageProcessor::PreprocessFile(const std::string& path) const {
  PCSWEEP_ASSIGN_OR_RETURN(DecodedImage decoded, LoadImageFile(path));
  return Preprocess(decoded.rgb);
}

}  // namespace pcsweep::inputs
