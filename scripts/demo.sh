#!/usr/bin/env bash
# The Flannel.NET demo: a 3-node virtual cluster on this machine, in network namespaces.
#
#   sudo ./scripts/demo.sh                     # vxlan, 3 agents in ONE process sharing the in-memory store
#   sudo ./scripts/demo.sh --etcd              # one flanneld process per node against a real etcd on the underlay
#   sudo ./scripts/demo.sh --backend host-gw   # the host-gw backend (works with --etcd too)
#   sudo ./scripts/demo.sh --backend wireguard # encrypted: flannel-wg devices on wireguard-go (this kernel has no
#                                              # WireGuard module), each node with a private /var/run/wireguard
#   sudo ./scripts/demo.sh --backend extension # flannel's extension backend: host-gw-style routes added by `ip` commands
#   sudo ./scripts/demo.sh --backend alloc     # allocation only: subnets are leased, nothing is routed (no ping)
#   sudo ./scripts/demo.sh --dual-stack        # IPv4 + IPv6 underlay and pod networks; pings over both families
#   sudo ./scripts/demo.sh --ipv6-only         # EnableIPv4 false: IPv6 underlay, IPv6 pods, IPv6 pings
#   sudo ./scripts/demo.sh --break overlay     # then drop UDP 8472 between node1 and node2 (nft on node2's underlay):
#                                              # `flanneld status` and `flanneld doctor` name the pair; then heal it
#   options: --no-deps (skip apt), --no-build (reuse the last build), --keep (leave everything up; Ctrl-C cleans),
#            --measure (also print agent RSS, time to ready and lease-event-to-route latency)
#
# Topology: a bridge namespace (br0, 198.18.0.254/24, also hosts etcd) and three node namespaces whose eth0
# (198.18.0.11-13/24) is a veth into br0; Network 10.244.0.0/16. Pods are namespaces wired by our `flannel`
# CNI plugin, which delegates to the real bridge/host-local plugins from /usr/lib/cni. The script prints a
# report shaped like flannel's deploy.log, ending with `flanneld status` and `flanneld doctor` on node1, and exits 0
# only if pod-to-pod pings across nodes succeed. It removes every namespace and process it created, also when it fails.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

mode=inprocess
backend=vxlan
families=v4     # v4, dual or v6
deps=1
build=1
keep=0
measure=0
breakmode=
while [ $# -gt 0 ]; do
  case "$1" in
    --etcd) mode=etcd ;;
    --dual-stack) families=dual ;;
    --ipv6-only) families=v6 ;;
    --backend) shift; backend="${1:-}" ;;
    --backend=*) backend="${1#--backend=}" ;;
    --no-deps) deps=0 ;;
    --no-build) build=0 ;;
    --keep) keep=1 ;;
    --measure) measure=1 ;;
    --break) shift; breakmode="${1:-}" ;;
    --break=*) breakmode="${1#--break=}" ;;
    -h|--help) sed -n 2,16p "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$backend" in vxlan|host-gw|wireguard|alloc|extension) ;; *) echo "demo.sh: --backend must be vxlan, host-gw, wireguard, alloc or extension, not '$backend'" >&2; exit 2 ;; esac
v4=1; v6=0
[ "$families" = dual ] && v6=1
[ "$families" = v6 ] && { v4=0; v6=1; }
if [ "$families" != v4 ] && [ "$backend" = extension ] || [ "$families" != v4 ] && [ "$backend" = alloc ]; then
  echo "demo.sh: the $backend backend is IPv4-only in flannel; use it without --dual-stack/--ipv6-only" >&2; exit 2
fi
case "$breakmode" in
  "") ;;
  overlay) [ "$backend" = vxlan ] && [ "$v4" = 1 ] || { echo "demo.sh: --break overlay needs the vxlan backend over IPv4" >&2; exit 2; } ;;
  *) echo "demo.sh: --break must be 'overlay', not '$breakmode'" >&2; exit 2 ;;
esac
if [ "$(id -u)" -ne 0 ]; then echo "demo.sh: run as root (it creates network namespaces)" >&2; exit 1; fi

