#include "tools/cli/slurm_command.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/fileio/durable_rename.h"
#include "common/spec/shell_quote.h"
#include "common/status/status_macros.h"
#include "tools/cli/subprocess.h"

namespace pcsweep::cli {
namespace {

namespace fs = std::filesystem;

constexpr absl::Duration kSbatchTimeout = absl::Seconds(120);
constexpr absl::Duration kScancelTimeout = absl::Seconds(60);

// True when `s` may stand alone on an #SBATCH line: no whitespace, no control character.
bool IsSbatchWord(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c)) ||
        absl::ascii_iscntrl(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

// The characters of a worker name in a credentials file ([A-Za-z0-9._:@-]).
bool IsWorkerNameText(absl::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && !absl::StrContains("._:@-", c)) {
      return false;
    }
  }
  return true;
}

absl::Status CheckWord(absl::string_view flag, absl::string_view value) {
  if (value.empty() || IsSbatchWord(value)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(flag, " '", value, "' must be one word (no spaces or control characters)"));
}

absl::Status CheckPathText(absl::string_view flag, absl::string_view value) {
  if (FirstControlCharacter(value) < 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(flag, " holds a control character"));
}

absl::Status ValidateCounts(const SlurmUpOptions& o) {
  if (o.workers < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--workers must be at least 1 (got ", o.workers, ")"));
  }
  if (o.slots < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--slots must be at least 1 (got ", o.slots, ")"));
  }
  if (o.gpus_per_worker < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--gpus-per-worker must be 0 or more (got ", o.gpus_per_worker, ")"));
  }
  if (o.cpus_per_task < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--cpus-per-task must be 1 or more (got ", o.cpus_per_task, ")"));
  }
  if (o.time_minutes < 0 ||
      (o.time_minutes > 0 && o.time_minutes * 60 < 2 * kSlurmSignalLeadSeconds)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--time must be at least ", 2 * kSlurmSignalLeadSeconds / 60, " minutes (got ",
        o.time_minutes, "): workers get SIGTERM ", kSlurmSignalLeadSeconds, " s before the limit"));
  }
  return absl::OkStatus();
}

absl::Status ValidateWords(const SlurmUpOptions& o) {
  if (o.coordinator.empty()) {
    return absl::InvalidArgumentError(
        "--coordinator HOST:PORT is required (or set PCSWEEP_COORDINATOR)");
  }
  if (!IsSbatchWord(o.coordinator) || !absl::StrContains(o.coordinator, ':')) {
    return absl::InvalidArgumentError(
        absl::StrCat("--coordinator '", o.coordinator, "' is not HOST:PORT"));
  }
  PCSWEEP_RETURN_IF_ERROR(CheckWord("--partition", o.partition));
  PCSWEEP_RETURN_IF_ERROR(CheckWord("--account", o.account));
  if (!IsSbatchWord(o.job_name)) {
    return absl::InvalidArgumentError(absl::StrCat("job name '", o.job_name, "' is not one word"));
  }
  if (!IsWorkerNameText(o.name_prefix)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--name-prefix '", o.name_prefix, "' must be 1-64 characters of A-Z a-z 0-9 . _ : @ -"));
  }
  for (const std::string& arg : o.sbatch_args) {
    if (!IsSbatchWord(arg) || arg[0] != '-') {
      return absl::InvalidArgumentError(
          absl::StrCat("--sbatch-arg '", arg,
                       "' must be one sbatch option without spaces, e.g. --sbatch-arg=--mem=16G"));
    }
  }
  if (o.dir.empty() || !IsSbatchWord(o.dir) || absl::StrContains(o.dir, '%')) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--dir '", o.dir, "' must be a path without spaces, '%' or control characters"));
  }
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  PCSWEEP_RETURN_IF_ERROR(CheckPathText("--token-file", o.token_file));
  PCSWEEP_RETURN_IF_ERROR(CheckPathText("--tls-ca", o.tls_ca_file));
  PCSWEEP_RETURN_IF_ERROR(CheckPathText("--tls-cert", o.tls_cert_file));
  PCSWEEP_RETURN_IF_ERROR(CheckPathText("--tls-key", o.tls_key_file));
  return CheckPathText("--runner", o.runner_path);
}

