#!/usr/bin/env bash
# bench/run.sh: the benchmarks of issue 3, in one command. Builds (Release, build-bench/), then
# runs every scenario against fngate (gateway + echo and bench workers), the raw Beast echo
# server (the ceiling of our own stack) and the Node.js `ws` echo server (what self-hosting
# users run), servers pinned to one core and the load tool (tests/load/fngate_load) to the
# other. Each figure is repeated and reported as the median, and as a ratio to the baselines
# measured in the same run.
#
#   bash bench/run.sh                 # full run, 3 repeats (about 10 minutes on 2 cores)
#   bash bench/run.sh --repeat=5      # more repeats
#   bash bench/run.sh --write-docs    # also rewrite the generated part of docs/benchmarks.md
#                                     # and docs/benchmarks.png from this run
#   bash bench/run.sh --quick --no-build --build-dir=build   # the test suite's smoke run:
#                                     # tiny counts, a few seconds per target, no timing claims
#
# Flags:
#   --repeat=N          runs per figure (default 3; --quick: 1)
#   --quick             tiny scenarios; checks that the tool and this script work
#   --no-build          use the binaries already in the build dir
#   --build-dir=DIR     default build-bench (relative to the repository root, or absolute)
#   --out=DIR           results folder (default bench/results/<UTC timestamp>)
#   --targets=LIST      comma list of fngate,beast,node (default all three)
#   --only=LIST         comma list of scenario ids (see SCENARIOS below)
#   --write-docs        regenerate the table part of docs/benchmarks.md and docs/benchmarks.png
# Environment: WORKER_ARGS extra flags for the echo and bench workers (default
# --handler_threads=0: their handlers never block); FNGATE_ARGS extra gateway flags (default
# --io_threads=1 and streams=1, the server side has one core and one worker per function, and
# max_in_flight=16 for both functions);
# SERVER_CPU / LOAD_CPU (default 0 / 1).
#
# Writes <out>/results.json (machine, command, every run, medians, ratios, targets),
# <out>/results.md (tables), <out>/plot.png (throughput, p99 latency and memory per scenario;
# gnuplot-nox is installed from Debian when missing, except with --quick, which then skips the
# plot), <out>/raw.jsonl (one line per load-tool run) and <out>/logs/ (server output).
# Exit code: 0 when every run measured; 1 when one failed (the others still ran and are
# reported); 2 for bad flags.
#
# Processes: every server is started by this script and stopped by PID (SIGTERM, then SIGKILL
# after a grace), on every exit path (trap); nothing else is touched. Only 127.0.0.1 is used.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"

repeat=""
quick=0
no_build=0
build_dir="build-bench"
out_dir=""
targets="fngate,beast,node"
only=""
write_docs=0
for arg in "$@"; do
  case "${arg}" in
    --repeat=*) repeat="${arg#*=}" ;;
    --quick) quick=1 ;;
    --no-build) no_build=1 ;;
    --build-dir=*) build_dir="${arg#*=}" ;;
    --out=*) out_dir="${arg#*=}" ;;
    --targets=*) targets="${arg#*=}" ;;
    --only=*) only="${arg#*=}" ;;
    --write-docs) write_docs=1 ;;
    -h|--help) sed -n '2,36p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "bench/run.sh: unknown flag ${arg} (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z "${repeat}" ]]; then repeat=$((quick ? 1 : 3)); fi
if ! [[ "${repeat}" =~ ^[1-9][0-9]*$ ]] || (( repeat > 20 )); then
  echo "bench/run.sh: --repeat wants 1..20" >&2
  exit 2
