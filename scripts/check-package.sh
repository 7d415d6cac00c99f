#!/usr/bin/env bash
# Proves `dotnet add package Flannel.Core` works: packs every library (and the Flannel.Testing kit) into a local
# feed, then creates a tiny console project, adds Flannel.Core from that feed and builds it.
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
