#!/usr/bin/env bash
# Configures and builds fngate with CMake + Ninja.
#
#   bash scripts/build.sh                  # everything (gateway, runtime, functions, tests)
#   bash scripts/build.sh fngate echo_function   # only these targets
#
# Environment:
#   BUILD_DIR    build directory, relative to the repository root or absolute (default: build)
#   BUILD_TYPE   CMake build type (default: RelWithDebInfo)
#   JOBS         parallel compile jobs (default: nproc)
#   CMAKE_ARGS   extra configure arguments, split on spaces (e.g. "-DBUILD_TESTING=OFF")
#   CI=true      turns compiler warnings into errors (-DFNGATE_WERROR=ON)
# Does not install anything: run scripts/install-deps.sh first (scripts/test.sh does).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"

build_dir="${BUILD_DIR:-build}"
build_type="${BUILD_TYPE:-RelWithDebInfo}"
jobs="${JOBS:-$(nproc)}"

configure_args=(-S . -B "${build_dir}" -G Ninja "-DCMAKE_BUILD_TYPE=${build_type}")
if [[ "${CI:-}" == "true" ]]; then
  configure_args+=(-DFNGATE_WERROR=ON)
fi
if [[ -n "${CMAKE_ARGS:-}" ]]; then
  read -r -a extra_args <<<"${CMAKE_ARGS}"
  configure_args+=("${extra_args[@]}")
fi

# A directory configured earlier with another generator cannot be reused by Ninja; say so
# plainly instead of letting CMake fail with a generator mismatch.
cache="${build_dir}/CMakeCache.txt"
if [[ -f "${cache}" ]] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "${cache}"; then
  echo "build: ${build_dir} was configured with another generator;" \
    "remove it or set BUILD_DIR to another directory" >&2
  exit 1
fi

start=${SECONDS}
cmake "${configure_args[@]}"

build_args=(--build "${build_dir}" -j "${jobs}")
if (($# > 0)); then
  build_args+=(--target "$@")
fi
cmake "${build_args[@]}"
echo "build: ${build_dir} (${build_type}) built in $((SECONDS - start)) s"
