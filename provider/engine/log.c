/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging sink (see log.h). Lines are written with one write(2) each so that
 * lines from several processes sharing a log file do not interleave.
 */
#include "engine/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

volatile int stp_log_threshold = STP_LOG_LEVEL_WARN;

static int log_fd = STDERR_FILENO;
static int env_level = -1; /* level forced by OCSPSTAPLE_DEBUG, or -1 */
static int env_file;       /* OCSPSTAPLE_DEBUG named a file */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

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
                log_fd = fd;
                env_file = 1;
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
            int old = log_fd;

            log_fd = fd;
            if (old != STDERR_FILENO)
                close(old);
        }
    }
    return ok;
}

void stp_log(int level, const char *comp, const char *file, int line,
             const char *func, const char *fmt, ...)
{
    char buf[2048];
    struct timeval tv;
    struct tm tm;
    size_t len;
    int n;
    va_list ap;

    (void)file;
    (void)line;
    (void)func;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = snprintf(buf, sizeof(buf),
                 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ocspstaple[%ld:%ld] "
                 "%s %s: ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000),
                 (long)getpid(), (long)syscall(SYS_gettid),
                 level == STP_LOG_LEVEL_ERROR  ? "ERROR"
                 : level == STP_LOG_LEVEL_WARN ? "WARN"
                 : level == STP_LOG_LEVEL_INFO ? "INFO"
                                               : "DEBUG",
                 comp);
    if (n < 0)
        return;
    len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
    va_start(ap, fmt);
    n = vsnprintf(buf + len, sizeof(buf) - len, fmt, ap);
    va_end(ap);
    if (n > 0)
        len +=
            (size_t)n < sizeof(buf) - len ? (size_t)n : sizeof(buf) - len - 1;
    if (len >= sizeof(buf) - 1)
        len = sizeof(buf) - 2;
    buf[len++] = '\n';
    while (write(log_fd, buf, len) < 0 && errno == EINTR)
        ;
}