# ---------------------------------------------------------------- dependencies and build
need_deps() {
  for c in ip bridge ping iptables etcd etcdctl; do command -v "$c" >/dev/null || return 0; done
  if [ "$backend" = wireguard ]; then for c in wireguard-go wg nsenter unshare; do command -v "$c" >/dev/null || return 0; done; fi
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
declare -A addr6
for i in 0 1 2; do ns[${nodes[$i]}]="fd${id}-n$((i + 1))"; addr[${nodes[$i]}]="198.18.0.$((11 + i))"; addr6[${nodes[$i]}]="fd00:198:18::$((11 + i))"; done
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
  # wireguard-go daemonises: stop the ones living in our node namespaces (by PID) before the namespaces go.
  for n in "${ns[@]}"; do
    for p in $(ip netns pids "$n" 2>/dev/null); do kill -TERM "$p" 2>/dev/null; done
  done
  for n in "${ns[@]}"; do
    for _ in $(seq 50); do [ -z "$(ip netns pids "$n" 2>/dev/null)" ] && break; sleep 0.1; done
    for p in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  done
  for n in "${nodes[@]}"; do
    [ -e "$run/$n/wireguard/mnt" ] && umount "$run/$n/wireguard/mnt" 2>/dev/null
    mountpoint -q "$run/$n/wireguard" 2>/dev/null && umount -l "$run/$n/wireguard"
  done
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
[ "$v4" = 1 ] && ip -n "$brns" addr add 198.18.0.254/24 dev br0
[ "$v6" = 1 ] && ip -n "$brns" addr add fd00:198:18::fe/64 dev br0 nodad
ip -n "$brns" link set br0 up
for n in "${nodes[@]}"; do
  N=${ns[$n]}
  ip netns add "$N" || fail "cannot create namespace $N"
  ip -n "$N" link set lo up
  ip -n "$brns" link add "v-$n" type veth peer name eth0 netns "$N"
  ip -n "$brns" link set "v-$n" master br0 up
  if [ "$v4" = 1 ]; then
    ip -n "$N" addr add "${addr[$n]}/24" dev eth0
  fi
  if [ "$v6" = 1 ]; then
    # nodad: the address is usable at once (flanneld picks it as the node's IPv6 endpoint at startup)
    ip -n "$N" addr add "${addr6[$n]}/64" dev eth0 nodad
    ip netns exec "$N" sysctl -qw net.ipv6.conf.all.forwarding=1
  fi
  ip -n "$N" link set eth0 up
  [ "$v4" = 1 ] && ip -n "$N" route add default via 198.18.0.254
  [ "$v6" = 1 ] && ip -n "$N" -6 route add default via fd00:198:18::fe
  ip netns exec "$N" sysctl -qw net.ipv4.ip_forward=1
  mkdir -p "$run/$n"
  if [ "$backend" = wireguard ]; then
    # wireguard-go always puts its socket in /var/run/wireguard, so three nodes on one machine would collide there.
    # Each node gets a pinned mount namespace in which /var/run/wireguard is its own directory ($wg/sockets); the
    # node's flanneld (or, in-process, its wireguard-go) runs in it. See docs/backends.md.
    wg="$run/$n/wireguard"
    mkdir -p "$wg/sockets" /run/wireguard && mount --bind "$wg" "$wg" && mount --make-private "$wg" && : >"$wg/mnt" \
      && unshare --mount="$wg/mnt" --propagation slave mount --bind "$wg/sockets" /run/wireguard \
      || fail "cannot create $n's mount namespace for wireguard-go"
  fi
done
# Run a command as node $1 sees the world (its network namespace and, for wireguard, its /var/run/wireguard).
in_node() { local n=$1; shift; if [ -e "$run/$n/wireguard/mnt" ]; then nsenter --mount="$run/$n/wireguard/mnt" --net="/run/netns/${ns[$n]}" -- "$@"; else ip netns exec "${ns[$n]}" "$@"; fi; }

backendjson="{\"Type\":\"$backend\"}"
if [ "$backend" = extension ]; then
  # host-gw by hand: the commands see flannel's SUBNET and PUBLIC_IP; PreStartupCommand's output is published as BackendData.
  backendjson='{"Type":"extension","PreStartupCommand":"ip -o -4 addr show dev eth0 | awk '"'"'{print $4}'"'"'","SubnetAddCommand":"read -r peer; ip route replace $SUBNET via $PUBLIC_IP dev eth0","SubnetRemoveCommand":"ip route del $SUBNET via $PUBLIC_IP dev eth0"}'
fi
case "$families" in
  v4) netconf="{\"Network\":\"10.244.0.0/16\",\"Backend\":$backendjson}" ;;
  dual) netconf="{\"Network\":\"10.244.0.0/16\",\"EnableIPv6\":true,\"IPv6Network\":\"fd00:10:244::/56\",\"Backend\":$backendjson}" ;;
  v6) netconf="{\"EnableIPv4\":false,\"EnableIPv6\":true,\"IPv6Network\":\"fd00:10:244::/56\",\"Backend\":$backendjson}" ;;
