#!/usr/bin/env bash
# Memory under lease churn: two flanneld processes (vxlan, etcd store), each in its own network namespace, against a
# real etcd; N peer leases are created, the agents converge, and then the leases change at a fixed rate for a while
# (churn.py: deletes, new VtepMACs, re-creations). The RSS of both agents is sampled every 5 s; the report compares
# the churn with the post-convergence level, and checks that the kernel matches etcd once the churn stops.
#
#   sudo benchmarks/soak/churn-soak.sh                       # 10 minutes at 20 changes/s over 200 peers
#   sudo benchmarks/soak/churn-soak.sh --minutes 2 --rate 50 --peers 500 --no-build --csv /tmp/rss.csv
#   sudo benchmarks/soak/churn-soak.sh --flanneld /tmp/native/flanneld  # a native-AOT flanneld (scripts/publish-native.sh)
#
# Uses the flanneld in samples/Flannel.Host/bin/Release/net10.0 (built unless --no-build or --flanneld). Creates namespaces named
# fs<id>-*, and removes every namespace and process it created, also when it fails. Never touches the root namespace.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

minutes=10
rate=20
peers=200
build=1
csv=""
gcdump=""
flanneld="$root/samples/Flannel.Host/bin/Release/net10.0/flanneld"
envs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) shift; minutes=$1 ;;
    --rate) shift; rate=$1 ;;
    --peers) shift; peers=$1 ;;
    --no-build) build=0 ;;
    --csv) shift; csv=$1 ;;
    --env) shift; envs+=("$1") ;;    # NAME=VALUE for both flanneld processes (e.g. DOTNET_GCgen0size=400000: bare hex, a native flanneld ignores 0x), repeatable
    --gcdump) shift; gcdump=$1 ;;  # write dotnet-gcdump heap snapshots (post-convergence and end) to this folder
    --flanneld) shift; flanneld=$1; build=0 ;;  # run this flanneld executable instead of the JIT build
    -h|--help) sed -n 2,13p "$0"; exit 0 ;;
    *) echo "churn-soak.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$(id -u)" -ne 0 ]; then echo "churn-soak.sh: run as root (it creates network namespaces)" >&2; exit 1; fi

if [ "$build" = 1 ]; then
  dotnet build samples/Flannel.Host -c Release -nologo -v quiet || exit 1
fi
[ -x "$flanneld" ] || { echo "churn-soak.sh: no flanneld at $flanneld (build it, or drop --no-build)" >&2; exit 1; }

id=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
run=$(mktemp -d /tmp/flannel-soak-XXXXXX)
brns="fs${id}-br"
declare -A ns pids
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  for n in "${ns[@]}"; do ip netns del "$n" 2>/dev/null; done
  ip netns del "$brns" 2>/dev/null
  rm -rf "$run"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { echo "churn-soak.sh: FAILED: $*" >&2; for f in "$run"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done; exit 1; }

ip netns add "$brns" || fail "cannot create $brns"
ip -n "$brns" link set lo up
ip -n "$brns" link add br0 type bridge
ip -n "$brns" addr add 198.18.0.254/24 dev br0
ip -n "$brns" link set br0 up
for i in 1 2; do
  n="node$i"; N="fs${id}-n$i"; ns[$n]=$N
  ip netns add "$N" || fail "cannot create $N"
  ip -n "$N" link set lo up
  ip -n "$brns" link add "v-$n" type veth peer name eth0 netns "$N"
  ip -n "$brns" link set "v-$n" master br0 up
  ip -n "$N" addr add "198.18.0.1$i/24" dev eth0
  ip -n "$N" link set eth0 up
  ip -n "$N" route add default via 198.18.0.254
done

endpoint=http://198.18.0.254:2379
prefix=/coreos.com/network
ip netns exec "$brns" etcd --name "fs$id" --data-dir "$run/etcd" --listen-client-urls "$endpoint" --advertise-client-urls "$endpoint" \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster "fs$id=http://127.0.0.1:2380" --log-level warn --logger zap >"$run/etcd.log" 2>&1 &
pids[etcd]=$!
for _ in $(seq 100); do ETCDCTL_API=3 ip netns exec "$brns" etcdctl --endpoints "$endpoint" endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
ETCDCTL_API=3 ip netns exec "$brns" etcdctl --endpoints "$endpoint" put "$prefix/config" '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}' >/dev/null || fail "etcd"
ip netns exec "$brns" python3 benchmarks/soak/churn.py "$endpoint" "$prefix" --peers "$peers" --populate-only || fail "populating $peers leases"

