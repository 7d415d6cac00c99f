#!/usr/bin/env bash
# Writes samples/Flannel.Host/flanneld.order: the managed functions a native flanneld calls, those its steady state
# calls first (below). The native publish hands the file to ILC (IlcOrderFile in Flannel.Host.csproj), which lays those functions out
# first and together; everything else follows in ILC's own order.
#
#   benchmarks/order/profile.sh [OUT]      # as root; about 5 minutes
#
# Why: a page of code is resident once anything on it ran, and the kernel maps a fault's 64 KiB neighbourhood with it.
# flanneld calls about 11,500 of its 60,000 functions (2.7 of 9.6 MB of code), but they were spread over the whole
# binary, so nearly all of it was resident (README, "Code layout").
#
# How: benchmarks/order/first-calls runs the published flanneld with a one-shot breakpoint on every function, through
# benchmarks/scale.sh's two workloads, with the health port on and scraped: etcd with 5,000 vxlan peers (start-up,
# snapshot, programming, probes, renewals), then the Kubernetes API double with 5,000 nodes (list, watch, a re-list
# and 2,000 node updates). 15 s after each start, when start-up is long over, first-calls puts every breakpoint back:
# the functions called from then on are the steady state's (watch events, renewals, probes, resyncs, the re-list and
# the updates). They come first, in the order the steady state first called them, then those only start-up called,
# in the order start-up called them. Once start-up is over flanneld unmaps its read-only pages
# (samples/Flannel.Host/Hosting/StartupPageRelease.cs), and the steady state maps back one dense region rather than
# every 64 KiB window that it shares with start-up. Regenerate after larger changes: a function the file does not name
# (new, or renamed) still works, it just lands among the cold code.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "profile.sh: run as root (ptrace, network namespaces)" >&2; exit 1; }
out="${1:-samples/Flannel.Host/flanneld.order}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
work="$(mktemp -d /tmp/flannel-order-XXXXXX)"
trap 'rm -rf "$work"' EXIT

"$(command -v cc || command -v clang)" -O2 -Wall -Wextra -o "$work/first-calls" benchmarks/order/first-calls.c
# A JIT publish into the same obj/ makes the next native publish link a stale binary (README); start clean.
rm -rf samples/Flannel.Host/obj/Release/net10.0/linux-x64 samples/Flannel.Host/bin/Release/net10.0/linux-x64
dotnet publish samples/Flannel.Host -c Release -r linux-x64 -p:PublishAot=true -o "$work/bin" -nologo -v quiet

# Every function with its address (relative to the load base); the managed ones are those in ILC's two code sections.
nm --defined-only "$work/bin/flanneld.dbg" | awk '$2 ~ /^[tTW]$/ { a = $1; sub(/^[0-9a-f]+ [tTW] /, ""); print a, $0 }' > "$work/functions"
readelf -SW "$work/bin/flanneld.dbg" 2>/dev/null | awk '$2 == "__managedcode" || $2 == "__unbox" { print $4, $6 }' > "$work/managed-sections"

mkdir -p "$work/calls"
cat > "$work/traced-flanneld" <<EOF
#!/bin/bash
# scale.sh starts this in place of flanneld, inside its namespace; the health port is asked as Prometheus and a
# kubelet would.
( for wait in 8 7 10; do sleep \$wait; for path in /metrics /healthz /readyz; do curl -s -o /dev/null "http://127.0.0.1:18081\$path" || true; done; done ) &
# Start-up is over well within 15 s (converged in about 1 s untraced): from then on is the steady state.
( sleep 15; kill -USR1 \$\$ 2>/dev/null || true ) &
exec "$work/first-calls" "$work/functions" "$work/calls/\$(date +%s%N)" -- "$work/bin/flanneld" "\$@"
EOF
chmod +x "$work/traced-flanneld"

benchmarks/scale.sh etcd --flanneld "traced=$work/traced-flanneld" --peers 5000 --rounds 1 --late 80 --arg --healthz-port=18081
benchmarks/scale.sh kube --flanneld "traced=$work/traced-flanneld" --nodes 5000 --updates 2000 --late 30 --arg --healthz-port=18081

python3 - "$work" "$out" <<'EOF'
import os, sys
work, out = sys.argv[1], sys.argv[2]
sections = [tuple(int(v, 16) for v in line.split()) for line in open(os.path.join(work, "managed-sections"))]
managed = set()
for line in open(os.path.join(work, "functions")):
    address, name = line.rstrip("\n").split(" ", 1)
    if any(start <= int(address, 16) < start + size for start, size in sections):
        managed.add(name)
runs = sorted(os.listdir(os.path.join(work, "calls")))
startup, steady = [], []
for run in runs:
    phase = startup
    for name in open(os.path.join(work, "calls", run)):
        name = name.rstrip("\n")
        if name == "--":
            phase = steady
        elif name in managed:
            phase.append(name)
order, seen = [], set()
for name in steady + startup:
    if name not in seen:
        seen.add(name)
        order.append(name)
with open(out, "w") as f:
    f.write("\n".join(order) + "\n")
print(f"profile.sh: {len(order)} of {len(managed)} managed functions called in {len(runs)} runs, {len(set(steady))} of them in the steady state (first), written to {out}")
EOF
