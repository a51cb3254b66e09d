/*
 * buildtape interposer, loaded into the build with LD_PRELOAD: process and file events
 * without ptrace stops.
 *
 * File events. It wraps libc's open/openat/creat/fopen/rename/unlink/link/mkdir/mkstemp
 * families. After a call that succeeded it appends one line to the file named by
 * $BUILDTAPE_FILELOG:
 *
 *     <pid> \t <op> \t <absolute path> [\t <absolute path>] \n
 *
 * with op r (opened for reading), w (for writing, or truncated), u (read and write),
 * d (deleted), m (renamed: source, then target), k (a directory made) or a (mode or times
 * changed). A name that link/symlink made is a w, a hard link's source an r, and so is a
 * shared object that the dynamic loader mapped from under $BUILDTAPE_WORKSPACE (its list
 * is read when the image starts, before each dlclose and at exit: see loaded_objects).
 *
 * Process events, as lines that start with a capital letter (strings escaped: \\ \t \n):
 *
 *     E pid ppid t_ns exe cwd envtag argc argv...   this image started (our constructor)
 *     F pid ppid t_ns                             a fork() child (it may exec later)
 *     W pid child status t_ns                     a wait call collected child's status
 *     X pid t_ns file argc argv...                about to exec (Y pid: the exec failed)
 *     S pid child t_ns file argc argv...          posix_spawn started child
 *     Q pid t_ns                                  the image is exiting normally
 *
 * An X with neither E nor Y after it is an image that never ran our constructor: a
 * static executable, or one started with a cleaned environment. envtag names a file in
 * $BUILDTAPE_SAVEDIR/env/ holding that environment (NUL-separated), written once per
 * distinct environment with O_EXCL, so a build of thousands of processes writes a few.
 *
 * Pre-build content. Before a call that would change or remove a file under
 * $BUILDTAPE_WORKSPACE whose mtime is older than the build ($BUILDTAPE_T0, ns), the
 * shim keeps the old bytes in $BUILDTAPE_SAVEDIR: a hard link for rename-over and
 * unlink (the old inode survives; no bytes copied), a copy for an open that writes
 * (copy_file_range), and logs  P pid name path.  Before a call replaces the content of a
 * workspace file an earlier process of this build wrote (a truncating open, a rename over
 * it, an unlink), that content is kept the same way and logged  V pid name path, so a
 * step's own output is known even when a later step rewrote it. Before an appending open
 * of such a file, only its size is logged,  G pid size path : what the earlier step wrote
 * is that prefix of the final content, unless something replaced it afterwards.  Before a build-written file outside the
 * workspace is unlinked (gcc's /tmp/cc*.s), it is hard-linked there too: I pid name path.
 * Nothing stops the process, which is why this costs far less than ptrace.
 *
 * Programs libc does not see into. A static executable or a Go program makes its own system
 * calls, so the shim sees neither its files nor its children. When the recorder allows it
 * ($BUILDTAPE_STRACE names strace, and the file $BUILDTAPE_STRACE_OK exists once strace was
 * proved to work here), the exec of such a program runs it under `strace -DD -f` instead,
 * logging to $BUILDTAPE_SAVEDIR/strace-<pid>-<n>.log: only those subtrees pay for ptrace,
 * and -DD keeps the program's pid and parent. Inside strace itself the shim is inert
 * ($BUILDTAPE_IN_STRACE, which strace removes before it starts the program), and under a
 * traced program ($BUILDTAPE_STRACED) nothing is wrapped twice.
 *
 * Written to be harmless: no malloc, no stdio, errno preserved, one write(2) per
 * record on an O_APPEND descriptor (so records of parallel processes never interleave),
 * and the descriptor is checked by inode before every write, so a program that closes
 * all descriptors and reuses the number never receives our bytes.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <utime.h>
#include <time.h>
#include <unistd.h>

#define LOG_FD_MIN 987

static int log_fd = -1;
/* Set in strace's own image: it logs nothing, keeps nothing, wraps nothing. */
static int inert;
/* The paths this image opened for writing, by hash: a process that rewrites its own
 * output does not need it kept. A fork child starts with none (see fork). */
static uint64_t written[64];
static unsigned nwritten;
static dev_t log_dev;
static ino_t log_ino;

/* open(2) itself: neither our own wrapper nor a dlsym lookup of the next one, which costs
 * every process that logs a few microseconds and a page or two of the loader's memory. */
