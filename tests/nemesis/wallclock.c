/* The nemesis's clock fault: an LD_PRELOAD shim that moves one process's wall
 * clock, and nothing else (tests/nemesis/clock.py builds and loads it).
 *
 * Why not libfaketime: Debian's libfaketime 0.9.10 also wraps the timed waits
 * of threads and semaphores; a node under it woke its worker threads 50 to 900 ms
 * late, answered pushes in over 10 s on an idle machine and turned every timing
 * check of the nemesis into a measure of the shim (finding 16). A skewed host
 * has a wrong wall clock, not slow threads, so only CLOCK_REALTIME moves here:
 * clock_gettime (REALTIME and REALTIME_COARSE), gettimeofday and time. Monotonic
 * clocks, sleeps and waits are the kernel's.
 *
 * The offset is whole seconds read from the file named by AMPARO_SKEW_FILE
 * ("+90", "-90", "+3600", "+0"), re-read at most once a second of monotonic
 * time, so the nemesis skews, jumps and corrects a running node.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime;
static long offset_s;    /* read and written with __atomic builtins */
static long next_read_s; /* monotonic second after which the file is read again */

static long read_offset(void) {
    const char *path = getenv("AMPARO_SKEW_FILE");
    char buf[32];
    ssize_t n;
    int fd;
    if (path == NULL || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        return __atomic_load_n(&offset_s, __ATOMIC_RELAXED);
    }
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) {
        return __atomic_load_n(&offset_s, __ATOMIC_RELAXED);
    }
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

static long current_offset(void) {
    struct timespec mono;
    if (real_clock_gettime == NULL) {
        real_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    }
    if (real_clock_gettime(CLOCK_MONOTONIC_COARSE, &mono) == 0
        && mono.tv_sec >= __atomic_load_n(&next_read_s, __ATOMIC_RELAXED)) {
        __atomic_store_n(&next_read_s, mono.tv_sec + 1, __ATOMIC_RELAXED);
        __atomic_store_n(&offset_s, read_offset(), __ATOMIC_RELAXED);
    }
    return __atomic_load_n(&offset_s, __ATOMIC_RELAXED);
}

int clock_gettime(clockid_t clk, struct timespec *tp) {
    long offset = current_offset();
    int rc = real_clock_gettime(clk, tp);
    if (rc == 0 && (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE)) {
        tp->tv_sec += offset;
    }
    return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    struct timespec ts;
    int rc;
    (void)tz;
    rc = clock_gettime(CLOCK_REALTIME, &ts);
    if (rc == 0) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return rc;
}

time_t time(time_t *out) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return (time_t)-1;
    }
    if (out != NULL) {
        *out = ts.tv_sec;
    }
    return ts.tv_sec;
}
