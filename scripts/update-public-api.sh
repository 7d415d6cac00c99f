#!/usr/bin/env bash
# Brings the public API baselines (PublicAPI.Unshipped.txt of every packable project) in line with the code: every
# public symbol the build reports as undeclared (RS0016) is added, every declared symbol that no longer exists
# (RS0017) is removed. Review the diff: it is the API change you are about to ship.
#
#   scripts/update-public-api.sh                                   # the whole solution
#   scripts/update-public-api.sh src/Flannel.Core/Flannel.Core.csproj
#
# `dotnet format analyzers --diagnostics RS0016` cannot do this: the fix edits an additional file, which dotnet
# format does not apply. A failed build stops the projects that depend on it, so the build is repeated until no
# baseline changes.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-Flannel.sln}

# The nearest directory at or above $1 that holds a baseline.
baseline_of() {
  local dir
  dir=$(dirname "$1")
  while [ ! -f "$dir/PublicAPI.Unshipped.txt" ]; do
    [ "$dir" != / ] || { echo "update-public-api: no PublicAPI.Unshipped.txt above $1" >&2; exit 1; }
    dir=$(dirname "$dir")
  done
  echo "$dir/PublicAPI.Unshipped.txt"
}

# One symbol per line after the #nullable header, in ordinal order, so a baseline diff shows only the change.
normalise() {
  { echo '#nullable enable'; grep -v -e '^#nullable' -e '^$' "$1" | LC_ALL=C sort -u; } > "$1.tmp"
  mv "$1.tmp" "$1"
}

for pass in 1 2 3 4 5 6; do
  diagnostics=$(dotnet build "$target" -c Release -nologo 2>&1 | grep -E ': error RS001[67]: ' | sed -E 's/ \[[^]]*\]$//' | sort -u || true)
  if [ -z "$diagnostics" ]; then
    echo "update-public-api: baselines are current (pass $pass)"
    exit 0
  fi

  touched=()
  while IFS= read -r line; do
    file=${line%%(*}
    symbol=$(printf '%s\n' "$line" | sed -E "s/^[^']*Symbol '(.*)' is (not part of the declared public API|part of the declared API, but).*/\1/")
    case "$line" in
      *'error RS0016:'*)
        baseline=$(baseline_of "$file")
        grep -qxF -- "$symbol" "$baseline" || printf '%s\n' "$symbol" >> "$baseline"
        echo "+ $symbol" ;;
      *'error RS0017:'*)
        baseline=$file
        grep -vxF -- "$symbol" "$baseline" > "$baseline.tmp" || true
        mv "$baseline.tmp" "$baseline"
        echo "- $symbol" ;;
    esac
    touched+=("$baseline")
  done <<< "$diagnostics"

  for baseline in $(printf '%s\n' "${touched[@]}" | sort -u); do
    normalise "$baseline"
  done
done

echo "update-public-api: baselines still change after 6 builds; run it again" >&2
exit 1
