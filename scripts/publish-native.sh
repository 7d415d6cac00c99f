#!/usr/bin/env bash
# Publishes the native-AOT executables into one directory:
#
#   scripts/publish-native.sh DIR      # → DIR/flanneld (samples/Flannel.Host) and DIR/flannel (src/Flannel.Cni)
#
# Warnings are errors here as in every build (Directory.Build.props), so a trim or AOT warning fails the publish.
# Needs clang, lld and zlib1g-dev (scripts/install-deps.sh). Prints each binary's size and how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: publish-native.sh DIR}"
mkdir -p "$out"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
for project in samples/Flannel.Host src/Flannel.Cni; do
  started=$SECONDS
  dotnet publish "$project" -c Release -r linux-x64 -p:PublishAot=true -o "$out" -nologo -v quiet
  echo "publish-native: $project in $((SECONDS - started)) s"
done
# The code layout (Flannel.Host.csproj, IlcOrderFile) names functions; code changes rename or add some, which then
# land among the cold code. Report how much of the file still matches, from the symbols before they are deleted.
order=samples/Flannel.Host/flanneld.order
if [ -f "$out/flanneld.dbg" ] && command -v nm >/dev/null; then
  matched=$(nm --defined-only "$out/flanneld.dbg" | awk '{ print $3 }' | sort -u | comm -12 - <(sort -u "$order") | wc -l)
  echo "publish-native: $matched of $(wc -l < "$order") functions named in $order are in this flanneld (benchmarks/order/profile.sh regenerates it)"
fi
rm -f "$out"/*.dbg "$out"/*.pdb
for exe in flanneld flannel; do
  [ -x "$out/$exe" ] && [ ! -e "$out/$exe.dll" ] || { echo "publish-native: $out/$exe is not a native executable" >&2; exit 1; }
  echo "publish-native: $out/$exe $(stat -c %s "$out/$exe") bytes"
done
