#!/usr/bin/env bash
# tests/soak/run.sh: the soak and chaos run (issue 5 part 7). Two gateways route the function
# `soak` to two `bench` workers; the client tool (tests/soak/fngate_soak) holds thousands of
# churning connections over both gateways and sends messages that ask for acks (envelope
# protocol fngate.v1, or echoes on raw connections), while this script, every --period
# seconds, in turn kills a worker (SIGKILL) and restarts it on its address, or drains a
# gateway (SIGTERM) and restarts it on its port. At the end every process is stopped
# (gateways first, so they deliver their disconnects), and tests/soak/check.py checks the
# workers' EVENT lines against what the clients saw:
#   - every connection the gateway accepted (the client learnt its id) got exactly one
#     disconnect event (a redelivery after a worker died carries the same request id and
#     counts once; it is reported as redelivered),
#   - every message acknowledged OK reached a worker (its message event, by connection id and
#     sequence number), and no message event was repeated,
# and prints the counts (connections, messages, acks ok/error, kills, restarts) and a verdict.
#
#   bash tests/soak/run.sh                       # 5 minutes, 2000 connections, 400 msg/s
#   bash tests/soak/run.sh --quick               # ~20 s with small counts (ctest soak_quick)
#   bash tests/soak/run.sh --duration=600 --conns=5000 --rate=1000
#
# Flags:
#   --duration=SECONDS  load time (default 300; --quick 14); the whole run takes ~15 s more
#   --conns=N           connections held at once (default 2000; --quick 200)
#   --rate=N            messages per second over all connections (default 400; --quick 200)
#   --period=SECONDS    time between two chaos actions (default 20; --quick 3)
#   --life=MIN:MAX      connection lifetime in seconds (default 5:60; --quick 2:8)
#   --build-dir=DIR     where the binaries are (default build)
#   --out=DIR           logs and results (default tests/soak/results/<UTC timestamp>)
# Exit code: 0 PASS, 1 FAIL (or a process misbehaved), 2 bad flags.
#
# Processes: every one is started here and stopped by PID on every exit path (trap); nothing
# else is touched. Only 127.0.0.1 is used. Bounded: the client tool has its own deadline and
# every wait here has a timeout.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "${repo_root}"

quick=0
duration=""
conns=""
rate=""
period=""
life=""
build_dir="build"
out_dir=""
for arg in "$@"; do
  case "${arg}" in
    --quick) quick=1 ;;
    --duration=*) duration="${arg#*=}" ;;
    --conns=*) conns="${arg#*=}" ;;
    --rate=*) rate="${arg#*=}" ;;
    --period=*) period="${arg#*=}" ;;
    --life=*) life="${arg#*=}" ;;
    --build-dir=*) build_dir="${arg#*=}" ;;
    --out=*) out_dir="${arg#*=}" ;;
    -h|--help) sed -n '2,32p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "tests/soak/run.sh: unknown flag ${arg} (see --help)" >&2; exit 2 ;;
  esac
done
if (( quick )); then
  : "${duration:=14}" "${conns:=200}" "${rate:=200}" "${period:=3}" "${life:=2:8}"
else
  : "${duration:=300}" "${conns:=2000}" "${rate:=400}" "${period:=20}" "${life:=5:60}"
fi
for pair in "duration:${duration}" "conns:${conns}" "rate:${rate}" "period:${period}"; do
  if ! [[ "${pair#*:}" =~ ^[1-9][0-9]*$ ]]; then
    echo "tests/soak/run.sh: --${pair%%:*} wants a positive integer, got '${pair#*:}'" >&2
    exit 2
  fi
