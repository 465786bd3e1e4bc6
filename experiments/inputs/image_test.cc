#include "experiments/inputs/image.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "experiments/inputs/testing_safetensors.h"

namespace pcsweep::inputs {
namespace {

using ::testing::HasSubstr;

std::string SourceRoot() {
  const char* root = std::getenv("PCSWEEP_SOURCE_ROOT");
  return root != nullptr ? root : ".";
}
std::string TinyDir() { return SourceRoot() + "/experiments/testdata/gemma3-tiny"; }
std::string GoldenDir() { return SourceRoot() + "/experiments/inputs/testdata"; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Max abs difference between our pixel_values for image0/1.png and transformers 5.17's
// Gemma3ImageProcessor(size=32x32) in reference.safetensors.
double MaxDiffToTransformers(ResizeBackend backend) {
  const auto reference = testing::ReadSafetensors(TinyDir() + "/reference.safetensors");
  const auto& expected_tensor = reference.at("pixel_values");
  EXPECT_EQ(expected_tensor.dtype, "F32");
  EXPECT_EQ(expected_tensor.shape, (std::vector<int64_t>{2, 3, 32, 32}));
  const std::vector<float> expected = expected_tensor.As<float>();
  if (expected.size() != 2u * 3 * 32 * 32) return 1e9;

  ImageProcessorConfig config;
  config.height = config.width = 32;
  config.resize_backend = backend;
  const Gemma3ImageProcessor processor(config);
  double max_diff = 0.0;
  for (int b = 0; b < 2; ++b) {
    const auto pixels = processor.PreprocessFile(TinyDir() + "/image" + std::to_string(b) + ".png");
    EXPECT_TRUE(pixels.ok()) << pixels.status();
    if (!pixels.ok() || pixels->data.size() != 3u * 32 * 32) return 1e9;
    for (size_t i = 0; i < pixels->data.size(); ++i) {
      max_diff =
          std::max(max_diff, std::fabs(double(pixels->data[i]) - expected[b * 3 * 32 * 32 + i]));
    }
  }
  return max_diff;
}

// The acceptance golden (bound 2e-2): the default backend reproduces transformers 5.x
// exactly, up to float32 rounding.
TEST(Gemma3ImageProcessorTest, MatchesTransformersPixelValues) {
  const double max_diff = MaxDiffToTransformers(ResizeBackend::kTorchvision);
  EXPECT_LE(max_diff, 1e-6) << "max abs diff " << max_diff;
}

// PIL's resampling (the slow processor) is one uint8 level (1/127.5) away at most.
TEST(Gemma3ImageProcessorTest, PillowBackendIsWithinOneLevelOfTransformers) {
  const double max_diff = MaxDiffToTransformers(ResizeBackend::kPillow);
  EXPECT_LE(max_diff, 1.0 / 127.5 + 1e-6) << "max abs diff " << max_diff;
}

class PilGoldenTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    golden_ = new auto(testing::ReadSafetensors(GoldenDir() + "/pil_golden.safetensors"));
  }
  static void TearDownTestSuite() { delete golden_; }

  static RgbImage Expected(const std::string& name) {
    const auto& t = golden_->at(name);
    RgbImage image;
    image.height = static_cast<int>(t.shape[0]);
    image.width = static_cast<int>(t.shape[1]);
    image.pixels.assign(t.bytes.begin(), t.bytes.end());
    return image;
  }