static int raw_open(const char *path, int flags, mode_t mode) {
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

static int log_open(void) {
    struct stat st;
    if (inert)
        return -1;
    if (log_fd >= 0 && fstat(log_fd, &st) == 0 && st.st_dev == log_dev && st.st_ino == log_ino)
        return log_fd;
    const char *path = getenv("BUILDTAPE_FILELOG");
    if (!path || !*path)
        return -1;
    int fd = raw_open(path, O_WRONLY | O_APPEND | O_CLOEXEC, 0);
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

/* Stack use. Every page of stack a record touches beyond what the program already used is
 * a page fault, in every process of the build: buffers are sized for the common case
 * (SMALL_PATH) and a record that does not fit is made again with PATH_MAX ones. */
#define SMALL_PATH 512

/* Make an absolute path (not canonical: ".." is resolved by the reader) in ``out`` of
 * ``size`` bytes: 0, -1 on failure, 1 when it needs more room than ``size``. */
static int absolute(int dirfd, const char *path, char *out, size_t size) {
    if (!path)
        return -1;
    if (path[0] == '/') {
        if (strlen(path) >= size)
            return size < PATH_MAX ? 1 : -1;
        strcpy(out, path);
        return 0;
    }
    char base[size];
    if (dirfd == AT_FDCWD) {
        if (!getcwd(base, size))
            return errno == ERANGE && size < PATH_MAX ? 1 : -1;
    } else {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
        ssize_t n = readlink(link, base, size - 1);
        if (n < 0)
            return -1;
        if ((size_t)n >= size - 1 && size < PATH_MAX)
            return 1;
        base[n] = '\0';
    }
    if ((size_t)snprintf(out, size, "%s/%s", base, path) >= size)
        return size < PATH_MAX ? 1 : -1;
    return 0;
}

static int clean(const char *p) {
    return strchr(p, '\t') == NULL && strchr(p, '\n') == NULL;
}

/* How emit_save keeps a file: a copy (the caller will write into it) rather than a hard
 * link (the caller will replace or remove the name); and whether the call replaces the
 * content a step of this build wrote, so that content is kept as that step left it. */
#define SAVE_COPY 1
#define SAVE_REPLACING 2
#define SAVE_APPENDING 4
/* Versions kept a path (recorder/observe.py keeps as many). */
#define VERSION_SLOTS 4
static void emit_save(int dirfd, const char *path, int how);
static void wrote(const char *abs);
static void emit_intermediate(int dirfd, const char *path);

/* One file record with paths of at most ``room`` bytes: 0 when they needed more. */
static int emit_in(int fd, char op, int dirfd1, const char *p1, int dirfd2, const char *p2,
                   size_t room) {
    char a[room], b[p2 ? room : 1], line[2 * room + 64];
    int r = absolute(dirfd1, p1, a, room);
    if (r != 0 || !clean(a) || skipped(a))
        return r != 1;
    int n;
    if (p2) {
        r = absolute(dirfd2, p2, b, room);
        if (r != 0 || !clean(b))
            return r != 1;
        n = snprintf(line, sizeof line, "%d\t%c\t%s\t%s\n", (int)getpid(), op, a, b);
    } else {
        n = snprintf(line, sizeof line, "%d\t%c\t%s\n", (int)getpid(), op, a);
    }
    if (n > 0 && (size_t)n < sizeof line) {
        ssize_t w = write(fd, line, (size_t)n);
        (void)w;
    }
    if (op == 'w' || op == 'u')
        wrote(a);
    else if (op == 'm' && p2)
        wrote(b);
    return 1;
}

static void emit(char op, int dirfd1, const char *p1, int dirfd2, const char *p2) {
    int saved = errno;
    int fd = log_open();
    if (fd >= 0 && !emit_in(fd, op, dirfd1, p1, dirfd2, p2, SMALL_PATH))
        emit_in(fd, op, dirfd1, p1, dirfd2, p2, PATH_MAX);
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

static int fopen_how(const char *mode) {
    return mode[0] == 'w' ? SAVE_REPLACING : mode[0] == 'a' ? SAVE_APPENDING : 0;
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

static int replacing(int flags) {
    return (flags & O_TRUNC) ? SAVE_REPLACING : (flags & O_APPEND) ? SAVE_APPENDING : 0;
}

static int writes(int flags) {
    int acc = flags & O_ACCMODE;
    return acc == O_WRONLY || acc == O_RDWR || (flags & O_TRUNC);
}

#define WRAP_OPEN(name)                                                          \
    int name(const char *path, int flags, ...) {                                 \
        va_list ap;                                                              \
        va_start(ap, flags);                                                     \
        mode_t mode = mode_arg(flags, ap);                                       \
        va_end(ap);                                                              \
        REAL(name);                                                              \
        if (writes(flags))                                                       \
            emit_save(AT_FDCWD, path, SAVE_COPY | replacing(flags));             \
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
        REAL(name);                                                              \
        if (writes(flags))                                                       \
            emit_save(dirfd, path, SAVE_COPY | replacing(flags));                \
        int fd = real_##name(dirfd, path, flags, mode);                          \
        char op = open_op(flags);                                                \
        if (fd >= 0 && op && !(flags & O_TMPFILE))                               \
            emit(op, dirfd, path, 0, NULL);                                      \
        return fd;                                                               \
    }

/* The _FORTIFY_SOURCE entry points that compilers emit for open(2) calls. */
#define WRAP_OPEN_2(name)                                                        \
    int name(const char *path, int flags) {                                      \
        REAL(name);                                                              \
        if (writes(flags))                                                       \
            emit_save(AT_FDCWD, path, SAVE_COPY | replacing(flags));             \
        int fd = real_##name(path, flags);                                       \
        char op = open_op(flags);                                                \
        if (fd >= 0 && op)                                                       \
            emit(op, AT_FDCWD, path, 0, NULL);                                   \
        return fd;                                                               \
    }

#define WRAP_OPENAT_2(name)                                                      \
    int name(int dirfd, const char *path, int flags) {                           \
        REAL(name);                                                              \
        if (writes(flags))                                                       \
            emit_save(dirfd, path, SAVE_COPY | replacing(flags));                \
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
        REAL(name);                                                              \
        emit_save(AT_FDCWD, path, SAVE_COPY | SAVE_REPLACING);                   \
        int fd = real_##name(path, mode);                                        \
        if (fd >= 0)                                                             \
            emit('w', AT_FDCWD, path, 0, NULL);                                  \
        return fd;                                                               \
    }

WRAP_CREAT(creat)
WRAP_CREAT(creat64)

#define WRAP_FOPEN(name)                                                         \
    FILE *name(const char *path, const char *mode) {                             \
        REAL(name);                                                              \
        if (mode && (mode[0] == 'w' || mode[0] == 'a' || strchr(mode, '+')))     \
            emit_save(AT_FDCWD, path, SAVE_COPY | fopen_how(mode));                \
        FILE *f = real_##name(path, mode);                                       \
        if (f)                                                                   \
            emit(fopen_op(mode), AT_FDCWD, path, 0, NULL);                       \
        return f;                                                                \
    }

WRAP_FOPEN(fopen)
WRAP_FOPEN(fopen64)

int rename(const char *from, const char *to) {
    REAL(rename);
    emit_save(AT_FDCWD, from, 0);
    emit_save(AT_FDCWD, to, SAVE_REPLACING);
    int rc = real_rename(from, to);
    if (rc == 0)
        emit('m', AT_FDCWD, from, AT_FDCWD, to);
    return rc;
}

int renameat(int fromfd, const char *from, int tofd, const char *to) {
    REAL(renameat);
    emit_save(fromfd, from, 0);
    emit_save(tofd, to, SAVE_REPLACING);
    int rc = real_renameat(fromfd, from, tofd, to);
    if (rc == 0)
        emit('m', fromfd, from, tofd, to);
    return rc;
}

int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned int flags) {
    REAL(renameat2);
    emit_save(fromfd, from, 0);
    emit_save(tofd, to, SAVE_REPLACING);
    int rc = real_renameat2(fromfd, from, tofd, to, flags);
    if (rc == 0)
        emit('m', fromfd, from, tofd, to);
    return rc;
}

int unlink(const char *path) {
    REAL(unlink);
    emit_save(AT_FDCWD, path, SAVE_REPLACING);
    emit_intermediate(AT_FDCWD, path);
    int rc = real_unlink(path);
    if (rc == 0)
        emit('d', AT_FDCWD, path, 0, NULL);
    return rc;
}

int unlinkat(int dirfd, const char *path, int flags) {
    REAL(unlinkat);
    if (!(flags & AT_REMOVEDIR)) {
        emit_save(dirfd, path, SAVE_REPLACING);
        emit_intermediate(dirfd, path);
    }
    int rc = real_unlinkat(dirfd, path, flags);
    if (rc == 0 && !(flags & AT_REMOVEDIR))
        emit('d', dirfd, path, 0, NULL);
    return rc;
}

/* A new name is a write of the calling process; a hard link's source, whose bytes the new
 * name now shows, is a read. None of these replaces an existing name (EEXIST): `ln -f` and
 * `ln -sf` link a temporary name and rename it over the old one, and that rename keeps the
 * old file's content as any other rename-over does. */
int link(const char *from, const char *to) {
    REAL(link);
    int rc = real_link(from, to);
    if (rc == 0) {
        emit('r', AT_FDCWD, from, 0, NULL);
        emit('w', AT_FDCWD, to, 0, NULL);
    }
    return rc;
}

int linkat(int fromfd, const char *from, int tofd, const char *to, int flags) {
    REAL(linkat);
    int rc = real_linkat(fromfd, from, tofd, to, flags);
    if (rc == 0) {
        /* AT_EMPTY_PATH links the file ``fromfd`` names (an O_TMPFILE made visible). */
        if (!(flags & AT_EMPTY_PATH) || *from)
            emit('r', fromfd, from, 0, NULL);
        emit('w', tofd, to, 0, NULL);
    }
    return rc;
}

int symlink(const char *target, const char *path) {
    REAL(symlink);
    int rc = real_symlink(target, path);
    if (rc == 0)
        emit('w', AT_FDCWD, path, 0, NULL);
    return rc;
}

int symlinkat(const char *target, int dirfd, const char *path) {
    REAL(symlinkat);
    int rc = real_symlinkat(target, dirfd, path);
    if (rc == 0)
        emit('w', dirfd, path, 0, NULL);
    return rc;
}

/* A directory this process made is logged as  pid k path : a step replayed alone must be
 * left to make it (`mkdir out` and Python's os.mkdir fail when it is already there). */
int mkdir(const char *path, mode_t mode) {
    REAL(mkdir);
    int rc = real_mkdir(path, mode);
    if (rc == 0)
        emit('k', AT_FDCWD, path, 0, NULL);
    return rc;
}

int mkdirat(int dirfd, const char *path, mode_t mode) {
    REAL(mkdirat);
    int rc = real_mkdirat(dirfd, path, mode);
    if (rc == 0)
        emit('k', dirfd, path, 0, NULL);
    return rc;
}

/* ---- temporaries ----------------------------------------------------------------- */
/* glibc's mkstemp family opens the file it names with an internal call that no
 * interposer can wrap (ar and ranlib write their archive to one, then rename it into
 * place): the name it filled in is logged as a write once the call returned. The file is
 * new, so nothing is kept before. mkdtemp's directory is one the process made. */
#define WRAP_MKSTEMP(name, params, args)                                         \
    int name params {                                                            \
        REAL(name);                                                              \
        int fd = real_##name args;                                               \
        if (fd >= 0)                                                             \
            emit('w', AT_FDCWD, tmpl, 0, NULL);                                  \
        return fd;                                                               \
    }

WRAP_MKSTEMP(mkstemp, (char *tmpl), (tmpl))
WRAP_MKSTEMP(mkstemp64, (char *tmpl), (tmpl))
WRAP_MKSTEMP(mkostemp, (char *tmpl, int flags), (tmpl, flags))
WRAP_MKSTEMP(mkostemp64, (char *tmpl, int flags), (tmpl, flags))
WRAP_MKSTEMP(mkstemps, (char *tmpl, int suffixlen), (tmpl, suffixlen))
WRAP_MKSTEMP(mkstemps64, (char *tmpl, int suffixlen), (tmpl, suffixlen))
WRAP_MKSTEMP(mkostemps, (char *tmpl, int suffixlen, int flags), (tmpl, suffixlen, flags))
WRAP_MKSTEMP(mkostemps64, (char *tmpl, int suffixlen, int flags), (tmpl, suffixlen, flags))

char *mkdtemp(char *tmpl) {
    REAL(mkdtemp);
    char *dir = real_mkdtemp(tmpl);
    if (dir)
        emit('k', AT_FDCWD, dir, 0, NULL);
    return dir;
}

int truncate(const char *path, off_t length) {
    REAL(truncate);
    emit_save(AT_FDCWD, path, SAVE_COPY | SAVE_REPLACING);
    int rc = real_truncate(path, length);
    if (rc == 0)
        emit('w', AT_FDCWD, path, 0, NULL);
    return rc;
}

int truncate64(const char *path, off64_t length) {
    REAL(truncate64);
    emit_save(AT_FDCWD, path, SAVE_COPY | SAVE_REPLACING);
    int rc = real_truncate64(path, length);
    if (rc == 0)
        emit('w', AT_FDCWD, path, 0, NULL);
    return rc;
}

/* ---- attribute changes ----------------------------------------------------------- */
/* A mode or a time changed without the content: logged as  pid a path  so the recorder,
 * which re-examines after the build only what may have changed, looks at these too. */

static void emit_fd(int fd) {
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0 || path[0] != '/')
        return;
    path[n] = '\0';
    emit('a', AT_FDCWD, path, 0, NULL);
}

int chmod(const char *path, mode_t mode) {
    REAL(chmod);
    int rc = real_chmod(path, mode);
    if (rc == 0)
        emit('a', AT_FDCWD, path, 0, NULL);
    return rc;
}

int fchmodat(int dirfd, const char *path, mode_t mode, int flags) {
    REAL(fchmodat);
    int rc = real_fchmodat(dirfd, path, mode, flags);
    if (rc == 0)
        emit('a', dirfd, path, 0, NULL);
    return rc;
}

int fchmod(int fd, mode_t mode) {
    REAL(fchmod);
    int saved, rc = real_fchmod(fd, mode);
    saved = errno;
    if (rc == 0)
        emit_fd(fd);
    errno = saved;
    return rc;
}

int utimensat(int dirfd, const char *path, const struct timespec times[2], int flags) {
    REAL(utimensat);
    int saved, rc = real_utimensat(dirfd, path, times, flags);
    saved = errno;
    /* glibc declares path nonnull, but the kernel takes NULL for "dirfd itself". */
    const char *volatile named = path;
    if (rc == 0) {
        if (named)
            emit('a', dirfd, named, 0, NULL);
        else
            emit_fd(dirfd);
    }
    errno = saved;
    return rc;
}

int futimens(int fd, const struct timespec times[2]) {
    REAL(futimens);
    int saved, rc = real_futimens(fd, times);
    saved = errno;
    if (rc == 0)
        emit_fd(fd);
    errno = saved;
    return rc;
}

int utimes(const char *path, const struct timeval times[2]) {
    REAL(utimes);
    int rc = real_utimes(path, times);
    if (rc == 0)
        emit('a', AT_FDCWD, path, 0, NULL);
    return rc;
}

int lutimes(const char *path, const struct timeval times[2]) {
    REAL(lutimes);
    int rc = real_lutimes(path, times);
    if (rc == 0)
        emit('a', AT_FDCWD, path, 0, NULL);
    return rc;
}

int utime(const char *path, const struct utimbuf *times) {
    REAL(utime);
    int rc = real_utime(path, times);
    if (rc == 0)
        emit('a', AT_FDCWD, path, 0, NULL);
    return rc;
}

/* ---- process events ------------------------------------------------------------ */

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static size_t put_esc(char *out, const char *s) {
    size_t n = 0;
    for (; *s; s++) {
        if (*s == '\\' || *s == '\t' || *s == '\n') {
            out[n++] = '\\';
            out[n++] = *s == '\t' ? 't' : *s == '\n' ? 'n' : '\\';
        } else {
            out[n++] = *s;
        }
    }
    return n;
}

/* One record: head, then each string and argv escaped, tab-separated, in one write(2). */
static void emit_proc_to(int fd, const char *head, const char *const strs[], int nstrs,
                         char *const argv[]);

static void emit_proc(const char *head, const char *const strs[], int nstrs, char *const argv[]) {
    int saved = errno;
    int fd = log_open();
    if (fd >= 0)
        emit_proc_to(fd, head, strs, nstrs, argv);
    errno = saved;
}

static void emit_proc_to(int fd, const char *head, const char *const strs[], int nstrs,
                         char *const argv[]) {
    size_t need = strlen(head) + 64;
    for (int i = 0; i < nstrs; i++)
        need += 2 * strlen(strs[i] ? strs[i] : "") + 1;
    int argc = 0;
    if (argv)
        for (; argv[argc]; argc++)
            need += 2 * strlen(argv[argc]) + 1;
    /* Exactly as long as the record (see SMALL_PATH), up to 8 KiB; longer ones are mapped. */
    char stackbuf[need <= 8192 ? need : 1];
    char *buf = stackbuf;
    int mapped = 0;
    if (need > 8192) {
        void *m = mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return;
        buf = m;
        mapped = 1;
    }
    size_t n = strlen(head);
    memcpy(buf, head, n);
    for (int i = 0; i < nstrs; i++) {
        buf[n++] = '\t';
        n += put_esc(buf + n, strs[i] ? strs[i] : "");
    }
    if (argv) {
        n += (size_t)snprintf(buf + n, 24, "\t%d", argc);
        for (int i = 0; i < argc; i++) {
            buf[n++] = '\t';
            n += put_esc(buf + n, argv[i]);
        }
    }
    buf[n++] = '\n';
    ssize_t w = write(fd, buf, n);
    (void)w;
    if (mapped)
        munmap(buf, need);
}

static uint64_t fnv(const char *s, uint64_t h) {
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

#define FNV_START 1469598103934665603ULL


/* The environment, once per distinct environment: the recorder diffs them per process. */
static void write_env_file(int fd, char **envp);

static void write_env(const char *tag, char **envp) {
    const char *dir = getenv("BUILDTAPE_SAVEDIR");
    if (!dir || !envp)
        return;
    size_t size = strlen(dir) + strlen(tag) + 8;
    if (size > PATH_MAX)
        return;
    char path[size];
    snprintf(path, size, "%s/env/%s", dir, tag);
    int fd = raw_open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
        write_env_file(fd, envp);
}

/* Its own frame: the buffer is stack only the first process of an environment touches. */
__attribute__((noinline)) static void write_env_file(int fd, char **envp) {
    char buf[16384];
    size_t n = 0;
    for (char **e = envp; *e; e++) {
        size_t len = strlen(*e) + 1;
        if (n + len > sizeof buf) {
            ssize_t w = write(fd, buf, n);
            (void)w;
            n = 0;
        }
        if (len > sizeof buf) {
            ssize_t w = write(fd, *e, len);
            (void)w;
            continue;
        }
        memcpy(buf + n, *e, len);
        n += len;
    }
    if (n) {
        ssize_t w = write(fd, buf, n);
        (void)w;
    }
    close(fd);
}

/* ---- shared objects the dynamic loader mapped ---------------------------------- */
/* ld.so maps the libraries a program needs with its own system calls, not through libc's
 * open: a test program that loads the build's libfoo.so (rpath $ORIGIN, LD_LIBRARY_PATH)
 * showed no read of it. So the loader's own list is read: when the image starts, and for
 * what dlopen added since, before a dlclose and at exit. (Wrapping dlopen would change
 * its result: the loader searches the RUNPATH of the object that called it, found by the
 * return address, which would be ours.) Objects under $BUILDTAPE_WORKSPACE are logged as
 * reads; for any other it is one prefix compare, no system call, no copy. */

static int under(const char *path, const char *root);

/* The loader's count of objects it ever added, when we last looked. */
static unsigned long long objects_added;

struct objects {
    const char *workspace;
    unsigned long long added;
};

/* Whether ``info`` is this shim (a cache in the workspace is no input of the build). */
static int is_shim(const struct dl_phdr_info *info) {
    uintptr_t self = (uintptr_t)&is_shim;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = (uintptr_t)info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && self >= lo && self - lo < ph->p_memsz)
            return 1;
    }
    return 0;
}

/* A workspace object: a read of its name, and of each link on the way to its file (libz.so.1
 * -> libz.so.1.2.13: a step replayed alone needs the bytes, not only the name). A name
 * relative to the cwd (a relative LD_LIBRARY_PATH entry: "./libfoo.so") is made absolute.
 * In a frame of its own: only a process that maps a workspace object pays for the buffers. */
__attribute__((noinline)) static void workspace_object(const char *name, const char *workspace) {
    char path[PATH_MAX], target[PATH_MAX];
    if (absolute(AT_FDCWD, name, path, sizeof path) != 0 || !under(path, workspace))
        return;
    for (int hop = 0; hop < 8; hop++) {
        emit('r', AT_FDCWD, path, 0, NULL);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n <= 0)
            return; /* the file itself */
        target[n] = '\0';
        size_t dir = target[0] == '/' ? 0 : (size_t)(strrchr(path, '/') - path) + 1;
        if (dir + (size_t)n >= sizeof path)
            return;
        memcpy(path + dir, target, (size_t)n + 1);
        if (!under(path, workspace))
            return;
    }
}

