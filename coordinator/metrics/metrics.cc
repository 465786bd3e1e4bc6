#include "coordinator/metrics/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace pcsweep::coordinator {
namespace {

std::vector<std::string> LabelNames(const Labels& labels) {
  std::vector<std::string> names;
  names.reserve(labels.size());
  for (const auto& [name, value] : labels) names.push_back(name);
  return names;
}

// `name{a="x",b="y"}`, or `name` without labels; `extra` (e.g. le) goes last.
std::string SampleName(absl::string_view name, const Labels& labels,
                       const std::pair<std::string, std::string>* extra = nullptr) {
  std::vector<std::string> parts;
  for (const auto& [label, value] : labels) {
    parts.push_back(absl::StrCat(label, "=\"", EscapeLabelValue(value), "\""));
  }
  if (extra != nullptr) {
    parts.push_back(absl::StrCat(extra->first, "=\"", EscapeLabelValue(extra->second), "\""));
  }
  if (parts.empty()) return std::string(name);
  return absl::StrCat(name, "{", absl::StrJoin(parts, ","), "}");
}

absl::string_view TypeName(int type) {
  switch (type) {
    case 0:
      return "counter";
    case 1:
      return "gauge";
    default:
      return "histogram";
  }
}

}  // namespace

std::string EscapeLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(absl::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatSampleValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) return absl::StrFormat("%.0f", value);
  for (int precision = 1; precision < 17; ++precision) {
    std::string text = absl::StrFormat("%.*g", precision, value);
    if (std::strtod(text.c_str(), nullptr) == value) return text;
  }
  return absl::StrFormat("%.17g", value);
}

bool IsValidMetricName(absl::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok =
        absl::ascii_isalpha(c) || c == '_' || c == ':' || (i > 0 && absl::ascii_isdigit(c));
    if (!ok) return false;
  }
  return true;
}

bool IsValidLabelName(absl::string_view name) {
  if (name.empty() || absl::StartsWith(name, "__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = absl::ascii_isalpha(c) || c == '_' || (i > 0 && absl::ascii_isdigit(c));
    if (!ok) return false;
  }
  return true;
}

std::vector<double> LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double value) {
  const size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  double sum = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(sum, sum + value, std::memory_order_relaxed)) {
  }
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snapshot;
  snapshot.bounds = bounds_;
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    snapshot.cumulative.push_back(running);
  }
  snapshot.count = running;
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

absl::StatusOr<MetricsRegistry::Family*> MetricsRegistry::FindOrAddFamilyLocked(
    const std::string& name, const std::string& help, Type type, const Labels& labels) {
  if (!IsValidMetricName(name)) {
    return absl::InvalidArgumentError(absl::StrCat("metric name '", name, "' is not valid"));
  }
  for (const auto& [label, value] : labels) {
    if (!IsValidLabelName(label) || (type == Type::kHistogram && label == "le")) {
      return absl::InvalidArgumentError(
          absl::StrCat("metric ", name, ": label name '", label, "' is not valid"));
    }
  }
  const std::vector<std::string> label_names = LabelNames(labels);
  for (const auto& family : families_) {
    if (family->name != name) continue;
    if (family->type != type || family->help != help || family->label_names != label_names) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metric ", name, " is registered already with another type, help or label names"));
    }
    return family.get();
  }
  auto family = std::make_unique<Family>();
  family->name = name;
  family->help = help;
  family->type = type;
  family->label_names = label_names;
  families_.push_back(std::move(family));
  return families_.back().get();
}

absl::StatusOr<Counter*> MetricsRegistry::AddCounter(const std::string& name,
                                                     const std::string& help,
                                                     const Labels& labels) {
  absl::MutexLock lock(&mu_);
  auto family = FindOrAddFamilyLocked(name, help, Type::kCounter, labels);
  if (!family.ok()) return family.status();
  for (auto& [existing, counter] : (*family)->counters) {
    if (existing == labels) return counter.get();
  }
  (*family)->counters.emplace_back(labels, std::make_unique<Counter>());
  return (*family)->counters.back().second.get();
}

absl::StatusOr<Histogram*> MetricsRegistry::AddHistogram(const std::string& name,
                                                         const std::string& help,
                                                         std::vector<double> bounds,
                                                         const Labels& labels) {
  if (bounds.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("histogram ", name, " has no buckets"));
  }
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "histogram ", name, ": bucket bounds must be finite and strictly ascending"));
    }
  }
  absl::MutexLock lock(&mu_);
  auto family = FindOrAddFamilyLocked(name, help, Type::kHistogram, labels);
  if (!family.ok()) return family.status();
  if ((*family)->histograms.empty()) {
    (*family)->bounds = bounds;
  } else if ((*family)->bounds != bounds) {
    return absl::InvalidArgumentError(
        absl::StrCat("histogram ", name, ": every series of a family needs the same buckets"));
  }
  for (auto& [existing, histogram] : (*family)->histograms) {
    if (existing == labels) return histogram.get();
  }
  (*family)->histograms.emplace_back(labels, std::make_unique<Histogram>(std::move(bounds)));
  return (*family)->histograms.back().second.get();
}

absl::Status MetricsRegistry::AddGauge(const std::string& name, const std::string& help,
                                       GaugeCollector collect) {
  absl::MutexLock lock(&mu_);
  for (const auto& family : families_) {
    if (family->name == name) {
      return absl::InvalidArgumentError(absl::StrCat("metric ", name, " is registered already"));
    }
  }
  auto family = FindOrAddFamilyLocked(name, help, Type::kGauge, {});
  if (!family.ok()) return family.status();
  (*family)->collect = std::move(collect);
  return absl::OkStatus();
}

std::string MetricsRegistry::Render() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const auto& family : families_) {
    absl::StrAppend(&out, "# HELP ", family->name, " ", EscapeHelp(family->help), "\n");
    absl::StrAppend(&out, "# TYPE ", family->name, " ", TypeName(static_cast<int>(family->type)),
                    "\n");
    switch (family->type) {
      case Type::kCounter:
        for (const auto& [labels, counter] : family->counters) {
          absl::StrAppend(&out, SampleName(family->name, labels), " ", counter->Value(), "\n");
        }
        break;
      case Type::kGauge: {
        std::vector<GaugeSample> samples;
        if (family->collect) family->collect(samples);
        for (const GaugeSample& sample : samples) {
          const bool valid = std::all_of(sample.labels.begin(), sample.labels.end(),
                                         [](const auto& l) { return IsValidLabelName(l.first); });
          if (!valid) continue;
          absl::StrAppend(&out, SampleName(family->name, sample.labels), " ",
                          FormatSampleValue(sample.value), "\n");
        }
        break;
      }
      case Type::kHistogram:
        for (const auto& [labels, histogram] : family->histograms) {
          const Histogram::Snapshot s = histogram->Read();
          const std::string bucket = absl::StrCat(family->name, "_bucket");
          for (size_t i = 0; i <= s.bounds.size(); ++i) {
            const std::pair<std::string, std::string> le{
                "le", i < s.bounds.size() ? FormatSampleValue(s.bounds[i]) : "+Inf"};
            absl::StrAppend(&out, SampleName(bucket, labels, &le), " ", s.cumulative[i], "\n");
          }
          absl::StrAppend(&out, SampleName(absl::StrCat(family->name, "_sum"), labels), " ",
                          FormatSampleValue(s.sum), "\n");
          absl::StrAppend(&out, SampleName(absl::StrCat(family->name, "_count"), labels), " ",
                          s.count, "\n");
        }
        break;
    }
  }
  return out;
}

}  // namespace pcsweep::coordinator
