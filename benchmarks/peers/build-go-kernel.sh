#!/usr/bin/env bash
# Builds benchmarks/peers/kernel (vishvananda/netlink programming peers as flannel does) into OUTPUT.
# GOPATH mode with Debian's golang-go and golang-github-vishvananda-netlink-dev; no network access.
#
#   benchmarks/peers/build-go-kernel.sh OUTPUT
set -euo pipefail

output="$(realpath -m "${1:?usage: build-go-kernel.sh OUTPUT}")"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

mkdir -p "$scratch/gopath/src/flannelbench/vishvananda-peers" "$scratch/cache" "$(dirname "$output")"
cp "$here/kernel/"*.go "$scratch/gopath/src/flannelbench/vishvananda-peers/"

export GO111MODULE=off
export GOPATH="$scratch/gopath:/usr/share/gocode"
export GOCACHE="$scratch/cache"
export GOFLAGS=

cd "$scratch/gopath/src/flannelbench/vishvananda-peers"
go build -o "$output" .
