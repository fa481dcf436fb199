# Cross-compile for linux-arm64 (aarch64, glibc) with Debian's cross toolchain:
#   apt-get install g++-aarch64-linux-gnu
# Used by scripts/prebuild.mjs through cmake-js:
#   cmake-js compile --out build-arm64 --CDCMAKE_TOOLCHAIN_FILE=<this file>
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(ONBUS_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${ONBUS_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${ONBUS_CROSS_TRIPLE}-g++)

# Baseline ARMv8.0-A: every 64-bit board (Pi 3/4/5, Jetson, i.MX8, RK3399/3588).
set(CMAKE_C_FLAGS_INIT "-march=armv8-a")
set(CMAKE_CXX_FLAGS_INIT "-march=armv8-a")
# cmake-js passes -DCMAKE_CXX_FLAGS=..., which replaces CMAKE_CXX_FLAGS_INIT: the
# per-configuration flags carry the baseline too (CMake appends -O3 -DNDEBUG).
foreach(config RELEASE DEBUG RELWITHDEBINFO MINSIZEREL)
  set(CMAKE_CXX_FLAGS_${config}_INIT "-march=armv8-a")
endforeach()

# Debian installs the target's headers and libraries under /usr/<triple>.
set(CMAKE_FIND_ROOT_PATH /usr/${ONBUS_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# try_run() and the helper tools run under user-mode QEMU when it is installed.
find_program(ONBUS_QEMU qemu-aarch64)
if(ONBUS_QEMU)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${ONBUS_QEMU} -L /usr/${ONBUS_CROSS_TRIPLE})
endif()