fi
[[ "${build_dir}" = /* ]] || build_dir="${repo_root}/${build_dir}"
if [[ -z "${out_dir}" ]]; then out_dir="${repo_root}/bench/results/$(date -u +%Y%m%dT%H%M%SZ)"; fi
[[ "${out_dir}" = /* ]] || out_dir="${repo_root}/${out_dir}"
mkdir -p "${out_dir}/logs"
raw="${out_dir}/raw.jsonl"
: > "${raw}"
command_line="bash bench/run.sh$(printf ' %s' "$@")"
command_line="${command_line% }"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- processes we started, stopped by PID on every exit path ------------------------------

started_pids=()

stop_pid() {  # stop_pid PID [GRACE_SECONDS]
  local pid="$1" grace="${2:-5}" i
  kill -0 "${pid}" 2>/dev/null || { wait "${pid}" 2>/dev/null || true; return 0; }
  kill -TERM "${pid}" 2>/dev/null || true
  for ((i = 0; i < grace * 20; i++)); do
    kill -0 "${pid}" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "${pid}" 2>/dev/null; then
    log "pid ${pid} still running after ${grace} s: SIGKILL"
    kill -KILL "${pid}" 2>/dev/null || true
  fi
  wait "${pid}" 2>/dev/null || true
}

forget_pid() {
  local pid="$1" kept=() p
  for p in "${started_pids[@]}"; do [[ "${p}" == "${pid}" ]] || kept+=("${p}"); done
  started_pids=("${kept[@]+"${kept[@]}"}")
}

cleanup() {  # newest first: a gateway stops before the workers it calls
  local i
  for ((i = ${#started_pids[@]} - 1; i >= 0; i--)); do stop_pid "${started_pids[i]}" 3; done
  started_pids=()
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

# --- CPUs -------------------------------------------------------------------------------------

server_cpu="${SERVER_CPU:-0}"
load_cpu="${LOAD_CPU:-1}"
server_pin=()
load_pin=()
if command -v taskset >/dev/null && (( $(nproc) >= 2 )); then
  server_pin=(taskset -c "${server_cpu}")
  load_pin=(taskset -c "${load_cpu}")
else
  log "fewer than 2 CPUs or no taskset: running unpinned"
fi

# --- build ------------------------------------------------------------------------------------

bin_targets=(fngate_load beast_echo_server fngate echo_function bench_function)
if (( ! no_build )); then
  log "building ${bin_targets[*]} (Release) in ${build_dir}"
  cmake -S . -B "${build_dir}" -G Ninja -DCMAKE_BUILD_TYPE=Release >"${out_dir}/logs/cmake.log" 2>&1 ||
    { tail -30 "${out_dir}/logs/cmake.log" >&2; exit 1; }
  cmake --build "${build_dir}" --target "${bin_targets[@]}" -j2 >"${out_dir}/logs/build.log" 2>&1 ||
    { tail -40 "${out_dir}/logs/build.log" >&2; exit 1; }
fi
find_bin() {  # find_bin NAME: the binary under the build dir
  local found
  found="$(find "${build_dir}" -maxdepth 4 -type f -name "$1" -perm -u+x -print -quit 2>/dev/null)"
  if [[ -z "${found}" ]]; then
    echo "bench/run.sh: $1 not found under ${build_dir} (build it, or drop --no-build)" >&2
    exit 1
  fi
  echo "${found}"
}
load_bin="$(find_bin fngate_load)"
beast_bin="$(find_bin beast_echo_server)"
gateway_bin="$(find_bin fngate)"
echo_bin="$(find_bin echo_function)"
bench_bin="$(find_bin bench_function)"

# --- targets ----------------------------------------------------------------------------------

node_dir="${repo_root}/tests/load/node"
want_target() { [[ ",${targets}," == *",$1,"* ]]; }
if want_target node; then
  if ! command -v node >/dev/null; then
    log "node not found: Node baseline skipped"
    targets="${targets//node/}"
  elif [[ ! -d "${node_dir}/node_modules/ws" ]]; then
    if (( quick )); then
      log "tests/load/node/node_modules missing: Node baseline skipped (npm ci --prefix tests/load/node)"
      targets="${targets//node/}"
    else
      log "installing the Node baseline's packages (npm ci)"
      npm ci --prefix "${node_dir}" --no-audit --no-fund >"${out_dir}/logs/npm.log" 2>&1 ||
        { log "npm ci failed: Node baseline skipped (see logs/npm.log)"; targets="${targets//node/}"; }
    fi
  fi
fi

# Waits for the READY line of a process we started: wait_ready PID OUTFILE SECONDS
wait_ready() {
  local pid="$1" file="$2" seconds="$3" i
  for ((i = 0; i < seconds * 20; i++)); do
    if grep -q '^READY ' "${file}" 2>/dev/null; then return 0; fi
    kill -0 "${pid}" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# wait_http_ok PORT PATH SECONDS: until GET http://127.0.0.1:PORT/PATH answers 200.
wait_http_ok() {
  python3 - "$@" <<'PY'
import http.client, sys, time
port, path, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", path)
        if conn.getresponse().status == 200:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.05)
sys.exit(1)
PY
}

ready_port() { sed -n "s/^READY .*\\b$2=\\([0-9]*\\).*/\\1/p" "$1" | head -1; }

# start_proc NAME CMD...: starts CMD pinned to the server CPU; sets proc_pid and proc_out.
start_proc() {
  local name="$1"
  shift
  proc_out="${out_dir}/logs/${name}.${run_tag}.out"
  # Emptied here, not only by the child's redirection: the READY wait below must never read a
  # line an earlier run left in this file.
  : >"${proc_out}"
  "${server_pin[@]+"${server_pin[@]}"}" "$@" >>"${proc_out}" 2>"${proc_out%.out}.err" &
  proc_pid=$!
  started_pids+=("${proc_pid}")
  if ! wait_ready "${proc_pid}" "${proc_out}" 30; then
    log "${name} did not print READY; its stderr:"
    tail -20 "${proc_out%.out}.err" >&2 || true
    return 1
  fi
}

# start_target TARGET: sets ws_port, control_port, server_pid (whose RSS counts), cpu_pids
# (NAME=PID of every server-side process, for the CPU shares) and target_pids (all of the
# target's processes).
start_target() {
  control_port=""
  target_pids=()
  case "$1" in
    fngate)
      # echo and bench never block, so their handlers run on gRPC's threads (no hand-off to a
      # handler pool); WORKER_ARGS overrides.
      read -r -a worker_extra <<<"${WORKER_ARGS:---handler_threads=0}"
      start_proc echo_function "${echo_bin}" --listen=127.0.0.1:0 --log_level=warning \
        "${worker_extra[@]}" ||
        { target_pids=("${proc_pid}"); return 1; }
      local echo_pid="${proc_pid}" echo_port
      echo_port="$(ready_port "${proc_out}" grpc)"
      start_proc bench_function "${bench_bin}" --listen=127.0.0.1:0 --log_level=warning \
        "${worker_extra[@]}" ||
        { target_pids=("${proc_pid}" "${echo_pid}"); return 1; }
      local bench_pid="${proc_pid}" bench_port
      bench_port="$(ready_port "${proc_out}" grpc)"
      local extra=()
      # max_in_flight=16: a connection may have 16 message events in flight, as the Node and
      # Beast servers handle each message as it comes (only the 16-in-flight rows depend on it).
      # streams=1: each function has one worker on the one server core, so one Events stream
      # carries every batch (the default 4, meant for several replicas or handler threads,
      # splits each burst into four writes, four wake-ups and four reply batches).
      read -r -a extra <<<"${FNGATE_ARGS:---io_threads=1 --functions[0].streams=1 --functions[1].streams=1 --functions[0].max_in_flight=16 --functions[1].max_in_flight=16}"
      # Stopped in this order: the gateway first (it drains its clients), then the workers.
      start_proc fngate "${gateway_bin}" --listen=127.0.0.1:0 --control_listen=127.0.0.1:0 \
        --admin_listen=127.0.0.1:0 --log_level=warning --drain_grace_ms=3000 \
        --function="echo=127.0.0.1:${echo_port}" --function="bench=127.0.0.1:${bench_port}" \
        "${extra[@]+"${extra[@]}"}" || { target_pids=("${proc_pid}" "${echo_pid}" "${bench_pid}"); return 1; }
      server_pid="${proc_pid}"
      target_pids=("${server_pid}" "${echo_pid}" "${bench_pid}")
      cpu_pids="fngate=${server_pid},echo_function=${echo_pid},bench_function=${bench_pid}"
      ws_port="$(ready_port "${proc_out}" ws)"
      control_port="$(ready_port "${proc_out}" control)"
      # READY means bound; /readyz answers 200 once every function has a reachable worker.
      wait_http_ok "$(ready_port "${proc_out}" admin)" /readyz 20 ||
        { log "fngate /readyz not 200 within 20 s"; return 1; }
      ;;
    beast)
      start_proc beast_echo_server "${beast_bin}" --listen=127.0.0.1:0 ||
        { target_pids=("${proc_pid}"); return 1; }
      server_pid="${proc_pid}"
      cpu_pids="server=${server_pid}"
      target_pids=("${server_pid}")
      ws_port="$(ready_port "${proc_out}" ws)"
      ;;
    node)
      start_proc node_ws_echo node "${node_dir}/ws_echo.js" --listen=127.0.0.1:0 ||
        { target_pids=("${proc_pid}"); return 1; }
      server_pid="${proc_pid}"
      cpu_pids="server=${server_pid}"
      target_pids=("${server_pid}")
      ws_port="$(ready_port "${proc_out}" ws)"
      ;;
  esac
}