static int loaded_object(struct dl_phdr_info *info, size_t size, void *data) {
    struct objects *o = data;
    if (size < offsetof(struct dl_phdr_info, dlpi_subs))
        return 1; /* a loader without the count: nothing to compare against */
    if (info->dlpi_adds == objects_added)
        return 1; /* nothing was added since the last look (the count is the same in every call) */
    o->added = info->dlpi_adds;
    const char *name = info->dlpi_name;
    if (!name || name[0] == '\0')
        return 0; /* the program itself, whose exec is already known */
    if (name[0] == '/' ? under(name, o->workspace) && !is_shim(info) : strchr(name, '/') != NULL)
        workspace_object(name, o->workspace); /* not the vDSO, which has a bare name */
    return 0;
}

/* Log the workspace objects the loader added since the last look. */
static void loaded_objects(void) {
    if (inert)
        return;
    const char *workspace = getenv("BUILDTAPE_WORKSPACE");
    if (!workspace || !*workspace)
        return;
    int saved = errno;
    struct objects o = {workspace, 0};
    dl_iterate_phdr(loaded_object, &o);
    if (o.added)
        objects_added = o.added;
    errno = saved;
}

int dlclose(void *handle) {
    REAL(dlclose);
    loaded_objects(); /* what it unloads may have been opened since the last look */
    return real_dlclose(handle);
}

