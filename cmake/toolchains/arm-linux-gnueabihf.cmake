# Cross-compile for linux-arm, ARMv7-A hard-float (glibc) with Debian's cross
# toolchain:
#   apt-get install g++-arm-linux-gnueabihf
# Used by scripts/prebuild.mjs through cmake-js:
#   cmake-js compile --out build-armv7 --CDCMAKE_TOOLCHAIN_FILE=<this file>
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7l)

set(ONBUS_CROSS_TRIPLE arm-linux-gnueabihf)
set(CMAKE_C_COMPILER ${ONBUS_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${ONBUS_CROSS_TRIPLE}-g++)

# The same baseline as Node's official linux-armv7l build (and Debian armhf):
# ARMv7-A, VFPv3-D16, hard-float ABI, Thumb-2. Runs on Pi 2 and later, BeagleBone,
# i.MX6, and 64-bit SoCs running a 32-bit OS. Not ARMv6 (Pi 1 / Zero 1).
# -Wno-psabi: GCC notes that a GCC 7.1 ABI fix changed how some std:: iterators
# are passed; nothing here crosses that boundary.
set(ONBUS_ARCH_FLAGS "-march=armv7-a -mfpu=vfpv3-d16 -mfloat-abi=hard -mthumb")
set(CMAKE_C_FLAGS_INIT "${ONBUS_ARCH_FLAGS}")
set(CMAKE_CXX_FLAGS_INIT "${ONBUS_ARCH_FLAGS} -Wno-psabi")
# cmake-js passes -DCMAKE_CXX_FLAGS=..., which replaces CMAKE_CXX_FLAGS_INIT: the
# per-configuration flags carry the baseline too (CMake appends -O3 -DNDEBUG).
foreach(config RELEASE DEBUG RELWITHDEBINFO MINSIZEREL)
  set(CMAKE_CXX_FLAGS_${config}_INIT "${ONBUS_ARCH_FLAGS} -Wno-psabi")
endforeach()

set(CMAKE_FIND_ROOT_PATH /usr/${ONBUS_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

find_program(ONBUS_QEMU qemu-arm)
if(ONBUS_QEMU)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${ONBUS_QEMU} -L /usr/${ONBUS_CROSS_TRIPLE})
endif()
