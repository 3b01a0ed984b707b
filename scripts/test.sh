#!/usr/bin/env bash
# The README's test command: installs what is missing, builds everything, runs every test.
#
#   bash scripts/test.sh                 # the whole suite (what CI runs)
#   bash scripts/test.sh -L e2e          # extra arguments go to ctest (-R regex, -L label, ...)
#   bash scripts/test.sh -L soak         # the soak smoke run, left out by default
#
# Exits with ctest's exit code. Each test has a timeout set in CMake (fngate_cc_test); a test
# without one gets 300 s here. A tree with no tests at all fails rather than passing silently.
# Environment: BUILD_DIR (default build) and the others scripts/build.sh takes.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"
build_dir="${BUILD_DIR:-build}"

start=${SECONDS}
bash scripts/install-deps.sh
build_start=${SECONDS}
bash scripts/build.sh
build_seconds=$((SECONDS - build_start))

# The soak run's smoke test (label soak, ~20 s of load and chaos) is left out unless asked
# for: bash scripts/test.sh -L soak.
if (( $# == 0 )); then set -- -LE soak; fi
test_start=${SECONDS}
ctest_status=0
ctest --test-dir "${build_dir}" --output-on-failure -j2 --timeout 300 --no-tests=error "$@" ||
  ctest_status=$?
test_seconds=$((SECONDS - test_start))

echo "test: build ${build_seconds} s, tests ${test_seconds} s," \
  "wall time $((SECONDS - start)) s; ctest exit code ${ctest_status}"
exit "${ctest_status}"
