#!/usr/bin/env bash
# Measures `skiff server` start → /readyz ok and its idle memory, against a
# peer in the same run: Debian's etcd 3.4 (etcd-server) started the same way
# (start → /health ok, idle RSS). skiff's figure includes its own embedded
# etcd, so the ratio says what the API server costs on top of etcd.
#
#   sudo bench/server-start.sh [runs]      (default 10 runs)
#
# Cold = fresh data dir (certificates and etcd are created); warm = restart
# on the same data dir. The timed runs are the control plane alone
# (--disable-agent). A last run starts the whole server with its node agent
# and reports its idle memory: RSS of the server process, and PSS summed
# over every skiff process (server, runtime monitor, warm init), which
# counts the executable's shared pages once.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
out=_output/bench
mkdir -p "$out"
go build -o "$out/skiff" ./cmd/skiff
if ! command -v etcd >/dev/null; then
  echo "--- installing Debian's etcd-server as the peer"
  apt-get install -y -qq etcd-server >/dev/null
  systemctl stop etcd 2>/dev/null || true
fi
work=$(mktemp -d)
trap 'pkill -f "$work" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$((20000 + RANDOM % 20000))

now_ms() { date +%s%3N; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }

wait_http() { # url, insecure
  for _ in $(seq 1 600); do
    if curl -fsk --max-time 1 "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.01
  done
  echo "timed out waiting for $1" >&2; return 1
}

skiff_once() { # dir → prints ms; leaves pid in $pid
  local dir=$1 t0
  t0=$(now_ms)
  "$out/skiff" server --disable-agent --data-dir "$dir" --https-port "$port" --bind-address 127.0.0.1 >"$dir.log" 2>&1 &
  pid=$!
  wait_http "https://127.0.0.1:$port/readyz"
  echo $(( $(now_ms) - t0 ))
}

etcd_once() {
  local dir=$1 t0
  t0=$(now_ms)
  etcd --data-dir "$dir" --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
       --listen-peer-urls "http://127.0.0.1:$((port+1))" --initial-advertise-peer-urls "http://127.0.0.1:$((port+1))" \
       --initial-cluster "default=http://127.0.0.1:$((port+1))" >"$dir.log" 2>&1 &
  pid=$!
  wait_http "http://127.0.0.1:$port/health"
  echo $(( $(now_ms) - t0 ))
}

stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; }

declare -A t
for i in $(seq 1 "$runs"); do
  for who in skiff etcd; do
    d="$work/$who-$i"
    "${who}_once" "$d" >"$work/ms"; t[$who-cold]+="$(cat "$work/ms") "; stop
    "${who}_once" "$d" >"$work/ms"; t[$who-warm]+="$(cat "$work/ms") "
    if [ "$i" = 1 ]; then sleep 10; t[$who-rss]=$(rss_mb "$pid"); fi
    stop
  done
done

# The whole server, node agent included.
d="$work/skiff-agent"
"$out/skiff" server --data-dir "$d" --https-port "$port" --bind-address 127.0.0.1 --kubelet-port $((port+2)) >"$d.log" 2>&1 &
pid=$!
wait_http "https://127.0.0.1:$port/readyz"
sleep 15
agent_rss=$(rss_mb "$pid")
agent_pss=0
for m in /proc/[0-9]*/maps; do
  grep -q "$out/skiff" "$m" 2>/dev/null || continue
  p=${m#/proc/}; p=${p%/maps}
  agent_pss=$(awk -v acc="$agent_pss" '/^Pss:/ {printf "%.1f", acc + $2/1024}' "/proc/$p/smaps_rollup")
done
stop
rm -rf "$d"
# What the agent leaves on the host for its next start: the pod bridge and
# the pod network's nftables table.
ip link del skiff0 2>/dev/null || true
command -v nft >/dev/null && nft delete table inet skiff-podnet 2>/dev/null || true

report() {
  echo "skiff server start → /readyz, and idle RSS; peer: etcd $(etcd --version | awk '/etcd Version/ {print $3}') start → /health ($runs runs each, interleaved)"
  for kind in cold warm; do
    s=$(echo ${t[skiff-$kind]} | tr ' ' '\n' | median)
    e=$(echo ${t[etcd-$kind]} | tr ' ' '\n' | median)
    printf "  %-5s start  skiff %6s ms   etcd %6s ms   ratio %.2f\n" "$kind" "$s" "$e" "$(echo "$s / $e" | bc -l)"
  done
  printf "  idle RSS     skiff %6s MB   etcd %6s MB   ratio %.2f\n" "${t[skiff-rss]}" "${t[etcd-rss]}" "$(echo "${t[skiff-rss]} / ${t[etcd-rss]}" | bc -l)"
  printf "  with its node agent, idle: server RSS %s MB; PSS of all skiff processes %s MB\n" "$agent_rss" "$agent_pss"
}
report | tee "$out/server-start.txt"
