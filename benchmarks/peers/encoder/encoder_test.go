// Package encoder measures vishvananda/netlink's `nl` encoder on the three messages flannel's vxlan
// backend sends for every remote peer, so that Flannel.NET's Span-based encoder can be compared with
// it in the same run (see docs/benchmarks.md).
//
// The library builds and serializes a request inside the same function that sends it
// (Handle.routeHandle and neighHandle end in req.Execute), so the encode step cannot be called on its
// own. Each builder below therefore repeats, call for call, what those functions do for the exact
// object flannel passes (pkg/backend/vxlan/device.go and vxlan_network.go), stopping where Execute
// would open the socket: Execute's first step is req.Serialize(), which is included.
//
// Run with benchmarks/peers/run-go-encoder.sh (GOPATH mode, Debian's golang-go 1.19 and
// golang-github-vishvananda-netlink-dev).
package encoder

import (
	"net"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The peer every benchmark encodes: the same values as Flannel.NET's EncoderBenchmarks.
var (
	peerSubnet = &net.IPNet{IP: net.IPv4(10, 244, 1, 0).To4(), Mask: net.CIDRMask(24, 32)}
	peerGw     = net.IPv4(10, 244, 1, 0)
	peerVtep   = net.IPv4(198, 18, 0, 2)
	peerMac    = net.HardwareAddr{0x02, 0x42, 0x0a, 0xf4, 0x01, 0x00}
	linkIndex  = 4
)

// flannelRoute is the route flannel's vxlan backend replaces per lease
// (`10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink`).
func flannelRoute() *netlink.Route {
	return &netlink.Route{
		LinkIndex: linkIndex,
		Scope:     netlink.SCOPE_UNIVERSE,
		Dst:       peerSubnet,
		Gw:        peerGw,
		Flags:     syscall.RTNH_F_ONLINK,
	}
}

// flannelNeigh is the permanent ARP entry for the peer's gateway address (device.go AddARP).
func flannelNeigh() *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex:    linkIndex,
		State:        netlink.NUD_PERMANENT,
		Type:         syscall.RTN_UNICAST,
		IP:           peerGw,
		HardwareAddr: peerMac,
	}
}

// flannelFdb is the FDB entry sending the peer's VTEP MAC to its underlay address (device.go AddFDB).
func flannelFdb() *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex:    linkIndex,
		Family:       syscall.AF_BRIDGE,
		State:        netlink.NUD_PERMANENT,
		Flags:        netlink.NTF_SELF,
		IP:           peerVtep,
		HardwareAddr: peerMac,
	}
}

// encodeRouteReplace repeats Handle.RouteReplace + Handle.routeHandle (route_linux.go) for a route with
// Dst, Gw, Flags, Scope and LinkIndex set, then serializes as Execute does.
func encodeRouteReplace(route *netlink.Route) []byte {
	req := nl.NewNetlinkRequest(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK)
	msg := nl.NewRtMsg()

	family := -1
	var rtAttrs []*nl.RtAttr

	dstLen, _ := route.Dst.Mask.Size()
	msg.Dst_len = uint8(dstLen)
	family = nl.GetIPFamily(route.Dst.IP)
	rtAttrs = append(rtAttrs, nl.NewRtAttr(unix.RTA_DST, route.Dst.IP.To4()))

	if gwFamily := nl.GetIPFamily(route.Gw); family != gwFamily {
		panic("gateway family differs")
	}
	rtAttrs = append(rtAttrs, nl.NewRtAttr(unix.RTA_GATEWAY, route.Gw.To4()))

	msg.Flags = uint32(route.Flags)
	msg.Scope = uint8(route.Scope)
	msg.Family = uint8(family)
	req.AddData(msg)
	for _, attr := range rtAttrs {
		req.AddData(attr)
	}

	b := make([]byte, 4)
	nl.NativeEndian().PutUint32(b, uint32(route.LinkIndex))
	req.AddData(nl.NewRtAttr(unix.RTA_OIF, b))

	return req.Serialize()
}

