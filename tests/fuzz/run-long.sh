#!/usr/bin/env bash
# Long fuzzing: builds the fuzz targets with clang's libFuzzer, ASan and UBSan (FNGATE_FUZZ=ON,
# in its own build directory) and runs each for a while. Coverage-guided, so it finds what the
# short `ctest -L fuzz` runs in the normal build cannot.
#
#   tests/fuzz/run-long.sh                       # every target, 300 s each
#   tests/fuzz/run-long.sh --seconds 60 envelope # one target, one minute
#   cmake --build build-fuzz --target fuzz-long  # the same from an FNGATE_FUZZ=ON build
#
# Options: --seconds N (default $FUZZ_SECONDS or 300), --jobs N (parallel fuzzing processes per
# target, default 1: the machine has 2 cores), --build-dir DIR (default build-fuzz; when given,
# the directory is used as it is and only the targets are built).
#
# Each target keeps what it learns across runs in DIR/fuzz-corpus/<target> (grown from the seeds
# in tests/fuzz/corpus/<target>). A crash, leak, UB or failed FUZZ_CHECK stops that target and
# leaves the input in DIR/fuzz-artifacts/<target>/; the script goes on with the others and
# exits 1 at the end. To reproduce and keep one:
#   DIR/tests/fuzz/fuzz_<target> DIR/fuzz-artifacts/<target>/crash-...   # replays it
#   cp DIR/fuzz-artifacts/<target>/crash-... tests/fuzz/corpus/<target>/<what-it-is>  # after the fix
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
seconds="${FUZZ_SECONDS:-300}"
jobs=1
build_dir=""
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) echo "run-long.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if ((${#targets[@]} == 0)); then
  for file in "${repo}"/tests/fuzz/*_fuzz.cc; do
    name="$(basename "${file}" _fuzz.cc)"
    targets+=("${name}")
  done
fi

if [[ -z "${build_dir}" ]]; then
  build_dir="${repo}/build-fuzz"
  bash "${repo}/scripts/install-deps.sh" --fuzz
  if [[ ! -f "${build_dir}/CMakeCache.txt" ]]; then
    CC=clang CXX=clang++ cmake -S "${repo}" -B "${build_dir}" -G Ninja \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFNGATE_FUZZ=ON
  fi
  cmake --build "${build_dir}" -j2 --target "${targets[@]/#/fuzz_}"
fi

parallel=()
if ((jobs > 1)); then
  parallel=(-jobs="${jobs}" -workers="${jobs}")  # Logs go to fuzz-<n>.log in the current directory.
fi

failed=()
for name in "${targets[@]}"; do
  binary="${build_dir}/tests/fuzz/fuzz_${name}"
  corpus="${build_dir}/fuzz-corpus/${name}"
  artifacts="${build_dir}/fuzz-artifacts/${name}"
  mkdir -p "${corpus}" "${artifacts}"
  echo "=== fuzz_${name}: ${seconds} s"
  # The first corpus directory receives what libFuzzer finds; the seeds are read-only.
  if "${binary}" -max_total_time="${seconds}" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 "${parallel[@]}" \
      -dict="${repo}/tests/fuzz/${name}.dict" -artifact_prefix="${artifacts}/" \
      "${corpus}" "${repo}/tests/fuzz/corpus/${name}"; then
    echo "=== fuzz_${name}: no failure ($(ls "${corpus}" | wc -l) inputs in ${corpus})"
  else
    echo "=== fuzz_${name}: FAILED, input in ${artifacts}/"
    failed+=("${name}")
  fi
done

if ((${#failed[@]})); then
  echo "run-long.sh: failures in ${failed[*]}" >&2
  exit 1
fi
echo "run-long.sh: ${targets[*]}: no failure in ${seconds} s each"