static int record_start(char **argv, char **envp, size_t room);

/* glibc passes argc, argv and envp to the constructors of every loaded object. */
__attribute__((constructor)) static void bt_started(int argc, char **argv, char **envp) {
    (void)argc;
    if (getenv("BUILDTAPE_IN_STRACE"))
        inert = 1;
    if (inert || !getenv("BUILDTAPE_FILELOG"))
        return;
    int saved = errno;
    if (!record_start(argv, envp, SMALL_PATH))
        record_start(argv, envp, PATH_MAX);
    loaded_objects();
    errno = saved;
}

/* The E record with the executable's path and the cwd in ``room`` bytes each: 0 when they
 * needed more (see SMALL_PATH). */
static int record_start(char **argv, char **envp, size_t room) {
    char exe[room], cwd[room], tag[20], head[96];
    ssize_t n = readlink("/proc/self/exe", exe, room - 1);
    if (n >= (ssize_t)room - 1 && room < PATH_MAX)
        return 0;
    exe[n > 0 ? n : 0] = '\0';
    if (!getcwd(cwd, room)) {
        if (errno == ERANGE && room < PATH_MAX)
            return 0;
        cwd[0] = '\0';
    }
    uint64_t h = FNV_START;
    for (char **e = envp; e && *e; e++)
        h = fnv("\n", fnv(*e, h));
    snprintf(tag, sizeof tag, "%016llx", (unsigned long long)h);
    write_env(tag, envp);
    snprintf(head, sizeof head, "E\t%d\t%d\t%lld", (int)getpid(), (int)getppid(), now_ns());
    const char *strs[] = {exe, cwd, tag};
    emit_proc(head, strs, 3, argv);
    return 1;
}

