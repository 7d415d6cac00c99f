#!/usr/bin/env bash
# Builds the flanneld OCI image from this repository and Debian's packages only (no container registry):
#
#   sudo scripts/build-image.sh                      # publishes the native binaries, then builds the image
#   sudo scripts/build-image.sh --bin DIR            # uses DIR/flanneld and DIR/flannel (native, already published)
#   options: --out FILE (default artifacts/image/flanneld-<version>.oci.tar), --name NAME (default
#            docker.io/flannel-dotnet/flanneld:<version>), --suite bookworm
#
# Layer 1 is a root file system that mmdebstrap extracts from Debian's packages: iptables and nftables (flanneld's
# traffic rules), ca-certificates (TLS to etcd or the API server), libssl3 (which .NET loads for TLS) and the
# packages owning every library the native binaries link (ldd). It has no shell and no package manager; the
# maintainer scripts' work is done here (the iptables alternatives, the CA bundle, root in /etc/passwd). Layer 2
# holds /opt/bin/flanneld and /flannel (the CNI plugin that `flanneld install-cni` installs). The result is an
# OCI archive named NAME: `podman load -i FILE`, `ctr -n k8s.io images import FILE`, or `skopeo copy
# oci-archive:FILE ...`. Timestamps come from the last commit (SOURCE_DATE_EPOCH), so a rebuild of the same commit
# from the same package versions gives the same layers.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bin=""
out=""
name=""
suite=bookworm
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) shift; bin="${1:?--bin needs a directory}" ;;
    --out) shift; out="${1:?--out needs a file}" ;;
    --name) shift; name="${1:?--name needs an image name}" ;;
    --suite) shift; suite="${1:?--suite needs a Debian suite}" ;;
    -h|--help) sed -n 2,18p "$0"; exit 0 ;;
    *) echo "build-image.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || { echo "build-image.sh: run as root (mmdebstrap extracts packages with their owners)" >&2; exit 1; }
for tool in mmdebstrap umoci skopeo ldd dpkg; do
  command -v "$tool" >/dev/null || { echo "build-image.sh: $tool is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
done

version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props | head -1)
source_url=$(sed -n 's:.*<RepositoryUrl>\(.*\)</RepositoryUrl>.*:\1:p' Directory.Build.props | head -1)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
name="${name:-docker.io/flannel-dotnet/flanneld:$version}"
out="${out:-$root/artifacts/image/flanneld-$version.oci.tar}"
mkdir -p "$(dirname "$out")"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

started=$SECONDS
if [ -z "$bin" ]; then
  bin="$work/bin"
  echo "== publishing flanneld and the CNI plugin (native AOT)"
  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
  dotnet publish samples/Flannel.Host -c Release -r linux-x64 -p:PublishAot=true -o "$bin" -nologo -v quiet
  dotnet publish src/Flannel.Cni -c Release -r linux-x64 -p:PublishAot=true -o "$bin" -nologo -v quiet
fi
for exe in flanneld flannel; do
  [ -x "$bin/$exe" ] || { echo "build-image.sh: $bin/$exe is missing" >&2; exit 1; }
  # A native executable, not the JIT apphost (which would need flanneld.dll and a .NET runtime in the image).
  [ ! -e "$bin/$exe.dll" ] || { echo "build-image.sh: $bin/$exe is a JIT build; publish it with -p:PublishAot=true" >&2; exit 1; }
done

# The packages that own the libraries the binaries link. .NET loads libssl at run time (dlopen), so ldd cannot
# see it: it is named explicitly.
packages=(iptables nftables ca-certificates libssl3)
while read -r lib; do
  owner=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null || true)
  [ -n "$owner" ] || { echo "build-image.sh: no Debian package owns $lib, which the native binaries link" >&2; exit 1; }
  packages+=("${owner%%:*}")
done < <(ldd "$bin/flanneld" "$bin/flannel" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $1 !~ /:$/ {print $1}' | sort -u)
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)
echo "== root file system from Debian $suite: ${packages[*]} (and their dependencies)"

