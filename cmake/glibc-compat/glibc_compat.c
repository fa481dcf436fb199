/*
 * Stand-ins that keep a prebuilt addon loadable on glibc 2.31 (Debian 11,
 * Ubuntu 20.04, JetPack 5) when it is built against a newer glibc (Debian 12:
 * 2.36). Compiled into the addon only with -DONBUS_GLIBC_COMPAT=ON; see
 * cmake/glibc-compat.cmake.
 *
 * The force-included onbus_glibc_symver.h pins the addon's own objects, but it
 * cannot reach the precompiled members of the static libstdc++ (std::thread
 * references pthread_create, std::random_device arc4random, ...). Every
 * reference in the link, theirs and ours, binds to these hidden definitions
 * instead, and they call a version every supported glibc has. Hidden: nothing
 * here is exported or interposes on the process's libc.
 *
 * No glibc headers for the overridden functions: their prototypes carry
 * attributes that clash with hidden redefinitions, and C does not check the
 * types across translation units. Pointer types stand in for the opaque ones.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define HIDDEN __attribute__((visibility("hidden")))
/* References to `local` become references to sym@version. */
#define OLD(local, sym, version) __asm__(".symver " #local "," #sym "@" version)

/* Since 2.32 libstdc++ skips atomic refcounts when this says the process has
 * one thread. 0 means "maybe several": always correct, and Node has threads. */
HIDDEN char __libc_single_threaded = 0;

/* ---- pthread: moved into libc in 2.34 with new default versions ---------- */

#define FWD1(ret, name, t1) \
  extern ret onbus_old_##name(t1); \
  OLD(onbus_old_##name, name, ONBUS_GLIBC_OLD_##name); \
  HIDDEN ret name(t1 a) { return onbus_old_##name(a); }
#define FWD2(ret, name, t1, t2) \
  extern ret onbus_old_##name(t1, t2); \
  OLD(onbus_old_##name, name, ONBUS_GLIBC_OLD_##name); \
  HIDDEN ret name(t1 a, t2 b) { return onbus_old_##name(a, b); }

typedef void (*onbus_once_fn)(void);
typedef void (*onbus_dtor_fn)(void *);

#ifdef ONBUS_GLIBC_OLD_pthread_create
extern int onbus_old_pthread_create(unsigned long *, const void *, void *(*)(void *), void *);
OLD(onbus_old_pthread_create, pthread_create, ONBUS_GLIBC_OLD_pthread_create);
HIDDEN int pthread_create(unsigned long *t, const void *attr, void *(*fn)(void *), void *arg) {
  return onbus_old_pthread_create(t, attr, fn, arg);
}
#endif
#ifdef ONBUS_GLIBC_OLD_pthread_join
FWD2(int, pthread_join, unsigned long, void **)
#endif
#ifdef ONBUS_GLIBC_OLD_pthread_detach
FWD1(int, pthread_detach, unsigned long)
#endif
#ifdef ONBUS_GLIBC_OLD_pthread_once
FWD2(int, pthread_once, int *, onbus_once_fn)
#endif
#ifdef ONBUS_GLIBC_OLD_pthread_key_create
FWD2(int, pthread_key_create, unsigned *, onbus_dtor_fn)
#endif
#ifdef ONBUS_GLIBC_OLD_pthread_key_delete
FWD1(int, pthread_key_delete, unsigned)
#endif
#ifdef ONBUS_GLIBC_OLD_pthread_getspecific
FWD1(void *, pthread_getspecific, unsigned)
#endif
#ifdef ONBUS_GLIBC_OLD_pthread_setspecific
FWD2(int, pthread_setspecific, unsigned, const void *)
#endif
#ifdef ONBUS_GLIBC_OLD_pthread_rwlock_rdlock
FWD1(int, pthread_rwlock_rdlock, void *)
#endif
#ifdef ONBUS_GLIBC_OLD_pthread_rwlock_wrlock
FWD1(int, pthread_rwlock_wrlock, void *)
#endif
#ifdef ONBUS_GLIBC_OLD_pthread_rwlock_unlock
FWD1(int, pthread_rwlock_unlock, void *)
#endif

/* ---- the stat family: real functions only since 2.33 ---------------------- */
/* Before 2.33 <sys/stat.h> inlined stat() as __xstat(_STAT_VER, ...). */

#if defined(ONBUS_GLIBC_NEW_stat) && defined(ONBUS_GLIBC_OLD___xstat)
#if defined(__x86_64__)
#define STAT_VER 1
#elif defined(__arm__)
#define STAT_VER 3
#else
#define STAT_VER 0 /* aarch64 and the other generic-ABI architectures */
#endif
#define XSTAT(name, old, t1, t2) \
  extern int onbus_old_##old(int, t1, t2); \
  OLD(onbus_old_##old, old, ONBUS_GLIBC_OLD_##old); \
  HIDDEN int name(t1 a, t2 b) { return onbus_old_##old(STAT_VER, a, b); }
XSTAT(stat, __xstat, const char *, void *)
XSTAT(stat64, __xstat64, const char *, void *)
XSTAT(lstat, __lxstat, const char *, void *)
XSTAT(lstat64, __lxstat64, const char *, void *)
XSTAT(fstat, __fxstat, int, void *)
XSTAT(fstat64, __fxstat64, int, void *)
extern int onbus_old___fxstatat(int, int, const char *, void *, int);
OLD(onbus_old___fxstatat, __fxstatat, ONBUS_GLIBC_OLD___fxstatat);
HIDDEN int fstatat(int dir, const char *p, void *b, int f) { return onbus_old___fxstatat(STAT_VER, dir, p, b, f); }
extern int onbus_old___fxstatat64(int, int, const char *, void *, int);
OLD(onbus_old___fxstatat64, __fxstatat64, ONBUS_GLIBC_OLD___fxstatat64);
HIDDEN int fstatat64(int dir, const char *p, void *b, int f) { return onbus_old___fxstatat64(STAT_VER, dir, p, b, f); }
#endif

/* ---- arc4random: new in 2.36 (std::random_device uses it) ----------------- */

static void fill_random(void *buf, size_t n) {
  unsigned char *p = buf;
  while (n > 0) {
    long r = syscall(SYS_getrandom, p, n, 0);
    if (r > 0) {
      p += r;
      n -= (size_t)r;
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else {
      break; /* ENOSYS (kernel < 3.17): fall back to the device */
    }
  }
  if (n == 0) return;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  while (fd >= 0 && n > 0) {
    ssize_t r = read(fd, p, n);
    if (r > 0) {
      p += r;
      n -= (size_t)r;
    } else if (!(r < 0 && errno == EINTR)) {
      break;
    }
  }
  if (fd >= 0) close(fd);
  if (n > 0) abort(); /* arc4random cannot fail: glibc's aborts too */
}

HIDDEN uint32_t arc4random(void) {
  uint32_t v;
  fill_random(&v, sizeof v);
  return v;
}

HIDDEN void arc4random_buf(void *buf, size_t n) { fill_random(buf, n); }

HIDDEN uint32_t arc4random_uniform(uint32_t upper) {
  if (upper < 2) return 0;
  /* Reject the low values that would bias the modulo. */
  uint32_t min = -upper % upper;
  for (;;) {
    uint32_t r = arc4random();
    if (r >= min) return r % upper;
  }
}
