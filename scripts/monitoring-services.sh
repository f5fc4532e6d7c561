#!/usr/bin/env bash
# Start or stop a throw-away Pushgateway + Prometheus pair for tests and local
# work. Plain background processes (no systemd), bound to 127.0.0.1 on free
# ports, storage inside <workdir>, alert rules from monitoring/alerts.yml.
#
#   scripts/monitoring-services.sh start <workdir>   # idempotent
#   scripts/monitoring-services.sh stop  <workdir>   # idempotent
#
# start writes <workdir>/services.env (shell syntax, also easy to parse):
#   PUSHGATEWAY_URL/PORT/PID, PROMETHEUS_URL/PORT/PID, PROMETHEUS_CONFIG, PROMTOOL
#
# Exit codes: 0 ok; 1 a service failed to start; 2 bad usage;
# 4 the Prometheus binaries are missing and cannot be installed (tests skip).
# Binaries can be overridden with PROMETHEUS_BIN, PROMTOOL_BIN, PUSHGATEWAY_BIN.
set -euo pipefail

readonly EXIT_UNAVAILABLE=4
readonly READY_TIMEOUT_S=30

usage() {
  echo "usage: $0 start|stop <workdir>" >&2
  exit 2
}

[[ $# -eq 2 ]] || usage
action=$1
[[ $action == start || $action == stop ]] || usage
if [[ $action == stop && ! -d $2 ]]; then exit 0; fi # nothing was started there
mkdir -p "$2"
workdir=$(cd "$2" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
env_file=$workdir/services.env

log() { echo "monitoring-services: $*" >&2; }

# --- helpers ---------------------------------------------------------------

# A pid belongs to us only if it is alive and its command line still holds the
# listen address we gave it (pids get reused).
owned_pid_alive() {
  local pid=$1 addr=$2
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  local cmdline
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$addr"* ]]
}

kill_owned() {
  local pid=$1 addr=$2 i
  owned_pid_alive "$pid" "$addr" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do
    owned_pid_alive "$pid" "$addr" || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{process.stdout.write(String(s.address().port));s.close()})"
}

wait_ready() {
  local name=$1 url=$2 pid=$3 addr=$4 log_file=$5 i
  for ((i = 0; i < READY_TIMEOUT_S * 10; i++)); do
    if curl -fsS -o /dev/null --max-time 1 "$url/-/ready" 2>/dev/null; then
      return 0
    fi
    if ! owned_pid_alive "$pid" "$addr"; then
      log "$name exited during start-up; last log lines:"
      tail -n 20 "$log_file" >&2 || true
      return 1
    fi
    sleep 0.1
  done
  log "$name not ready after ${READY_TIMEOUT_S}s; last log lines:"
  tail -n 20 "$log_file" >&2 || true
  return 1
}

find_bin() { # first existing candidate, else empty
  local c
  for c in "$@"; do
    if [[ -n $c ]] && command -v "$c" >/dev/null 2>&1; then
      command -v "$c"
      return 0
    fi
  done
  return 0
}

resolve_bins() {
  PROMETHEUS=$(find_bin "${PROMETHEUS_BIN:-}" prometheus)
  PROMTOOL=$(find_bin "${PROMTOOL_BIN:-}" promtool)
  PUSHGATEWAY=$(find_bin "${PUSHGATEWAY_BIN:-}" prometheus-pushgateway pushgateway)
}

ensure_bins() {
  resolve_bins
  [[ -n $PROMETHEUS && -n $PROMTOOL && -n $PUSHGATEWAY ]] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    log "unavailable: prometheus/pushgateway binaries missing and no apt-get to install them"
    exit $EXIT_UNAVAILABLE
  fi
  if [[ $(id -u) -ne 0 ]]; then
    log "unavailable: prometheus/pushgateway binaries missing and not root (run: apt-get install prometheus prometheus-pushgateway)"
    exit $EXIT_UNAVAILABLE
  fi
  log "installing Debian packages prometheus prometheus-pushgateway (one-off)"
  local apt_opts=(-o DPkg::Lock::Timeout=300 -qq) apt_log=$workdir/apt.log
  if ! { apt-get "${apt_opts[@]}" update &&
    DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y --no-install-recommends \
      prometheus prometheus-pushgateway; } >"$apt_log" 2>&1; then
    log "unavailable: apt-get install prometheus prometheus-pushgateway failed:"
    tail -n 20 "$apt_log" >&2 || true
    exit $EXIT_UNAVAILABLE
  fi
  # The packages may auto-start their daemons on the default ports (not where
  # policy-rc.d forbids it). We never use those: stop them, ignore failures.
  local svc
  for svc in prometheus prometheus-pushgateway; do
    if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
  done
  resolve_bins
  if [[ -z $PROMETHEUS || -z $PROMTOOL || -z $PUSHGATEWAY ]]; then
    log "unavailable: packages installed but binaries not found on PATH"
    exit $EXIT_UNAVAILABLE
  fi
}

read_env() {
  PUSHGATEWAY_PID='' PUSHGATEWAY_PORT='' PROMETHEUS_PID='' PROMETHEUS_PORT=''
  # shellcheck disable=SC1090
  [[ -f $env_file ]] && . "$env_file"
  return 0
}

stop_services() {
  read_env
  [[ -n $PROMETHEUS_PORT ]] && kill_owned "$PROMETHEUS_PID" "127.0.0.1:$PROMETHEUS_PORT"
  [[ -n $PUSHGATEWAY_PORT ]] && kill_owned "$PUSHGATEWAY_PID" "127.0.0.1:$PUSHGATEWAY_PORT"
  rm -f "$env_file"
}

write_prometheus_config() { # $1 = path, $2 = pushgateway port
  cat >"$1" <<EOF
# Generated by scripts/monitoring-services.sh for a throw-away Prometheus.
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - "$repo/monitoring/alerts.yml"
scrape_configs:
  - job_name: pushgateway
    honor_labels: true # keep job/dataset/hospital_id as pushed
    static_configs:
      - targets: ["127.0.0.1:$2"]
EOF
}

# --- start / stop ------------------------------------------------------------

if [[ $action == stop ]]; then
  stop_services
  exit 0
fi

read_env
if [[ -n $PROMETHEUS_PORT && -n $PUSHGATEWAY_PORT ]] &&
  owned_pid_alive "$PROMETHEUS_PID" "127.0.0.1:$PROMETHEUS_PORT" &&
  owned_pid_alive "$PUSHGATEWAY_PID" "127.0.0.1:$PUSHGATEWAY_PORT"; then
  log "already running (see $env_file)"
  cat "$env_file"
  exit 0
fi
stop_services # a half-running pair from an earlier start

ensure_bins

pg_port=$(free_port)
pg_addr=127.0.0.1:$pg_port
# In memory only: Debian's default persistence file is shared by every instance.
"$PUSHGATEWAY" --web.listen-address="$pg_addr" --persistence.file="" \
  >"$workdir/pushgateway.log" 2>&1 </dev/null &
pg_pid=$!

prom_port=$(free_port)
while [[ $prom_port == "$pg_port" ]]; do prom_port=$(free_port); done
prom_addr=127.0.0.1:$prom_port
prom_config=$workdir/prometheus.yml
rm -rf "$workdir/prometheus-data"
mkdir -p "$workdir/prometheus-data"
write_prometheus_config "$prom_config" "$pg_port"
"$PROMETHEUS" --config.file="$prom_config" \
  --storage.tsdb.path="$workdir/prometheus-data" \
  --storage.tsdb.retention.time=1d \
  --web.listen-address="$prom_addr" \
  >"$workdir/prometheus.log" 2>&1 </dev/null &
prom_pid=$!

cat >"$env_file.tmp" <<EOF
PUSHGATEWAY_PORT=$pg_port
PUSHGATEWAY_PID=$pg_pid
PUSHGATEWAY_URL=http://$pg_addr
PROMETHEUS_PORT=$prom_port
PROMETHEUS_PID=$prom_pid
PROMETHEUS_URL=http://$prom_addr
PROMETHEUS_CONFIG=$prom_config
PROMTOOL=$PROMTOOL
EOF
mv "$env_file.tmp" "$env_file"

if ! wait_ready pushgateway "http://$pg_addr" "$pg_pid" "$pg_addr" "$workdir/pushgateway.log" ||
  ! wait_ready prometheus "http://$prom_addr" "$prom_pid" "$prom_addr" "$workdir/prometheus.log"; then
  stop_services
  exit 1
fi
cat "$env_file"
