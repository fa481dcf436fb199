#!/usr/bin/env bash
# Builds and runs the libFuzzer targets in native/fuzz/*_fuzz.cc for a bounded
# time each (Debian's clang: apt-get install clang).
#
#   bash scripts/fuzz.sh                 # every target, FUZZ_SECONDS each (default 30)
#   bash scripts/fuzz.sh mavlink_parse   # one target
#
# A target names the addon sources it needs on a line of its own:
#   // fuzz-sources: native/mavlink/parse.cc
# Targets build with ASan + UBSan; a crash, leak or sanitizer report fails the
# run and leaves the reproducer in build-fuzz/<target>/crash-*.
# Seeds come from test/fixtures/fuzz/<target>/ when that directory exists.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-30}
CLANG=${CLANG:-clang++}
if ! command -v "$CLANG" >/dev/null; then
  echo "fuzz: $CLANG not found (apt-get install clang)" >&2
  exit 1
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in native/fuzz/*_fuzz.cc; do
    [ -e "$f" ] || continue
    b=$(basename "$f" .cc); targets+=("${b%_fuzz}")
  done
fi
for t in "${targets[@]}"; do
  src=native/fuzz/${t}_fuzz.cc
  out=build-fuzz/$t
  mkdir -p "$out/corpus"
  extra=$(sed -n 's|^// fuzz-sources: *||p' "$src" | tr '\n' ' ')
  echo "fuzz: building $t ($src $extra)"
  # shellcheck disable=SC2086
  "$CLANG" -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -Inative "$src" $extra -o "$out/$t"
  seeds=()
  [ -d "test/fixtures/fuzz/$t" ] && seeds+=("test/fixtures/fuzz/$t")
  echo "fuzz: running $t for ${seconds}s"
  (cd "$out" && ./"$t" -max_total_time="$seconds" -print_final_stats=1 corpus "${seeds[@]/#/$PWD/../../}")
done
