#!/usr/bin/env bash
# Installs the Debian packages leakwatch needs to build, test and benchmark, only when one
# is missing (so `make` stays fast on a prepared machine).  Needs root for apt-get.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang llvm bpftool
  libbpf-dev libelf-dev libdw-dev libcapstone-dev zlib1g-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev libyaml-cpp-dev
  libprotobuf-dev protobuf-compiler libcpp-httplib-dev libgrpc++-dev protobuf-compiler-grpc
  libgtest-dev libbenchmark-dev
  bpftrace golang-go prometheus
  clang-19 libclang-rt-19-dev
  libjemalloc2 libjemalloc-dev libtcmalloc-minimal4 libmimalloc2.0 musl-tools
  chromium
)
# The HTML report's scripts are bundled with node and npm (web/); a node that came from
# elsewhere (with its own npm) is used as it is, else Debian's.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
((${#missing[@]} == 0)) && exit 0

echo "leakwatch: installing missing packages: ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  echo "leakwatch: need root to install packages (run: sudo make deps)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