for n in node1 node2; do
  ip netns exec "${ns[$n]}" env "${envs[@]}" "$flanneld" --etcd-endpoints="$endpoint" --subnet-file="$run/$n.env" --iface=eth0 >"$run/$n.log" 2>&1 &
  pids[$n]=$!
done

echo "flanneld $flanneld $([ -e "${flanneld}.dll" ] && echo '(JIT)' || echo '(native)'); PIDs: node1 ${pids[node1]}, node2 ${pids[node2]}"
routes() { ip -n "${ns[$1]}" route show proto 70 | grep -c '^10\.244\.'; }
for n in node1 node2; do
  for _ in $(seq 600); do [ "$(routes "$n")" -ge "$peers" ] && break; sleep 0.1; done
  [ "$(routes "$n")" -ge "$peers" ] || fail "$n did not converge on $peers peers ($(routes "$n") routes)"
done

rss() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
echo "time_s,node1_kib,node2_kib" >"$run/rss.csv"
sample() { echo "$1,$(rss "${pids[node1]}"),$(rss "${pids[node2]}")" >>"$run/rss.csv"; }

# Post-convergence level: the mean of 6 samples over 30 s with every peer programmed and no change.
for t in 0 5 10 15 20 25; do sample "-$((30 - t))"; sleep 5; done
snapshot() { # label
  [ -n "$gcdump" ] || return 0
  mkdir -p "$gcdump"
  for n in node1 node2; do
    dotnet-gcdump collect -p "${pids[$n]}" -o "$gcdump/$n-$1.gcdump" >/dev/null 2>&1 || echo "churn-soak.sh: gcdump of $n failed" >&2
  done
}
snapshot converged
base1=$(awk -F, 'NR>1{s+=$2;n++} END{printf "%d", s/n}' "$run/rss.csv")
base2=$(awk -F, 'NR>1{s+=$3;n++} END{printf "%d", s/n}' "$run/rss.csv")

seconds=$((minutes * 60))
ip netns exec "$brns" python3 benchmarks/soak/churn.py "$endpoint" "$prefix" --peers "$peers" --rate "$rate" --seconds "$seconds" >"$run/churn.out" 2>"$run/churn.err" &
churn=$!
start=$(date +%s)
while kill -0 "$churn" 2>/dev/null; do
  sleep 5
  sample "$(( $(date +%s) - start ))"
done
wait "$churn" || fail "churn: $(cat "$run/churn.err")"
snapshot churned

# Kernel = etcd: node1's routes are exactly the peers left plus node2.
# "present: a b c" has one word per peer left plus the label, which counts for node2's own route.
want=$(grep '^present:' "$run/churn.out" | wc -w)
settled=0
for _ in $(seq 100); do [ "$(routes node1)" -eq "$want" ] && { settled=1; break; }; sleep 0.1; done

awk -F, -v b1="$base1" -v b2="$base2" -v minutes="$minutes" -v rate="$rate" -v peers="$peers" '
  NR>1 && $1>=0 { n++; if ($2>m1) m1=$2; if ($3>m2) m2=$3; l1=$2; l2=$3 }
  END {
    printf "churn: %s min at %s changes/s over %s peers (%d samples)\n", minutes, rate, peers, n
    printf "node1 (programs): post-convergence %.1f MiB, max %.1f MiB (%+.1f %%), last %.1f MiB (%+.1f %%)\n", b1/1024, m1/1024, (m1-b1)*100/b1, l1/1024, (l1-b1)*100/b1
    printf "node2 (programs): post-convergence %.1f MiB, max %.1f MiB (%+.1f %%), last %.1f MiB (%+.1f %%)\n", b2/1024, m2/1024, (m2-b2)*100/b2, l2/1024, (l2-b2)*100/b2
    within = (m1 <= b1*1.15 && m2 <= b2*1.15)
    printf "within 15 %% of post-convergence: %s\n", within ? "yes" : "NO"
  }' "$run/rss.csv"
head -1 "$run/churn.out"
for n in node1 node2; do echo "$n: $(grep -o 'ready after [0-9:.]*' "$run/$n.log" | head -1)"; done
echo "kernel = etcd after the churn: $([ "$settled" = 1 ] && echo yes || echo "NO (node1 has $(routes node1) routes, etcd $want leases)")"
[ -n "$csv" ] && cp "$run/rss.csv" "$csv" && echo "samples: $csv"
exit 0