__attribute__((destructor)) static void bt_exiting(void) {
    if (!getenv("BUILDTAPE_FILELOG"))
        return;
    loaded_objects(); /* what dlopen added since the image started */
    char head[64];
    snprintf(head, sizeof head, "Q\t%d\t%lld", (int)getpid(), now_ns());
    emit_proc(head, NULL, 0, NULL);
}

pid_t fork(void) {
    REAL(fork);
    /* Taken before the fork: a parent that exits at once leaves getppid() to the reaper. */
    pid_t parent = getpid();
    pid_t pid = real_fork();
    if (pid == 0) {
        nwritten = 0;
        char head[96];
        snprintf(head, sizeof head, "F\t%d\t%d\t%lld", (int)getpid(), (int)parent, now_ns());
        emit_proc(head, NULL, 0, NULL);
    }
    return pid;
}

static void collected(pid_t child, int status) {
    if (child <= 0 || !(WIFEXITED(status) || WIFSIGNALED(status)))
        return;
    char head[96];
    snprintf(head, sizeof head, "W\t%d\t%d\t%d\t%lld", (int)getpid(), (int)child, status, now_ns());
    emit_proc(head, NULL, 0, NULL);
}

pid_t wait(int *wstatus) {
    REAL(wait);
    int st = 0;
    pid_t r = real_wait(&st);
    if (r > 0) {
        collected(r, st);
        if (wstatus)
            *wstatus = st;
    }
    return r;
}

pid_t waitpid(pid_t pid, int *wstatus, int options) {
    REAL(waitpid);
    int st = 0;
    pid_t r = real_waitpid(pid, &st, options);
    if (r > 0) {
        collected(r, st);
        if (wstatus)
            *wstatus = st;
    }
    return r;
}

pid_t wait3(int *wstatus, int options, struct rusage *usage) {
    REAL(wait3);
    int st = 0;
    pid_t r = real_wait3(&st, options, usage);
    if (r > 0) {
        collected(r, st);
        if (wstatus)
            *wstatus = st;
    }
    return r;
}

pid_t wait4(pid_t pid, int *wstatus, int options, struct rusage *usage) {
    REAL(wait4);
    int st = 0;
    pid_t r = real_wait4(pid, &st, options, usage);
    if (r > 0) {
        collected(r, st);
        if (wstatus)
            *wstatus = st;
    }
    return r;
}