done
if ! [[ "${life}" =~ ^[0-9]+:[0-9]+$ ]] || (( ${life%:*} < 1 || ${life#*:} < ${life%:*} )); then
  echo "tests/soak/run.sh: --life wants MIN:MAX seconds, 1 <= MIN <= MAX, got '${life}'" >&2
  exit 2
fi
[[ "${build_dir}" = /* ]] || build_dir="${repo_root}/${build_dir}"
if [[ -z "${out_dir}" ]]; then out_dir="${repo_root}/tests/soak/results/$(date -u +%Y%m%dT%H%M%SZ)"; fi
[[ "${out_dir}" = /* ]] || out_dir="${repo_root}/${out_dir}"
mkdir -p "${out_dir}"
rm -f "${out_dir}"/*.log "${out_dir}"/*.out "${out_dir}"/*.err "${out_dir}"/summary.json

log() { printf '[soak %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

find_bin() {
  local found
  found="$(find "${build_dir}" -maxdepth 4 -type f -name "$1" -perm -u+x -print -quit 2>/dev/null)"
  if [[ -z "${found}" ]]; then
    echo "tests/soak/run.sh: $1 not found under ${build_dir} (cmake --build ${build_dir})" >&2
    exit 2
  fi
  echo "${found}"
}
gateway_bin="$(find_bin fngate)"
worker_bin="$(find_bin bench_function)"
soak_bin="$(find_bin fngate_soak)"

# Thousands of sockets on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (( $(ulimit -n) < conns * 2 + 256 )); then
  log "warning: open-file limit $(ulimit -n) is low for ${conns} connections"
fi

# --- processes we started, stopped by PID ------------------------------------------------------

declare -A pid_of=()   # name -> pid of its current incarnation
stop_name() {  # stop_name NAME [GRACE_SECONDS]: SIGTERM, then SIGKILL after the grace
  local name="$1" grace="${2:-15}" pid i
  pid="${pid_of[${name}]:-}"
  [[ -n "${pid}" ]] || return 0
  unset "pid_of[${name}]"
  kill -TERM "${pid}" 2>/dev/null || true
  for ((i = 0; i < grace * 20; i++)); do
    kill -0 "${pid}" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "${pid}" 2>/dev/null; then
    log "${name} (pid ${pid}) still running after ${grace} s: SIGKILL"
    kill -KILL "${pid}" 2>/dev/null || true
  fi
  local code=0
  wait "${pid}" 2>/dev/null || code=$?
  return "${code}"
}
cleanup() {
  local name
  [[ -n "${soak_pid:-}" ]] && kill -KILL "${soak_pid}" 2>/dev/null && wait "${soak_pid}" 2>/dev/null
  for name in g1 g2 w1 w2; do stop_name "${name}" 5 || true; done
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

# start NAME OUT_FILE CMD...: stdout to OUT_FILE (the READY line), stderr appended to NAME.log
# (a worker's EVENT lines, across all its incarnations).
start() {
  local name="$1" out="$2" i
  shift 2
  : >"${out}"
  "$@" >"${out}" 2>>"${out_dir}/${name}.log" &
  pid_of[${name}]=$!
  for ((i = 0; i < 300; i++)); do
    grep -q '^READY ' "${out}" 2>/dev/null && return 0
    kill -0 "${pid_of[${name}]}" 2>/dev/null || break
    sleep 0.05
  done
  log "${name} did not print READY; its log:"
  tail -20 "${out_dir}/${name}.log" >&2 || true
  exit 1
}
ready_port() { sed -n "s/^READY .*\\b$2=\\([0-9]*\\).*/\\1/p" "$1" | head -1; }

declare -A listen_of=()
start_worker() {  # start_worker NAME [PORT]
  local name="$1" port="${2:-0}"
  start "${name}" "${out_dir}/${name}.out" "${worker_bin}" "--listen=127.0.0.1:${port}" \
    --log_events "--name=${name}"
  listen_of[${name}]="$(ready_port "${out_dir}/${name}.out" grpc)"
}
start_gateway() {  # start_gateway NAME [WS_PORT]
  local name="$1" port="${2:-0}"
  start "${name}" "${out_dir}/${name}.out" "${gateway_bin}" "--listen=127.0.0.1:${port}" \
    --control_listen=127.0.0.1:0 --admin_listen=127.0.0.1:0 --io_threads=2 \
    --drain_grace_ms=10000 --limits.max_connections=$((conns * 2 + 1000)) \
    "--function=soak=ipv4:127.0.0.1:${listen_of[w1]},127.0.0.1:${listen_of[w2]}"
  listen_of[${name}]="$(ready_port "${out_dir}/${name}.out" ws)"
}

# --- the run --------------------------------------------------------------------------------

start_worker w1
start_worker w2
start_gateway g1
start_gateway g2
log "workers on ${listen_of[w1]}, ${listen_of[w2]}; gateways on ${listen_of[g1]}, ${listen_of[g2]};" \
  "${conns} connections, ${rate} msg/s, ${duration} s, a chaos action every ${period} s"

"${soak_bin}" "--gateways=127.0.0.1:${listen_of[g1]},127.0.0.1:${listen_of[g2]}" --path=/soak \
  "--conns=${conns}" "--rate=${rate}" "--duration=${duration}" "--life_min=${life%:*}" \
  "--life_max=${life#*:}" --settle=10 "--out=${out_dir}" >"${out_dir}/soak.out" 2>&1 &
soak_pid=$!

kills=0
worker_restarts=0
drains=0
gateway_restarts=0
problems=0
start_time=${SECONDS}
step=0
# Chaos until a period before the end, so that the last restart has settled when the load
# stops.
while (( SECONDS - start_time + 2 * period <= duration )); do
  sleep "${period}"
  kill -0 "${soak_pid}" 2>/dev/null || { log "the client tool ended early"; problems=1; break; }
  case $((step % 4)) in
    0|2)
      name=$([[ $((step % 4)) == 0 ]] && echo w1 || echo w2)
      log "SIGKILL ${name}"
      kill -KILL "${pid_of[${name}]}"
      wait "${pid_of[${name}]}" 2>/dev/null || true
      unset "pid_of[${name}]"
      kills=$((kills + 1))
      sleep 1
      start_worker "${name}" "${listen_of[${name}]}"
      worker_restarts=$((worker_restarts + 1))
      ;;
    1|3)
      name=$([[ $((step % 4)) == 1 ]] && echo g1 || echo g2)
      log "SIGTERM ${name} (drain)"
      drains=$((drains + 1))
      if ! stop_name "${name}" 20; then
        log "${name} did not exit 0 after its drain"
        problems=1
      fi
      start_gateway "${name}" "${listen_of[${name}]}"
      gateway_restarts=$((gateway_restarts + 1))
      ;;
  esac
  step=$((step + 1))
done

soak_code=0
wait "${soak_pid}" || soak_code=$?
soak_pid=""
if (( soak_code != 0 )); then
  log "the client tool exited with ${soak_code}:"
  tail -20 "${out_dir}/soak.out" >&2 || true
  problems=1
fi
# Gateways first: they deliver every disconnect before they exit; then the workers' logs are
# complete.
for name in g1 g2 w1 w2; do
  if ! stop_name "${name}" 20; then
    log "${name} did not exit 0 after SIGTERM"
    problems=1
  fi
done

check_code=0
python3 "${repo_root}/tests/soak/check.py" "--out=${out_dir}" --workers=w1,w2 \
  "--chaos=worker kills ${kills}, worker restarts ${worker_restarts}, gateway drains ${drains}, gateway restarts ${gateway_restarts}" \
  | tee "${out_dir}/result.txt" || check_code=$?
if (( problems )); then
  echo "verdict: FAIL (a process misbehaved; see above and ${out_dir})" | tee -a "${out_dir}/result.txt"
  exit 1
fi
exit "${check_code}"