esac
etcdurl=http://198.18.0.254:2379
[ "$v4" = 0 ] && etcdurl="http://[fd00:198:18::fe]:2379"

# ---------------------------------------------------------------- the agents
if [ "$mode" = etcd ]; then
  echo "== starting etcd on the underlay ($etcdurl, in $brns)"
  ip netns exec "$brns" etcd --name "fd$id" --data-dir "$run/etcd" \
    --listen-client-urls $etcdurl --advertise-client-urls $etcdurl \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster "fd$id=http://127.0.0.1:2380" >"$run/etcd.log" 2>&1 &
  pids[etcd]=$!
  for _ in $(seq 100); do
    ETCDCTL_API=3 ip netns exec "$brns" etcdctl --endpoints $etcdurl endpoint health >/dev/null 2>&1 && break
    sleep 0.2
  done
  ETCDCTL_API=3 ip netns exec "$brns" etcdctl --endpoints $etcdurl put /coreos.com/network/config "$netconf" >/dev/null \
    || fail "cannot write the network config to etcd"
  for n in "${nodes[@]}"; do
    enter=()
    [ "$backend" = wireguard ] && enter=(nsenter --mount="$run/$n/wireguard/mnt" --)
    "${enter[@]}" ip netns exec "${ns[$n]}" env WIREGUARD_KEY_FILE="$run/$n/wireguard/wgkey" "$bin/flanneld/flanneld" --etcd-endpoints=$etcdurl \
      --subnet-file="$run/$n/subnet.env" --iface=eth0 --ip-masq \
      --status-socket="$run/$n/flannel.sock" --probe-interval=5s >"$run/flanneld-$n.log" 2>&1 &
    pids[$n]=$!
  done
  echo "== started 3 flanneld processes (PIDs ${pids[node1]} ${pids[node2]} ${pids[node3]})"
else
  args=()
  for n in "${nodes[@]}"; do
    if [ "$backend" = wireguard ]; then args+=(--node "$n=${ns[$n]},$run/$n/subnet.env,$run/$n/wireguard"); else args+=(--node "$n=${ns[$n]},$run/$n/subnet.env"); fi
  done
  "$bin/demo/flannel-demo" --network-config "$netconf" --ip-masq --probe-interval 5 "${args[@]}" >"$run/flannel-demo.log" 2>&1 &
  pids[demo]=$!
  echo "== started 3 agents in one process (flannel-demo, PID ${pids[demo]}) sharing the in-memory store"
fi

for n in "${nodes[@]}"; do
  for _ in $(seq 300); do [ -s "$run/$n/subnet.env" ] && break; sleep 0.1; done
  [ -s "$run/$n/subnet.env" ] || fail "$n did not write its subnet.env within 30 s"
done
subnet_of() { sed -n 's/^FLANNEL_SUBNET=//p' "$run/$1/subnet.env"; }        # e.g. 10.244.7.1/24
network_of() { local s; s=$(subnet_of "$1"); [ -n "$s" ] && echo "${s%.*/*}.0/${s#*/}"; }   # e.g. 10.244.7.0/24
subnet6_of() { sed -n 's/^FLANNEL_IPV6_SUBNET=//p' "$run/$1/subnet.env"; }  # e.g. fd00:10:244:7::1/64
network6_of() { local s; s=$(subnet6_of "$1"); [ -n "$s" ] && echo "${s%1/*}/${s#*/}"; } # e.g. fd00:10:244:7::/64
routes_ok=1
[ "$backend" = alloc ] && routes_ok=0   # alloc leases subnets and routes nothing: there is nothing to wait for

