/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging sink (see log.h). Lines are written with one write(2) each so that
 * lines from several processes sharing a log file do not interleave. A
 * rotated file is replaced behind the same descriptor number (dup2), so a
 * thread writing meanwhile never writes to a descriptor closed under it.
 * The syslog destination is our own datagram socket, never openlog(3):
 * the host's own syslog settings (ident, facility) stay its own.
 */
#include "engine/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

volatile int stp_log_threshold = STP_LOG_LEVEL_WARN;

static atomic_int log_fd = STDERR_FILENO;
static int env_level = -1; /* level forced by OCSPSTAPLE_DEBUG, or -1 */
static int env_file;       /* OCSPSTAPLE_DEBUG named a file */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static char log_path[4096]; /* the file behind log_fd ("" for stderr) */
static pthread_mutex_t reopen_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int syslog_fd = -1; /* connected to syslog_path, or -1 */
static atomic_int syslog_on;      /* syslog_path is set */
static char syslog_path[108];     /* under reopen_lock */
static long long syslog_retry;    /* monotonic s of the next reconnection */

#define LEVEL_ROW(name, level) { name, level },
static const struct {
    const char *name;
    int level;
} level_names[] = { STP_LOG_LEVEL_NAMES(LEVEL_ROW) };
#undef LEVEL_ROW

#define NLEVEL_NAMES (sizeof(level_names) / sizeof(level_names[0]))

const char *stp_log_level_name(int level)
{
    size_t i;

    for (i = 0; i < NLEVEL_NAMES; i++) {
        if (level_names[i].level == level)
            return level_names[i].name;
    }
    return "?";
}

int stp_log_level_parse(const char *name)
{
    size_t i;

    if (name == NULL)
        return -1;
    for (i = 0; i < NLEVEL_NAMES; i++) {
        if (strcasecmp(name, level_names[i].name) == 0)
            return level_names[i].level;
    }
    return -1;
}

/* Never through a symlink (a planted link would make a privileged server
 * append to a file of the attacker's choice). */
static int open_log_file(const char *path)
{
    return open(
        path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW,
        0640);
}

/* OCSPSTAPLE_DEBUG=level:debug,file:/path (either part optional). */
static void parse_env(void)
{
    /* secure_getenv: nothing in a setuid or setgid program, where the
     * environment belongs to the user who started it */
    const char *v = secure_getenv("OCSPSTAPLE_DEBUG");
    char buf[1024], *tok, *save = NULL;

    if (v == NULL || *v == '\0' || strlen(v) >= sizeof(buf))
        return;
    strcpy(buf, v);
    for (tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (strncmp(tok, "level:", 6) == 0) {
            int lvl = stp_log_level_parse(tok + 6);

            if (lvl >= 0)
                env_level = lvl;
        } else if (strncmp(tok, "file:", 5) == 0) {
            int fd = open_log_file(tok + 5);

            if (fd >= 0) {
                atomic_store(&log_fd, fd);
                env_file = 1;
                snprintf(log_path, sizeof(log_path), "%s", tok + 5);
            }
        } else {
            int lvl = stp_log_level_parse(tok);

            if (lvl >= 0)
                env_level = lvl;
        }
    }
    if (env_level >= 0)
        stp_log_threshold = env_level;
}

void stp_log_init(void)
{
    pthread_once(&init_once, parse_env);
}

int stp_log_configure(int level, const char *file)
{
    int ok = 1;

    stp_log_init();
    if (env_level < 0 && level >= 0)
        stp_log_threshold = level;
    if (file != NULL && !env_file) {
        int fd = open_log_file(file);

        if (fd < 0) {
            ok = 0;
            STP_LOG_ERR("log", "cannot open log_file '%s': %s", file,
                        strerror(errno));
        } else {
            pthread_mutex_lock(&reopen_lock);
            if (atomic_load(&log_fd) == STDERR_FILENO) {
                atomic_store(&log_fd, fd);
            } else {
                dup2(fd, atomic_load(&log_fd)); /* the same number */
                close(fd);
            }
            snprintf(log_path, sizeof(log_path), "%s", file);
            pthread_mutex_unlock(&reopen_lock);
        }
    }
    return ok;
}

void stp_log_reopen(void)
{
    struct stat a, b;
    int fd;

    pthread_mutex_lock(&reopen_lock);
    if (log_path[0] != '\0' && atomic_load(&log_fd) != STDERR_FILENO
        && fstat(atomic_load(&log_fd), &a) == 0
        && (stat(log_path, &b) != 0 || a.st_dev != b.st_dev
            || a.st_ino != b.st_ino)) {
        /* rotated (moved away, or removed): the path's file from now on;
         * a path that cannot be opened (a chroot) keeps the old file */
        fd = open_log_file(log_path);
        if (fd >= 0) {
            dup2(fd, atomic_load(&log_fd));
            close(fd);
        }
    }
    pthread_mutex_unlock(&reopen_lock);
}

