// Command vishvananda-peers programs flannel's per-peer kernel objects with vishvananda/netlink the way
// flannel's vxlan backend does (pkg/backend/vxlan/device.go, vxlan_network.go), then dumps and deletes
// them, and prints the three phase times as one JSON object on stdout.
//
// It runs inside the benchmark's network namespace (`ip netns exec NS vishvananda-peers ...`), so the
// package-level functions and a Handle both talk to that namespace.
//
//	vishvananda-peers -peers FILE -link flannel.1 -mode pkg|handle
//
// FILE has one peer per line: "SUBNET/LEN GATEWAY VTEP-MAC UNDERLAY-IP", written by the .NET harness
// (benchmarks/Flannel.Benchmarks.Kernel) so that every tool programs exactly the same objects.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
)

type peer struct {
	route *netlink.Route
	arp   *netlink.Neigh
	fdb   *netlink.Neigh
}

type result struct {
	Tool     string  `json:"tool"`
	Peers    int     `json:"peers"`
	Program  float64 `json:"programSeconds"`
	Dump     float64 `json:"dumpSeconds"`
	Delete   float64 `json:"deleteSeconds"`
	Routes   int     `json:"routesDumped"`
	Neighs   int     `json:"neighboursDumped"`
	FdbCount int     `json:"fdbDumped"`
}

// ops abstracts over flannel's package-level calls (a new socket per request) and one reused Handle.
type ops struct {
	neighSet     func(*netlink.Neigh) error
	neighDel     func(*netlink.Neigh) error
	routeReplace func(*netlink.Route) error
	routeDel     func(*netlink.Route) error
	routeList    func(netlink.Link, int) ([]netlink.Route, error)
	neighList    func(int, int) ([]netlink.Neigh, error)
}

func main() {
	peersFile := flag.String("peers", "", "peer list written by the harness")
	linkName := flag.String("link", "flannel.1", "vxlan device")
	mode := flag.String("mode", "pkg", "pkg: package-level functions as flannel calls them; handle: one netlink.Handle")
	flag.Parse()

	if err := run(*peersFile, *linkName, *mode); err != nil {
		fmt.Fprintln(os.Stderr, "vishvananda-peers:", err)
		os.Exit(1)
	}
}

func run(peersFile, linkName, mode string) error {
	var o ops
	switch mode {
	case "pkg":
		o = ops{netlink.NeighSet, netlink.NeighDel, netlink.RouteReplace, netlink.RouteDel, netlink.RouteList, netlink.NeighList}
	case "handle":
		h, err := netlink.NewHandle(syscall.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("new handle: %w", err)
		}
		defer h.Delete()
		o = ops{h.NeighSet, h.NeighDel, h.RouteReplace, h.RouteDel, h.RouteList, h.NeighList}
	default:
		return fmt.Errorf("unknown -mode %q (want pkg or handle)", mode)
	}

	link, err := netlink.LinkByName(linkName)
	if err != nil {
		return fmt.Errorf("link %s: %w", linkName, err)
	}
	index := link.Attrs().Index

	peers, err := readPeers(peersFile, index)
	if err != nil {
		return err
	}

	// flannel's order per added lease: ARP entry, FDB entry, then the route (vxlan_network.go).
	start := time.Now()
	for _, p := range peers {
		if err := o.neighSet(p.arp); err != nil {
			return fmt.Errorf("neigh replace %s: %w", p.arp.IP, err)
		}
		if err := o.neighSet(p.fdb); err != nil {
			return fmt.Errorf("fdb replace %s: %w", p.fdb.HardwareAddr, err)
		}
		if err := o.routeReplace(p.route); err != nil {
			return fmt.Errorf("route replace %s: %w", p.route.Dst, err)
		}
	}
	programmed := time.Now()

	routes, err := o.routeList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("route list: %w", err)
	}
	neighs, err := o.neighList(index, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("neigh list: %w", err)
	}
	fdb, err := o.neighList(index, syscall.AF_BRIDGE)
	if err != nil {
		return fmt.Errorf("fdb list: %w", err)
	}
	dumped := time.Now()

	// flannel's order per removed lease: route, ARP entry, FDB entry.
	for _, p := range peers {
		if err := o.routeDel(p.route); err != nil {
			return fmt.Errorf("route del %s: %w", p.route.Dst, err)
		}
		if err := o.neighDel(p.arp); err != nil {
			return fmt.Errorf("neigh del %s: %w", p.arp.IP, err)
		}
		if err := o.neighDel(p.fdb); err != nil {
			return fmt.Errorf("fdb del %s: %w", p.fdb.HardwareAddr, err)
		}
	}
	deleted := time.Now()

	return json.NewEncoder(os.Stdout).Encode(result{
		Tool:     "vishvananda-" + mode,
		Peers:    len(peers),
		Program:  programmed.Sub(start).Seconds(),
		Dump:     dumped.Sub(programmed).Seconds(),
		Delete:   deleted.Sub(dumped).Seconds(),
		Routes:   len(routes),
		Neighs:   len(neighs),
		FdbCount: len(fdb),
	})
}

// readPeers builds the objects exactly as flannel does for each lease.
func readPeers(path string, index int) ([]peer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	var peers []peer
	scanner := bufio.NewScanner(f)
	for line := 1; scanner.Scan(); line++ {
		fields := strings.Fields(scanner.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 4 {
			return nil, fmt.Errorf("%s:%d: want 4 fields, got %q", path, line, scanner.Text())
		}
		_, subnet, err := net.ParseCIDR(fields[0])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: subnet: %w", path, line, err)
		}
		gw := net.ParseIP(fields[1])
		mac, err := net.ParseMAC(fields[2])
		underlay := net.ParseIP(fields[3])
		if gw == nil || err != nil || underlay == nil {
			return nil, fmt.Errorf("%s:%d: bad gateway, MAC or underlay address in %q", path, line, scanner.Text())
		}
		peers = append(peers, peer{
			route: &netlink.Route{
				LinkIndex: index,
				Scope:     netlink.SCOPE_UNIVERSE,
				Dst:       subnet,
				Gw:        gw,
				Flags:     syscall.RTNH_F_ONLINK,
			},
			arp: &netlink.Neigh{
				LinkIndex:    index,
				State:        netlink.NUD_PERMANENT,
				Type:         syscall.RTN_UNICAST,
				IP:           gw,
				HardwareAddr: mac,
			},
			fdb: &netlink.Neigh{
				LinkIndex:    index,
				Family:       syscall.AF_BRIDGE,
				State:        netlink.NUD_PERMANENT,
				Flags:        netlink.NTF_SELF,
				IP:           underlay,
				HardwareAddr: mac,
			},
		})
	}
	return peers, scanner.Err()
}