  static int MaxDiff(const RgbImage& a, const RgbImage& b) {
    EXPECT_EQ(a.width, b.width);
    EXPECT_EQ(a.height, b.height);
    if (a.pixels.size() != b.pixels.size()) return 256;
    int diff = 0;
    for (size_t i = 0; i < a.pixels.size(); ++i)
      diff = std::max(diff, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
    return diff;
  }

  // Decodes `file`, checks its RGB conversion (when recorded) and the resize to the size
  // of `<case_name>.resized` against Pillow.
  static void CheckCase(const std::string& case_name, const std::string& file, int tolerance = 0) {
    SCOPED_TRACE(case_name);
    const auto decoded = LoadImageFile(GoldenDir() + "/" + file);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    if (golden_->count(case_name + ".rgb") != 0) {
      EXPECT_LE(MaxDiff(decoded->rgb, Expected(case_name + ".rgb")), tolerance);
    }
    const RgbImage expected = Expected(case_name + ".resized");
    const RgbImage resized = ResizeBilinearAntialiased(decoded->rgb, expected.width,
                                                       expected.height, ResizeBackend::kPillow);
    EXPECT_LE(MaxDiff(resized, expected), tolerance);
  }

  static std::map<std::string, testing::LoadedTensor>* golden_;
};
std::map<std::string, testing::LoadedTensor>* PilGoldenTest::golden_ = nullptr;

TEST_F(PilGoldenTest, GrayDownscaleIsBitExact) { CheckCase("gray_down", "gray8.png"); }
TEST_F(PilGoldenTest, GrayUpscaleIsBitExact) { CheckCase("gray_up", "gray8.png"); }
TEST_F(PilGoldenTest, GrayAlphaCompositesOnWhite) { CheckCase("gray_alpha", "gray_alpha8.png"); }
TEST_F(PilGoldenTest, RgbaCompositesOnWhite) { CheckCase("rgba", "rgba8.png"); }
TEST_F(PilGoldenTest, LargeDownscaleIsBitExact) { CheckCase("rgb_big_down", "rgb_big.png"); }
TEST_F(PilGoldenTest, UpAndDownInOneResizeIsBitExact) { CheckCase("rgb_mixed", "rgb_big.png"); }
TEST_F(PilGoldenTest, VerticalOnlyResizeIsBitExact) { CheckCase("rgb_same_width", "rgb_big.png"); }
// stb_image's JPEG decoder is not libjpeg-turbo: a few levels apart at most.
TEST_F(PilGoldenTest, JpegDecodesCloseToPillow) {
  CheckCase("rgb_jpeg", "rgb.jpg", /*tolerance=*/6);
}

TEST_F(PilGoldenTest, SixteenBitGrayKeepsTheHighByte) {
  const auto decoded = LoadImageFile(GoldenDir() + "/gray16.png");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->source_bits, 16);
  EXPECT_EQ(decoded->source_channels, 1);
  CheckCase("gray16", "gray16.png");
}

TEST(ImageTest, ResizeToSameSizeIsACopy) {
  RgbImage image;
  image.width = 3;
  image.height = 2;
  image.pixels = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18};
  const RgbImage same = ResizeBilinearAntialiased(image, 3, 2);
  EXPECT_EQ(same.pixels, image.pixels);
}

TEST(ImageTest, ConstantImageStaysConstantAtAnySize) {
  RgbImage image;
  image.width = 7;
  image.height = 5;
  image.pixels.assign(7 * 5 * 3, 200);
  for (ResizeBackend backend : {ResizeBackend::kTorchvision, ResizeBackend::kPillow}) {
    for (int size : {1, 3, 896}) {
      const RgbImage out = ResizeBilinearAntialiased(image, size, size, backend);
      for (uint8_t v : out.pixels) ASSERT_EQ(v, 200) << size;
    }
  }
}

TEST(ImageTest, NormalisationMapsTheByteRangeToMinusOneOne) {
  RgbImage image;
  image.width = 2;
  image.height = 1;
  image.pixels = {0, 255, 128, 255, 0, 64};
  ImageProcessorConfig config;
  config.height = 1;
  config.width = 2;
  const auto pixels = Gemma3ImageProcessor(config).Preprocess(image);
  ASSERT_TRUE(pixels.ok());
  // CHW: channel 0 = {0, 255}, channel 1 = {255, 0}, channel 2 = {128, 64}.
  EXPECT_FLOAT_EQ(pixels->data[0], -1.0f);
  EXPECT_FLOAT_EQ(pixels->data[1], 1.0f);
  EXPECT_FLOAT_EQ(pixels->data[2], 1.0f);
  EXPECT_FLOAT_EQ(pixels->data[3], -1.0f);
  EXPECT_NEAR(pixels->data[4], 128 / 127.5 - 1, 1e-6);
  EXPECT_NEAR(pixels->data[5], 64 / 127.5 - 1, 1e-6);
}

TEST(ImageTest, ContentHashDependsOnPixelsNotOnTheFile) {
  const auto a = LoadImageFile(TinyDir() + "/image0.png");
  const auto b = LoadImageFile(TinyDir() + "/image1.png");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(ImageContentHash(a->rgb).size(), 64u);
  EXPECT_EQ(ImageContentHash(a->rgb), ImageContentHash(a->rgb));
  EXPECT_NE(ImageContentHash(a->rgb), ImageContentHash(b->rgb));
  RgbImage changed = a->rgb;
  changed.pixels[17] ^= 1;
  EXPECT_NE(ImageContentHash(a->rgb), ImageContentHash(changed));
  // Same pixels, different shape: different key.
  RgbImage reshaped = a->rgb;
  std::swap(reshaped.width, reshaped.height);
  EXPECT_NE(ImageContentHash(a->rgb), ImageContentHash(reshaped));
}

