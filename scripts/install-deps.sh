#!/usr/bin/env bash
# Installs, from Debian 12's own archive, everything fngate's build and tests need.
#
#   bash scripts/install-deps.sh            # as root, or as a user with sudo
#   bash scripts/install-deps.sh --fuzz     # also clang and libFuzzer, for tests/fuzz/run-long.sh
#
# Idempotent and fast on a second run: when every package is already installed (dpkg says
# "install ok installed"), it does not touch apt at all, so it also works without root then.
# Non-interactive (no prompts, no stdin), as CI and `docker build` need.
# Used by scripts/test.sh, scripts/run-local.sh, .ci/run and the build stage of the images.
set -euo pipefail

# One line per reason, so a reader can tell why each package is here.
PACKAGES=(
  build-essential        # g++ 12, make, libc headers
  cmake                  # 3.25: the build
  ninja-build            # the generator scripts/build.sh uses
  ccache                 # picked up by CMakeLists.txt when present; makes rebuilds cheap
  pkg-config             # gRPC's CMake config looks up some of its dependencies with it
  libgrpc++-dev          # gRPC 1.51 (C++ API, CMake config)
  protobuf-compiler-grpc # grpc_cpp_plugin, for the generated services
  libprotobuf-dev        # Protobuf 3.21 runtime + well-known .proto files
  protobuf-compiler      # protoc
  libboost1.81-dev       # Beast and Asio (header-only parts)
  libboost-json1.81-dev  # Boost.JSON: parses the envelope protocol's client frames (untrusted)
  libabsl-dev            # Abseil 20220623: Status, StatusOr, strings, synchronization
  libssl-dev             # OpenSSL 3: connection ids, HMAC, TLS
  openssl                # the openssl command: tests make throw-away CAs and certificates
  libgtest-dev           # GoogleTest 1.12
  libgmock-dev           # GoogleMock 1.12
  libyaml-cpp-dev        # yaml-cpp 0.7: the config file
  libjemalloc-dev        # jemalloc 5.3: the servers' allocator (faster, smaller than glibc's)
  zlib1g-dev             # zlib: permessage-deflate (RFC 7692) in the gateway's own WebSocket codec
)

# Only long fuzzing needs clang (libFuzzer, ASan, UBSan); the normal build and CI use g++.
if [[ "${1:-}" == "--fuzz" ]]; then
  PACKAGES+=(
    clang                # clang 14: -fsanitize=fuzzer,address,undefined
    libclang-rt-14-dev   # the libFuzzer and sanitizer runtimes
  )
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  # dpkg-query prints nothing useful and fails for a package it has never heard of.
  status="$(dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null || true)"
  if [[ "${status}" != "install ok installed" ]]; then
    missing+=("${pkg}")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"

as_root=()
if ((EUID != 0)); then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: missing packages and not root (and no sudo): ${missing[*]}" >&2
    exit 1
  fi
  # -n: never prompt (CI has no stdin); fails at once when a password would be needed.
  as_root=(sudo -n)
fi

export DEBIAN_FRONTEND=noninteractive
# Wait for a concurrent apt/dpkg (e.g. unattended-upgrades on a fresh machine) instead of
# failing at once; retry flaky downloads.
readonly APT_OPTS=(-o DPkg::Lock::Timeout=300 -o Acquire::Retries=3)

"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install -y -q \
  --no-install-recommends "${missing[@]}"

echo "install-deps: done"
