#!/usr/bin/env bash
# Encoder comparison in one run: vishvananda/netlink's `nl` encoder (Go) and Flannel.NET's Span-based
# encoder (BenchmarkDotNet), on the same messages, back to back, on the same machine.
#
#   benchmarks/run-encoder-comparison.sh            # default: BDN short job, in-process
#   BDN_ARGS="--job medium" benchmarks/run-encoder-comparison.sh
#
# Results: the Go table on stdout; BenchmarkDotNet's tables on stdout and under
# BenchmarkDotNet.Artifacts/results/ (the *-report-github.md files are Markdown).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== machine"
echo "$(nproc) CPUs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load average: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== Go: vishvananda/netlink nl encoder"
benchmarks/peers/run-go-encoder.sh -count "${GO_COUNT:-3}"

echo "== .NET: Flannel.NET NetlinkWriter + message encoders"
# shellcheck disable=SC2086 # BDN_ARGS is a list of options
dotnet run -c Release --project benchmarks/Flannel.Benchmarks -- --filter '*Encode*' ${BDN_ARGS:---job short --inProcess}

echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
