#!/usr/bin/env bash
# Proves every packed library is native-AOT clean for its users: a small console project references every package
# in the local feed that scripts/check-package.sh filled, roots each Flannel assembly whole (so the trim and AOT
# analysis covers all of its code, not only what this program calls), and is published with PublishAot and
# warnings as errors. Then it runs the native program.
#
#   scripts/check-aot.sh WORK     # WORK/feed holds the .nupkg files (scripts/check-package.sh WORK)
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:?usage: check-aot.sh WORK (with WORK/feed from scripts/check-package.sh)}"
feed="$work/feed"
consumer="$work/aot-consumer"
rm -rf "$consumer"; mkdir -p "$consumer"
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props | head -1)

# The package ids in the feed (Flannel.Core.0.1.0.nupkg → Flannel.Core): every package, the test kit included (a
# backend author may run its fakes inside a native test host).
mapfile -t ids < <(ls "$feed" | grep -v '\.snupkg$' | sed -n "s/^\(Flannel\..*\)\.$version\.nupkg$/\1/p" | sort)
[ "${#ids[@]}" -gt 0 ] || { echo "check-aot: no Flannel packages in $feed" >&2; exit 1; }

# The consumer must not inherit this repository's build settings.
printf '<Project/>\n' >"$consumer/Directory.Build.props"
printf '<Project/>\n' >"$consumer/Directory.Build.targets"
printf '<Project><PropertyGroup><ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally></PropertyGroup></Project>\n' >"$consumer/Directory.Packages.props"
{
  cat <<'XML'
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
    <PublishAot>true</PublishAot>
    <InvariantGlobalization>true</InvariantGlobalization>
    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
    <!-- Report every trim/AOT warning one by one, not one summary warning per assembly. -->
    <TrimmerSingleWarn>false</TrimmerSingleWarn>
  </PropertyGroup>
  <ItemGroup>
XML
  for id in "${ids[@]}"; do
    echo "    <PackageReference Include=\"$id\" Version=\"$version\" />"
    echo "    <TrimmerRootAssembly Include=\"$id\" />"
  done
  cat <<'XML'
  </ItemGroup>
</Project>
XML
} >"$consumer/AotConsumer.csproj"
{
  echo '// Loads every Flannel assembly (all of each is rooted for the analysis) and prints what it found.'
  echo 'string[] assemblies ='
  echo '['
  for id in "${ids[@]}"; do echo "    \"$id\","; done
  echo '];'
  echo 'foreach (string name in assemblies)'
  echo '{'
  echo '    System.Reflection.Assembly assembly = System.Reflection.Assembly.Load(name);'
  echo '    Console.WriteLine($"{assembly.GetName().Name} {assembly.GetName().Version}");'
  echo '}'
} >"$consumer/Program.cs"
cat >"$consumer/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="local" value="$feed" />
  </packageSources>
</configuration>
XML
# Added to the machine's own package sources, which serve the packages' dependencies.

started=$SECONDS
dotnet publish "$consumer/AotConsumer.csproj" -c Release -o "$consumer/out" -nologo -v quiet
echo "check-aot: ${#ids[@]} packages published native with warnings as errors in $((SECONDS - started)) s: ${ids[*]}"
"$consumer/out/AotConsumer"
