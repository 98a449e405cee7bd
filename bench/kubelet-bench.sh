#!/usr/bin/env bash
# Benchmarks of skiff's kubelet, against the container runtime alone in the
# same run (the machines are noisy, so the ratio is what to compare):
#
#   - pod start: creation in the API -> status Running reported by the
#     kubelet (watch, sandbox, pod network, container, status write), vs
#     the same container through the CRI alone: RunPodSandbox,
#     CreateContainer, StartContainer (BenchmarkPodStart)
#   - memory: Go heap of the process holding the API server, the runtime
#     and the kubelet, idle and with the pods running (BenchmarkPodMemory)
#
# Needs root. Usage: bench/kubelet-bench.sh [REPORT]
# (default bench/kubelet-report.txt). SKIFF_BENCH_RUNS sets the pods per
# side (default 50).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "kubelet-bench: needs root" >&2
	exit 1
fi
runs=${SKIFF_BENCH_RUNS:-50}
report=${1:-bench/kubelet-report.txt}
filter() { grep -vE 'level=(DEBUG|INFO|WARN|ERROR)|^[EIW][0-9]{4} ' | grep -E 'median|heap in use|^Benchmark|^ok|FAIL|panic' || true; }
{
	echo "# skiff kubelet benchmarks"
	echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "host:    $(uname -sr), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "runs:    $runs pods per side"
	echo
	SKIFF_BENCH_RUNS=$runs go test -count=1 -run '^$' -bench 'BenchmarkPodStart|BenchmarkPodMemory' -benchtime 1x -v ./internal/kubelet 2>&1 | filter
} | tee "$report"