// The `exec pcsweep worker ...` line; every value is one shell word.
std::string WorkerExecLine(const SlurmUpOptions& o, const std::string& pcsweep_path) {
  std::string line =
      absl::StrCat("exec ", ShellQuote(pcsweep_path), " worker --coordinator ",
                   ShellQuote(o.coordinator), " --slots ", o.slots, " --name \"$name\" --work-dir ",
                   ShellQuote(absl::StrCat(o.dir, "/work/")), "\"$task\"");
  if (o.gpus_per_worker > 0) absl::StrAppend(&line, " --gpus \"$gpus\"");
  const std::pair<const char*, const std::string*> files[] = {{"--token-file", &o.token_file},
                                                              {"--tls-ca", &o.tls_ca_file},
                                                              {"--tls-cert", &o.tls_cert_file},
                                                              {"--tls-key", &o.tls_key_file},
                                                              {"--runner", &o.runner_path}};
  for (const auto& [flag, path] : files) {
    if (!path->empty()) absl::StrAppend(&line, " ", flag, " ", ShellQuote(*path));
  }
  return line + "\n";
}

// The non-empty lines of a child's stderr, joined into one line.
std::string OneLineOf(absl::string_view text) {
  std::vector<absl::string_view> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty()) lines.push_back(line);
  }
  std::string joined = absl::StrJoin(lines, "; ");
  if (joined.size() > 600) joined = joined.substr(0, 600) + " ...";
  return joined;
}

// The lines of a Slurm command's stderr that say "error:" (all its lines when none does), as
// one line.
std::string ErrorLinesOf(absl::string_view text) {
  std::vector<absl::string_view> errors;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StrContains(line, "error:")) errors.push_back(line);
  }
  return errors.empty() ? OneLineOf(text) : OneLineOf(absl::StrJoin(errors, "\n"));
}

// What a failed tool run said: its error lines, else its exit status.
std::string FailureOf(const ProcessResult& result) {
  std::string why = ErrorLinesOf(result.err);
  if (why.empty()) why = absl::StrCat("exit status ", result.exit_code, " and no message");
  return why;
}

std::string PathEnv() {
  const char* path = std::getenv("PATH");
  return path == nullptr ? "" : path;
}

// A file that holds a secret: it must exist, be readable, non-empty and be closed to others.
absl::Status CheckPrivateFile(absl::string_view flag, const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat(flag, " ", path, ": ", strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, " is not a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return absl::PermissionDeniedError(absl::StrCat(
        flag, " ", path, " is open to other users (mode ", mode, "); run chmod 600 ", path));
  }
  if (::access(path.c_str(), R_OK) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(flag, " ", path, ": ", strerror(errno)));
  }
  if (st.st_size == 0)
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, " is empty"));
  return absl::OkStatus();
}

absl::Status CheckFileExists(absl::string_view flag, const std::string& path, int access_mode) {
  if (path.empty() || ::access(path.c_str(), access_mode) == 0) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat(flag, " ", path, ": ", strerror(errno)));
}

std::string Absolute(const std::string& path) {
  if (path.empty()) return path;
  std::error_code error;
  const fs::path absolute = fs::absolute(path, error);
  return error ? path : absolute.lexically_normal().string();
}