stop_target() {  # in target_pids order
  local pid
  for pid in "${target_pids[@]+"${target_pids[@]}"}"; do
    stop_pid "${pid}" 8
    forget_pid "${pid}"
  done
  target_pids=()
}

# --- scenarios --------------------------------------------------------------------------------
# id|targets|path on fngate|fngate_load arguments. The path on the baselines is always /echo.

if (( quick )); then
  t="--warmup=0.2 --duration=0.5"
  SCENARIOS=(
    "echo_100x1_64|fngate,beast,node|/echo|echo --conns=4 --inflight=1 --size=64 ${t}"
    "echo_100x16_64|fngate,beast,node|/echo|echo --conns=4 --inflight=4 --size=64 ${t}"
    "echo_1000x1_1k|fngate,beast,node|/echo|echo --conns=8 --inflight=1 --size=1024 ${t}"
    "latency_10k|fngate,beast,node|/echo|latency --conns=4 --rate=500 --size=64 ${t}"
    "connect|fngate,beast,node|/echo|connect --concurrency=4 --sources=2 ${t}"
    "idle_10k|fngate,beast,node|/echo|idle --conns=50 --settle=0.2"
    "idle_19k|fngate,beast,node|/echo|idle --conns=80 --settle=0.2"
    "broadcast_10k|fngate,beast,node|/bench|broadcast --conns=50 --rounds=3 --size=64"
    "push|fngate|/bench|push --conns=4 --inflight=4 --size=64 ${t}"
  )
