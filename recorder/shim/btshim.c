/*
 * buildtape file-event interposer, loaded into the build with LD_PRELOAD.
 *
 * It wraps libc's open/openat/creat/fopen/rename/unlink families. After a call that
 * succeeded it appends one line to the file named by $BUILDTAPE_FILELOG:
 *
 *     <pid> \t <op> \t <absolute path> [\t <absolute path>] \n
 *
 * with op r (opened for reading), w (for writing), u (read and write), d (deleted) or
 * m (renamed: source, then target). Nothing stops the process, which is why this costs
 * far less than tracing openat with ptrace; strace still sees the process tree.
 *
 * Written to be harmless: no malloc, no stdio, errno preserved, one write(2) per
 * record on an O_APPEND descriptor (so records of parallel processes never interleave),
 * and the descriptor is checked by inode before every write, so a program that closes
 * all descriptors and reuses the number never receives our bytes.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_FD_MIN 987

static int log_fd = -1;
static dev_t log_dev;
static ino_t log_ino;

static int log_open(void) {
    struct stat st;
    if (log_fd >= 0 && fstat(log_fd, &st) == 0 && st.st_dev == log_dev && st.st_ino == log_ino)
        return log_fd;
    const char *path = getenv("BUILDTAPE_FILELOG");
    if (!path || !*path)
        return -1;
    int (*real_open)(const char *, int, ...) = dlsym(RTLD_NEXT, "open");
    int fd = real_open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, LOG_FD_MIN);
    close(fd);
    if (high < 0 || fstat(high, &st) != 0)
        return -1;
    log_fd = high;
    log_dev = st.st_dev;
    log_ino = st.st_ino;
    return log_fd;
}

static int skipped(const char *p) {
    return strncmp(p, "/proc/", 6) == 0 || strncmp(p, "/sys/", 5) == 0 ||
           strncmp(p, "/dev/", 5) == 0;
}

/* Make an absolute path (not canonical: ".." is resolved by the reader). */
static int absolute(int dirfd, const char *path, char *out, size_t size) {
    if (!path)
        return -1;
    if (path[0] == '/') {
        if (strlen(path) >= size)
            return -1;
        strcpy(out, path);
        return 0;
    }
    char base[PATH_MAX];
    if (dirfd == AT_FDCWD) {
        if (!getcwd(base, sizeof base))
            return -1;
    } else {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
        ssize_t n = readlink(link, base, sizeof base - 1);
        if (n < 0)
            return -1;
        base[n] = '\0';
    }
    if ((size_t)snprintf(out, size, "%s/%s", base, path) >= size)
        return -1;
    return 0;
}

static int clean(const char *p) {
    return strchr(p, '\t') == NULL && strchr(p, '\n') == NULL;
}

static void emit(char op, int dirfd1, const char *p1, int dirfd2, const char *p2) {
    int saved = errno;
    char a[PATH_MAX], b[PATH_MAX], line[2 * PATH_MAX + 64];
    int fd = log_open();
    if (fd < 0 || absolute(dirfd1, p1, a, sizeof a) != 0 || !clean(a) || skipped(a))
        goto out;
    int n;
    if (p2) {
        if (absolute(dirfd2, p2, b, sizeof b) != 0 || !clean(b))
            goto out;
        n = snprintf(line, sizeof line, "%d\t%c\t%s\t%s\n", (int)getpid(), op, a, b);
    } else {
        n = snprintf(line, sizeof line, "%d\t%c\t%s\n", (int)getpid(), op, a);
    }
    if (n > 0 && (size_t)n < sizeof line) {
        ssize_t w = write(fd, line, (size_t)n);
        (void)w;
    }
out:
    errno = saved;
}

static char open_op(int flags) {
    if (flags & O_DIRECTORY)
        return 0;
    int acc = flags & O_ACCMODE;
    if (acc == O_WRONLY || (flags & (O_CREAT | O_TRUNC)))
        return 'w';
    if (acc == O_RDWR)
        return 'u';
    return 'r';
}

static char fopen_op(const char *mode) {
    if (!mode)
        return 'r';
    if (mode[0] == 'w' || mode[0] == 'a')
        return 'w';
    if (strchr(mode, '+'))
        return 'u';
    return 'r';
}

