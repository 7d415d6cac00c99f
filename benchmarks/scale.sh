#!/usr/bin/env bash
# Runs benchmarks/Flannel.Scale in a network namespace of its own (root): a dummy eth0 198.18.0.1/24 is the underlay,
# and everything flanneld programs stays in that namespace, which is deleted afterwards.
#
#   benchmarks/scale.sh etcd --flanneld native=DIR/flanneld [--flanneld jit=DIR2/flanneld] [--peers 5000] [--rounds 3]
#   benchmarks/scale.sh kube --flanneld native=DIR/flanneld [--nodes 5000] [--updates 2000]
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "scale.sh: run as root (network namespaces)" >&2; exit 1; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build benchmarks/Flannel.Scale -c Release -nologo -v quiet >/dev/null
ns="fscale-$$"
trap 'ip netns del "$ns" 2>/dev/null' EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add eth0 type veth peer name eth0-peer   # no dummy module in this kernel
ip -n "$ns" link set eth0-peer up
ip -n "$ns" addr add 198.18.0.1/24 dev eth0
ip -n "$ns" link set eth0 up
ip netns exec "$ns" dotnet benchmarks/Flannel.Scale/bin/Release/net10.0/Flannel.Scale.dll "$@"