else
  t="--warmup=1 --duration=3"
  SCENARIOS=(
    "echo_100x1_64|fngate,beast,node|/echo|echo --conns=100 --inflight=1 --size=64 ${t}"
    "echo_100x16_64|fngate,beast,node|/echo|echo --conns=100 --inflight=16 --size=64 ${t}"
    "echo_1000x1_1k|fngate,beast,node|/echo|echo --conns=1000 --inflight=1 --size=1024 ${t}"
    "latency_10k|fngate,beast,node|/echo|latency --conns=100 --rate=10000 --size=64 ${t}"
    "connect|fngate,beast,node|/echo|connect --concurrency=32 --sources=8 ${t}"
    "idle_10k|fngate,beast,node|/echo|idle --conns=10000 --settle=1"
    "idle_19k|fngate,beast,node|/echo|idle --conns=19000 --settle=1"
    "broadcast_10k|fngate,beast,node|/bench|broadcast --conns=10000 --rounds=10 --size=64"
    "push|fngate|/bench|push --conns=100 --inflight=64 --size=64 ${t}"
  )
fi

failures=0
run_tag=""

# What one fngate_load result says, for the log and the retry decision (python3: no jq needed).
# Prints: "<other cores used by the rest of the machine> <one-line summary>".
describe_result() {
  python3 -c '
import json, sys
try:
    r = json.loads(sys.argv[1])
except ValueError:
    print("0 no output"); sys.exit()
parts = []
if r.get("throughput") is not None: parts.append("%.0f/s" % r["throughput"])
if r.get("bytes_per_conn") is not None: parts.append("%.0f B/conn" % r["bytes_per_conn"])
lat = r.get("latency_us") or {}
if lat.get("count"): parts.append("p50 %s us, p99 %s us" % (lat["p50"], lat["p99"]))
if not r.get("ok"): parts.append("error: %s" % (r.get("error") or r.get("first_error")))
other = (r.get("cpu") or {}).get("other") or 0
if other > 0.05: parts.append("other load %.2f cores" % other)
print("%.3f %s" % (other, ", ".join(parts)))
' "$1" 2>/dev/null || echo "0 (unreadable result)"
}

