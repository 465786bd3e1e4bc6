#include "tests/cdp_browser.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace pcsweep::testing {

absl::StatusOr<std::unique_ptr<CdpBrowser>> CdpBrowser::Launch(const std::string& chromium,
                                                               const std::string& profile_dir,
                                                               int width, int height) {
  int commands[2];  // test -> browser (its fd 3)
  int answers[2];   // browser (its fd 4) -> test
  if (pipe2(commands, O_CLOEXEC) != 0 || pipe2(answers, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  const std::vector<std::string> argv = {chromium,
                                         "--headless",
                                         "--no-sandbox",  // the tests run as root
                                         "--disable-gpu",
                                         "--disable-quic",
                                         "--no-first-run",
                                         "--no-default-browser-check",
                                         "--disable-background-networking",
                                         "--disable-component-update",
                                         "--disable-sync",
                                         "--disable-extensions",
                                         "--disable-dev-shm-usage",
                                         "--mute-audio",
                                         "--hide-scrollbars",
                                         absl::StrCat("--window-size=", width, ",", height),
                                         absl::StrCat("--user-data-dir=", profile_dir),
                                         "--remote-debugging-pipe",
                                         "about:blank"};
  auto process = ChildProcess::Start(argv, {}, {commands[0], answers[1]});
  close(commands[0]);
  close(answers[1]);
  if (!process.ok()) {
    close(commands[1]);
    close(answers[0]);
    return process.status();
  }
  std::unique_ptr<CdpBrowser> browser(new CdpBrowser());
  browser->process_ = *std::move(process);
  browser->to_browser_ = commands[1];
  browser->from_browser_ = answers[0];
  browser->reader_ = std::thread([b = browser.get()] { b->ReadLoop(); });

  auto target =
      browser->Send("Target.createTarget", {{"url", "about:blank"}}, "", absl::Seconds(60));
  if (!target.ok()) {
    return absl::Status(target.status().code(),
                        absl::StrCat(target.status().message(), "; browser log: ", browser->Log()));
  }
  auto attached = browser->Send("Target.attachToTarget",
                                {{"targetId", (*target)["targetId"]}, {"flatten", true}}, "",
                                absl::Seconds(30));
  if (!attached.ok()) return attached.status();
  browser->session_ = (*attached)["sessionId"].get<std::string>();
  for (const char* domain : {"Page.enable", "Runtime.enable"}) {
    auto enabled = browser->Call(domain, nlohmann::json::object());
    if (!enabled.ok()) return enabled.status();
  }
  auto viewport = browser->Call(
      "Emulation.setDeviceMetricsOverride",
      {{"width", width}, {"height", height}, {"deviceScaleFactor", 1}, {"mobile", false}});
  if (!viewport.ok()) return viewport.status();
  return browser;
}

CdpBrowser::~CdpBrowser() {
  if (to_browser_ >= 0) {
    (void)Send("Browser.close", nlohmann::json::object(), "", absl::Seconds(5));
    close(to_browser_);
  }
  if (process_ != nullptr && !process_->Wait(absl::Seconds(5)).ok()) process_->Signal(SIGKILL);
  process_.reset();  // reaps
  if (reader_.joinable()) reader_.join();
  if (from_browser_ >= 0) close(from_browser_);
}

void CdpBrowser::ReadLoop() {
  std::string buffer;
  char chunk[65536];
  for (;;) {
    const ssize_t n = read(from_browser_, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buffer.append(chunk, static_cast<size_t>(n));
    size_t end;
    while ((end = buffer.find('\0')) != std::string::npos) {
      nlohmann::json message = nlohmann::json::parse(buffer.substr(0, end), nullptr, false);
      buffer.erase(0, end + 1);
      if (message.is_discarded()) continue;
      absl::MutexLock lock(&mu_);
      if (message.contains("id") && message["id"].is_number_integer()) {
        const int id = message["id"].get<int>();
        answers_[id] = std::move(message);
      } else if (message.contains("id")) {
        exceptions_.push_back(absl::StrCat("protocol: ", message.dump()));
      } else if (message.value("method", "") == "Runtime.exceptionThrown") {
        exceptions_.push_back(message["params"]["exceptionDetails"].dump());
      }
    }
  }
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

absl::StatusOr<nlohmann::json> CdpBrowser::Send(const std::string& method, nlohmann::json params,
                                                const std::string& session,
                                                absl::Duration timeout) {
  int id;
  {
    absl::MutexLock lock(&mu_);
    id = next_id_++;
  }
  nlohmann::json message = {{"id", id}, {"method", method}, {"params", std::move(params)}};
  if (!session.empty()) message["sessionId"] = session;
  const std::string wire = message.dump() + std::string(1, '\0');
  for (size_t sent = 0; sent < wire.size();) {
    const ssize_t n = write(to_browser_, wire.data() + sent, wire.size() - sent);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::AbortedError(absl::StrCat(method, ": the browser went away"));
    sent += static_cast<size_t>(n);
  }
  absl::MutexLock lock(&mu_);
  auto answered = [this, id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return closed_ || answers_.count(id) > 0;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&answered, &decltype(answered)::operator()), timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat(method, ": no answer within ", absl::FormatDuration(timeout)));
  }
  auto it = answers_.find(id);
  if (it == answers_.end())
    return absl::AbortedError(absl::StrCat(method, ": the browser went away"));
  nlohmann::json answer = std::move(it->second);
  answers_.erase(it);
  if (answer.contains("error")) {
    return absl::InternalError(absl::StrCat(method, ": ", answer["error"].dump()));
  }
  return answer["result"];
}

absl::StatusOr<nlohmann::json> CdpBrowser::Call(const std::string& method, nlohmann::json params,
                                                absl::Duration timeout) {
  return Send(method, std::move(params), session_, timeout);
}

absl::Status CdpBrowser::Navigate(const std::string& url, absl::Duration timeout) {
  auto navigated = Call("Page.navigate", {{"url", url}}, timeout);
  if (!navigated.ok()) return navigated.status();
  if (navigated->contains("errorText")) {
    return absl::UnavailableError(absl::StrCat(url, ": ", (*navigated)["errorText"].dump()));
  }
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    auto state = Evaluate("document.readyState");
    if (state.ok() && *state == "complete") return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat(url, " did not finish loading"));
}

absl::StatusOr<nlohmann::json> CdpBrowser::Evaluate(const std::string& expression) {
  auto result = Call("Runtime.evaluate",
                     {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}});
  if (!result.ok()) return result.status();
  if (result->contains("exceptionDetails")) {
    return absl::InternalError(
        absl::StrCat(expression, " threw: ", (*result)["exceptionDetails"].dump()));
  }
  const nlohmann::json& value = (*result)["result"];
  return value.contains("value") ? value["value"] : nlohmann::json();
}

absl::StatusOr<std::string> CdpBrowser::ScreenshotPng() {
  auto metrics = Call("Page.getLayoutMetrics", nlohmann::json::object());
  if (!metrics.ok()) return metrics.status();
  const nlohmann::json& size = (*metrics)["cssContentSize"];
  auto shot = Call(
      "Page.captureScreenshot",
      {{"format", "png"},
       {"captureBeyondViewport", true},
       {"clip",
        {{"x", 0}, {"y", 0}, {"width", size["width"]}, {"height", size["height"]}, {"scale", 1}}}},
      absl::Seconds(60));
  if (!shot.ok()) return shot.status();
  std::string png;
  if (!absl::Base64Unescape((*shot)["data"].get<std::string>(), &png)) {
    return absl::InternalError("Page.captureScreenshot: the data is not base64");
  }
  return png;
}

std::vector<std::string> CdpBrowser::Exceptions() {
  absl::MutexLock lock(&mu_);
  return exceptions_;
}

std::string CdpBrowser::Log() { return process_ == nullptr ? "" : process_->Stderr(); }

}  // namespace pcsweep::testing
