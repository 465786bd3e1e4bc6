#!/usr/bin/env bash
# Sanitizer and fuzzing checks with clang, each in its own build folder (ccache shared):
#   tools/sanitize.sh asan   ASan + UBSan + libFuzzer instrumentation (build-asan): every
#                            test binary that does not link libtorch, the fuzz corpora, then
#                            each fuzz target for PCSWEEP_FUZZ_SECONDS (default 60;
#                            tools/test.sh uses 30)
#   tools/sanitize.sh tsan   TSan (build-tsan): the coordinator and worker tests that run no
#                            gRPC channel (see run_tsan)
#   tools/sanitize.sh all    both (what .ci/run runs)
# Every build is clang with -Werror=thread-safety, so the lock annotations are checked too.
# Extra arguments go to ctest. A fuzzer's crash input lands in build-asan/fuzz/NAME/crashes/:
# add it to the target's fuzz_corpus folder, where the *_corpus tests replay it in every build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode=${1:-all}
shift || true
bash tools/setup.sh
jobs=${PCSWEEP_BUILD_JOBS:-$(nproc)}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}

configure() {  # folder, sanitizers, extra cmake arguments...
  local dir=$1 sanitize=$2
  shift 2
  # Every run (a few seconds on an existing folder), so options such as the fuzzing time apply.
  CC=clang CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DPCSWEEP_SANITIZE="$sanitize" "$@" >/dev/null
}

# The torch-free tests (build/torch_free_tests.txt: "CTEST_NAME TARGET FOLDER" lines) whose
# source folder matches the extended regular expression $2: column $3 of those lines.
torch_free() {
  awk -v re="$2" -v col="$3" '$3 ~ re {print $col}' "$1/torch_free_tests.txt"
}

ctest_pattern() {  # names on stdin -> ^(a|b|c)$
  local names
  names=$(paste -sd '|')
  [[ -n $names ]] || { echo "sanitize: no tests selected" >&2; exit 1; }
  echo "^(${names})\$"
}

run_asan() {
  configure build-asan address,undefined -DPCSWEEP_FUZZ=ON \
    -DPCSWEEP_FUZZ_SECONDS="${PCSWEEP_FUZZ_SECONDS:-60}"
  cmake --build build-asan -j "$jobs" --target torch_free_tests fuzzers
  # Leaks are reported (detect_leaks) and fail the test; UBSan stops at the first report.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  (cd build-asan && ctest --output-on-failure --no-tests=error -j "${PCSWEEP_TEST_JOBS:-2}" \
    --timeout 900 -R "$(torch_free . . 1 | ctest_pattern)" -LE 'system|browser|demo|slurm' "$@")
  (cd build-asan && ctest --output-on-failure --no-tests=error -j "${PCSWEEP_TEST_JOBS:-2}" \
    -L '^fuzz$' "$@")
}

# TSan sees only instrumented code, and Debian's libgrpc is not: its threads hand calls to our
# callbacks through synchronisation TSan cannot see, so every test that runs a gRPC channel
# reports races inside gRPC's own headers. Those tests run under ASan; TSan runs the rest of
# the coordinator and the worker (store, scheduler, worker daemon on the fake client, job
# processes, spool), where every thread is ours.
readonly tsan_grpc_tests='^(coordinator_server_test|coordinator_http_test|coordinator_auth_server_test|coordinator_client_test)$'

run_tsan() {
  configure build-tsan thread
  # Only the coordinator's and the worker's tests (and what they link): not the engine.
  cmake --build build-tsan -j "$jobs" --target $(torch_free build-tsan '^(coordinator|worker)' 2)
  export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tools/tsan.supp}
  (cd build-tsan && ctest --output-on-failure --no-tests=error -j "${PCSWEEP_TEST_JOBS:-2}" \
    --timeout 900 -R "$(torch_free . '^(coordinator|worker)' 1 | ctest_pattern)" \
    -E "$tsan_grpc_tests" "$@")
}

case $mode in
  asan) run_asan "$@" ;;
  tsan) run_tsan "$@" ;;
  all) run_asan "$@" && run_tsan "$@" ;;
  *) echo "usage: tools/sanitize.sh asan|tsan|all [ctest arguments]" >&2; exit 1 ;;
esac