# A run during which the rest of the machine used more than this many cores is "disturbed"
# (another build, say): it is run again, up to retries_per_run more times, after waiting (at
# most quiet_wait_s) for the machine to go quiet. Memory scenarios are never disturbed.
disturbed_limit="${DISTURBED_LIMIT:-0.25}"
retries_per_run=$((quick ? 0 : 2))
retry_budget=$((quick ? 0 : 12))
quiet_wait_s="${QUIET_WAIT_S:-20}"

# Waits until the rest of the machine uses under disturbed_limit cores over a second.
wait_quiet() {
  local i busy
  for ((i = 0; i < quiet_wait_s; i++)); do
    busy="$(python3 -c '
import os, time
def sample():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)
b0, t0 = sample(); time.sleep(1); b1, t1 = sample()
print((b1 - b0) / max(1, t1 - t0) * os.cpu_count())
')"
    if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" \
        "${busy}" "${disturbed_limit}"; then
      return 0
    fi
  done
  log "machine still busy after ${quiet_wait_s} s (${busy} cores); going on"
}

# run_scenario TARGET REPEAT SPEC: one figure (retried if disturbed), appended to raw.jsonl.
run_scenario() {
  local target="$1" rep="$2" spec="$3" id targets_of path args
  IFS='|' read -r id targets_of path args <<<"${spec}"
  local url="ws://127.0.0.1:${ws_port}/echo"
  local -a argv
  read -r -a argv <<<"${args}"
  if [[ "${target}" == fngate ]]; then
    url="ws://127.0.0.1:${ws_port}${path}"
    argv+=("--control=127.0.0.1:${control_port}")
    if [[ "${argv[0]}" == broadcast ]]; then argv+=(--broadcast_via=control); fi
  fi
  if [[ "${argv[0]}" == idle ]]; then argv+=("--server_pid=${server_pid}"); fi
  argv+=("--cpu_pids=${cpu_pids}")
  local attempt result rc server_alive description other summary disturbed
  for ((attempt = 0; ; attempt++)); do
    rc=0
    result="$("${load_pin[@]+"${load_pin[@]}"}" "${load_bin}" "${argv[@]}" "--url=${url}" --json \
      --label="${target}/${id}/${rep}" 2>>"${out_dir}/logs/fngate_load.err")" || rc=$?
    if [[ "${result}" != \{* ]]; then result=null; fi
    server_alive=true
    kill -0 "${server_pid}" 2>/dev/null || server_alive=false
    description="$(describe_result "${result}")"
    other="${description%% *}"
    summary="${description#* }"
    disturbed=false
    if [[ "${argv[0]}" != idle ]] && python3 -c \
        "import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)" \
        "${other}" "${disturbed_limit}"; then
      disturbed=true
    fi
    printf '{"target": "%s", "id": "%s", "repeat": %d, "attempt": %d, "exit": %d, "server_alive": %s, "disturbed": %s, "result": %s}\n' \
      "${target}" "${id}" "${rep}" "${attempt}" "${rc}" "${server_alive}" "${disturbed}" "${result}" >>"${raw}"
    if (( rc != 0 )) || [[ "${server_alive}" != true ]]; then
      failures=$((failures + 1))
      log "FAILED ${target} ${id} #${rep} (exit ${rc}, server alive ${server_alive}): ${summary}"
      return 1
    fi
    log "${target} ${id} #${rep}: ${summary}"
    if [[ "${disturbed}" != true ]] || (( attempt >= retries_per_run || retry_budget <= 0 )); then
      return 0
    fi
    retry_budget=$((retry_budget - 1))
    log "disturbed (the rest of the machine used ${other} cores): waiting for quiet, then again"
    wait_quiet
  done
}

has_target() { [[ ",$1," == *",$2,"* ]]; }

log "results in ${out_dir}"
for ((rep = 1; rep <= repeat; rep++)); do
  for target in fngate beast node; do
    want_target "${target}" || continue
    # One server for the scenarios that do not care about its history; a fresh one for each
    # memory scenario (an allocator keeps what earlier scenarios made it take).
    shared_up=0
    for spec in "${SCENARIOS[@]}"; do
      IFS='|' read -r id targets_of _ _ <<<"${spec}"
      has_target "${targets_of}" "${target}" || continue
      [[ -z "${only}" ]] || has_target "${only}" "${id}" || continue
      run_tag="${target}.${id}.${rep}"
      if [[ "${id}" == idle_* ]]; then
        if (( shared_up )); then stop_target; shared_up=0; fi
        if start_target "${target}"; then
          run_scenario "${target}" "${rep}" "${spec}" || true
        else
          failures=$((failures + 1))
        fi
        stop_target
        continue
      fi
      if (( shared_up )) && ! kill -0 "${server_pid}" 2>/dev/null; then
        stop_target
        shared_up=0
      fi
      if (( ! shared_up )); then
        if ! start_target "${target}"; then
          failures=$((failures + 1))
          stop_target
          continue
        fi
        shared_up=1
      fi
      run_scenario "${target}" "${rep}" "${spec}" || true
    done
    if (( shared_up )); then stop_target; fi
  done
done

# --- plot tool --------------------------------------------------------------------------------

if ! command -v gnuplot >/dev/null && (( ! quick )); then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    log "installing gnuplot-nox (Debian) for the plot"
    { apt-get install -y gnuplot-nox || { apt-get update && apt-get install -y gnuplot-nox; }; } \
      >"${out_dir}/logs/apt.log" 2>&1 || log "could not install gnuplot-nox: no plot (logs/apt.log)"
  else
    log "gnuplot missing and cannot install it: no plot"
  fi
fi

# --- report -----------------------------------------------------------------------------------

summarize_args=(--out="${out_dir}" --command="${command_line}" --repeat="${repeat}")
if (( quick )); then summarize_args+=(--quick); fi
if (( write_docs )); then summarize_args+=(--write-docs="${repo_root}/docs"); fi
python3 "${repo_root}/bench/summarize.py" "${summarize_args[@]}"
log "wrote ${out_dir}/results.json, results.md$([[ -f "${out_dir}/plot.png" ]] && echo ", plot.png")"
cat "${out_dir}/results.md"

if (( failures > 0 )); then
  log "${failures} run(s) failed; see raw.jsonl and logs/"
  exit 1
fi
