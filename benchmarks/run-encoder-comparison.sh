#!/usr/bin/env bash
# Encoder comparison in one run: vishvananda/netlink's `nl` encoder (Go) and Flannel.NET's Span-based
# encoder (BenchmarkDotNet), on the same messages, back to back, on the same machine.
#
#   benchmarks/run-encoder-comparison.sh
#
# Both sides are measured in many SHORT samples (Go: 200 operations per sample, 100 samples;
# BenchmarkDotNet: 2,048 invocations per iteration, 100 iterations), and the median sample is reported:
# a sample much shorter than a scheduler time slice is rarely preempted, so the median stays close to the
# code's own cost even on a machine shared with other heavy jobs, where the usual long iterations mostly
# measure the load. DOTNET_TC_CallCountingDelayMs=0 plus 200 warm-up iterations make sure the measured
# .NET code is the tiered-up (tier 1, dynamic PGO) code even when the background JIT thread is starved.
#
# Results: a summary of the Go samples and BenchmarkDotNet's tables on stdout (BenchmarkDotNet also writes
# Markdown under BenchmarkDotNet.Artifacts/results/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== Go: vishvananda/netlink nl encoder (median and min of 100 samples of 200 operations)"
go_output="$(mktemp)"
trap 'rm -f "$go_output"' EXIT
benchmarks/peers/run-go-encoder.sh -benchtime=200x -count=100 > "$go_output"
grep -E '^(go version|cpu:|PASS|ok)' "$go_output" || true
for name in $(awk '/^Benchmark/ { sub(/-[0-9]+$/, "", $1); print $1 }' "$go_output" | sort -u); do
  awk -v n="$name" '{ b=$1; sub(/-[0-9]+$/, "", b) } b == n { print $3, $5, $7 }' "$go_output" | sort -n |
    awk -v n="$name" '{ ns[NR]=$1; bytes=$2; allocs=$3 }
      END { median = (NR % 2) ? ns[(NR + 1) / 2] : (ns[NR / 2] + ns[NR / 2 + 1]) / 2
            printf "%-30s median %9.1f ns/op   min %9.1f ns/op   %5d B/op   %3d allocs/op   (%d samples)\n", n, median, ns[1], bytes, allocs, NR }'
done

echo "== .NET: Flannel.NET message encoders, one message per operation"
export DOTNET_TC_CallCountingDelayMs=0
dotnet build benchmarks/Flannel.Benchmarks -c Release -nologo -v quiet > /dev/null
run_bdn() {
  dotnet run -c Release --no-build --project benchmarks/Flannel.Benchmarks -- "$@" \
    --inProcess --iterationCount 100 --warmupCount 200 | sed -n '/^BenchmarkDotNet v/,$p' | grep -Ev '^(Run time|$)' || true
}
run_bdn --filter '*EncodeMessage*' --invocationCount 2048 --unrollFactor 16
echo "== .NET: batches of 1, 8, 64, 512 peers (3 messages each) into one buffer"
run_bdn --filter '*EncodeBatch*' --invocationCount 16 --unrollFactor 1

echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
