#!/usr/bin/env bash
# The Flannel.NET demo: a 3-node virtual cluster on this machine, in network namespaces.
#
#   sudo ./scripts/demo.sh                     # vxlan, 3 agents in ONE process sharing the in-memory store
#   sudo ./scripts/demo.sh --etcd              # one flanneld process per node against a real etcd on the underlay
#   sudo ./scripts/demo.sh --backend host-gw   # the host-gw backend (works with --etcd too)
#   options: --no-deps (skip apt), --no-build (reuse the last build), --keep (leave everything up; Ctrl-C cleans),
#            --measure (also print agent RSS, time to ready and lease-event-to-route latency)
#
# Topology: a bridge namespace (br0, 198.18.0.254/24, also hosts etcd) and three node namespaces whose eth0
# (198.18.0.11-13/24) is a veth into br0; Network 10.244.0.0/16. Pods are namespaces wired by our `flannel`
# CNI plugin, which delegates to the real bridge/host-local plugins from /usr/lib/cni. The script prints a
# report shaped like flannel's deploy.log and exits 0 only if pod-to-pod pings across nodes succeed. It
# removes every namespace and process it created, also when it fails.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

mode=inprocess
backend=vxlan
deps=1
build=1
keep=0
measure=0
while [ $# -gt 0 ]; do
  case "$1" in
    --etcd) mode=etcd ;;
    --backend) shift; backend="${1:-}" ;;
    --backend=*) backend="${1#--backend=}" ;;
    --no-deps) deps=0 ;;
    --no-build) build=0 ;;
    --keep) keep=1 ;;
    --measure) measure=1 ;;
    -h|--help) sed -n 2,14p "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$backend" in vxlan|host-gw) ;; *) echo "demo.sh: --backend must be vxlan or host-gw, not '$backend'" >&2; exit 2 ;; esac
if [ "$(id -u)" -ne 0 ]; then echo "demo.sh: run as root (it creates network namespaces)" >&2; exit 1; fi

# ---------------------------------------------------------------- dependencies and build
need_deps() {
  for c in ip bridge ping iptables etcd etcdctl; do command -v "$c" >/dev/null || return 0; done
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] || return 0
  return 1
}
if [ "$deps" = 1 ] && need_deps; then
  echo "== installing OS packages (scripts/install-deps.sh)"
  scripts/install-deps.sh || exit 1
fi

id=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
work="${FLANNEL_DEMO_WORK:-$root/.demo-work}"
bin="$work/bin"
run="$work/run-$id"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
if [ "$build" = 1 ] || [ ! -x "$bin/flanneld/flanneld" ]; then
  echo "== building flanneld, flannel-demo and the flannel CNI plugin (Release)"
  dotnet publish samples/Flannel.Host -c Release -o "$bin/flanneld" -nologo -v quiet || exit 1
  dotnet publish samples/Flannel.Demo -c Release -o "$bin/demo" -nologo -v quiet || exit 1
  dotnet publish src/Flannel.Cni -c Release -o "$bin/cni" -nologo -v quiet || exit 1
fi
mkdir -p "$run"