# Wait until every node routes to every other node's subnet(s).
if [ "$routes_ok" = 1 ]; then
  for n in "${nodes[@]}"; do
    for m in "${nodes[@]}"; do
      [ "$n" = "$m" ] && continue
      for dst in $([ "$v4" = 1 ] && network_of "$m") $([ "$v6" = 1 ] && network6_of "$m"); do
        if [ "$backend" = wireguard ]; then
          # One route to the whole network through flannel-wg; per node there is a peer whose allowed IPs are its subnet.
          for _ in $(seq 300); do in_node "$n" wg show all allowed-ips 2>/dev/null | grep -qw "$dst" && break; sleep 0.1; done
          in_node "$n" wg show all allowed-ips 2>/dev/null | grep -qw "$dst" || fail "$n has no WireGuard peer for $m's subnet $dst"
          continue
        fi
        fam=-4; case "$dst" in *:*) fam=-6 ;; esac   # `ip route show PREFIX` lists IPv4 routes unless told -6
        for _ in $(seq 300); do [ -n "$(ip -n "${ns[$n]}" $fam route show "$dst")" ] && break; sleep 0.1; done
        [ -n "$(ip -n "${ns[$n]}" $fam route show "$dst")" ] || fail "$n has no route to $m's subnet $dst"
      done
    done
  done
fi

