// MetricsRegistry: counters, histograms and gauges read at scrape time, rendered in the
// Prometheus text exposition format (version 0.0.4), which GET /metrics serves. Debian 12 has
// no Prometheus client library for C++, so this is the small part of one that pcsweep needs.
//
// The format's rules that Render() keeps (and metrics_test.cc checks):
//  * one "# HELP name text" and one "# TYPE name counter|gauge|histogram" line per family,
//    before its samples, families in registration order; HELP text escapes '\' and newline;
//  * samples "name{label="value",...} number", label values escaping '\', '"' and newline;
//  * a histogram's samples are name_bucket{...,le="B"} (cumulative counts, ascending B, ending
//    with le="+Inf"), then name_sum and name_count;
//  * numbers: integers without a decimal point, others in the shortest form that reads back
//    the same double, NaN, +Inf, -Inf.
// Metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* (not
// starting with "__"; "le" is reserved in histograms). Counters should end in _total.
//
// Example:
//   MetricsRegistry registry;
//   PCSWEEP_ASSIGN_OR_RETURN(Counter* done, registry.AddCounter("pcsweep_done_total", "Jobs."));
//   done->Increment();
//   std::string text = registry.Render();
//
// Ownership: the registry owns its counters and histograms; the pointers it hands out stay
// valid as long as it lives. Gauge collectors are called during Render().
// Thread-safety: thread-safe. Increment/Observe are lock-free; Add* and Render take a mutex.
// Collectors run under that mutex and must not call the registry.
#ifndef PCSWEEP_COORDINATOR_METRICS_METRICS_H_
#define PCSWEEP_COORDINATOR_METRICS_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace pcsweep::coordinator {

// Label (name, value) pairs in the order they are rendered.
using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Increment(uint64_t amount = 1) { value_.fetch_add(amount, std::memory_order_relaxed); }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Histogram {
 public:
  struct Snapshot {
    std::vector<double> bounds;        // upper bounds, ascending, without +Inf
    std::vector<uint64_t> cumulative;  // per bound, then one for +Inf (= count)
    double sum = 0;
    uint64_t count = 0;
  };

  // `bounds`: finite, strictly ascending (checked by MetricsRegistry::AddHistogram).
  explicit Histogram(std::vector<double> bounds);

  // Counts `value` in the first bucket whose bound is >= value (+Inf for larger values).
  void Observe(double value);
  // Counts of a moment; concurrent observations may show in count before they show in sum.
  Snapshot Read() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1, not cumulative
  std::atomic<double> sum_{0};
};

// Bucket bounds in seconds for call latencies: 1 ms to 60 s.
std::vector<double> LatencyBuckets();

// One sample of a gauge family, produced at scrape time.
struct GaugeSample {
  Labels labels;
  double value = 0;
};

class MetricsRegistry {
 public:
  using GaugeCollector = std::function<void(std::vector<GaugeSample>& out)>;

  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The counter of family `name` with `labels`, created at the first call (the same pointer
  // for the same labels later). Possible errors: InvalidArgument naming the bad metric or
  // label name, or when `name` exists with another type, help text or label names.
  absl::StatusOr<Counter*> AddCounter(const std::string& name, const std::string& help,
                                      const Labels& labels = {});
  // As AddCounter; all histograms of a family share `bounds`. Possible errors: as AddCounter,
  // and InvalidArgument for bounds that are empty, not finite or not strictly ascending, or
  // that differ from the family's.
  absl::StatusOr<Histogram*> AddHistogram(const std::string& name, const std::string& help,
                                          std::vector<double> bounds, const Labels& labels = {});
  // A gauge family whose samples `collect` appends at every Render(); samples with invalid
  // label names are skipped. Possible errors: as AddCounter (the name is taken).
  absl::Status AddGauge(const std::string& name, const std::string& help, GaugeCollector collect);

  // Every family in the text exposition format, ending with a newline.
  std::string Render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    std::string name;
    std::string help;
    Type type;
    std::vector<std::string> label_names;
    std::vector<double> bounds;  // histograms
    std::vector<std::pair<Labels, std::unique_ptr<Counter>>> counters;
    std::vector<std::pair<Labels, std::unique_ptr<Histogram>>> histograms;
    GaugeCollector collect;
  };

  absl::StatusOr<Family*> FindOrAddFamilyLocked(const std::string& name, const std::string& help,
                                                Type type, const Labels& labels)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Family>> families_ ABSL_GUARDED_BY(mu_);
};

// The text format's escaping (exposed for tests): label values escape '\', '"' and newline;
// HELP text escapes '\' and newline.
std::string EscapeLabelValue(absl::string_view value);
std::string EscapeHelp(absl::string_view help);
// A sample value as the format writes it (see the header comment).
std::string FormatSampleValue(double value);
// True for names the format accepts.
bool IsValidMetricName(absl::string_view name);
bool IsValidLabelName(absl::string_view name);

// The Content-Type of Render()'s output.
inline constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace pcsweep::coordinator

#endif  // PCSWEEP_COORDINATOR_METRICS_METRICS_H_
