#!/usr/bin/env bash
# Measures vishvananda/netlink's `nl` encoder (the library flannel links) on the three per-peer messages.
# Uses Debian's golang-go and golang-github-vishvananda-netlink-dev in GOPATH mode; no network access.
#
#   benchmarks/peers/run-go-encoder.sh [extra `go test` flags, e.g. -benchtime=2s -count=3]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# GOPATH mode resolves imports from GOPATH; our package is copied under a scratch GOPATH entry so that
# the build never writes into the source tree or into /usr/share/gocode.
mkdir -p "$scratch/gopath/src/flannelbench/encoder" "$scratch/cache"
cp "$here/encoder/"*.go "$scratch/gopath/src/flannelbench/encoder/"

export GO111MODULE=off
export GOPATH="$scratch/gopath:/usr/share/gocode"
export GOCACHE="$scratch/cache"
export GOFLAGS=

cd "$scratch/gopath/src/flannelbench/encoder"
go version
go test -run 'TestEncodedLayout' -bench . -benchmem "$@" .
