#!/bin/bash
# Re-captures the golden request vectors in this folder from iproute2.
#
# For every vector it runs one iproute2 command under
#   strace -f -e trace=sendmsg,sendto -e write=all -s 4096 -xx
# inside a throwaway network namespace (fnt-cap-<hex>, deleted on exit), and keeps the hex dump of the
# LAST request the command sent whose nlmsg_type is the one named in the table below (iproute2 sends a
# probe or a name lookup first for some commands). Each vector file holds the command, the message type and
# the raw bytes, 16 per line. Needs root, iproute2 and strace. Never touches the root namespace.
set -euo pipefail
cd "$(dirname "$0")"
ns="fnt-cap-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
cleanup() { ip netns del "$ns" 2>/dev/null || true; ip netns del "$ns-peer" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$ns"
ip netns add "$ns-peer"
run() { ip netns exec "$ns" "$@"; }

# The underlay flannel would use: a veth with 198.18.0.1/24, MTU 1500.
run ip link set lo up
run ip link add veth0 type veth peer name veth1
run ip addr add 198.18.0.1/24 dev veth0
run ip link set veth0 up
run ip link set veth1 up

# capture NAME TYPE COMMAND... : TYPE is the nlmsg_type strace prints (e.g. RTM_NEWLINK).
capture() {
    local name="$1" type="$2"; shift 2
    local log; log="$(mktemp)"
    run strace -f -e trace=sendmsg,sendto -e write=all -s 4096 -xx -o "$log" "$@" || true
    {
        echo "# command: $*"
        echo "# type: $type"
        awk -v type="nlmsg_type=$type," '
            /^([0-9]+ +)?(sendmsg|sendto)\(/ { keep = index($0, type) > 0; if (keep) { buf = "" } next }
            keep && /^ \| [0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]  / {
                line = substr($0, index($0, "|") + 9, 49); gsub(/  +/, " ", line); sub(/^ /, "", line); sub(/ $/, "", line)
                buf = buf line "\n"
            }
            END { printf "%s", buf }
        ' "$log"
    } > "$name.hex"
    rm -f "$log"
    echo "captured $name ($(grep -v '^#' "$name.hex" | wc -w) bytes)"
}

capture link-add-vxlan-flannel RTM_NEWLINK ip link add flannel.1 type vxlan id 1 local 198.18.0.1 dev veth0 ttl 0 tos 0 nolearning noproxy norsc nol2miss nol3miss noudp6zerocsumtx noudp6zerocsumrx
capture link-add-vxlan-port-gbp RTM_NEWLINK ip link add flannel.2 type vxlan id 2 local 198.18.0.1 dev veth0 ttl 0 tos 0 nolearning noproxy norsc nol2miss nol3miss noudp6zerocsumtx noudp6zerocsumrx gbp dstport 4789
capture link-add-bridge RTM_NEWLINK ip link add br0 type bridge
capture link-add-dummy RTM_NEWLINK ip link add d0 type dummy
capture link-add-veth RTM_NEWLINK ip link add va type veth peer name vb
# iproute2 opens the peer namespace as fd 4 here (0-2 stdio, 3 its netlink socket); the test passes fd 4.
capture link-add-veth-netns RTM_NEWLINK ip link add va2 type veth peer name vb2 netns "$ns-peer"
capture link-set-up RTM_NEWLINK ip link set dev flannel.1 up
capture link-set-mtu RTM_NEWLINK ip link set dev flannel.1 mtu 1450
capture link-set-address RTM_NEWLINK ip link set dev flannel.1 address 0a:58:0a:f4:01:01
capture link-del RTM_DELLINK ip link del dev flannel.2
capture addr-add RTM_NEWADDR ip addr add 10.244.0.0/32 dev flannel.1
capture addr-del RTM_DELADDR ip addr del 10.244.0.0/32 dev flannel.1
capture neigh-replace RTM_NEWNEIGH ip neigh replace 10.244.1.0 lladdr 0a:58:0a:f4:01:02 dev flannel.1 nud permanent
capture neigh-del RTM_DELNEIGH ip neigh del 10.244.1.0 dev flannel.1
capture fdb-replace RTM_NEWNEIGH bridge fdb replace 0a:58:0a:f4:01:02 dev flannel.1 dst 198.18.0.2 self permanent
capture fdb-del RTM_DELNEIGH bridge fdb del 0a:58:0a:f4:01:02 dev flannel.1 dst 198.18.0.2 self
capture route-replace-onlink RTM_NEWROUTE ip route replace 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink
capture route-del RTM_DELROUTE ip route del 10.244.1.0/24 via 10.244.1.0 dev flannel.1
capture nexthop-add RTM_NEWNEXTHOP ip nexthop add id 7 via 10.244.1.0 dev flannel.1 onlink proto 70
capture route-replace-nhid RTM_NEWROUTE ip route replace 10.244.7.0/24 nhid 7
capture nexthop-del RTM_DELNEXTHOP ip nexthop del id 7
capture route-replace-v6 RTM_NEWROUTE ip -6 route replace fd00:1::/64 via fd00:1:: dev flannel.1 onlink
capture addr-add-v6 RTM_NEWADDR ip -6 addr add fd00:1::/128 dev flannel.1
# WireGuard: the kernel here has no wireguard module, so both commands fail, but the request each sends first
# is what is recorded (iproute2's RTM_NEWLINK; wireguard-tools' CTRL_CMD_GETFAMILY, which strace names nlctrl).
capture link-add-wireguard RTM_NEWLINK ip link add flannel-wg type wireguard
capture genl-getfamily-wireguard nlctrl wg show flannel-wg
