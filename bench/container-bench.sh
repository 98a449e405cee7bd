#!/usr/bin/env bash
# Benchmarks of skiff's container runtime, against peers in the same run
# (the machines are noisy, so the ratios are what to compare):
#
#   - container start, create -> process exited, /bin/true in one tiny
#     rootfs: skiff vs crun vs runc, interleaved (BenchmarkContainerStart)
#   - helper memory per running container (BenchmarkMonitorMemory)
#   - pod sandbox + one container, CRI call to running (BenchmarkPodStart)
#
# Needs root. Installs crun and runc from Debian's packages when missing.
# Usage: bench/container-bench.sh [REPORT]   (default bench/container-report.txt)
# SKIFF_BENCH_RUNS sets the runs per runtime (default 50).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "container-bench: needs root" >&2
	exit 1
fi
if ! command -v crun >/dev/null || ! command -v runc >/dev/null; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq crun runc >/dev/null
fi
runs=${SKIFF_BENCH_RUNS:-50}
report=${1:-bench/container-report.txt}
filter() { grep -vE 'level=(DEBUG|INFO|WARN)' | grep -E 'median|ratio|monitor|cannot run|not found|^Benchmark|^ok|FAIL|panic' || true; }
{
	echo "# skiff container runtime benchmarks"
	echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "host:    $(uname -sr), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "peers:   $(crun --version | head -1); $(runc --version | head -1)"
	echo "runs:    $runs per runtime"
	echo
	SKIFF_BENCH_RUNS=$runs go test -count=1 -run '^$' -bench 'BenchmarkContainerStart|BenchmarkMonitorMemory' -benchtime 1x -v ./internal/container 2>&1 | filter
	echo
	SKIFF_BENCH_RUNS=$runs go test -count=1 -run '^$' -bench 'BenchmarkPodStart' -benchtime 1x -v ./internal/container/cri 2>&1 | filter
} | tee "$report"
