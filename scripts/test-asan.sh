#!/usr/bin/env bash
# Sanitizer run: builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer
# (CMake option ONBUS_SANITIZE) into build-asan/, and runs the native-facing
# tests against it. Any sanitizer report fails the run: a memory error, a leak,
# or undefined behaviour, in a vitest worker or in any process a test spawns.
#
#   npm run test:asan                          # every native-facing test (udp, stream, serial, transfer, bus-ipc, mavlink native/link/router, rtp-receive, record/replay) + test/asan/
#   npm run test:asan -- test/udp-lifecycle.test.ts
#
# Needs patchelf (apt-get install patchelf) besides the build toolchain.
#
# How reports are caught. Node itself is not instrumented, and the ASan runtime
# must be loaded before anything else, so the script makes a copy of node with
# libasan as its first DT_NEEDED entry (build-asan/node-asan) and the vitest
# workers run on it (test/asan/vitest.config.ts), as does every fixture process
# they spawn with process.execPath, and their worker threads. Not LD_PRELOAD:
# that would also instrument the system tools tests run (ip, tc, unshare, sh)
# and judge their leaks and exit codes. UBSan
# aborts at the first report (-fno-sanitize-recover=undefined in CMakeLists.txt,
# halt_on_error here) and ASan at the first memory error, so the test that
# triggers one fails on the spot. LeakSanitizer runs when a process exits; a
# fixture that exits with a leak gets exit code 23, which fails its test. Vitest
# stops its own workers with a signal, and a process killed by a signal never
# runs the leak check, so leaks in the worker processes themselves are not
# seen; the lifecycle tests exercise the same native paths in child processes
# that exit normally (test/fixtures/udp-churn.mjs above all). Finally, ASan and
# LSan reports are also written to a log directory (log_path) and UBSan's go to
# stderr (its log_path is not honoured when the runtime is loaded with the
# addon), and the run fails if that directory is not empty or the output holds
# a report, whatever the exit codes said.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
t0=$(date +%s)

echo "== build: dist + normal addon (fixtures import dist/)"
npm run compile --silent

echo "== build: sanitizer addon -> build-asan/"
npx cmake-js compile --out build-asan --CDONBUS_SANITIZE=ON --CDONBUS_BUILD_TOOLS=OFF >/dev/null
addon=$root/build-asan/Release/onbus.node
[[ -f $addon ]] || { echo "test-asan: $addon was not built" >&2; exit 1; }

# The ASan runtime the addon was linked against, exactly.
asan_lib=$(ldd "$addon" | awk '/libasan\.so/ { print $3; exit }')
[[ -n $asan_lib && -f $asan_lib ]] || asan_lib=$(gcc -print-file-name=libasan.so)
[[ -f $asan_lib ]] || { echo "test-asan: cannot find libasan (gcc -print-file-name=libasan.so gave '$asan_lib')" >&2; exit 1; }

# node with that runtime as its first dependency; remade when node or the
# runtime changes.
command -v patchelf >/dev/null || { echo "test-asan: needs patchelf (apt-get install patchelf)" >&2; exit 1; }
real_node=$(node -p process.execPath)
asan_node=$root/build-asan/node-asan
stamp="$real_node $(stat -c '%s %Y' "$real_node") $asan_lib"
if [[ ! -x $asan_node || "$(cat "$asan_node.stamp" 2>/dev/null)" != "$stamp" ]]; then
  cp "$real_node" "$asan_node.tmp"
  patchelf --add-needed "$asan_lib" "$asan_node.tmp"
  mv "$asan_node.tmp" "$asan_node"
  echo "$stamp" >"$asan_node.stamp"
fi

# One directory for every report. World-writable (sticky), because some
# tests run a child process as nobody.
logdir=$(mktemp -d /tmp/onbus-asan.XXXXXX)
chmod 1777 "$logdir"

export ONBUS_ADDON=$addon
export ONBUS_ASAN_NODE=$asan_node
export ONBUS_EXPECT_SANITIZE=1
# detect_leaks: LeakSanitizer at exit. abort_on_error=0: exit with exitcode
# instead of abort(), so a failing child is an exit code, not a core dump.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:exitcode=86:log_path=$logdir/asan:strip_path_prefix=$root/"
export LSAN_OPTIONS="suppressions=$root/test/asan/lsan.supp:print_suppressions=0:exitcode=23"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87:strip_path_prefix=$root/"

files=("$@")
if [[ ${#files[@]} -eq 0 ]]; then
  files=(test/udp-*.test.ts test/stream-*.test.ts test/serial-*.test.ts test/transfer-*.test.ts test/bus-ipc-*.test.ts test/mavlink-native.test.ts test/mavlink-link.test.ts test/mavlink-router*.test.ts test/rtp-receive-*.test.ts test/record*.test.ts test/replay*.test.ts test/daemon-mavlink.test.ts test/daemon-rtp.test.ts test/asan/)
fi

echo "== vitest under ASan+UBSan: ${files[*]}"
echo "   addon:   $addon"
echo "   node:    $asan_node (+ $asan_lib)"
echo "   reports: $logdir"
status=0
output=$(mktemp /tmp/onbus-asan-output.XXXXXX)
npx vitest run --config test/asan/vitest.config.ts "${files[@]}" 2>&1 | tee "$output" || status=$?
if grep -qE 'runtime error:|ERROR: (AddressSanitizer|LeakSanitizer)' "$output"; then
  echo "test-asan: the output above holds a sanitizer report" >&2
  [[ $status -ne 0 ]] || status=1
fi
rm -f "$output"

reports=$(find "$logdir" -type f | sort)
if [[ -n $reports ]]; then
  echo
  echo "== sanitizer reports ($(echo "$reports" | wc -l) file(s) in $logdir):"
  for f in $reports; do
    echo "---- $f"
    head -n 80 "$f"
  done
  [[ $status -ne 0 ]] || status=1
else
  rmdir "$logdir"
fi

echo
if [[ $status -eq 0 ]]; then
  echo "test-asan: clean, no sanitizer reports ($(( $(date +%s) - t0 )) s)"
else
  echo "test-asan: FAILED (vitest status $status, $(echo -n "$reports" | grep -c . || true) report file(s)) ($(( $(date +%s) - t0 )) s)" >&2
fi
exit "$status"