// `options` with absolute paths, its coordinator defaulted, and every file checked.
absl::StatusOr<SlurmUpOptions> PrepareUpOptions(SlurmUpOptions o) {
  if (o.coordinator.empty()) {
    const char* env = std::getenv("PCSWEEP_COORDINATOR");
    if (env != nullptr) o.coordinator = env;
  }
  PCSWEEP_RETURN_IF_ERROR(ValidateSlurmUpOptions(o));
  for (std::string* path :
       {&o.dir, &o.token_file, &o.tls_ca_file, &o.tls_cert_file, &o.tls_key_file, &o.runner_path}) {
    *path = Absolute(*path);
  }
  if (absl::EndsWith(o.dir, "/") && o.dir.size() > 1) o.dir.pop_back();
  PCSWEEP_RETURN_IF_ERROR(ValidateSlurmUpOptions(o));  // the absolute dir, too
  if (!o.token_file.empty()) {
    PCSWEEP_RETURN_IF_ERROR(CheckPrivateFile("--token-file", o.token_file));
  }
  if (!o.tls_key_file.empty()) {
    PCSWEEP_RETURN_IF_ERROR(CheckPrivateFile("--tls-key", o.tls_key_file));
  }
  PCSWEEP_RETURN_IF_ERROR(CheckFileExists("--tls-ca", o.tls_ca_file, R_OK));
  PCSWEEP_RETURN_IF_ERROR(CheckFileExists("--tls-cert", o.tls_cert_file, R_OK));
  PCSWEEP_RETURN_IF_ERROR(CheckFileExists("--runner", o.runner_path, X_OK));
  return o;
}

bool IsLoopbackAddress(absl::string_view address) {
  return absl::StartsWith(address, "127.") || absl::StartsWith(address, "localhost:") ||
         absl::StartsWith(address, "[::1]:");
}

// Runs `sbatch --parsable script` once and returns the job id it printed.
absl::StatusOr<std::string> SubmitScript(const std::string& sbatch, const std::string& script) {
  PCSWEEP_ASSIGN_OR_RETURN(ProcessResult result,
                           RunProcess(sbatch, {"--parsable", script}, kSbatchTimeout));
  if (result.exit_code != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("sbatch refused the job: ", FailureOf(result)));
  }
  // --parsable prints "JOBID" or "JOBID;CLUSTER".
  const std::string first = std::string(absl::StripAsciiWhitespace(result.out));
  const std::string id = first.substr(0, first.find(';'));
  uint64_t number = 0;
  if (id.empty() || !absl::SimpleAtoi(id, &number)) {
    return absl::InternalError(absl::StrCat("sbatch printed no job id (stdout '",
                                            OneLineOf(result.out), "', stderr '",
                                            OneLineOf(result.err), "')"));
  }
  return id;
}

absl::Status AppendJobId(const std::string& jobs_path, const std::string& id) {
  std::ofstream jobs(jobs_path, std::ios::app);
  jobs << id << "\n";
  jobs.flush();
  if (!jobs) {
    return absl::InternalError(absl::StrCat("submitted job ", id, " but cannot record it in ",
                                            jobs_path, "; cancel it with: scancel ", id));
  }
  return absl::OkStatus();
}