int waitid(idtype_t idtype, id_t id, siginfo_t *info, int options) {
    REAL(waitid);
    int rc = real_waitid(idtype, id, info, options);
    if (rc == 0 && info && info->si_pid > 0 && !(options & WNOWAIT)) {
        if (info->si_code == CLD_EXITED)
            collected(info->si_pid, (info->si_status & 0xff) << 8);
        else if (info->si_code == CLD_KILLED || info->si_code == CLD_DUMPED)
            collected(info->si_pid, (info->si_status & 0x7f) | (info->si_code == CLD_DUMPED ? 0x80 : 0));
    }
    return rc;
}

static void exec_attempt(const char *file, char *const argv[]) {
    char head[96];
    snprintf(head, sizeof head, "X\t%d\t%lld", (int)getpid(), now_ns());
    const char *strs[] = {file};
    emit_proc(head, strs, 1, argv);
}

static void exec_failed(void) {
    char head[32];
    snprintf(head, sizeof head, "Y\t%d", (int)getpid());
    emit_proc(head, NULL, 0, NULL);
}

/* ---- static and Go programs: run them under strace ----------------------------- */

extern char **environ;

/* Whether a Go build-id note ("Go", type 4) lies in [off, off + size) of the file. */
static int go_note(int fd, const unsigned char *head, size_t nhead, size_t off, size_t size) {
    unsigned char local[512];
    const unsigned char *p;
    if (size > sizeof local)
        size = sizeof local;
    if (off + size <= nhead) {
        p = head + off;
    } else {
        ssize_t r = pread(fd, local, size, (off_t)off);
        if (r <= 0)
            return 0;
        size = (size_t)r;
        p = local;
    }
    size_t i = 0;
    while (i + 12 <= size) {
        uint32_t namesz, descsz, type;
        memcpy(&namesz, p + i, 4);
        memcpy(&descsz, p + i + 4, 4);
        memcpy(&type, p + i + 8, 4);
        size_t name_at = i + 12;
        if (namesz == 4 && type == 4 && name_at + 4 <= size && memcmp(p + name_at, "Go\0", 4) == 0)
            return 1;
        size_t step = 12 + ((namesz + 3u) & ~3u) + ((descsz + 3u) & ~3u);
        if (step <= 12 && namesz + descsz > 0)
            break;
        i += step;
    }
    return 0;
}

/* 1 for an ELF executable libc cannot see into: no PT_INTERP, or a Go program. */
static int unseen_program(const char *path) {
    int fd = raw_open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    unsigned char buf[4096];
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    int interp = 0, go = 0, complete = 1;
    const ElfW(Ehdr) *eh = (const void *)buf;
    if (n < (ssize_t)sizeof(ElfW(Ehdr)) || memcmp(buf, ELFMAG, SELFMAG) != 0 ||
        buf[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32) ||
        (eh->e_type != ET_EXEC && eh->e_type != ET_DYN) || eh->e_phentsize < sizeof(ElfW(Phdr))) {
        close(fd);
        return 0;
    }
    for (int i = 0; i < eh->e_phnum; i++) {
        size_t off = (size_t)eh->e_phoff + (size_t)i * eh->e_phentsize;
        if (off + sizeof(ElfW(Phdr)) > (size_t)n) {
            complete = 0; /* a table we did not read: say nothing rather than guess */
            break;
        }
        ElfW(Phdr) ph;
        memcpy(&ph, buf + off, sizeof ph);
        if (ph.p_type == PT_INTERP)
            interp = 1;
        else if (ph.p_type == PT_NOTE && !go)
            go = go_note(fd, buf, (size_t)n, (size_t)ph.p_offset, (size_t)ph.p_filesz);
    }
    close(fd);
    return complete && (!interp || go);
}

/* The file execvp would run: ``file`` itself when it holds a slash, else the PATH search. */
static int search_path(const char *file, char *out, size_t size) {
    if (strchr(file, '/')) {
        if (strlen(file) >= size)
            return -1;
        strcpy(out, file);
        return 0;
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/bin:/usr/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t len = end ? (size_t)(end - path) : strlen(path);
        if ((size_t)snprintf(out, size, "%.*s/%s", (int)len, len ? path : ".", file) < size &&
            access(out, X_OK) == 0)
            return 0;
        path += len + (end ? 1 : 0);
        if (!end)
            break;
    }
    return -1;
}

/* The recorder proves strace works here while the build starts, and says so with a file:
 * ``ok`` when it does, ``ok`` + ".no" when it does not. A program that needs strace
 * before the answer is in waits for it (a few tens of milliseconds, once). */
static int strace_works(const char *ok) {
    char no[PATH_MAX];
    if ((size_t)snprintf(no, sizeof no, "%s.no", ok) >= sizeof no)
        return 0;
    struct timespec tick = {0, 5 * 1000 * 1000};
    for (int i = 0; i < 1000; i++) {
        if (access(ok, F_OK) == 0)
            return 1;
        if (access(no, F_OK) == 0)
            return 0;
        nanosleep(&tick, NULL);
    }
    return 0;
}

/* Where a wrapped exec of ``file`` should go: strace's path, or NULL to exec as asked. */
static const char *strace_for(const char *file, int search) {
    if (inert || getenv("BUILDTAPE_STRACED"))
        return NULL; /* strace itself, or already under a strace -f */
    const char *strace = getenv("BUILDTAPE_STRACE"), *ok = getenv("BUILDTAPE_STRACE_OK");
    if (!strace || !ok || !getenv("BUILDTAPE_SAVEDIR"))
        return NULL;
    char resolved[PATH_MAX];
    if (search ? search_path(file, resolved, sizeof resolved) != 0
               : strlen(file) >= sizeof resolved)
        return NULL;
    if (!search)
        strcpy(resolved, file);
    return unseen_program(resolved) && strace_works(ok) ? strace : NULL;
}

#define STRACE_ARGS 17

/* strace's argv for running ``file`` with ``argv``: out needs argc + STRACE_ARGS slots. */
static void strace_argv(const char *strace, const char *file, char *const argv[], char *log,
                        size_t logsize, char **out) {
    static unsigned counter;
    snprintf(log, logsize, "%s/strace-%d-%u.log", getenv("BUILDTAPE_SAVEDIR"), (int)getpid(),
             counter++);
    const char *set = getenv("BUILDTAPE_STRACE_SET");
    const char *head[] = {strace, "-DD", "-I", "2", "-f", "--seccomp-bpf", "-q", "-ttt",
                          "-s", "65535", "-e", set ? set : "trace=all", "-o", log,
                          "-E", "BUILDTAPE_IN_STRACE", "--"};
    int n = 0;
    for (; n < (int)(sizeof head / sizeof *head); n++)
        out[n] = (char *)head[n];
    out[n++] = (char *)file;
    for (int i = 1; argv[0] && argv[i]; i++)
        out[n++] = argv[i];
    out[n] = NULL;
}