# ---------------------------------------------------------------- pods through our CNI plugin
cni_add() { # node pod-namespace container-id
  local n=$1 pod=$2 cid=$3
  local conf="{\"cniVersion\":\"0.3.1\",\"name\":\"cbr0\",\"type\":\"flannel\",\"subnetFile\":\"$run/$n/subnet.env\",\"dataDir\":\"$run/$n/cni-data\",\"delegate\":{\"hairpinMode\":true,\"isDefaultGateway\":true},\"ipam\":{\"dataDir\":\"$run/$n/ipam\"}}"
  echo "$conf" | ip netns exec "${ns[$n]}" env CNI_COMMAND=ADD CNI_CONTAINERID="$cid" CNI_NETNS="/run/netns/$pod" \
    CNI_IFNAME=eth0 CNI_PATH="$bin/cni:/usr/lib/cni" "$bin/cni/flannel" >"$run/$n/cni-$cid.json" 2>"$run/cni-$cid.log"
}
declare -A podip podip6
for n in node1 node2; do
  pod="fd${id}-pod-$n"
  ip netns add "$pod" || fail "cannot create namespace $pod"
  pods+=("$pod")
  cni_add "$n" "$pod" "pod-$n" || fail "CNI ADD on $n failed: $(cat "$run/$n/cni-pod-$n.json" "$run/cni-pod-$n.log")"
  if [ "$v4" = 1 ]; then
    podip[$n]=$(ip -n "$pod" -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
    [ -n "${podip[$n]}" ] || fail "pod on $n got no IPv4 address"
  fi
  if [ "$v6" = 1 ]; then
    for _ in $(seq 50); do
      podip6[$n]=$(ip -n "$pod" -6 -o addr show dev eth0 scope global -tentative | awk '{print $4}' | cut -d/ -f1)
      [ -n "${podip6[$n]}" ] && break; sleep 0.1
    done
    [ -n "${podip6[$n]}" ] || fail "pod on $n got no usable IPv6 address"
  fi
done

# ---------------------------------------------------------------- the report
section() { printf '\n### %s\n' "$*"; }
echo
echo "================================================================ Flannel.NET demo report"
echo "mode: $([ "$mode" = etcd ] && echo 'one flanneld per node, etcd on the underlay' || echo '3 agents in one process, in-memory store')  backend: $backend  families: $([ "$v4" = 1 ] && echo -n 'IPv4 ')$([ "$v6" = 1 ] && echo -n 'IPv6')"
echo
printf '%-8s %-18s %-24s %-14s %s\n' NAME PODCIDR PODCIDR-V6 INTERNAL-IP INTERNAL-IPV6
for n in "${nodes[@]}"; do
  printf '%-8s %-18s %-24s %-14s %s\n' "$n" "$(network_of "$n")" "$(network6_of "$n")" "$([ "$v4" = 1 ] && echo "${addr[$n]}")" "$([ "$v6" = 1 ] && echo "${addr6[$n]}")"
done
for n in "${nodes[@]}"; do
  N=${ns[$n]}
  echo
  echo "================================================================ $n (namespace $N)"
  section "subnet.env"; cat "$run/$n/subnet.env"
  if [ "$backend" = wireguard ]; then
    for dev in flannel-wg flannel-wg-v6; do
      ip -n "$N" link show "$dev" >/dev/null 2>&1 || continue
      section "ip -d addr show $dev"; ip -n "$N" -d addr show "$dev"
    done
    section "wg show (wireguard-go, sockets in $run/$n/wireguard/sockets; private key hidden)"; in_node "$n" wg show all
    echo "private key file: $run/$n/wireguard/wgkey (mode $(stat -c %a "$run/$n/wireguard/wgkey"))"
    grep -h 'wireguard: using' "$run"/*.log | grep -F "[$n]" | head -1 | sed 's/^/control path: /'
    grep -h 'wireguard: using' "$run/flanneld-$n.log" 2>/dev/null | head -1 | sed 's/^/control path: /'
  fi
  if [ "$v4" = 1 ]; then
    section "ip -4 addr"; ip -n "$N" -4 addr
    [ "$backend" = vxlan ] && { section "ip -d link show flannel.1"; ip -n "$N" -d link show flannel.1; }
    section "ip route"; ip -n "$N" route
    if [ "$backend" = vxlan ]; then
      section "ip neigh show dev flannel.1"; ip -n "$N" neigh show dev flannel.1
      section "bridge fdb show dev flannel.1"; bridge -n "$N" fdb show dev flannel.1
    fi
    section "iptables -t nat -S FLANNEL-POSTRTG; iptables -t filter -S FLANNEL-FWD"
    ip netns exec "$N" iptables -t nat -S FLANNEL-POSTRTG 2>&1; ip netns exec "$N" iptables -t filter -S FLANNEL-FWD 2>&1
  fi
  if [ "$v6" = 1 ]; then
    section "ip -6 addr (global)"; ip -n "$N" -6 addr show scope global
    [ "$backend" = vxlan ] && { section "ip -d link show flannel-v6.1"; ip -n "$N" -d link show flannel-v6.1; }
    section "ip -6 route"; ip -n "$N" -6 route | grep -v '^fe80\|^multicast\|^ff00'
    if [ "$backend" = vxlan ]; then
      section "ip -6 neigh show dev flannel-v6.1"; ip -n "$N" -6 neigh show dev flannel-v6.1
      section "bridge fdb show dev flannel-v6.1"; bridge -n "$N" fdb show dev flannel-v6.1
    fi
    section "ip6tables -t nat -S FLANNEL-POSTRTG"
    ip netns exec "$N" ip6tables -t nat -S FLANNEL-POSTRTG 2>&1
  fi
  if ip -n "$N" link show cni0 >/dev/null 2>&1; then
    section "cni0 bridge and veths"; ip -n "$N" -d link show cni0 | head -2; ip -n "$N" link show master cni0
  else
    section "cni0"; echo "(no pod on this node)"
  fi
done

echo
echo "================================================================ pod-to-pod across nodes"
ok=1
ping_pods() { # from-node to-node family
  local from=$1 to=$2 fam=$3 dst
  if [ "$fam" = 6 ]; then dst=${podip6[$to]}; else dst=${podip[$to]}; fi
  # -w: up to 12 s for 3 replies. WireGuard drops a handshake initiation that reaches a node before that node has
  # added the sender as a peer (the probers initiate as soon as peers appear) and retries only after 5 s.
  echo "\$ ping -$fam -c 3 -w 12 $dst   # pod on $from -> pod on $to"
  if ip netns exec "fd${id}-pod-$from" ping "-$fam" -c 3 -w 12 "$dst"; then echo "PASS IPv$fam $from -> $to"; else echo "FAIL IPv$fam $from -> $to"; ok=0; fi
}
if [ "$backend" = alloc ]; then
  # alloc routes nothing: the pods must NOT reach each other, and every node must hold a distinct subnet.
  echo "alloc: subnets $(for n in "${nodes[@]}"; do network_of "$n"; done | tr '\n' ' ')leased; no flannel route is programmed"
  [ "$(for n in "${nodes[@]}"; do network_of "$n"; done | sort -u | wc -l)" = 3 ] || { echo "FAIL the subnets are not distinct"; ok=0; }
  for n in "${nodes[@]}"; do
    if ip -n "${ns[$n]}" route | grep -q '^10\.244\.'; then
      [ "$(ip -n "${ns[$n]}" route | grep '^10\.244\.' | grep -vc 'dev cni0')" = 0 ] || { echo "FAIL $n has a route to another node's subnet"; ok=0; }
    fi
  done
  if ip netns exec "fd${id}-pod-node1" ping -4 -c 1 -W 1 "${podip[node2]}" >/dev/null 2>&1; then echo "FAIL pods reach each other although alloc routes nothing"; ok=0; else echo "PASS no route between pods, as expected with alloc"; fi
else
  for fam in $([ "$v4" = 1 ] && echo 4) $([ "$v6" = 1 ] && echo 6); do
    ping_pods node1 node2 "$fam"
    ping_pods node2 node1 "$fam"
  done
fi

# ---------------------------------------------------------------- fabric health: flanneld status and doctor
# In the node's namespaces: with wireguard also its mount namespace, where `wg` (doctor) finds wireguard-go's socket.
flanneld_in() { local n=$1; shift; in_node "$n" "$bin/flanneld/flanneld" "$@"; }
status_of() { flanneld_in "$1" status --socket "$run/$1/flannel.sock" "${@:2}"; }
doctor_of() { flanneld_in "$1" doctor --socket "$run/$1/flannel.sock" --subnet-file="$run/$1/subnet.env" "${@:2}"; }
# Waits (up to $3 s) until `flanneld status` on node $1 exits $2 with every peer probed.
wait_status() {
  local n=$1 want=$2 limit=$3 out rc
  for _ in $(seq $((limit * 5))); do
    out=$(status_of "$n" 2>&1); rc=$?
    [ "$rc" = "$want" ] && ! grep -q 'not probed yet' <<<"$out" && return 0
    sleep 0.2
  done
  return 1
}
echo
echo "================================================================ fabric health (node1)"
wait_status node1 0 30 || echo "(not every peer was probed within 30 s)"
echo "\$ flanneld status   # in node1's namespace; exit code 0 = every peer reachable"
status_of node1; echo "(exit code $?)"
echo
echo "\$ flanneld doctor   # in node1's namespace"
doctor_of node1; echo "(exit code $?)"

if [ "$breakmode" = overlay ]; then
  echo
  echo "================================================================ --break overlay: drop UDP 8472 between node1 and node2"
  echo "\$ nft (in node2's namespace): drop udp dport 8472 from and to ${addr[node1]}"
  N2=${ns[node2]}
  ip netns exec "$N2" nft add table inet demo-break
  ip netns exec "$N2" nft add chain inet demo-break in '{ type filter hook input priority -10 ; }'
  ip netns exec "$N2" nft add chain inet demo-break out '{ type filter hook output priority -10 ; }'
  ip netns exec "$N2" nft add rule inet demo-break in ip saddr "${addr[node1]}" udp dport 8472 drop
  ip netns exec "$N2" nft add rule inet demo-break out ip daddr "${addr[node1]}" udp dport 8472 drop
  t0=$(date +%s)
  if wait_status node1 1 60; then
    echo "node1's probes found it after $(( $(date +%s) - t0 )) s (probe interval 5 s)"
  else
    echo "FAIL node1's status did not report the broken pair within 60 s"; ok=0
  fi
  echo
  echo "\$ flanneld status   # node1"
  status_of node1; echo "(exit code $?)"
  echo
  echo "\$ flanneld doctor   # node1"
  doctor_of node1; echo "(exit code $?)"
  echo
  echo "\$ grep 'answers over the underlay but not over the overlay' <node1's log>"
  grep -h 'answers over the underlay but not over the overlay' "$run"/*.log | grep -v 'node2\]\|node3\]' | head -2
  echo
  echo "\$ nft delete table inet demo-break   # heal"
  ip netns exec "$N2" nft delete table inet demo-break
  t0=$(date +%s)
  if wait_status node1 0 60; then
    echo "node1 sees every peer reachable again after $(( $(date +%s) - t0 )) s"
  else
    echo "FAIL node1's status did not recover within 60 s"; ok=0
  fi
  status_of node1; echo "(exit code $?)"
fi

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
      ETCDCTL_API=3 ip netns exec "$brns" etcdctl --endpoints $etcdurl put "/coreos.com/network/subnets/$key" "$value" >/dev/null
    else
      break  # the in-process store has no external writer; measure with --etcd
    fi
    until [ -n "$(ip -n "${ns[node1]}" route show 10.244.250.0/24)" ]; do :; done
    t1=$(date +%s%N)
    lat+=($(( (t1 - t0) / 1000 )))
    ETCDCTL_API=3 ip netns exec "$brns" etcdctl --endpoints $etcdurl del "/coreos.com/network/subnets/$key" >/dev/null
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
if [ "$ok" = 1 ]; then echo; echo "demo.sh: SUCCESS: $([ "$backend" = alloc ] && echo 'subnets leased and nothing routed, as alloc should' || echo 'pods on different nodes reach each other')"; exit 0; fi
fail "cross-node pings failed"