absl::Status CreateFolders(const std::string& dir) {
  for (const std::string sub : {"", "/logs", "/work"}) {
    std::error_code error;
    fs::create_directories(dir + sub, error);
    if (error) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot create ", dir, sub, ": ", error.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> FindSlurmTool(const std::string& name) {
  auto path = FindOnPath(name, PathEnv());
  if (!path.ok()) {
    return absl::NotFoundError(absl::StrCat(name,
                                            " not found on PATH (install Slurm's client commands "
                                            "or add them to PATH; PATH=",
                                            PathEnv(), ")"));
  }
  return path;
}

// Writes the script of the prepared options `o` and submits it once; returns the job id.
absl::StatusOr<std::string> SubmitPrepared(const SlurmUpOptions& o, const std::string& script) {
  PCSWEEP_ASSIGN_OR_RETURN(const std::string sbatch, FindSlurmTool("sbatch"));
  PCSWEEP_RETURN_IF_ERROR(CreateFolders(o.dir));
  const std::string script_path = o.dir + "/worker.sbatch";
  PCSWEEP_RETURN_IF_ERROR(WriteFileDurably(script_path, script));
  PCSWEEP_ASSIGN_OR_RETURN(const std::string id, SubmitScript(sbatch, script_path));
  PCSWEEP_RETURN_IF_ERROR(AppendJobId(o.dir + "/jobs", id));
  return id;
}

absl::Status SlurmUp(const SlurmUpOptions& raw, const std::string& pcsweep_path, std::ostream& out,
                     std::ostream& err) {
  PCSWEEP_ASSIGN_OR_RETURN(const SlurmUpOptions o, PrepareUpOptions(raw));
  PCSWEEP_ASSIGN_OR_RETURN(const std::string script, SlurmWorkerScript(o, pcsweep_path));
  if (o.dry_run) {
    out << script;
    return absl::OkStatus();
  }
  PCSWEEP_ASSIGN_OR_RETURN(const std::string id, SubmitPrepared(o, script));
  const std::string script_path = o.dir + "/worker.sbatch";
  out << id << std::endl;
  err << "slurm up: submitted job array " << id << " (" << o.workers << " workers x " << o.slots
      << " slots) from " << script_path << "; Slurm logs in " << o.dir
      << "/logs; stop it with: pcsweep slurm down --dir " << o.dir << std::endl;
  if (!o.token_file.empty()) {
    err << "slurm up: the workers are named " << o.name_prefix
        << "-<job>-<task>.<restart>; with per-worker credentials the coordinator's "
           "--credentials needs the line `worker "
        << SlurmWorkerNamePattern(o) << " sha256:HEX` (HEX: the SHA-256 of the token in "
        << o.token_file << ")" << std::endl;
  }
  if (IsLoopbackAddress(o.coordinator)) {
    err << "slurm up: note: coordinator " << o.coordinator
        << " is a loopback address; only workers on this machine can reach it" << std::endl;
  }
  return absl::OkStatus();
}

// The job ids in `jobs_path`, in order; blank lines and '#' comments are skipped.
absl::StatusOr<std::vector<std::string>> ReadJobIds(const std::string& jobs_path) {
  std::ifstream in(jobs_path);
  std::vector<std::string> ids;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    absl::string_view id = absl::StripAsciiWhitespace(line);
    if (id.empty() || id[0] == '#') continue;
    uint64_t value = 0;
    if (!absl::SimpleAtoi(id, &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat(jobs_path, ":", number, ": '", id, "' is not a Slurm job id"));
    }
    ids.emplace_back(id);
  }
  return ids;
}

enum class CancelOutcome { kCancelled, kAlreadyEnded, kFailed };

// Runs `scancel --verbose ID`. Slurm 22.05's scancel exits 0 even for a job that is gone or
// that it could not cancel; only --verbose prints why ("scancel: error: Kill job error on job
// id 12: Invalid job id specified"), so its stderr decides. `*why` gets the failure.
CancelOutcome CancelJob(const std::string& scancel, const std::string& id, std::string* why) {
  auto result = RunProcess(scancel, {"--verbose", id}, kScancelTimeout);
  if (!result.ok()) {
    *why = std::string(result.status().message());
    return CancelOutcome::kFailed;
  }
  if (absl::StrContains(result->err, "Invalid job id specified") ||
      absl::StrContains(result->err, "already completing or completed")) {
    return CancelOutcome::kAlreadyEnded;
  }
  if (result->exit_code == 0 && !absl::StrContains(result->err, "error:")) {
    return CancelOutcome::kCancelled;
  }
  *why = FailureOf(*result);
  return CancelOutcome::kFailed;
}

