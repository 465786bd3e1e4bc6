#include "common/jobfile/job_envelope.h"

#include <fstream>
#include <limits>

#include "absl/strings/str_cat.h"

namespace pcsweep::jobfile {
namespace {

using json = nlohmann::json;

// `object[key]` when it is a string, else "".
std::string StringOr(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

bool FitsInt64(const json& value) {
  if (value.is_number_unsigned()) {
    return value.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  }
  return value.is_number_integer();
}

}  // namespace

json JobEnvelopeToJson(const JobEnvelope& envelope) {
  return json{{"job_id", envelope.job_id}, {"attempt", envelope.attempt},
              {"kind", envelope.kind},     {"config", envelope.config},
              {"params", envelope.params}, {"output_dir", envelope.output_dir}};
}

absl::Status WriteJobEnvelope(const std::string& path, const JobEnvelope& envelope) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << JobEnvelopeToJson(envelope).dump(2) << "\n";
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::StatusOr<JobEnvelope> JobEnvelopeFromJson(const json& job, absl::string_view where) {
  if (!job.is_object() || !job.contains("kind") || !job["kind"].is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": job needs a string \"kind\""));
  }
  JobEnvelope envelope;
  envelope.kind = job["kind"].get<std::string>();
  if (auto it = job.find("config"); it != job.end() && !it->is_null()) {
    if (!it->is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": \"config\" must be an object"));
    }
    envelope.config = *it;
  }
  if (auto it = job.find("params"); it != job.end() && it->is_object()) envelope.params = *it;
  if (auto it = job.find("attempt"); it != job.end() && FitsInt64(*it)) {
    envelope.attempt = it->get<int64_t>();
  }
  envelope.job_id = StringOr(job, "job_id");
  envelope.output_dir = StringOr(job, "output_dir");
  return envelope;
}

absl::StatusOr<JobEnvelope> ParseJobEnvelope(const std::string& path, const std::string& text) {
  json job;
  try {
    job = json::parse(text);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON: ", e.what()));
  }
  return JobEnvelopeFromJson(job, path);
}

json ConfigWithParams(const JobEnvelope& envelope) {
  json config = envelope.config;
  for (const auto& [key, value] : envelope.params.items()) {
    if (!config.contains(key)) config[key] = value;
  }
  return config;
}

}  // namespace pcsweep::jobfile
