#!/usr/bin/env bash
# The README's run command: the topology of deploy/compose.yaml as local processes.
#
#   bash scripts/run-local.sh        # install deps, build, start, stay in the foreground
#   SKIP_BUILD=1 bash scripts/run-local.sh   # start what is already built
#
#   echo-1  echo_function on 127.0.0.1:7001 --log_events ┐
#   echo-2  echo_function on 127.0.0.1:7002 --log_events ├─ fngate (deploy/gateway.local.yaml)
#   chat    chat_function on 127.0.0.1:7003              ┘  ws 8080, control 8081, admin 8082
#
# Each process logs (stdout and stderr) to $BUILD_DIR/run-local/<name>.log. Ctrl-C or SIGTERM
# stops exactly the processes this script started, by PID: the gateway first (so it closes
# clients and delivers their disconnect events), then the workers, and waits for each; one
# that outlives its grace period is killed. If the gateway exits on its own, the workers are
# stopped and the script fails; a worker that exits is reported and the rest keep running.
# Children also get SIGTERM if this script itself dies (setpriv --pdeathsig), so nothing is
# left running. Ports are fixed (see the config); a port in use makes that process exit
# before READY, and the script says so and stops the rest.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"

build_dir="${BUILD_DIR:-build}"
config="deploy/gateway.local.yaml"
log_dir="${build_dir}/run-local"
readonly ready_timeout_s=30
readonly gateway_stop_timeout_s=15  # drain_grace_ms (5 s in gateway.local.yaml) + margin
readonly worker_stop_timeout_s=8    # the runtime's 5 s grace + margin

if [[ "${SKIP_BUILD:-}" != "1" ]]; then
  bash scripts/install-deps.sh
  bash scripts/build.sh fngate fngatectl echo_function chat_function
fi

# The contract puts binaries at $BUILD_DIR/gateway/fngate and $BUILD_DIR/functions/<name>;
# accept them one folder deeper too (functions/echo/echo_function) rather than guess wrong.
find_binary() {
  local name="$1" preferred="$2" found
  if [[ -x "${preferred}" ]]; then
    echo "${preferred}"
    return
  fi
  found="$(find "${build_dir}" -maxdepth 3 -type f -name "${name}" -perm -u+x -print -quit)"
  if [[ -z "${found}" ]]; then
    echo "run-local: ${name} not found under ${build_dir} (build it first)" >&2
    exit 1
  fi
  echo "${found}"
}
gateway_bin="$(find_binary fngate "${build_dir}/gateway/fngate")"
echo_bin="$(find_binary echo_function "${build_dir}/functions/echo_function")"
chat_bin="$(find_binary chat_function "${build_dir}/functions/chat_function")"

mkdir -p "${log_dir}"

# Parallel arrays, in start order: names[i] runs as pids[i], logging to logs[i].
names=()
pids=()
logs=()

# Both from util-linux (essential in Debian), both exec without forking, so $! stays the PID:
# - setsid: each child in its own session, so a Ctrl-C in the terminal reaches only this script,
#   which then stops the children in order (gateway first), not all of them at once;
# - setpriv --pdeathsig: a child gets SIGTERM if this script dies without cleaning up (SIGKILL).
wrapper=()
if command -v setpriv >/dev/null 2>&1; then
  wrapper+=(setpriv --pdeathsig TERM --)
fi
if command -v setsid >/dev/null 2>&1; then
  wrapper+=(setsid --)
fi

# start NAME BINARY ARGS...: starts one process in the background, logging to its file.
start() {
  local name="$1"
  shift
  local log="${log_dir}/${name}.log"
  : >"${log}"
  "${wrapper[@]}" "$@" </dev/null >>"${log}" 2>&1 &
  names+=("${name}")
  pids+=("$!")
  logs+=("${log}")
  echo "run-local: started ${name} (pid $!): $*"
}

# is_running PID: true while PID is a running child of this script. Bash reaps children as
# they exit, so its job table (not kill -0, which could hit a reused PID) is the truth.
is_running() {
  local pid
  for pid in $(jobs -rp); do
    [[ "${pid}" == "$1" ]] && return 0
  done
  return 1
}

# wait_ready INDEX: waits for the process's READY line and stores it in ready_line.
ready_line=""
wait_ready() {
  local i="$1" deadline=$((SECONDS + ready_timeout_s))
  while ((SECONDS < deadline)); do
    ready_line="$(grep -m1 '^READY ' "${logs[i]}" || true)"
    [[ -n "${ready_line}" ]] && return 0
    if ! is_running "${pids[i]}"; then
      echo "run-local: ${names[i]} exited before it was ready; end of ${logs[i]}:" >&2
      tail -n 20 "${logs[i]}" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "run-local: ${names[i]} not ready after ${ready_timeout_s} s; end of ${logs[i]}:" >&2
  tail -n 20 "${logs[i]}" >&2
  return 1
}

