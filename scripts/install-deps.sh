#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo need. Idempotent; runs `apt-get update` once first.
set -euo pipefail

packages=(
  iproute2            # ip, bridge: the tests read kernel state back with them
  iptables            # masquerade and forward rules, iptables-restore
  nftables            # the nftables traffic mode
  iputils-ping        # cross-node pings in the kernel tests and the demo
  etcd-server         # the etcd store tests run a real etcd 3.4
  etcd-client         # etcdctl: the tests write foreign leases with it
  containernetworking-plugins # bridge, host-local, portmap in /usr/lib/cni
  strace              # golden-byte capture of iproute2's netlink requests
  golang-go           # the vishvananda/netlink peer benchmark
  golang-github-vishvananda-netlink-dev
  procps              # pgrep/pkill for process cleanup in tests
  unzip               # check-package.sh reads each packed nuspec's dependencies
  clang lld zlib1g-dev # native AOT: the CNI plugin and flanneld publish as native executables
  hyperfine           # whole-process timings of the CNI plugin against the Go plugins (benchmarks/cni)
  mmdebstrap umoci skopeo # scripts/build-image.sh: root file system from Debian packages, OCI image archive
  curl                # the container and metrics tests ask flanneld's health port from inside a node namespace
  python3-prometheus-client # the scrape test parses /metrics with the Prometheus client's own text parser
  podman runc         # the container tests run the image with a real OCI runtime (no registry; crun refuses this
                      # kernel's hybrid cgroup layout, runc works)
  wireguard-go        # userspace WireGuard: the kernel here has no wireguard module
  wireguard-tools     # wg: the tests cross-check keys and devices with it (the product never calls it)
  tcpdump             # the WireGuard e2e test captures the underlay to show only encrypted UDP crosses it
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (apt-get install)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "install-deps: ${#packages[@]} packages present"