/* ``envp`` plus the two markers: out needs count(envp) + 3 slots. */
static void strace_envp(char *const envp[], char **out) {
    int n = 0;
    for (; envp && envp[n]; n++)
        out[n] = envp[n];
    out[n++] = "BUILDTAPE_IN_STRACE=1";
    out[n++] = "BUILDTAPE_STRACED=1";
    out[n] = NULL;
}

static int count(char *const v[]) {
    int n = 0;
    while (v && v[n])
        n++;
    return n;
}

/* exec ``file`` (searched on PATH when ``search``) under strace when it needs it. */
static int exec_maybe_traced(const char *file, char *const argv[], char *const envp[], int search) {
    REAL(execve);
    const char *strace = strace_for(file, search);
    if (!strace)
        return -2;
    char resolved[PATH_MAX], log[PATH_MAX];
    if (search_path(file, resolved, sizeof resolved) != 0)
        return -2;
    char *args[count(argv) + STRACE_ARGS + 2];
    char *env[count(envp) + 3];
    strace_argv(strace, resolved, argv, log, sizeof log, args);
    strace_envp(envp, env);
    real_execve(strace, args, env);
    return -2; /* strace did not start: run the program as asked */
}

int execve(const char *path, char *const argv[], char *const envp[]) {
    REAL(execve);
    if (inert)
        return real_execve(path, argv, envp);
    exec_attempt(path, argv);
    int rc = exec_maybe_traced(path, argv, envp, 0);
    if (rc == -2)
        rc = real_execve(path, argv, envp);
    exec_failed();
    return rc;
}

int execv(const char *path, char *const argv[]) {
    REAL(execv);
    if (inert)
        return real_execv(path, argv);
    exec_attempt(path, argv);
    int rc = exec_maybe_traced(path, argv, environ, 0);
    if (rc == -2)
        rc = real_execv(path, argv);
    exec_failed();
    return rc;
}

int execvp(const char *file, char *const argv[]) {
    REAL(execvp);
    if (inert)
        return real_execvp(file, argv);
    exec_attempt(file, argv);
    int rc = exec_maybe_traced(file, argv, environ, 1);
    if (rc == -2)
        rc = real_execvp(file, argv);
    exec_failed();
    return rc;
}

int execvpe(const char *file, char *const argv[], char *const envp[]) {
    REAL(execvpe);
    if (inert)
        return real_execvpe(file, argv, envp);
    exec_attempt(file, argv);
    int rc = exec_maybe_traced(file, argv, envp, 1);
    if (rc == -2)
        rc = real_execvpe(file, argv, envp);
    exec_failed();
    return rc;
}

/* The execl family: collect the variadic arguments, then take the execv path. */
#define COLLECT_ARGS(first, extra)                                                     \
    va_list ap;                                                                        \
    int n = 1;                                                                         \
    va_start(ap, first);                                                               \
    while (va_arg(ap, char *))                                                         \
        n++;                                                                           \
    va_end(ap);                                                                        \
    char *args[n + 1];                                                                 \
    args[0] = (char *)first;                                                           \
    va_start(ap, first);                                                               \
    for (int i = 1; i <= n; i++)                                                       \
        args[i] = va_arg(ap, char *);                                                  \
    extra;                                                                             \
    va_end(ap)

int execl(const char *path, const char *arg, ...) {
    COLLECT_ARGS(arg, (void)0);
    return execv(path, args);
}

int execlp(const char *file, const char *arg, ...) {
    COLLECT_ARGS(arg, (void)0);
    return execvp(file, args);
}

int execle(const char *path, const char *arg, ...) {
    char **envp;
    COLLECT_ARGS(arg, envp = va_arg(ap, char **));
    return execve(path, args, envp);
}

static void spawned(pid_t child, const char *file, char *const argv[]) {
    char head[96];
    snprintf(head, sizeof head, "S\t%d\t%d\t%lld", (int)getpid(), (int)child, now_ns());
    const char *strs[] = {file};
    emit_proc(head, strs, 1, argv);
}

static int spawn(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions,
                 const posix_spawnattr_t *attr, char *const argv[], char *const envp[], int search) {
    REAL(posix_spawn);
    REAL(posix_spawnp);
    pid_t child = 0;
    int rc;
    const char *strace = inert ? NULL : strace_for(file, search);
    char resolved[PATH_MAX], log[PATH_MAX];
    if (strace && search_path(file, resolved, sizeof resolved) == 0) {
        char *args[count(argv) + STRACE_ARGS + 2];
        char *env[count(envp) + 3];
        strace_argv(strace, resolved, argv, log, sizeof log, args);
        strace_envp(envp, env);
        rc = real_posix_spawn(&child, strace, actions, attr, args, env);
    } else if (search) {
        rc = real_posix_spawnp(&child, file, actions, attr, argv, envp);
    } else {
        rc = real_posix_spawn(&child, file, actions, attr, argv, envp);
    }
    if (rc == 0) {
        if (!inert)
            spawned(child, file, argv);
        if (pid)
            *pid = child;
    }
    return rc;
}

int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
                const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
    return spawn(pid, path, actions, attr, argv, envp, 0);
}

int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions,
                 const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
    return spawn(pid, file, actions, attr, argv, envp, 1);
}

/* ---- pre-build content and intermediates ---------------------------------------- */