/* Under reopen_lock: connects the syslog socket (at most every 10 s). */
static void syslog_connect_locked(void)
{
    struct sockaddr_un sa;
    struct timespec ts;
    int fd;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (syslog_path[0] == '\0' || (long long)ts.tv_sec < syslog_retry)
        return;
    syslog_retry = (long long)ts.tv_sec + 10;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, syslog_path, strlen(syslog_path) + 1);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return;
    }
    if (atomic_load(&syslog_fd) >= 0) {
        dup2(fd, atomic_load(&syslog_fd));
        close(fd);
    } else {
        atomic_store(&syslog_fd, fd);
    }
}

int stp_log_configure_syslog(const char *path)
{
    int ok;

    stp_log_init();
    pthread_mutex_lock(&reopen_lock);
    if (path == NULL || strlen(path) >= sizeof(syslog_path)) {
        syslog_path[0] = '\0';
        atomic_store(&syslog_on, 0);
        ok = path == NULL;
    } else {
        /* connected by stp_log_syslog_connect() (a serving process) or at
         * the first line: a program that only reads openssl.cnf and never
         * logs opens no socket */
        snprintf(syslog_path, sizeof(syslog_path), "%s", path);
        syslog_retry = 0;
        atomic_store(&syslog_on, 1);
        ok = 1;
    }
    pthread_mutex_unlock(&reopen_lock);
    if (!ok)
        STP_LOG_ERR("log", "log_syslog '%s': path too long", path);
    return ok;
}

void stp_log_syslog_connect(void)
{
    int connected, e;
    char path[sizeof(syslog_path)];

    if (!atomic_load(&syslog_on) || atomic_load(&syslog_fd) >= 0)
        return;
    pthread_mutex_lock(&reopen_lock);
    syslog_retry = 0;
    syslog_connect_locked();
    e = errno;
    connected = atomic_load(&syslog_fd) >= 0;
    memcpy(path, syslog_path, sizeof(path));
    pthread_mutex_unlock(&reopen_lock);
    if (!connected)
        STP_LOG_ERR("log", "log_syslog '%s': cannot connect to it: %s", path,
                    strerror(e));
}

/* One line to syslog (facility daemon), never waiting: a full syslog
 * queue drops it. <msg> is the line without our timestamp. */
static void to_syslog(int level, const char *msg, size_t len)
{
    static const int sev[] = { 7, 3, 4, 6, 7 }; /* off, error..debug */
    char buf[2200];
    int n, fd;

    if (!atomic_load(&syslog_on))
        return;
    n = snprintf(buf, sizeof(buf), "<%d>ocspstaple[%ld]: %.*s",
                 3 * 8 + sev[level >= 0 && level <= 4 ? level : 4],
                 (long)getpid(), (int)len, msg);
    if (n <= 0)
        return;
    if ((size_t)n >= sizeof(buf))
        n = (int)sizeof(buf) - 1;
    fd = atomic_load(&syslog_fd);
    if (fd < 0
        || (send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0
            && (errno == ECONNREFUSED || errno == ENOTCONN
                || errno == EBADF))) {
        /* syslog restarted (or was not there): connect again, rarely,
         * and this line goes on the new connection */
        pthread_mutex_lock(&reopen_lock);
        syslog_connect_locked();
        pthread_mutex_unlock(&reopen_lock);
        if ((fd = atomic_load(&syslog_fd)) >= 0)
            (void)send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
}

void stp_log(int level, const char *comp, const char *file, int line,
             const char *func, const char *fmt, ...)
{
    char buf[2048];
    struct timeval tv;
    struct tm tm;
    size_t len, head;
    int n;
    va_list ap;

    (void)file;
    (void)line;
    (void)func;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = snprintf(buf, sizeof(buf),
                 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ocspstaple[%ld:%ld] ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000),
                 (long)getpid(), (long)syscall(SYS_gettid));
    if (n < 0 || (size_t)n >= sizeof(buf) / 2)
        return;
    head = (size_t)n; /* syslog has its own timestamp and tag */
    n = snprintf(buf + head, sizeof(buf) - head, "%s %s: ",
                 level == STP_LOG_LEVEL_ERROR  ? "ERROR"
                 : level == STP_LOG_LEVEL_WARN ? "WARN"
                 : level == STP_LOG_LEVEL_INFO ? "INFO"
                                               : "DEBUG",
                 comp);
    if (n < 0)
        return;
    len = head + (size_t)n;
    if (len >= sizeof(buf))
        len = sizeof(buf) - 1;
    va_start(ap, fmt);
    n = vsnprintf(buf + len, sizeof(buf) - len, fmt, ap);
    va_end(ap);
    if (n > 0)
        len +=
            (size_t)n < sizeof(buf) - len ? (size_t)n : sizeof(buf) - len - 1;
    if (len >= sizeof(buf) - 1)
        len = sizeof(buf) - 2;
    buf[len++] = '\n';
    while (write(atomic_load(&log_fd), buf, len) < 0 && errno == EINTR)
        ;
    to_syslog(level, buf + head, len - 1 - head);
}