absl::Status SlurmDown(const std::string& raw_dir, std::ostream& out) {
  const std::string dir = Absolute(raw_dir);
  if (!fs::is_directory(dir)) {
    return absl::NotFoundError(
        absl::StrCat("no folder ", dir, " (give the --dir that slurm up was given)"));
  }
  const std::string jobs_path = dir + "/jobs";
  PCSWEEP_ASSIGN_OR_RETURN(const std::vector<std::string> ids, ReadJobIds(jobs_path));
  if (ids.empty()) {
    out << "slurm down: no job ids in " << jobs_path << "; nothing to cancel" << std::endl;
    return absl::OkStatus();
  }
  PCSWEEP_ASSIGN_OR_RETURN(const std::string scancel, FindSlurmTool("scancel"));
  std::vector<std::string> kept;
  std::string first_failure;
  for (const std::string& id : ids) {
    std::string why;
    switch (CancelJob(scancel, id, &why)) {
      case CancelOutcome::kCancelled:
        out << "slurm down: cancelled job " << id << std::endl;
        break;
      case CancelOutcome::kAlreadyEnded:
        out << "slurm down: job " << id << " had already ended" << std::endl;
        break;
      case CancelOutcome::kFailed:
        kept.push_back(id);
        if (first_failure.empty()) first_failure = absl::StrCat("scancel ", id, " failed: ", why);
        break;
    }
  }
  std::string remaining;
  for (const std::string& id : kept) absl::StrAppend(&remaining, id, "\n");
  PCSWEEP_RETURN_IF_ERROR(WriteFileDurably(jobs_path, remaining));
  if (!first_failure.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(first_failure, " (", kept.size(), " job id(s) kept in ", jobs_path, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SelfExecutablePath() {
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot resolve /proc/self/exe: ", error.message()));
  }
  return self.string();
}

}  // namespace

std::string SlurmWorkerNamePattern(const SlurmUpOptions& options) {
  return absl::StrCat(options.name_prefix, "-*");
}

absl::Status ValidateSlurmUpOptions(const SlurmUpOptions& options) {
  PCSWEEP_RETURN_IF_ERROR(ValidateCounts(options));
  return ValidateWords(options);
}

absl::StatusOr<std::string> SlurmWorkerScript(const SlurmUpOptions& o,
                                              const std::string& pcsweep_path) {
  PCSWEEP_RETURN_IF_ERROR(ValidateSlurmUpOptions(o));
  PCSWEEP_RETURN_IF_ERROR(CheckPathText("the pcsweep path", pcsweep_path));
  std::string s = absl::StrCat(
      "#!/bin/sh\n",
      "# Written by `pcsweep slurm up`: one pcsweep worker per array task. No secret is in this\n",
      "# file (the worker reads its credentials from the files named below).\n",
      "# Stop the workers with: pcsweep slurm down --dir ", o.dir, "\n",
      "#SBATCH --job-name=", o.job_name, "\n", "#SBATCH --array=0-", o.workers - 1, "\n",
      "#SBATCH --nodes=1\n", "#SBATCH --ntasks=1\n",
      "#SBATCH --cpus-per-task=", o.cpus_per_task > 0 ? o.cpus_per_task : o.slots, "\n");
  if (o.gpus_per_worker > 0) absl::StrAppend(&s, "#SBATCH --gres=gpu:", o.gpus_per_worker, "\n");
  if (!o.partition.empty()) absl::StrAppend(&s, "#SBATCH --partition=", o.partition, "\n");
  if (!o.account.empty()) absl::StrAppend(&s, "#SBATCH --account=", o.account, "\n");
  if (o.time_minutes > 0) absl::StrAppend(&s, "#SBATCH --time=", o.time_minutes, "\n");
  absl::StrAppend(&s, "#SBATCH --signal=B:TERM@", kSlurmSignalLeadSeconds, "\n",
                  "#SBATCH --requeue\n", "#SBATCH --open-mode=append\n", "#SBATCH --output=", o.dir,
                  "/logs/%A_%a.out\n", "#SBATCH --error=", o.dir, "/logs/%A_%a.err\n");
  for (const std::string& arg : o.sbatch_args) absl::StrAppend(&s, "#SBATCH ", arg, "\n");
  absl::StrAppend(
      &s, "set -eu\n",
      ": \"${SLURM_ARRAY_JOB_ID:?submit this script with sbatch (it is a job array)}\"\n",
      "# One name per array task and incarnation (a requeued task is a new worker); the work\n",
      "# dir (job logs, unsent results) stays the task's across requeues. A coordinator\n",
      "# credential `worker ", SlurmWorkerNamePattern(o), " SECRET` owns every such name.\n",
      "name=", o.name_prefix,
      "-\"${SLURM_ARRAY_JOB_ID}-${SLURM_ARRAY_TASK_ID}.${SLURM_RESTART_COUNT:-0}\"\n",
      "task=\"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"\n");
  if (o.gpus_per_worker > 0) {
    absl::StrAppend(
        &s, "# The GPUs Slurm gave this task (as this task's processes see them).\n",
        "gpus=\"${CUDA_VISIBLE_DEVICES:-${SLURM_JOB_GPUS:-}}\"\n",
        "if [ -z \"$gpus\" ] || [ \"$gpus\" = NoDevFiles ]; then\n",
        "  echo \"pcsweep slurm worker $name: Slurm allocated no GPU (CUDA_VISIBLE_DEVICES and "
        "SLURM_JOB_GPUS are empty)\" >&2\n",
        "  exit 1\n", "fi\n");
  }
  absl::StrAppend(&s, "# exec: the worker is the batch shell, so Slurm's SIGTERM reaches it.\n",
                  WorkerExecLine(o, pcsweep_path));
  return s;
}

absl::StatusOr<std::string> SubmitSlurmWorkers(const SlurmUpOptions& options,
                                               const std::string& pcsweep_path) {
  auto submitted = [&]() -> absl::StatusOr<std::string> {
    PCSWEEP_ASSIGN_OR_RETURN(const SlurmUpOptions o, PrepareUpOptions(options));
    PCSWEEP_ASSIGN_OR_RETURN(const std::string script, SlurmWorkerScript(o, pcsweep_path));
    return SubmitPrepared(o, script);
  }();
  if (!submitted.ok()) return Annotate(submitted.status(), "slurm submit");
  return submitted;
}

absl::StatusOr<std::set<std::string>> QueuedSlurmTasks(const std::vector<std::string>& job_ids) {
  std::set<std::string> tasks;
  if (job_ids.empty()) return tasks;
  PCSWEEP_ASSIGN_OR_RETURN(const std::string squeue, FindSlurmTool("squeue"));
  PCSWEEP_ASSIGN_OR_RETURN(
      ProcessResult result,
      RunProcess(squeue,
                 {"--noheader", "--array", "--format=%i", "--jobs=" + absl::StrJoin(job_ids, ",")},
                 kSbatchTimeout));
  if (result.exit_code != 0) {
    // Every id purged from slurmctld's memory (they ended more than MinJobAge ago).
    if (absl::StrContains(result.err, "Invalid job id specified")) return tasks;
    return absl::UnavailableError(absl::StrCat("squeue failed: ", FailureOf(result)));
  }
  for (absl::string_view line : absl::StrSplit(result.out, '\n', absl::SkipWhitespace())) {
    tasks.emplace(absl::StripAsciiWhitespace(line));
  }
  return tasks;
}

absl::Status CancelSlurmTask(const std::string& task) {
  PCSWEEP_ASSIGN_OR_RETURN(const std::string scancel, FindSlurmTool("scancel"));
  std::string why;
  if (CancelJob(scancel, task, &why) == CancelOutcome::kFailed) {
    return absl::UnavailableError(absl::StrCat("scancel ", task, " failed: ", why));
  }
  return absl::OkStatus();
}

absl::Status RunSlurmUp(const SlurmUpOptions& options, const std::string& pcsweep_path,
                        std::ostream& out, std::ostream& err) {
  return Annotate(SlurmUp(options, pcsweep_path, out, err), "slurm up");
}

absl::Status RunSlurmDown(const std::string& dir, std::ostream& out) {
  return Annotate(SlurmDown(dir, out), "slurm down");
}

std::map<std::string, std::string> SlurmWorkerLabels(
    const std::function<const char*(const char*)>& getenv) {
  auto read = [&getenv](const char* name) -> std::string {
    const char* value = getenv(name);
    return value == nullptr ? "" : value;
  };
  std::map<std::string, std::string> labels;
  const std::string array_job = read("SLURM_ARRAY_JOB_ID");
  const std::string task = read("SLURM_ARRAY_TASK_ID");
  const std::string job = !array_job.empty() && !task.empty() ? absl::StrCat(array_job, "_", task)
                                                              : read("SLURM_JOB_ID");
  if (job.empty()) return labels;
  labels["slurm_job_id"] = job;
  if (std::string node = read("SLURMD_NODENAME"); !node.empty()) labels["slurm_node"] = node;
  const std::string restarts = read("SLURM_RESTART_COUNT");
  labels["slurm_restart_count"] = restarts.empty() ? "0" : restarts;
  return labels;
}

namespace {

class SlurmToolsBackend final : public SlurmBackend {
 public:
  SlurmToolsBackend(SlurmUpOptions options, std::string pcsweep_path)
      : options_(std::move(options)), pcsweep_path_(std::move(pcsweep_path)) {}
  absl::StatusOr<std::string> Submit(int workers) override {
    SlurmUpOptions o = options_;
    o.workers = workers;
    return SubmitSlurmWorkers(o, pcsweep_path_);
  }
  absl::StatusOr<std::set<std::string>> Queued(const std::vector<std::string>& job_ids) override {
    return QueuedSlurmTasks(job_ids);
  }
  absl::Status Cancel(const std::string& task) override { return CancelSlurmTask(task); }

 private:
  const SlurmUpOptions options_;
  const std::string pcsweep_path_;
};

}  // namespace

std::unique_ptr<SlurmBackend> MakeSlurmToolsBackend(SlurmUpOptions options,
                                                    std::string pcsweep_path) {
  return std::make_unique<SlurmToolsBackend>(std::move(options), std::move(pcsweep_path));
}

void AddWorkerSbatchFlags(CLI::App& app, SlurmUpOptions& o, const std::string& prefix) {
  auto flag = [&prefix](const char* name) { return absl::StrCat("--", prefix, name); };
  app.add_option(flag("gpus-per-worker"), o.gpus_per_worker, "GPUs per worker (--gres=gpu:K)")
      ->capture_default_str();
  app.add_option(flag("cpus-per-task"), o.cpus_per_task, "CPUs per worker (default: its slots)");
  app.add_option(flag("partition"), o.partition, "Slurm partition (default: the cluster's)");
  app.add_option(flag("time"), o.time_minutes, "Time limit in minutes (default: the partition's)");
  app.add_option(flag("account"), o.account, "Slurm account to charge");
  app.add_option(flag("sbatch-arg"), o.sbatch_args,
                 absl::StrCat("Extra sbatch option, repeatable; write it with '=': ",
                              flag("sbatch-arg"), "=--mem=16G"))
      ->allow_extra_args(false);
  app.add_option(flag("token-file"), o.token_file,
                 "Worker token file (mode 0600; on a file system the nodes share); with "
                 "per-worker credentials, the token of `worker PREFIX-* ...`");
  app.add_option(flag("tls-ca"), o.tls_ca_file, "Root certificate (PEM) the workers trust");
  app.add_option(flag("tls-cert"), o.tls_cert_file, "Worker certificate (PEM) for mTLS");
  app.add_option(flag("tls-key"), o.tls_key_file, "Private key of the worker certificate (0600)");
  app.add_option(flag("runner"), o.runner_path, "pcsweep-run binary for ML job kinds");
  app.add_option(flag("name-prefix"), o.name_prefix,
                 "Worker names are PREFIX-JOB-TASK.RESTART (credential pattern PREFIX-*)")
      ->capture_default_str();
  app.add_option(flag("dir"), o.dir, "Folder for the script, job ids, Slurm logs and work dirs")
      ->capture_default_str();
}

void AddSlurmAutoscaleFlags(CLI::App& coordinator, SlurmAutoscaleFlags& flags) {
  flags.workers.slots = 1;
  coordinator
      .add_option("--slurm-max-workers", flags.max_workers,
                  "Submit Slurm workers (sbatch arrays) while jobs are unfinished, up to N "
                  "queued or running; 0: none")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  coordinator.add_option("--slurm-slots", flags.workers.slots, "Slots per Slurm worker")
      ->capture_default_str();
  coordinator
      .add_option("--slurm-idle-timeout", flags.idle_timeout_s,
                  "Seconds a Slurm worker may idle before it is cancelled (once not needed)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  coordinator
      .add_option("--slurm-poll-interval", flags.poll_interval_s,
                  "Seconds between squeue calls (for the autoscaler's own jobs only)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  coordinator.add_option("--slurm-coordinator", flags.coordinator,
                         "HOST:PORT the Slurm workers dial (default: the --listen address)");
  AddWorkerSbatchFlags(coordinator, flags.workers, "slurm-");
}

absl::StatusOr<std::unique_ptr<AutoscalerThread>> StartSlurmAutoscaler(
    const SlurmAutoscaleFlags& flags, const std::string& own_address,
    const coordinator::Scheduler& scheduler) {
  auto started = [&]() -> absl::StatusOr<std::unique_ptr<AutoscalerThread>> {
    SlurmUpOptions o = flags.workers;
    o.coordinator = flags.coordinator.empty() ? own_address : flags.coordinator;
    o.workers = 1;  // checked with one; each submission sets its own count
    PCSWEEP_ASSIGN_OR_RETURN(o, PrepareUpOptions(o));
    PCSWEEP_ASSIGN_OR_RETURN(const std::string self, SelfExecutablePath());
    PCSWEEP_RETURN_IF_ERROR(SlurmWorkerScript(o, self).status());
    PCSWEEP_RETURN_IF_ERROR(FindSlurmTool("sbatch").status());
    AutoscalerOptions options;
    options.max_workers = flags.max_workers;
    options.slots = o.slots;
    options.idle_timeout = absl::Seconds(flags.idle_timeout_s);
    options.poll_interval = absl::Seconds(flags.poll_interval_s);
    return AutoscalerThread::Start(options, MakeSchedulerClusterView(scheduler),
                                   MakeSlurmToolsBackend(o, self));
  }();
  if (!started.ok()) return Annotate(started.status(), "--slurm-max-workers");
  return started;
}

void AddSlurmCommand(CLI::App& app, std::function<absl::Status()>* action) {
  auto o = std::make_shared<SlurmUpOptions>();
  auto* slurm = app.add_subcommand(
      "slurm", "Run workers as one Slurm job array (up) and cancel it again (down)");
  slurm->require_subcommand(1);
  auto* up = slurm->add_subcommand("up", "Submit N workers as one sbatch job array");
  up->add_option("--coordinator", o->coordinator,
                 "Coordinator HOST:PORT the workers dial (default: $PCSWEEP_COORDINATOR)");
  up->add_option("--workers", o->workers, "Workers (array tasks), at least 1");
  up->add_option("--slots", o->slots, "Slots (jobs at once) per worker, at least 1");
  AddWorkerSbatchFlags(*up, *o, "");
  up->add_flag("--dry-run", o->dry_run, "Print the script; write and submit nothing");
  up->callback([o, action] {
    *action = [o]() -> absl::Status {
      PCSWEEP_ASSIGN_OR_RETURN(const std::string self, SelfExecutablePath());
      return RunSlurmUp(*o, self, std::cout, std::cerr);
    };
  });
  auto down_dir = std::make_shared<std::string>("pcsweep-slurm");
  auto* down = slurm->add_subcommand("down", "scancel the job arrays that slurm up submitted");
  down->add_option("--dir", *down_dir, "The folder given to slurm up")->capture_default_str();
  down->callback(
      [down_dir, action] { *action = [down_dir] { return RunSlurmDown(*down_dir, std::cout); }; });
}

}  // namespace pcsweep::cli