TEST(ImageTest, CorruptFileNamesThePathAndTheReason) {
  const std::string png = ReadFile(TinyDir() + "/image0.png");
  ASSERT_GT(png.size(), 100u);
  const auto truncated = DecodeImage(png.substr(0, png.size() / 2), "cut.png");
  ASSERT_FALSE(truncated.ok());
  EXPECT_THAT(truncated.status().message(), HasSubstr("cut.png"));
  const auto garbage = DecodeImage("this is not an image", "notes.txt");
  ASSERT_FALSE(garbage.ok());
  EXPECT_THAT(garbage.status().message(), HasSubstr("notes.txt: not a PNG or JPEG file"));
  const auto empty = DecodeImage("", "empty.png");
  EXPECT_FALSE(empty.ok());
  const auto missing = LoadImageFile("/nonexistent/x.png");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("/nonexistent/x.png"));
}

// A PNG whose header claims width x height 8-bit gray pixels and holds none: enough for
// the header scan, which is all a size check may look at.
std::string PngHeaderOnly(uint32_t width, uint32_t height) {
  auto be32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 8), static_cast<char>(v)};
  };
  const std::string no_crc(4, '\0');  // stb does not check chunk CRCs
  std::string png("\x89PNG\r\n\x1a\n", 8);
  png += be32(13) + "IHDR" + be32(width) + be32(height) + std::string("\x08\0\0\0\0", 5) + no_crc;
  png += be32(0) + "IDAT" + no_crc;
  png += be32(0) + "IEND" + no_crc;
  return png;
}

TEST(ImageTest, RefusesAHeaderClaimingMorePixelsThanTheLimitBeforeDecoding) {
  const auto too_many = DecodeImage(PngHeaderOnly(9000, 9000), "huge.png");
  EXPECT_THAT(too_many.status().message(),
              HasSubstr("huge.png: image of 9000x9000 pixels exceeds the limit"));
  const auto too_wide = DecodeImage(PngHeaderOnly(20000, 10), "wide.png");
  EXPECT_THAT(too_wide.status().message(),
              HasSubstr("wide.png: image of 20000x10 pixels exceeds the limit"));
  // Under the limit the same header reaches the decoder, which finds no pixel data.
  const auto small = DecodeImage(PngHeaderOnly(64, 64), "small.png");
  EXPECT_THAT(small.status().message(), HasSubstr("small.png: cannot decode image"));
}

TEST(ImageTest, RefusesFormatsOtherThanPngAndJpegBeforeDecoding) {
  // A valid 1x1 24-bit BMP and a GIF signature: stb could decode the first, but an X-ray
  // input is PNG or JPEG and the other decoders are attack surface.
  std::string bmp("BM", 2);
  bmp.resize(58, '\0');
  const auto as_bmp = DecodeImage(bmp, "scan.bmp");
  EXPECT_THAT(as_bmp.status().message(),
              HasSubstr("scan.bmp: not a PNG or JPEG file (first bytes 424d"));
  const auto as_gif = DecodeImage("GIF89a\x01\0\x01\0", "scan.gif");
  EXPECT_THAT(as_gif.status().message(), HasSubstr("scan.gif: not a PNG or JPEG file"));
}

TEST(ImageTest, ParsesResizeBackendNames) {
  EXPECT_EQ(*ParseResizeBackend("pil"), ResizeBackend::kPillow);
  EXPECT_EQ(*ParseResizeBackend("torchvision"), ResizeBackend::kTorchvision);
  EXPECT_FALSE(ParseResizeBackend("bicubic").ok());
}

TEST(ImageProcessorConfigTest, ReadsMedGemmaPreprocessorConfig) {
  const auto config =
      LoadImageProcessorConfig(SourceRoot() + "/experiments/testdata/medgemma-4b-it");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->height, 896);
  EXPECT_EQ(config->width, 896);
  EXPECT_DOUBLE_EQ(config->rescale_factor, 0.00392156862745098);
  EXPECT_DOUBLE_EQ(config->image_mean[1], 0.5);
  EXPECT_DOUBLE_EQ(config->image_std[2], 0.5);
}

TEST(ImageProcessorConfigTest, FallsBackToTheVisionImageSize) {
  const auto config = LoadImageProcessorConfig(TinyDir() + "/model_fp32");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->height, 32);
  EXPECT_EQ(config->width, 32);
}

TEST(ImageProcessorConfigTest, RejectsPanAndScanWithTheKey) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / "pan_and_scan";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "preprocessor_config.json")
      << R"({"do_pan_and_scan": true, "size": {"height": 8, "width": 8}})";
  const auto config = LoadImageProcessorConfig(dir.string());
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("do_pan_and_scan"));
  EXPECT_THAT(config.status().message(), HasSubstr("preprocessor_config.json"));
}

}  // namespace
}  // namespace pcsweep::inputs