# ---------------------------------------------------------------- cleanup (always)
nodes=(node1 node2 node3)
declare -A ns addr pids
brns="fd${id}-br"
for i in 0 1 2; do ns[${nodes[$i]}]="fd${id}-n$((i + 1))"; addr[${nodes[$i]}]="198.18.0.$((11 + i))"; done
pods=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  for p in "${pods[@]}"; do ip netns del "$p" 2>/dev/null; done
  for n in "${ns[@]}"; do ip netns del "$n" 2>/dev/null; done
  ip netns del "$brns" 2>/dev/null
  rm -rf "$run"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "demo.sh: FAILED: $*" >&2; for f in "$run"/*.log; do [ -f "$f" ] && { echo "--- $f (last 30 lines)" >&2; tail -30 "$f" >&2; }; done; exit 1; }

# ---------------------------------------------------------------- the virtual cluster
echo "== creating the cluster (namespaces ${brns}, ${ns[node1]}, ${ns[node2]}, ${ns[node3]})"
ip netns add "$brns" || fail "cannot create namespace $brns"
ip -n "$brns" link set lo up
ip -n "$brns" link add br0 type bridge
ip -n "$brns" addr add 198.18.0.254/24 dev br0
ip -n "$brns" link set br0 up
for n in "${nodes[@]}"; do
  N=${ns[$n]}
  ip netns add "$N" || fail "cannot create namespace $N"
  ip -n "$N" link set lo up
  ip -n "$brns" link add "v-$n" type veth peer name eth0 netns "$N"
  ip -n "$brns" link set "v-$n" master br0 up
  ip -n "$N" addr add "${addr[$n]}/24" dev eth0
  ip -n "$N" link set eth0 up
  ip -n "$N" route add default via 198.18.0.254
  ip netns exec "$N" sysctl -qw net.ipv4.ip_forward=1
  mkdir -p "$run/$n"
done

netconf="{\"Network\":\"10.244.0.0/16\",\"Backend\":{\"Type\":\"$backend\"}}"

# ---------------------------------------------------------------- the agents
if [ "$mode" = etcd ]; then
  echo "== starting etcd on the underlay (198.18.0.254:2379, in $brns)"
  ip netns exec "$brns" etcd --name "fd$id" --data-dir "$run/etcd" \
    --listen-client-urls http://198.18.0.254:2379 --advertise-client-urls http://198.18.0.254:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster "fd$id=http://127.0.0.1:2380" >"$run/etcd.log" 2>&1 &
  pids[etcd]=$!
  for _ in $(seq 100); do
    ETCDCTL_API=3 ip netns exec "$brns" etcdctl --endpoints http://198.18.0.254:2379 endpoint health >/dev/null 2>&1 && break
    sleep 0.2
  done
  ETCDCTL_API=3 ip netns exec "$brns" etcdctl --endpoints http://198.18.0.254:2379 put /coreos.com/network/config "$netconf" >/dev/null \
    || fail "cannot write the network config to etcd"
  for n in "${nodes[@]}"; do
    ip netns exec "${ns[$n]}" "$bin/flanneld/flanneld" --etcd-endpoints=http://198.18.0.254:2379 \
      --subnet-file="$run/$n/subnet.env" --iface=eth0 --ip-masq >"$run/flanneld-$n.log" 2>&1 &
    pids[$n]=$!
  done
  echo "== started 3 flanneld processes (PIDs ${pids[node1]} ${pids[node2]} ${pids[node3]})"
else
  args=()
  for n in "${nodes[@]}"; do args+=(--node "$n=${ns[$n]},$run/$n/subnet.env"); done
  "$bin/demo/flannel-demo" --network-config "$netconf" --ip-masq "${args[@]}" >"$run/flannel-demo.log" 2>&1 &
  pids[demo]=$!
  echo "== started 3 agents in one process (flannel-demo, PID ${pids[demo]}) sharing the in-memory store"
fi

for n in "${nodes[@]}"; do
  for _ in $(seq 300); do [ -s "$run/$n/subnet.env" ] && break; sleep 0.1; done
  [ -s "$run/$n/subnet.env" ] || fail "$n did not write its subnet.env within 30 s"
done
subnet_of() { sed -n 's/^FLANNEL_SUBNET=//p' "$run/$1/subnet.env"; }        # e.g. 10.244.7.1/24
network_of() { local s; s=$(subnet_of "$1"); echo "${s%.*/*}.0/${s#*/}"; }   # e.g. 10.244.7.0/24

# Wait until every node routes to every other node's subnet.
for n in "${nodes[@]}"; do
  for m in "${nodes[@]}"; do
    [ "$n" = "$m" ] && continue
    dst=$(network_of "$m")
    for _ in $(seq 300); do [ -n "$(ip -n "${ns[$n]}" route show "$dst")" ] && break; sleep 0.1; done
    [ -n "$(ip -n "${ns[$n]}" route show "$dst")" ] || fail "$n has no route to $m's subnet $dst"
  done
done

# ---------------------------------------------------------------- pods through our CNI plugin
cni_add() { # node pod-namespace container-id
  local n=$1 pod=$2 cid=$3
  local conf="{\"cniVersion\":\"0.3.1\",\"name\":\"cbr0\",\"type\":\"flannel\",\"subnetFile\":\"$run/$n/subnet.env\",\"dataDir\":\"$run/$n/cni-data\",\"delegate\":{\"hairpinMode\":true,\"isDefaultGateway\":true},\"ipam\":{\"dataDir\":\"$run/$n/ipam\"}}"
  echo "$conf" | ip netns exec "${ns[$n]}" env CNI_COMMAND=ADD CNI_CONTAINERID="$cid" CNI_NETNS="/run/netns/$pod" \
    CNI_IFNAME=eth0 CNI_PATH="$bin/cni:/usr/lib/cni" "$bin/cni/flannel" >"$run/$n/cni-$cid.json" 2>"$run/cni-$cid.log"
}
declare -A podip
for n in node1 node2; do
  pod="fd${id}-pod-$n"
  ip netns add "$pod" || fail "cannot create namespace $pod"
  pods+=("$pod")
  cni_add "$n" "$pod" "pod-$n" || fail "CNI ADD on $n failed: $(cat "$run/$n/cni-pod-$n.json" "$run/cni-pod-$n.log")"
  podip[$n]=$(ip -n "$pod" -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
  [ -n "${podip[$n]}" ] || fail "pod on $n got no address"
done

# ---------------------------------------------------------------- the report
section() { printf '\n### %s\n' "$*"; }
echo
echo "================================================================ Flannel.NET demo report"
echo "mode: $([ "$mode" = etcd ] && echo 'one flanneld per node, etcd on the underlay' || echo '3 agents in one process, in-memory store')  backend: $backend"
echo
printf '%-8s %-18s %-14s\n' NAME PODCIDR INTERNAL-IP
for n in "${nodes[@]}"; do printf '%-8s %-18s %-14s\n' "$n" "$(network_of "$n")" "${addr[$n]}"; done
for n in "${nodes[@]}"; do
  N=${ns[$n]}
  echo
  echo "================================================================ $n (namespace $N)"
  section "subnet.env"; cat "$run/$n/subnet.env"
  section "ip -4 addr"; ip -n "$N" -4 addr
  if [ "$backend" = vxlan ]; then
    section "ip -d link show flannel.1"; ip -n "$N" -d link show flannel.1
  fi
  section "ip route"; ip -n "$N" route
  if [ "$backend" = vxlan ]; then
    section "ip neigh show dev flannel.1"; ip -n "$N" neigh show dev flannel.1
    section "bridge fdb show dev flannel.1"; bridge -n "$N" fdb show dev flannel.1
  fi
  section "iptables -t nat -S FLANNEL-POSTRTG; iptables -t filter -S FLANNEL-FWD"
  ip netns exec "$N" iptables -t nat -S FLANNEL-POSTRTG 2>&1; ip netns exec "$N" iptables -t filter -S FLANNEL-FWD 2>&1
  if ip -n "$N" link show cni0 >/dev/null 2>&1; then
    section "cni0 bridge and veths"; ip -n "$N" -d link show cni0 | head -2; ip -n "$N" link show master cni0
    section "last IP host-local reserved"; cat "$run/$n/ipam/cbr0/last_reserved_ip.0" 2>/dev/null; echo
  else
    section "cni0"; echo "(no pod on this node)"
  fi
done

echo
echo "================================================================ pod-to-pod across nodes"
ok=1
ping_pods() { # from-node to-node
  local from=$1 to=$2
  echo "\$ ping -c 3 ${podip[$to]}   # pod on $from (${podip[$from]}) -> pod on $to"
  if ip netns exec "fd${id}-pod-$from" ping -c 3 -W 2 "${podip[$to]}"; then echo "PASS $from -> $to"; else echo "FAIL $from -> $to"; ok=0; fi
}
ping_pods node1 node2
ping_pods node2 node1

if [ "$measure" = 1 ]; then
  echo
  echo "================================================================ figures"
  for k in "${!pids[@]}"; do
    [ "$k" = etcd ] && continue
    echo "RSS of $k (PID ${pids[$k]}): $(ps -o rss= -p "${pids[$k]}" | tr -d ' ') KiB"
  done
  grep -ho 'Wrote .* ready after [0-9:.]*' "$run"/*.log | sed 's/^/time to ready: /'
  # Lease event -> route: a foreign lease appears in the store; how long until node1 routes to it.
  lat=()
  for i in $(seq 10); do
    key="10.244.250.0-24"
    value="{\"PublicIP\":\"198.18.0.99\",\"PublicIPv6\":null,\"BackendType\":\"$backend\",\"BackendData\":{\"VNI\":1,\"VtepMAC\":\"0e:00:00:00:00:$(printf %02x "$i")\"}}"
    [ "$backend" = host-gw ] && value="{\"PublicIP\":\"198.18.0.99\",\"PublicIPv6\":null,\"BackendType\":\"host-gw\"}"
    if [ "$mode" = etcd ]; then
      t0=$(date +%s%N)
      ETCDCTL_API=3 ip netns exec "$brns" etcdctl --endpoints http://198.18.0.254:2379 put "/coreos.com/network/subnets/$key" "$value" >/dev/null
    else
      break  # the in-process store has no external writer; measure with --etcd
    fi
    until [ -n "$(ip -n "${ns[node1]}" route show 10.244.250.0/24)" ]; do :; done
    t1=$(date +%s%N)
    lat+=($(( (t1 - t0) / 1000 )))
    ETCDCTL_API=3 ip netns exec "$brns" etcdctl --endpoints http://198.18.0.254:2379 del "/coreos.com/network/subnets/$key" >/dev/null
    while [ -n "$(ip -n "${ns[node1]}" route show 10.244.250.0/24)" ]; do :; done
  done
  if [ ${#lat[@]} -gt 0 ]; then
    sorted=$(printf '%s\n' "${lat[@]}" | sort -n | tr '\n' ' ')
    echo "lease event -> route on node1 (us, 10 runs, includes etcdctl start-up): $sorted"
  fi
fi

if [ "$keep" = 1 ]; then
  echo "demo.sh: --keep: namespaces ${brns} ${ns[*]} ${pods[*]} stay up; press Ctrl-C to clean up"
  while true; do sleep 3600; done
fi
if [ "$ok" = 1 ]; then echo; echo "demo.sh: SUCCESS: pods on different nodes reach each other"; exit 0; fi
fail "cross-node pings failed"
