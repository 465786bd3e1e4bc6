// A headless Chromium driven over the DevTools protocol through --remote-debugging-pipe
// (commands on the browser's fd 3, answers and events on its fd 4, each message JSON ending
// in '\0'): no WebDriver, no extra package, no port. For the web view's browser test.
//
// Example:
//   PCSWEEP_ASSIGN_OR_RETURN(auto browser, CdpBrowser::Launch(chromium, profile_dir));
//   PCSWEEP_RETURN_IF_ERROR(browser->Navigate("http://127.0.0.1:8080/"));
//   PCSWEEP_ASSIGN_OR_RETURN(nlohmann::json title, browser->Evaluate("document.title"));
//
// The destructor closes the browser (Browser.close, then SIGKILL through ChildProcess).
// Thread-safety: one caller at a time; a reader thread of its own collects the answers.
#ifndef PCSWEEP_TESTS_CDP_BROWSER_H_
#define PCSWEEP_TESTS_CDP_BROWSER_H_

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "tests/child_process.h"

namespace pcsweep::testing {

class CdpBrowser {
 public:
  // Starts `chromium` headless as root would need it (no sandbox, no GPU, no network
  // services, a fresh profile in `profile_dir`) with one page of `width` x `height`.
  // Possible errors: Internal (cannot start), DeadlineExceeded (no answer within 60 s).
  static absl::StatusOr<std::unique_ptr<CdpBrowser>> Launch(const std::string& chromium,
                                                            const std::string& profile_dir,
                                                            int width = 1400, int height = 1000);
  ~CdpBrowser();

  // A command to the page's session; returns its "result".
  // Possible errors: DeadlineExceeded, Aborted (the browser went away), Internal (the
  // protocol's error, with its message).
  absl::StatusOr<nlohmann::json> Call(const std::string& method, nlohmann::json params,
                                      absl::Duration timeout = absl::Seconds(30));
  // Loads `url` and waits until document.readyState is "complete".
  absl::Status Navigate(const std::string& url, absl::Duration timeout = absl::Seconds(30));
  // The value of a JavaScript expression (promises awaited). Possible errors: as Call, and
  // Internal with the exception's text when the expression throws.
  absl::StatusOr<nlohmann::json> Evaluate(const std::string& expression);
  // A PNG of the whole page (beyond the viewport).
  absl::StatusOr<std::string> ScreenshotPng();
  // Uncaught exceptions the pages have thrown so far (Runtime.exceptionThrown).
  std::vector<std::string> Exceptions();
  // What the browser printed on stderr (for failure messages).
  std::string Log();

 private:
  CdpBrowser() = default;
  absl::StatusOr<nlohmann::json> Send(const std::string& method, nlohmann::json params,
                                      const std::string& session, absl::Duration timeout);
  void ReadLoop();

  std::unique_ptr<ChildProcess> process_;
  int to_browser_ = -1;
  int from_browser_ = -1;
  std::string session_;
  std::thread reader_;
  absl::Mutex mu_;
  int next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<int, nlohmann::json> answers_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> exceptions_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace pcsweep::testing

#endif  // PCSWEEP_TESTS_CDP_BROWSER_H_