/* The next definition of a wrapped function, looked up once; its type is the wrapper's own. */
#define REAL(name)                                                               \
    static __typeof__(&name) real_##name;                                        \
    if (!real_##name)                                                            \
    real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

static mode_t mode_arg(int flags, va_list ap) {
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

#define WRAP_OPEN(name)                                                          \
    int name(const char *path, int flags, ...) {                                 \
        va_list ap;                                                              \
        va_start(ap, flags);                                                     \
        mode_t mode = mode_arg(flags, ap);                                       \
        va_end(ap);                                                              \
        REAL(name);                             \
        int fd = real_##name(path, flags, mode);                                 \
        char op = open_op(flags);                                                \
        if (fd >= 0 && op && !(flags & O_TMPFILE))                               \
            emit(op, AT_FDCWD, path, 0, NULL);                                   \
        return fd;                                                               \
    }

#define WRAP_OPENAT(name)                                                        \
    int name(int dirfd, const char *path, int flags, ...) {                      \
        va_list ap;                                                              \
        va_start(ap, flags);                                                     \
        mode_t mode = mode_arg(flags, ap);                                       \
        va_end(ap);                                                              \
        REAL(name);                        \
        int fd = real_##name(dirfd, path, flags, mode);                          \
        char op = open_op(flags);                                                \
        if (fd >= 0 && op && !(flags & O_TMPFILE))                               \
            emit(op, dirfd, path, 0, NULL);                                      \
        return fd;                                                               \
    }

/* The _FORTIFY_SOURCE entry points that compilers emit for open(2) calls. */
#define WRAP_OPEN_2(name)                                                        \
    int name(const char *path, int flags) {                                      \
        REAL(name);                                  \
        int fd = real_##name(path, flags);                                       \
        char op = open_op(flags);                                                \
        if (fd >= 0 && op)                                                       \
            emit(op, AT_FDCWD, path, 0, NULL);                                   \
        return fd;                                                               \
    }

#define WRAP_OPENAT_2(name)                                                      \
    int name(int dirfd, const char *path, int flags) {                           \
        REAL(name);                             \
        int fd = real_##name(dirfd, path, flags);                                \
        char op = open_op(flags);                                                \
        if (fd >= 0 && op)                                                       \
            emit(op, dirfd, path, 0, NULL);                                      \
        return fd;                                                               \
    }

WRAP_OPEN(open)
WRAP_OPEN(open64)
WRAP_OPENAT(openat)
WRAP_OPENAT(openat64)
WRAP_OPEN_2(__open_2)
WRAP_OPEN_2(__open64_2)
WRAP_OPENAT_2(__openat_2)
WRAP_OPENAT_2(__openat64_2)

#define WRAP_CREAT(name)                                                         \
    int name(const char *path, mode_t mode) {                                    \
        REAL(name);                               \
        int fd = real_##name(path, mode);                                        \
        if (fd >= 0)                                                             \
            emit('w', AT_FDCWD, path, 0, NULL);                                  \
        return fd;                                                               \
    }

WRAP_CREAT(creat)
WRAP_CREAT(creat64)

#define WRAP_FOPEN(name)                                                         \
    FILE *name(const char *path, const char *mode) {                             \
        REAL(name);                       \
        FILE *f = real_##name(path, mode);                                       \
        if (f)                                                                   \
            emit(fopen_op(mode), AT_FDCWD, path, 0, NULL);                       \
        return f;                                                                \
    }

WRAP_FOPEN(fopen)
WRAP_FOPEN(fopen64)

int rename(const char *from, const char *to) {
    REAL(rename);
    int rc = real_rename(from, to);
    if (rc == 0)
        emit('m', AT_FDCWD, from, AT_FDCWD, to);
    return rc;
}

int renameat(int fromfd, const char *from, int tofd, const char *to) {
    REAL(renameat);
    int rc = real_renameat(fromfd, from, tofd, to);
    if (rc == 0)
        emit('m', fromfd, from, tofd, to);
    return rc;
}

int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned int flags) {
    REAL(renameat2);
    int rc = real_renameat2(fromfd, from, tofd, to, flags);
    if (rc == 0)
        emit('m', fromfd, from, tofd, to);
    return rc;
}

int unlink(const char *path) {
    REAL(unlink);
    int rc = real_unlink(path);
    if (rc == 0)
        emit('d', AT_FDCWD, path, 0, NULL);
    return rc;
}

int unlinkat(int dirfd, const char *path, int flags) {
    REAL(unlinkat);
    int rc = real_unlinkat(dirfd, path, flags);
    if (rc == 0 && !(flags & AT_REMOVEDIR))
        emit('d', dirfd, path, 0, NULL);
    return rc;
}
