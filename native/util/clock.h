// 64-bit clock reads on every architecture.
//
// On 32-bit ARM the prebuild keeps a 32-bit time_t (a 64-bit one would need
// GLIBC_2.34 symbols), so clock_gettime() would overflow in 2038. There we ask
// the kernel for the 64-bit form directly (clock_gettime64, Linux 5.1+), and
// fall back to the libc call only where the kernel lacks it.
#pragma once
#include <errno.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace onbus {

struct Time64 {
  int64_t sec;
  int64_t nsec;
};

inline Time64 ClockGet(clockid_t clock) {
#if defined(SYS_clock_gettime64)
  if (sizeof(time_t) < 8) {
    struct {
      int64_t tv_sec;
      int64_t tv_nsec;
    } ts64;
    if (syscall(SYS_clock_gettime64, clock, &ts64) == 0) return {ts64.tv_sec, ts64.tv_nsec};
  }
#endif
  timespec ts;
  clock_gettime(clock, &ts);
  return {static_cast<int64_t>(ts.tv_sec), static_cast<int64_t>(ts.tv_nsec)};
}

inline int64_t ClockNs(clockid_t clock) {
  Time64 t = ClockGet(clock);
  return t.sec * 1000000000LL + t.nsec;
}

}  // namespace onbus