// encodeNeighSet repeats Handle.NeighSet + neighAdd + neighHandle (neigh_linux.go) for a neighbour
// with LinkIndex, State, Type, Flags, Family, IP and HardwareAddr set, then serializes as Execute does.
func encodeNeighSet(neigh *netlink.Neigh) []byte {
	req := nl.NewNetlinkRequest(unix.RTM_NEWNEIGH, unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK)

	var family int
	if neigh.Family > 0 {
		family = neigh.Family
	} else {
		family = nl.GetIPFamily(neigh.IP)
	}

	msg := netlink.Ndmsg{
		Family: uint8(family),
		Index:  uint32(neigh.LinkIndex),
		State:  uint16(neigh.State),
		Type:   uint8(neigh.Type),
		Flags:  uint8(neigh.Flags),
	}
	req.AddData(&msg)

	ipData := neigh.IP.To4()
	if ipData == nil {
		ipData = neigh.IP.To16()
	}
	req.AddData(nl.NewRtAttr(netlink.NDA_DST, ipData))
	req.AddData(nl.NewRtAttr(netlink.NDA_LLADDR, []byte(neigh.HardwareAddr)))

	return req.Serialize()
}

// Sink keeps the compiler from discarding the encoded bytes.
var Sink []byte

func BenchmarkEncodeRouteReplace(b *testing.B) {
	route := flannelRoute()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Sink = encodeRouteReplace(route)
	}
}

func BenchmarkEncodeNeighSet(b *testing.B) {
	neigh := flannelNeigh()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Sink = encodeNeighSet(neigh)
	}
}

func BenchmarkEncodeFdbNeighSet(b *testing.B) {
	fdb := flannelFdb()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Sink = encodeNeighSet(fdb)
	}
}

// BenchmarkEncodePeer encodes the three messages of one peer, as flannel sends them per lease.
func BenchmarkEncodePeer(b *testing.B) {
	route, neigh, fdb := flannelRoute(), flannelNeigh(), flannelFdb()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Sink = encodeNeighSet(neigh)
		Sink = encodeNeighSet(fdb)
		Sink = encodeRouteReplace(route)
	}
}

// TestEncodedLayout pins the encoded sizes and headers, so a library change that alters the bytes
// (and so the comparison) is noticed: nlmsghdr 16 + rtmsg 12 + RTA_DST 8 + RTA_GATEWAY 8 + RTA_OIF 8,
// and nlmsghdr 16 + ndmsg 12 + NDA_DST 8 + NDA_LLADDR 12 (6 bytes padded to 8).
func TestEncodedLayout(t *testing.T) {
	cases := []struct {
		name    string
		bytes   []byte
		length  int
		msgType uint16
	}{
		{"route", encodeRouteReplace(flannelRoute()), 52, unix.RTM_NEWROUTE},
		{"neigh", encodeNeighSet(flannelNeigh()), 48, unix.RTM_NEWNEIGH},
		{"fdb", encodeNeighSet(flannelFdb()), 48, unix.RTM_NEWNEIGH},
	}
	for _, c := range cases {
		if len(c.bytes) != c.length {
			t.Errorf("%s: %d bytes, want %d: % x", c.name, len(c.bytes), c.length, c.bytes)
		}
		if got := nl.NativeEndian().Uint32(c.bytes[0:4]); int(got) != len(c.bytes) {
			t.Errorf("%s: nlmsg_len %d, want %d", c.name, got, len(c.bytes))
		}
		if got := nl.NativeEndian().Uint16(c.bytes[4:6]); got != c.msgType {
			t.Errorf("%s: nlmsg_type %d, want %d", c.name, got, c.msgType)
		}
	}
	// The FDB form differs from the ARP form only in the ndmsg: AF_BRIDGE and NTF_SELF.
	fdb := encodeNeighSet(flannelFdb())
	if fdb[16] != unix.AF_BRIDGE || fdb[16+10] != netlink.NTF_SELF {
		t.Errorf("fdb ndmsg: % x", fdb[16:28])
	}
}
