#!/usr/bin/env bash
# Proves the packages work as packages: packs every library (and the Flannel.Testing kit) into a local
# feed, then creates a tiny console project, adds Flannel.Core from that feed and builds it; checks what each
# package depends on, that each has public API baselines and that none shares internals with another; and builds a
# third-party backend (tests/ExternalBackend, not in the solution) from the feed alone and runs its test.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
feed="$work/feed"
consumer="$work/consumer"
rm -rf "$feed" "$consumer"; mkdir -p "$feed" "$consumer"

# Every project that opts into packing is a package (a new backend cannot be forgotten here, nor in check-aot.sh,
# which consumes this feed).
mapfile -t packages < <(grep -l '<IsPackable>true</IsPackable>' src/*/*.csproj tests/*/*.csproj | xargs -n1 dirname | sort)
for dir in "${packages[@]}"; do
  p=$(basename "$dir")
  # Quiet when it works; the whole pack output when it does not (set -e alone would end the script silently).
  if ! output=$(dotnet pack "$dir/$p.csproj" -c Release --no-build -o "$feed" -nologo 2>&1); then
    echo "$output" >&2
    echo "check-package: packing $dir failed" >&2
    exit 1
  fi
done
count=$(ls "$feed"/*.nupkg | grep -vc snupkg)
echo "packed $count packages into $feed"
[ "$count" -eq "${#packages[@]}" ] || { echo "expected ${#packages[@]} packages" >&2; exit 1; }

version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props | head -1)
cd "$consumer"
# The consumer must not inherit this repository's build settings.
printf '<Project/>\n' > Directory.Build.props
printf '<Project/>\n' > Directory.Build.targets
printf '<Project><PropertyGroup><ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally></PropertyGroup></Project>\n' > Directory.Packages.props
dotnet new console -n Consumer -o . --force >/dev/null
dotnet add Consumer.csproj package Flannel.Core --version "$version" --source "$feed" >/dev/null
cat > Program.cs <<'CS'
using Flannel.Configuration;
using Flannel.Subnets;
using Microsoft.Extensions.DependencyInjection;

var services = new ServiceCollection();
IFlannelBuilder builder = services.AddFlannel();
Console.WriteLine($"Flannel.Core consumed: {typeof(ISubnetStore).Assembly.GetName().Version}, {builder.Services.Count} services, key {SubnetKey.Format(System.Net.IPNetwork.Parse("10.244.1.0/24"), null)}");
CS
dotnet add Consumer.csproj package Microsoft.Extensions.DependencyInjection --version 11.0.0 >/dev/null
dotnet build Consumer.csproj -nologo -v q
dotnet run --project Consumer.csproj --no-build

# --- Honest packages: what each package may depend on, baselines, no internals shared between packages. ---
cd "$OLDPWD" # the repository root (the consumer step changed directory)
fail() { echo "check-package: $*" >&2; exit 1; }
for id in Flannel.Core Flannel.Netlink Flannel.Reconciliation Flannel.Agent Flannel.Backends.Vxlan Flannel.Backends.HostGw \
          Flannel.Store.Etcd Flannel.Store.Kube Flannel.Testing; do
  [ -f "$feed/$id.$version.nupkg" ] || fail "$id.$version.nupkg was not packed"
done
# The package ids a nupkg's nuspec lists as dependencies, one per line.
dependencies_of() { unzip -p "$feed/$1.$version.nupkg" "$1.nuspec" | grep -o '<dependency id="[^"]*"' | sed 's/.*id="//; s/"$//' | sort -u; }
# Fails unless every dependency of package $1 is one of the ids after it.
allow_only() {
  local id=$1; shift
  local dependency
  for dependency in $(dependencies_of "$id"); do
    if ! printf '%s\n' "$@" | grep -qxF "$dependency"; then
      fail "$id depends on $dependency; it may depend only on: $*"
    fi
  done
}
# Core is the model and contracts: no netlink, no hosting, no DI container.
allow_only Flannel.Core Microsoft.Extensions.DependencyInjection.Abstractions Microsoft.Extensions.Logging.Abstractions Microsoft.Extensions.Options
# Netlink is a standalone rtnetlink library.
allow_only Flannel.Netlink Tmds.LibC Microsoft.Extensions.Logging.Abstractions
for nupkg in "$feed"/*.nupkg; do
  id=$(basename "$nupkg" ".$version.nupkg")
  for banned in Microsoft.Extensions.DependencyInjection Microsoft.Extensions.Hosting; do
    if dependencies_of "$id" | grep -qxF "$banned"; then
      fail "$id depends on $banned (libraries use the abstractions; the host owns the container)"
    fi
  done
done
echo "check-package: dependencies: Flannel.Core -> $(dependencies_of Flannel.Core | tr '\n' ' ')| Flannel.Netlink -> $(dependencies_of Flannel.Netlink | tr '\n' ' ')"

packable=$(grep -l '<IsPackable>true</IsPackable>' src/*/*.csproj tests/*/*.csproj)
packable_names=$(for project in $packable; do basename "$project" .csproj; done)
for project in $packable; do
  dir=$(dirname "$project")
  [ -f "$dir/PublicAPI.Shipped.txt" ] && [ -f "$dir/PublicAPI.Unshipped.txt" ] || fail "$dir has no public API baseline"
  for friend in $(sed -n 's:.*<InternalsVisibleTo Include="\([^"]*\)".*:\1:p' "$project"); do
    if printf '%s\n' "$packable_names" | grep -qxF "$friend"; then
      fail "$project grants InternalsVisibleTo to the package $friend"
    fi
  done
  if grep -rl --include='*.cs' --exclude-dir=obj --exclude-dir=bin 'InternalsVisibleTo(' "$dir"; then
    fail "$dir declares InternalsVisibleTo in code; use the csproj item (checked here)"
  fi
done
echo "check-package: $(echo "$packable" | wc -l) packages have public API baselines; none grants internals to another package"

# --- Proof of pluggability: a third-party backend, outside the solution, from the local feed only. ---
external="$work/external"
rm -rf "$external"; cp -r tests/ExternalBackend "$external"
# Flannel.* may come only from the local feed (source mapping: the most specific pattern wins); everything else from
# the sources this machine already uses. Its own package folder, so no stale Flannel.* from an earlier pack is used.
{
  echo '<configuration>'
  echo "  <packageSources><add key=\"flannel-local-feed\" value=\"$feed\" /></packageSources>"
  echo '  <packageSourceMapping>'
  echo '    <packageSource key="flannel-local-feed"><package pattern="Flannel.*" /></packageSource>'
  dotnet nuget list source --format detailed | sed -n 's/^ *[0-9]*\. *\(.*\) \[Enabled\]$/\1/p' | while IFS= read -r source; do
    echo "    <packageSource key=\"$source\"><package pattern=\"*\" /></packageSource>"
  done
  echo '  </packageSourceMapping>'
  echo '</configuration>'
} > "$external/nuget.config"
export NUGET_PACKAGES="$external/packages"
if ! output=$(dotnet test "$external/StaticRoutes.Tests/StaticRoutes.Tests.csproj" -c Release -nologo -p:FlannelVersion="$version" 2>&1); then
  echo "$output" >&2
  fail "the external static-routes backend did not build or its test failed"
fi
for restored in "$NUGET_PACKAGES"/flannel.*/"$version"; do
  if ! grep -q "\"source\": \"$feed\"" "$restored/.nupkg.metadata"; then
    fail "$restored did not come from the local feed"
  fi
done
echo "check-package: external backend (tests/ExternalBackend, not in the solution) built from the local feed:" \
  "$(ls -d "$NUGET_PACKAGES"/flannel.* | xargs -n1 basename | tr '\n' ' ')"
echo "$output" | grep -E '^(Passed|Failed)!' || fail "the external backend's test printed no summary"
