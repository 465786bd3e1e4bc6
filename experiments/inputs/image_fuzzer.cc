// Fuzz target: image bytes as a PSF-Med record's image path may point at them. A decoded
// image is also resized (both backends) and hashed, as the processor does next.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "experiments/inputs/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using pcsweep::inputs::ResizeBackend;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto image = pcsweep::inputs::DecodeImage(bytes, "fuzz.png");
  if (!image.ok()) return 0;
  const auto& rgb = image->rgb;
  if (rgb.pixels.size() != static_cast<size_t>(rgb.width) * rgb.height * 3) std::abort();
  for (auto backend : {ResizeBackend::kTorchvision, ResizeBackend::kPillow}) {
    const auto small = pcsweep::inputs::ResizeBilinearAntialiased(rgb, 7, 5, backend);
    if (small.pixels.size() != 7 * 5 * 3) std::abort();
  }
  if (pcsweep::inputs::ImageContentHash(rgb).size() != 64) std::abort();
  return 0;
}
