#include "worker/result_spool.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcsweep::worker {
namespace {

class ResultSpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = absl::StrCat(::testing::TempDir(), "/result_spool_test-", getpid(), "-", info->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static SpooledResult Complete(const std::string& job_id, int attempt, double value) {
    v1::CompleteJobRequest request;
    request.set_job_id(job_id);
    request.set_attempt(attempt);
    (*request.mutable_metrics())["value"] = value;
    v1::ExampleRow* row = request.add_examples();
    row->set_question_id("q1");
    row->set_margin_original(1.5);
    return SpooledResult{request};
  }
  static SpooledResult Fail(const std::string& job_id, int attempt) {
    v1::FailJobRequest request;
    request.set_job_id(job_id);
    request.set_attempt(attempt);
    request.set_error("exited with code 2");
    request.set_exit_code(2);
    request.set_retryable(true);
    return SpooledResult{request};
  }

  std::string dir_;
};

TEST_F(ResultSpoolTest, PersistsAcrossReopenAndRemoves) {
  {
    auto spool = ResultSpool::Open(dir_);
    ASSERT_TRUE(spool.ok()) << spool.status();
    ASSERT_TRUE((*spool)->Write(Complete("a", 1, 0.5)).ok());
    ASSERT_TRUE((*spool)->Write(Fail("b", 3)).ok());
  }
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/a-1.pb"));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/b-3.pb"));

  auto spool = ResultSpool::Open(dir_);
  ASSERT_TRUE(spool.ok());
  auto loaded = (*spool)->LoadAll();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), 2u);
  std::map<std::string, SpooledResult> by_key;
  for (const SpooledResult& result : *loaded) by_key.emplace(result.key(), result);
  ASSERT_EQ(by_key.count("a-1"), 1u);
  ASSERT_EQ(by_key.count("b-3"), 1u);
  const auto* complete = std::get_if<v1::CompleteJobRequest>(&by_key.at("a-1").request);
  ASSERT_NE(complete, nullptr);
  EXPECT_EQ(complete->metrics().at("value"), 0.5);
  EXPECT_EQ(complete->examples(0).margin_original(), 1.5);
  const auto* fail = std::get_if<v1::FailJobRequest>(&by_key.at("b-3").request);
  ASSERT_NE(fail, nullptr);
  EXPECT_EQ(fail->exit_code(), 2);
  EXPECT_TRUE(fail->retryable());

  ASSERT_TRUE((*spool)->Remove("a-1").ok());
  ASSERT_TRUE((*spool)->Remove("a-1").ok());  // already gone: fine
  loaded = (*spool)->LoadAll();
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ((*loaded)[0].key(), "b-3");
}

TEST_F(ResultSpoolTest, RewritingAKeyReplacesTheResult) {
  auto spool = ResultSpool::Open(dir_);
  ASSERT_TRUE(spool.ok());
  ASSERT_TRUE((*spool)->Write(Complete("a", 1, 0.5)).ok());
  ASSERT_TRUE((*spool)->Write(Complete("a", 1, 0.25)).ok());
  auto loaded = (*spool)->LoadAll();
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ(std::get<v1::CompleteJobRequest>((*loaded)[0].request).metrics().at("value"), 0.25);
}

TEST_F(ResultSpoolTest, DropsInterruptedWritesAndSetsCorruptFilesAside) {
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ + "/x-1.pb.tmp") << "half a write";
  std::ofstream(dir_ + "/y-1.pb") << "not a protobuf Any \xff\xff";
  auto spool = ResultSpool::Open(dir_);
  ASSERT_TRUE(spool.ok());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/x-1.pb.tmp"));
  ASSERT_TRUE((*spool)->Write(Fail("z", 1)).ok());
  auto loaded = (*spool)->LoadAll();
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ((*loaded)[0].key(), "z-1");
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/y-1.pb.corrupt"));
}

TEST_F(ResultSpoolTest, KeysAreSafeFileNames) {
  EXPECT_EQ(Complete("../etc/passwd", 2, 0).key(), ".._etc_passwd-2");
  auto spool = ResultSpool::Open(dir_);
  ASSERT_TRUE(spool.ok());
  ASSERT_TRUE((*spool)->Write(Complete("../evil", 1, 0)).ok());
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/.._evil-1.pb"));
}

}  // namespace
}  // namespace pcsweep::worker