# The machine's own apt sources (whatever mirror or proxy it is configured for), or mmdebstrap's default.
mirrors=()
for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
  if [ -s "$f" ] && grep -q "$suite" "$f"; then mirrors=("$f"); break; fi
done
rootfs="$work/rootfs"
mmdebstrap --variant=extract --quiet --include="$(IFS=,; echo "${packages[*]}")" \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/lintian/*' \
  "$suite" "$rootfs" "${mirrors[@]}"

# What the maintainer scripts would have done (extract runs none), and nothing of the build's apt setup.
for t in iptables iptables-restore iptables-save ip6tables ip6tables-restore ip6tables-save; do
  ln -sfn "${t/tables/tables-nft}" "$rootfs/usr/sbin/$t" # Debian's default backend (update-alternatives priority 20)
done
cat "$rootfs"/usr/share/ca-certificates/mozilla/*.crt >"$rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
rm -rf "$rootfs/etc/apt" "$rootfs/etc/dpkg" "$rootfs/var/lib/apt" "$rootfs/var/cache/apt" "$rootfs/var/log"/* \
  "$rootfs/etc/resolv.conf" "$rootfs/etc/hostname"
mkdir -p "$rootfs/run/flannel" "$rootfs/root" "$rootfs/var/lib/cni" "$rootfs/etc/kube-flannel"
chmod 0700 "$rootfs/root"
[ -x "$rootfs/usr/sbin/iptables-nft" ] && [ -x "$rootfs/usr/sbin/nft" ] && [ -e "$rootfs/usr/lib/x86_64-linux-gnu/libssl.so.3" ] \
  || { echo "build-image.sh: the root file system lacks iptables-nft, nft or libssl.so.3" >&2; exit 1; }

app="$work/app"
install -D -m 0755 "$bin/flanneld" "$app/opt/bin/flanneld"
install -D -m 0755 "$bin/flannel" "$app/flannel"

layer() { # a deterministic, uncompressed layer: sorted names, numeric root ownership, the commit's time
  tar --create --file "$2" --directory "$1" --sort=name --numeric-owner --owner=0 --group=0 \
    --mtime="@$SOURCE_DATE_EPOCH" --clamp-mtime --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime .
}
layer "$rootfs" "$work/debian.tar"
layer "$app" "$work/flannel.tar"

echo "== OCI image $name"
layout="$work/layout"
tag=build
umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci raw add-layer --image "$layout:$tag" --history.created "$created" --history.created_by "mmdebstrap --variant=extract $suite: ${packages[*]}" \
  --history.comment "Debian packages" "$work/debian.tar"
umoci raw add-layer --image "$layout:$tag" --history.created "$created" --history.created_by "scripts/build-image.sh" \
  --history.comment "flanneld and the flannel CNI plugin, native AOT" "$work/flannel.tar"
umoci config --image "$layout:$tag" --no-history --created "$created" --os linux --architecture amd64 \
  --author "Flannel.NET contributors" \
  --config.entrypoint /opt/bin/flanneld --config.workingdir / \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.label "org.opencontainers.image.title=flanneld" \
  --config.label "org.opencontainers.image.description=Flannel.NET: flanneld and the flannel CNI plugin (native AOT) on Debian $suite packages" \
  --config.label "org.opencontainers.image.version=$version" \
  --config.label "org.opencontainers.image.revision=$revision" \
  --config.label "org.opencontainers.image.source=$source_url" \
  --config.label "org.opencontainers.image.licenses=Apache-2.0" \
  --config.label "org.opencontainers.image.created=$created" \
  --config.label "org.opencontainers.image.base.name=debian:$suite (mmdebstrap, extracted packages)"
umoci gc --layout "$layout"
rm -f "$out"
skopeo copy --quiet "oci:$layout:$tag" "oci-archive:$out:$name"

size=$(stat -c %s "$out")
echo "built $out ($name, $((size / 1024 / 1024)) MiB, flanneld $(($(stat -c %s "$bin/flanneld") / 1024 / 1024)) MiB, flannel $(($(stat -c %s "$bin/flannel") / 1024 / 1024)) MiB) in $((SECONDS - started)) s"