static int under(const char *path, const char *root) {
    size_t n = strlen(root);
    return strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static long long mtime_ns(const struct stat *st) {
    return (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

/* Keep ``src``'s bytes under ``dst``: a hard link when the caller will replace or remove
 * the name (the old inode survives), else a copy. Returns 0 when kept. The calls that this
 * shim wraps are made as system calls: a kept copy is no event of the build. */
static int keep(const char *src, const char *dst, int copy, const struct stat *st) {
    if (!copy) {
        if (syscall(SYS_linkat, AT_FDCWD, src, AT_FDCWD, dst, 0) == 0)
            return 0;
        if (errno == EEXIST)
            return -1;
    }
    int in = raw_open(src, O_RDONLY | O_CLOEXEC, 0);
    if (in < 0)
        return -1;
    int out = raw_open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        close(in);
        return -1;
    }
    int ok = 1;
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
        if (n > 0)
            continue;
        if (n == 0)
            break;
        /* No copy_file_range between these files: plain reads and writes. */
        char buf[65536];
        ssize_t r;
        while ((r = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)r) != r) {
                ok = 0;
                break;
            }
        if (r < 0)
            ok = 0;
        break;
    }
    struct timespec times[2] = {st->st_atim, st->st_mtim};
    syscall(SYS_fchmod, out, st->st_mode & 0777); /* as the original, which a replay compares */
    syscall(SYS_utimensat, out, NULL, times, 0);
    close(in);
    close(out);
    if (!ok) {
        syscall(SYS_unlinkat, AT_FDCWD, dst, 0);
        return -1;
    }
    return 0;
}

struct saving {
    const char *workspace, *dir;
    long long t0;
};

static int saving(struct saving *sv) {
    if (inert)
        return 0;
    const char *t0 = getenv("BUILDTAPE_T0");
    sv->workspace = getenv("BUILDTAPE_WORKSPACE");
    sv->dir = getenv("BUILDTAPE_SAVEDIR");
    if (!t0 || !sv->workspace || !sv->dir)
        return 0;
    sv->t0 = atoll(t0);
    return 1;
}

static void wrote(const char *abs) {
    written[nwritten++ % 64] = fnv(abs, FNV_START);
}

static int wrote_it(const char *abs) {
    uint64_t h = fnv(abs, FNV_START);
    for (unsigned i = 0; i < 64 && i < nwritten; i++)
        if (written[i] == h)
            return 1;
    return 0;
}

static int save_in(int dirfd, const char *path, int how, size_t room);

static void emit_save(int dirfd, const char *path, int how) {
    int saved = errno;
    if (!save_in(dirfd, path, how, SMALL_PATH))
        save_in(dirfd, path, how, PATH_MAX);
    errno = saved;
}

/* emit_save with paths of at most ``room`` bytes (see SMALL_PATH): 0 when they needed more. */
static int save_in(int dirfd, const char *path, int how, size_t room) {
    struct saving sv;
    char a[room], name[64], target[room], head[48];
    struct stat st;
    if (!saving(&sv))
        return 1;
    int r = absolute(dirfd, path, a, room);
    if (r != 0)
        return r != 1;
    if (!clean(a) || !under(a, sv.workspace) || lstat(a, &st) != 0 || !S_ISREG(st.st_mode))
        return 1; /* not a workspace file */
    /* The slots' names: the save directory, a slash, and at most 64 bytes. */
    if (strlen(sv.dir) + 66 > room)
        return room >= PATH_MAX;
    if (mtime_ns(&st) < sv.t0) {
        /* As it was before the build: kept once, under a name for its path. */
        snprintf(name, sizeof name, "p%016llx", (unsigned long long)fnv(a, FNV_START));
        snprintf(target, sizeof target, "%s/%s", sv.dir, name);
        if (keep(a, target, how & SAVE_COPY, &st) == 0) {
            snprintf(head, sizeof head, "P\t%d", (int)getpid());
            const char *strs[] = {name, a};
            emit_proc(head, strs, 2, NULL);
        }
    } else if ((how & SAVE_APPENDING) && !wrote_it(a)) {
        /* An append keeps what an earlier step wrote as a prefix: its length is enough. */
        snprintf(head, sizeof head, "G\t%d\t%lld", (int)getpid(), (long long)st.st_size);
        const char *strs[] = {a};
        emit_proc(head, strs, 1, NULL);
    } else if ((how & SAVE_REPLACING) && st.st_size <= (64 << 20) && !wrote_it(a)) {
        /* As an earlier step of this build left it (ar's archive before ranlib rewrites
         * it): a hard link when the name is replaced, else a copy, in one of a few slots
         * named for the path. A file every configure test rewrites (conftest.c) fills its
         * slots once; after that it costs one access(2), not a copy. */
        unsigned long long h = (unsigned long long)fnv(a, FNV_START);
        snprintf(target, sizeof target, "%s/v%016llx-%d", sv.dir, h, VERSION_SLOTS - 1);
        if (access(target, F_OK) == 0)
            return 1;
        for (int k = 0; k < VERSION_SLOTS; k++) {
            snprintf(name, sizeof name, "v%016llx-%d", h, k);
            snprintf(target, sizeof target, "%s/%s", sv.dir, name);
            if (keep(a, target, how & SAVE_COPY, &st) == 0) {
                snprintf(head, sizeof head, "V\t%d", (int)getpid());
                const char *strs[] = {name, a};
                emit_proc(head, strs, 2, NULL);
                break;
            }
            if (errno != EEXIST)
                break;
        }
    }
    return 1;
}

static int intermediate_in(int dirfd, const char *path, size_t room);

static void emit_intermediate(int dirfd, const char *path) {
    int saved = errno;
    if (!intermediate_in(dirfd, path, SMALL_PATH))
        intermediate_in(dirfd, path, PATH_MAX);
    errno = saved;
}

/* emit_intermediate with paths of at most ``room`` bytes: 0 when they needed more. */
static int intermediate_in(int dirfd, const char *path, size_t room) {
    static unsigned counter;
    struct saving sv;
    char a[room], name[64], target[room], head[48];
    struct stat st;
    if (!saving(&sv))
        return 1;
    int r = absolute(dirfd, path, a, room);
    if (r != 0)
        return r != 1;
    if (!clean(a) || skipped(a) || under(a, sv.workspace) || under(a, sv.dir) ||
        lstat(a, &st) != 0 || !S_ISREG(st.st_mode) || mtime_ns(&st) < sv.t0 ||
        st.st_size > (64 << 20))
        return 1; /* not a file this build wrote outside the workspace */
    if (strlen(sv.dir) + 66 > room)
        return room >= PATH_MAX;
    snprintf(name, sizeof name, "i%016llx-%d-%u", (unsigned long long)fnv(a, FNV_START),
             (int)getpid(), counter++);
    snprintf(target, sizeof target, "%s/%s", sv.dir, name);
    if (keep(a, target, 0, &st) == 0) {
        snprintf(head, sizeof head, "I\t%d", (int)getpid());
        const char *strs[] = {name, a};
        emit_proc(head, strs, 2, NULL);
    }
    return 1;
}
