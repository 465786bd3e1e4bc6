#!/usr/bin/env bash
# Installs everything pcsweep needs from Debian 12 packages. Idempotent: a second
# run installs nothing and finishes in seconds.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libsqlitecpp-dev libsqlite3-dev sqlite3
  libspdlog-dev libfmt-dev libyaml-cpp-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libtorch-dev libopenblas0-pthread
  libboost-math-dev libstb-dev libsentencepiece-dev texlive-latex-base python3-optuna
  libcpp-httplib-dev chromium fonts-dejavu-core
  openssl python3-grpcio  # tests: certificates made at test time, a foreign gRPC client
  slurm-wlm munge  # tools/slurm-local.sh: a one-node Slurm cluster for the slurm tests
  clang libclang-rt-14-dev  # tools/sanitize.sh: ASan/UBSan/TSan builds and libFuzzer
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "setup: installed ${#missing[@]} packages"
fi
