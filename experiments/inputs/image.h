// Image inputs of the model: decoding PNG/JPEG files into 8-bit RGB and preparing
// `pixel_values` exactly as Hugging Face's (PIL-based) Gemma3ImageProcessor does.
//
// Torch-free on purpose: the engine turns PixelValues into a tensor; everything else
// (tests, tools, data checks) can use this without libtorch.
//
// Conversion rules (what HF does, and where we deliberately differ):
//  - Gray → RGB by replication; gray+alpha and RGBA are composited over a white background
//    with PIL's integer alpha_composite arithmetic (transformers' convert_to_rgb does
//    exactly that), then the alpha is dropped. Palette PNGs arrive expanded by stb.
//  - 16-bit PNG: every sample keeps its high byte (v >> 8). Pillow does this itself for
//    16-bit RGB/RGBA PNGs (raw mode "RGB;16B"), so those match HF bit for bit. For 16-bit
//    grayscale Pillow opens mode "I;16" and convert("RGB") clips every value above 255 to
//    white, which destroys a 16-bit X-ray; we apply the same high-byte rule instead, so a
//    16-bit file and its 8-bit export (>> 8 or /257, within one level) give the same input.
//  - JPEG is decoded by stb_image, not libjpeg-turbo as in Pillow: decoded values may
//    differ by a level or two (IDCT and chroma upsampling). EXIF orientation is ignored.
//  - Resize, two bit-exact backends of the same antialiased bilinear filter (separable
//    triangle filter whose support grows with the downscale factor, horizontal pass then
//    vertical, rounded and clipped to uint8 after each pass):
//      kTorchvision (default): what transformers 5.x runs (the "fast" processor, the
//        default since v5): torchvision resize on uint8, i.e. PyTorch's AVX2 uint8
//        antialias kernel with int16 coefficients whose precision depends on the largest
//        weight. Matches experiments/testdata/gemma3-tiny's pixel_values exactly.
//      kPillow: PIL Image.resize(BILINEAR) with 22-bit coefficients: what the slow
//        processor (transformers 4.x, use_fast=False) runs. Differs by ±1 level on a few
//        percent of pixels.
#ifndef PCSWEEP_EXPERIMENTS_INPUTS_IMAGE_H_
#define PCSWEEP_EXPERIMENTS_INPUTS_IMAGE_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pcsweep::inputs {

// An 8-bit RGB image, rows top to bottom, pixels interleaved (HWC). A plain value.
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // height * width * 3

  uint8_t at(int y, int x, int c) const {
    return pixels[(static_cast<size_t>(y) * width + x) * 3 + c];
  }
};

// An image after decoding and conversion to RGB, with what the file held.
struct DecodedImage {
  RgbImage rgb;
  int source_channels = 0;  // 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
  int source_bits = 0;      // 8 or 16 bits per sample
};

// The largest image DecodeImage accepts, checked on the header before decoding: a chest
// X-ray is at most ~4300 pixels a side; the bound keeps a hostile header from asking for
// gigabytes (16-bit RGBA at the limit is 512 MiB).
inline constexpr int kMaxImageSide = 16384;
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 26;  // 8192 x 8192

// Decodes PNG (8/16-bit, gray, gray+alpha, RGB, RGBA, palette) or JPEG bytes; any other
// format is refused before a decoder sees it. `source_name` only labels errors.
// Possible errors: InvalidArgument "<source_name>: not a PNG or JPEG file (first bytes
// <hex>)", "<source_name>: image of WxH pixels exceeds the limit ...", or
// "<source_name>: cannot decode image: <stb's reason>".
absl::StatusOr<DecodedImage> DecodeImage(absl::string_view bytes, absl::string_view source_name);

// Reads and decodes an image file.
// Possible errors: NotFound/InvalidArgument naming the path and the reason (missing file,
// unreadable, corrupt or unsupported data).
absl::StatusOr<DecodedImage> LoadImageFile(const std::string& path);

enum class ResizeBackend { kTorchvision, kPillow };

// Antialiased bilinear resize of an 8-bit RGB image, bit-exact with the chosen backend:
// kPillow = PIL's Image.resize((width, height), Image.BILINEAR); kTorchvision =
// torchvision resize(antialias=True) of a uint8 tensor on an AVX2 CPU. Returns a copy
// when the size does not change. width, height >= 1.
RgbImage ResizeBilinearAntialiased(const RgbImage& image, int width, int height,
                                   ResizeBackend backend = ResizeBackend::kTorchvision);

// SHA-256 (lowercase hex) of the decoded RGB pixels and their dimensions: equal for the
// same picture saved in another lossless file, different for any pixel change. The key
// of the engine's image-feature cache (combine it with the processor size and model).
std::string ImageContentHash(const RgbImage& image);

// Settings of Gemma3ImageProcessor (preprocessor_config.json). Pan-and-scan is not
// supported (MedGemma leaves it off).
struct ImageProcessorConfig {
  int height = 896;
  int width = 896;
  bool do_resize = true;
  bool do_rescale = true;
  double rescale_factor = 1.0 / 255.0;
  bool do_normalize = true;
  std::array<double, 3> image_mean = {0.5, 0.5, 0.5};
  std::array<double, 3> image_std = {0.5, 0.5, 0.5};
  // Not in preprocessor_config.json: which transformers image processor to reproduce.
  ResizeBackend resize_backend = ResizeBackend::kTorchvision;
};

// Reads `<model_dir>/preprocessor_config.json` when present; otherwise takes the size from
// `config.json` (`vision_config.image_size`) and the Gemma 3 defaults for the rest.
// Possible errors: NotFound when neither file exists; InvalidArgument naming the file and
// key for malformed JSON, pan-and-scan switched on, resample other than bilinear (2), or
// non-positive sizes / std.
absl::StatusOr<ImageProcessorConfig> LoadImageProcessorConfig(const std::string& model_dir);

// "torch"/"torchvision" or "pil"/"pillow". Possible errors: InvalidArgument otherwise.
absl::StatusOr<ResizeBackend> ParseResizeBackend(absl::string_view name);

// A float image in CHW layout (one item of `pixel_values`).
struct PixelValues {
  int channels = 3;
  int height = 0;
  int width = 0;
  std::vector<float> data;  // channels * height * width
};

// Gemma3ImageProcessor: convert to RGB → resize → rescale → normalise → CHW float.
// Immutable after construction; safe to use from several threads.
class Gemma3ImageProcessor {
 public:
  explicit Gemma3ImageProcessor(ImageProcessorConfig config) : config_(config) {}

  const ImageProcessorConfig& config() const { return config_; }

  // Possible errors: InvalidArgument for an empty image or one whose buffer does not
  // match its size.
  absl::StatusOr<PixelValues> Preprocess(const RgbImage& image) const;

  // Load + Preprocess. Possible errors: those of LoadImageFile.
  absl::StatusOr<PixelValues> PreprocessFile(const std::string& path) const;

 private:
  ImageProcessorConfig config_;
};

}  // namespace pcsweep::inputs

#endif  // PCSWEEP_EXPERIMENTS_INPUTS_IMAGE_H_
