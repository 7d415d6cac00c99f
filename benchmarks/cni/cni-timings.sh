#!/usr/bin/env bash
# Whole-process timings of the flannel CNI plugin against the Go plugins from containernetworking-plugins, in
# one hyperfine run (root; creates two throw-away namespaces and removes them again):
#
#   benchmarks/cni/cni-timings.sh NATIVE_DIR [JIT_DIR]
#
#   NATIVE_DIR  holds the native-AOT plugin: dotnet publish src/Flannel.Cni -c Release -o NATIVE_DIR
#   JIT_DIR     optionally the JIT build:     dotnet publish src/Flannel.Cni -c Release -p:PublishAot=false -o JIT_DIR
#
# VERSION: flannel against the Go `bridge` plugin. ADD and DEL: flannel (which runs bridge, which runs
# host-local) against `bridge` run directly with the very netconf flannel hands it, so the difference of the
# medians is what flannel adds over its delegates. Every ADD is prepared by a DEL of the same container and
# every DEL by an ADD, so each measured run does the full work on a clean slate. Environment: RUNS (default 30).
set -euo pipefail
native="${1:?usage: cni-timings.sh NATIVE_DIR [JIT_DIR]}/flannel"
jit="${2:+$2/flannel}"
runs="${RUNS:-30}"
cni_path=/usr/lib/cni
[ "$(id -u)" -eq 0 ] || { echo "cni-timings.sh: run as root (it creates network namespaces)" >&2; exit 1; }
for tool in hyperfine python3 ip; do command -v "$tool" >/dev/null || { echo "cni-timings.sh: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }; done
[ -x "$native" ] || { echo "cni-timings.sh: no plugin at $native" >&2; exit 1; }
[ -z "$jit" ] || [ -x "$jit" ] || { echo "cni-timings.sh: no plugin at $jit" >&2; exit 1; }

id=$$
h="fnt-th$id"; c="fnt-tc$id"
tmp=$(mktemp -d)
trap 'ip netns del "$h" 2>/dev/null; ip netns del "$c" 2>/dev/null; rm -rf "$tmp"' EXIT
ip netns add "$h"; ip netns add "$c"
ip -n "$h" link set lo up

printf 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n' >"$tmp/subnet.env"
printf '{"cniVersion":"0.3.1","name":"cbr0","type":"flannel","subnetFile":"%s","dataDir":"%s","ipam":{"dataDir":"%s"},"delegate":{"hairpinMode":true,"isDefaultGateway":true}}\n' \
  "$tmp/subnet.env" "$tmp/data" "$tmp/ipam" >"$tmp/flannel.json"

# One ADD through flannel gives the delegate netconf it stores (and hands to bridge) byte for byte.
env_for() { echo "CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=/run/netns/$c CNI_IFNAME=$3 CNI_PATH=$cni_path"; }
# shellcheck disable=SC2046
ip netns exec "$h" env $(env_for ADD probe eth9) "$native" <"$tmp/flannel.json" >/dev/null 2>"$tmp/probe.err" \
  || { cat "$tmp/probe.err" >&2; exit 1; }
cp "$tmp/data/probe" "$tmp/bridge.json"
# shellcheck disable=SC2046
ip netns exec "$h" env $(env_for DEL probe eth9) "$native" <"$tmp/flannel.json" >/dev/null 2>&1

run() { # command line of one plugin call: run COMMAND BINARY CONF CONTAINER IFNAME
  echo "env $(env_for "$1" "$4" "$5") $2 <$3 >/dev/null 2>&1"
}
args=(--runs "$runs" --warmup 3 --export-json "$tmp/result.json" --style basic)
commands=(
  -n "VERSION bridge (Go)" "$(run VERSION $cni_path/bridge /dev/null x eth0)"
  -n "VERSION flannel (native)" "$(run VERSION "$native" /dev/null x eth0)"
)
[ -z "$jit" ] || commands+=(-n "VERSION flannel (JIT)" "$(run VERSION "$jit" /dev/null x eth0)")
echo "== VERSION"
ip netns exec "$h" hyperfine "${args[@]}" "${commands[@]}" >/dev/null
mv "$tmp/result.json" "$tmp/version.json"

for op in ADD DEL; do
  undo=$([ "$op" = ADD ] && echo DEL || echo ADD)
  # hyperfine pairs the n-th --prepare with the n-th command.
  prepares=(--prepare "$(run "$undo" $cni_path/bridge "$tmp/bridge.json" b1 eth1)"
            --prepare "$(run "$undo" "$native" "$tmp/flannel.json" n1 eth2)")
  commands=(-n "$op bridge+host-local (Go, direct)" "$(run "$op" $cni_path/bridge "$tmp/bridge.json" b1 eth1)"
            -n "$op flannel (native) + delegates" "$(run "$op" "$native" "$tmp/flannel.json" n1 eth2)")
  if [ -n "$jit" ]; then
    prepares+=(--prepare "$(run "$undo" "$jit" "$tmp/flannel.json" j1 eth3)")
    commands+=(-n "$op flannel (JIT) + delegates" "$(run "$op" "$jit" "$tmp/flannel.json" j1 eth3)")
  fi
  echo "== $op"
  ip netns exec "$h" hyperfine "${args[@]}" "${prepares[@]}" "${commands[@]}" >/dev/null
  mv "$tmp/result.json" "$tmp/$op.json"
  if [ "$op" = ADD ]; then # leave nothing behind for the DEL round, whose preparation is an ADD
    for p in "${prepares[@]}"; do [ "$p" = --prepare ] || ip netns exec "$h" sh -c "$p"; done
  fi
done

# The peak RSS of one VERSION call of each binary.
rss() { /usr/bin/time -f %M env CNI_COMMAND=VERSION "$1" 2>&1 >/dev/null | tail -1; }

python3 - "$tmp" "$(rss $cni_path/bridge)" "$(rss "$native")" "${jit:+$(rss "$jit")}" "$(stat -c %s "$native")" <<'PY'
import json, sys
tmp, rss_go, rss_native, rss_jit, size = sys.argv[1:6]
def load(name):
    with open(f"{tmp}/{name}.json") as f:
        return {r["command"]: r for r in json.load(f)["results"]}
ms = lambda r: r["median"] * 1000
print(f"{'what':40} {'median':>9} {'mean ± sd':>18} {'min':>8}")
for name in ("version", "ADD", "DEL"):
    results = load(name)
    for command, r in results.items():
        print(f"{command:40} {ms(r):7.2f} ms {r['mean']*1000:8.2f} ± {r['stddev']*1000:5.2f} ms {r['min']*1000:6.2f} ms")
    base = next(r for c, r in results.items() if "Go" in c)
    for command, r in results.items():
        if "Go" in command:
            continue
        if name == "version":
            print(f"  -> {command}: {ms(r)/ms(base):.2f}x the Go bridge plugin")
        else:
            print(f"  -> {command}: +{ms(r)-ms(base):.2f} ms over its delegates")
print(f"peak RSS of VERSION: bridge {int(rss_go)//1024} MiB, flannel native {int(rss_native)//1024} MiB"
      + (f", flannel JIT {int(rss_jit)//1024} MiB" if rss_jit else "")
      + f"; native binary {int(size)/1e6:.1f} MB")
PY
echo "(hyperfine median of $runs runs each, shell start-up subtracted; load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores)"
