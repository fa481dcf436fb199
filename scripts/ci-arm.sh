#!/usr/bin/env bash
# ARM in CI, one entry point for .ci/run (docs/ARM.md):
#   1. Debian packages: qemu-user and the aarch64 / armhf cross toolchains;
#   2. npm run prebuild: linux-x64, linux-arm64, linux-arm (armv7) prebuilds;
#   3. scripts/check-glibc.mjs: nothing newer than GLIBC_2.31, no libstdc++ dependency;
#   4. scripts/check-pack.mjs: the npm tarball installs without a compiler and
#      each Node (x64, arm64 and armv7 under QEMU) loads its own prebuild;
#   5. npm run test:arm64, then npm run test:armv7: the vitest suite under QEMU.
# ONBUS_CI_ARMV7=0 leaves out the armv7 suite. Each step's duration is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
t0=$(date +%s)
last=$t0
step() {
  local now; now=$(date +%s)
  echo; echo "=== ci-arm: $* (+$(( now - t0 )) s)"; last=$now
}
took() { echo "--- ci-arm: $1 took $(( $(date +%s) - last )) s"; }

step "system packages"
pkgs=(qemu-user g++-aarch64-linux-gnu g++-arm-linux-gnueabihf binutils-aarch64-linux-gnu binutils-arm-linux-gnueabihf cmake g++ make)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -d node_modules/vitest ] || npm install --no-audit --no-fund
took "system packages"

step "npm run prebuild"
npm run prebuild
took "prebuild"

step "glibc check"
node scripts/check-glibc.mjs
took "glibc check"

step "QEMU environments"
node scripts/qemu.mjs setup arm64
node scripts/qemu.mjs setup armv7
took "QEMU setup"

step "pack check"
node scripts/check-pack.mjs
took "pack check"

step "vitest under qemu-aarch64"
npm run test:arm64
took "arm64 suite"

if [ "${ONBUS_CI_ARMV7:-1}" != "0" ]; then
  step "vitest under qemu-arm (armv7)"
  npm run test:armv7
  took "armv7 suite"
fi

echo; echo "ci-arm: all steps succeeded in $(( $(date +%s) - t0 )) s"
