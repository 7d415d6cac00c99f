#!/usr/bin/env bash
# The test command: installs what the tests need, builds, packs every library and checks that the packed
# Flannel.Core is consumable from a local feed, runs every test project (the unit projects, which need no root,
# and tests/Flannel.IntegrationTests and tests/Flannel.EndToEnd.Tests, which need root), and prints the closing
# line "N passed, N failed, N skipped".
#
#   sudo ./scripts/test.sh            # everything
#   sudo ./scripts/test.sh --no-deps  # skip apt-get (packages already installed)
#   sudo ./scripts/test.sh --repeat 10 # build once, run the tests 10 times; runs 1, 3, 5, ... under
#                                      # `stress-ng --cpu 2` (the flake hunt of issue 11 §7)
#   sudo ./scripts/test.sh --tests-only # run the tests again on the previous run's build, native binaries
#                                      # and image in .ci-work (nothing is rebuilt)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

deps=1
tests_only=0
repeat=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-deps) deps=0 ;;
    --tests-only) tests_only=1 ;;
    --repeat)
      repeat="${2:-}"; shift
      if ! [[ "$repeat" =~ ^[1-9][0-9]*$ ]]; then echo "test.sh: --repeat needs a positive count, got '$repeat'" >&2; exit 2; fi ;;
    *) echo "test.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

if [ "$deps" = 1 ]; then
  scripts/install-deps.sh || exit 1
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
work="$root/.ci-work"
if [ "$tests_only" = 1 ]; then
  for built in "$work/native/flanneld" "$work/native/flannel" "$work/flanneld.oci.tar"; do
    [ -e "$built" ] || { echo "test.sh: --tests-only needs a previous full run's $built" >&2; exit 1; }
  done
else
  rm -rf "$work"; mkdir -p "$work"

  # Each step prints its wall time ("test.sh: STEP N s"): CI must stay well under an hour on 2 cores.
  echo "== restore and build (Release)"
  phase=$SECONDS
  dotnet restore Flannel.sln || exit 1
  dotnet build Flannel.sln -c Release --no-restore -nologo || exit 1
  echo "test.sh: restore and build $((SECONDS - phase)) s"; phase=$SECONDS

  echo "== pack every library, and build a consumer of the packed Flannel.Core from a local feed"
  scripts/check-package.sh "$work" || exit 1
  echo "test.sh: packages $((SECONDS - phase)) s"

  echo "== native AOT: every package in a consumer with warnings as errors; flanneld and the CNI plugin; the image"
  phase=$SECONDS
  scripts/check-aot.sh "$work" || exit 1
  echo "test.sh: AOT consumer $((SECONDS - phase)) s"; phase=$SECONDS
  scripts/publish-native.sh "$work/native" || exit 1
  echo "test.sh: native flanneld and flannel $((SECONDS - phase)) s"; phase=$SECONDS
  scripts/build-image.sh --bin "$work/native" --out "$work/flanneld.oci.tar" || exit 1
  echo "test.sh: image $((SECONDS - phase)) s"
fi
# The end-to-end and container tests run these, not the JIT builds.
export FLANNEL_NATIVE_DIR="$work/native" FLANNEL_IMAGE="$work/flanneld.oci.tar"

# Runs every test assembly once; prints "test.sh: tests N s" and leaves the VSTest summary lines in $1.
run_tests() {
  local log=$1 start=$SECONDS
  # --blame-hang-timeout: a hung privileged test must fail the run, not eat CI's time budget.
  dotnet test Flannel.sln -c Release --no-build --nologo --blame-hang-timeout 10m 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  echo "test.sh: tests $((SECONDS - start)) s; total $SECONDS s"
  return "$rc"
}

# dotnet test prints one VSTest summary line per test assembly
#   "Passed!  - Failed:     0, Passed:    57, Skipped:     0, Total:    57, Duration: 2 s - X.Tests.dll (net10.0)"
# add them up into the plain closing line CI reads.
summarize() {
  awk '/(Passed|Failed)!  - Failed:/{gsub(",","");f+=$4;p+=$6;s+=$8;n++} END{printf "%d test assemblies\n%d passed, %d failed, %d skipped\n",n,p,f,s}' "$@"
}

echo "== test"
rc=0
logs=()
for ((run = 1; run <= repeat; run++)); do
  log="$work/test.log"
  [ "$repeat" -gt 1 ] && log="$work/test-$run.log"
  logs+=("$log")
  stress_pid=
  if [ "$repeat" -gt 1 ] && [ $((run % 2)) -eq 1 ]; then
    command -v stress-ng >/dev/null || apt-get install -y -qq --no-install-recommends stress-ng >/dev/null || exit 1
    stress-ng --cpu 2 --quiet & stress_pid=$!
    echo "== test run $run of $repeat, under stress-ng --cpu 2"
  elif [ "$repeat" -gt 1 ]; then
    echo "== test run $run of $repeat"
  fi
  run_tests "$log" || rc=1
  if [ -n "$stress_pid" ]; then kill "$stress_pid"; wait "$stress_pid" 2>/dev/null; fi
  if [ "$repeat" -gt 1 ]; then echo "test.sh: run $run: $(summarize "$log" | tail -1)"; fi
done

summarize "${logs[@]}" > "$work/summary"
cat "$work/summary"
assemblies=$(head -1 "$work/summary" | cut -d' ' -f1)
if [ "$rc" -eq 0 ] && [ "$assemblies" -eq 0 ]; then
  echo "test.sh: no test assembly reported a summary" >&2
  rc=1
fi
exit "$rc"