# stop_one INDEX TIMEOUT: SIGTERM, wait up to TIMEOUT seconds, then SIGKILL; reaps it.
stop_one() {
  local i="$1" timeout_s="$2" pid="${pids[$1]}"
  [[ -n "${pid}" ]] || return 0
  if is_running "${pid}"; then
    kill -TERM "${pid}" 2>/dev/null || true
    local deadline=$((SECONDS + timeout_s))
    while is_running "${pid}" && ((SECONDS < deadline)); do
      sleep 0.1
    done
    if is_running "${pid}"; then
      echo "run-local: ${names[i]} (pid ${pid}) still running after ${timeout_s} s; killing it" >&2
      kill -KILL "${pid}" 2>/dev/null || true
    fi
  fi
  local status=0
  wait "${pid}" 2>/dev/null || status=$?
  echo "run-local: ${names[i]} (pid ${pid}) stopped, exit status ${status}"
  pids[i]=""
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM HUP
  # Gateway first (it is started last): its drain still reaches the workers.
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    if [[ "${names[i]}" == "gateway" ]]; then
      stop_one "${i}" "${gateway_stop_timeout_s}"
    else
      stop_one "${i}" "${worker_stop_timeout_s}"
    fi
  done
  exit "${status}"
}
trap cleanup EXIT
trap 'echo; echo "run-local: stopping"; exit 130' INT
trap 'echo "run-local: stopping (SIGTERM)"; exit 143' TERM
trap 'exit 129' HUP

start echo-1 "${echo_bin}" --listen=127.0.0.1:7001 --log_events --name=echo-1
start echo-2 "${echo_bin}" --listen=127.0.0.1:7002 --log_events --name=echo-2
start chat "${chat_bin}" --listen=127.0.0.1:7003 --log_events --name=chat
for i in 0 1 2; do
  wait_ready "${i}"
done
start gateway "${gateway_bin}" --config="${config}"
wait_ready 3

# READY ws=8080 control=8081 admin=8082: print what is really bound, not what we hoped for.
port_of() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" ${ready_line}"; }
ws_port="$(port_of ws)"
control_port="$(port_of control)"
admin_port="$(port_of admin)"

cat <<EOF

fngate is running (${ready_line}).
  echo:    ws://127.0.0.1:${ws_port}/echo          (two replicas, round-robin)
  chat:    ws://127.0.0.1:${ws_port}/chat?room=x
  control: 127.0.0.1:${control_port}  (gRPC fngate.v1.GatewayControl)
  admin:   http://127.0.0.1:${admin_port}/metrics  /healthz  /readyz
  logs:    ${log_dir}/{gateway,echo-1,echo-2,chat}.log
Try:  npx wscat -c ws://127.0.0.1:${ws_port}/echo      (needs Node.js)
      ${build_dir}/gateway/ctl/fngatectl --control=127.0.0.1:${control_port} list
Watch: tail -f ${log_dir}/echo-1.log ${log_dir}/echo-2.log
Ctrl-C stops everything.

EOF

# Stay in the foreground until a signal arrives or the gateway exits. A worker that exits is
# reported and left down: the gateway sends new calls to the other replicas (or fails them with
# 503 / 1013 when none is left), which is worth seeing rather than hiding.
while true; do
  live=()
  for pid in "${pids[@]}"; do
    [[ -n "${pid}" ]] && live+=("${pid}")
  done
  exited_pid=""
  exit_status=0
  wait -n -p exited_pid "${live[@]}" || exit_status=$?
  [[ -n "${exited_pid}" ]] || continue  # interrupted by a signal whose trap returned
  for i in "${!pids[@]}"; do
    [[ "${pids[i]}" == "${exited_pid}" ]] || continue
    pids[i]=""
    echo "run-local: ${names[i]} (pid ${exited_pid}) exited (status ${exit_status});" \
      "end of ${logs[i]}:" >&2
    tail -n 5 "${logs[i]}" >&2
    if [[ "${names[i]}" == "gateway" ]]; then
      exit 1  # Stops the workers (EXIT trap).
    fi
    echo "run-local: the gateway keeps running without ${names[i]}; Ctrl-C stops everything" >&2
  done
done
