/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging (provider/engine/log.h): level names and their parsing,
 * OCSPSTAPLE_DEBUG (parsed once per process, so every case runs in a child
 * of its own), the file sink and the policy's log keys (an
 * OCSPSTAPLE_DEBUG setting wins), the exact line format and its length cap,
 * the threshold of the STP_LOG_* macros, and one write per line from
 * several threads. What it refuses: unknown names, a malformed or too long
 * OCSPSTAPLE_DEBUG token, a log file that cannot be opened.
 */
#include "engine/log.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stp_test.h"

#define TS_LEN   24   /* "2026-11-01T12:00:00.123Z" */
#define LINE_CAP 2048 /* log.c's line buffer */

static char dir[256];
static char path_a[300], path_b[300], path_err[300];

/* ---- helpers ------------------------------------------------------------- */

/* Reads FILE into BUF (NUL-terminated); returns its length, -1 if absent. */
static long slurp(const char *file, char *buf, size_t cap)
{
    FILE *f = fopen(file, "rb");
    size_t n;

    buf[0] = '\0';
    if (f == NULL)
        return -1;
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return (long)n;
}

static int count_lines(const char *s)
{
    int n = 0;

    for (; *s != '\0'; s++)
        if (*s == '\n')
            n++;
    return n;
}

/* Copies the first MAX lines of BUF into OUT, each with its newline. */
static int split_lines(const char *buf, char out[][1024], int max)
{
    const char *p = buf, *nl;
    int n = 0;

    while (n < max && (nl = strchr(p, '\n')) != NULL) {
        size_t len = (size_t)(nl - p) + 1;

        if (len >= sizeof(out[0]))
            len = sizeof(out[0]) - 1;
        memcpy(out[n], p, len);
        out[n][len] = '\0';
        n++;
        p = nl + 1;
    }
    return n;
}

static long long now_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* The part of a line after the timestamp, as this process writes it. */
static void tail_of(char *buf, size_t cap, const char *level, const char *comp,
                    const char *msg)
{
    snprintf(buf, cap, " ocspstaple[%ld:%ld] %s %s: %s\n", (long)getpid(),
             (long)syscall(SYS_gettid), level, comp, msg);
}

/*
 * LINE starts with a UTC timestamp "YYYY-MM-DDTHH:MM:SS.mmmZ" within
 * [lo, hi] (ms), followed by exactly the tail of (LEVEL, COMP, MSG).
 */
static void check_line(const char *line, const char *level, const char *comp,
                       const char *msg, long long lo, long long hi)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    char want[LINE_CAP + 128];
    struct tm tm = { 0 };
    int i, ms = -1, shaped = 1;
    long long at;

    for (i = 0; i < TS_LEN; i++) {
        if (shape[i] == 'd' ? line[i] < '0' || line[i] > '9'
                            : line[i] != shape[i])
            shaped = 0;
    }
    ASSERT_TRUE(shaped);
    if (!shaped) {
        fprintf(stderr, "  line: %s", line);
        return;
    }
    ASSERT_EQ(sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3d", &tm.tm_year,
                     &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                     &tm.tm_sec, &ms),
              7);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    at = (long long)timegm(&tm) * 1000 + ms;
    ASSERT_TRUE(at >= lo && at <= hi);
    tail_of(want, sizeof(want), level, comp, msg);
    ASSERT_STREQ(line + TS_LEN, want);
}

/* Sends fd 2 to FILE (truncated); returns the saved descriptor. */
static int stderr_to(const char *file)
{
    int saved = dup(STDERR_FILENO);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    fflush(stderr);
    dup2(fd, STDERR_FILENO);
    close(fd);
    return saved;
}

static void stderr_back(int saved)
{
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
}

static void clear_files(void)
{
    unlink(path_a);
    unlink(path_b);
    unlink(path_err);
}

/*
 * Runs FN in a child process (a fresh log state: nothing in this parent
 * ever initialises the log), adding its checks and failures to ours.
 */
static void in_child(const char *name, void (*fn)(int), int arg)
{
    int p[2], counts[2] = { 0, 0 }, status = 0;
    pid_t pid;
    ssize_t got;

    clear_files();
    if (pipe(p) != 0) {
        STP_FAIL_AT("%s: pipe", name);
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid == 0) {
        close(p[0]);
        stp_test_checks = 0;
        stp_test_failures = 0;
        fn(arg);
        counts[0] = stp_test_checks;
        counts[1] = stp_test_failures;
        if (write(p[1], counts, sizeof(counts)) != (ssize_t)sizeof(counts))
            _exit(2);
        _exit(0);
    }
    close(p[1]);
    got = read(p[0], counts, sizeof(counts));
    close(p[0]);
    waitpid(pid, &status, 0);
    stp_test_checks++;
    if (got != (ssize_t)sizeof(counts) || !WIFEXITED(status)
        || WEXITSTATUS(status) != 0) {
        STP_FAIL_AT("%s: the child died (status %d)", name, status);
        return;
    }
    stp_test_checks += counts[0];
    stp_test_failures += counts[1];
    if (counts[1] > 0)
        fprintf(stderr, "  (in case %s)\n", name);
}

/* ---- level names --------------------------------------------------------- */

static void test_names(void)
{
    static const struct {
        const char *name;
        int want;
    } rows[] = {
        { "off", STP_LOG_LEVEL_OFF },
        { "error", STP_LOG_LEVEL_ERROR },
        { "warn", STP_LOG_LEVEL_WARN },
        { "warning", STP_LOG_LEVEL_WARN },
        { "info", STP_LOG_LEVEL_INFO },
        { "debug", STP_LOG_LEVEL_DEBUG },
        { "DEBUG", STP_LOG_LEVEL_DEBUG },
        { "Warning", STP_LOG_LEVEL_WARN },
        { "OFF", STP_LOG_LEVEL_OFF },
        { "", -1 },
        { "debu", -1 },
        { "debugx", -1 },
        { " debug", -1 },
        { "debug ", -1 },
        { "warnings", -1 },
        { "err", -1 },
        { "verbose", -1 },
        { "4", -1 },
        { "0", -1 },
        { "?", -1 },
    };
    size_t i;
    int l;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (stp_log_level_parse(rows[i].name) != rows[i].want)
            fprintf(stderr, "  row \"%s\"\n", rows[i].name);
        ASSERT_EQ(stp_log_level_parse(rows[i].name), rows[i].want);
    }
    ASSERT_EQ(stp_log_level_parse(NULL), -1);

    ASSERT_STREQ(stp_log_level_name(STP_LOG_LEVEL_OFF), "off");
    ASSERT_STREQ(stp_log_level_name(STP_LOG_LEVEL_ERROR), "error");
    ASSERT_STREQ(stp_log_level_name(STP_LOG_LEVEL_WARN), "warn");
    ASSERT_STREQ(stp_log_level_name(STP_LOG_LEVEL_INFO), "info");
    ASSERT_STREQ(stp_log_level_name(STP_LOG_LEVEL_DEBUG), "debug");
    ASSERT_STREQ(stp_log_level_name(-1), "?");
    ASSERT_STREQ(stp_log_level_name(5), "?");
    for (l = STP_LOG_LEVEL_OFF; l <= STP_LOG_LEVEL_DEBUG; l++)
        ASSERT_EQ(stp_log_level_parse(stp_log_level_name(l)), l);
    /* the default threshold, before anything is parsed */
    ASSERT_EQ(stp_log_threshold, STP_LOG_LEVEL_WARN);
}

/* ---- OCSPSTAPLE_DEBUG ---------------------------------------------------- */

enum sink { TO_STDERR, TO_FILE };

/* "@" in value stands for path_a. */
static const struct env_row {
    const char *value; /* NULL: unset */
    int want;          /* threshold after stp_log_init() */
    enum sink sink;
} env_rows[] = {
    { NULL, STP_LOG_LEVEL_WARN, TO_STDERR },
    { "", STP_LOG_LEVEL_WARN, TO_STDERR },
    { "level:debug", STP_LOG_LEVEL_DEBUG, TO_STDERR },
    { "level:DEBUG", STP_LOG_LEVEL_DEBUG, TO_STDERR },
    { "level:error", STP_LOG_LEVEL_ERROR, TO_STDERR },
    { "level:off", STP_LOG_LEVEL_OFF, TO_STDERR },
    { "debug", STP_LOG_LEVEL_DEBUG, TO_STDERR }, /* a bare level */
    { "off", STP_LOG_LEVEL_OFF, TO_STDERR },
    { "level:info,level:error", STP_LOG_LEVEL_ERROR, TO_STDERR }, /* last */
    { "error,level:warning", STP_LOG_LEVEL_WARN, TO_STDERR },
    { "bogus,debug", STP_LOG_LEVEL_DEBUG, TO_STDERR }, /* unknown skipped */
    { ",,info,,", STP_LOG_LEVEL_INFO, TO_STDERR },
    /* refused: the threshold keeps its default */
    { "level:bogus", STP_LOG_LEVEL_WARN, TO_STDERR },
    { "level:", STP_LOG_LEVEL_WARN, TO_STDERR },
    { "LEVEL:debug", STP_LOG_LEVEL_WARN, TO_STDERR }, /* prefix: exact */
    { "level=debug", STP_LOG_LEVEL_WARN, TO_STDERR },
    { "level: debug", STP_LOG_LEVEL_WARN, TO_STDERR }, /* no trimming */
    { "debug;file:@", STP_LOG_LEVEL_WARN, TO_STDERR }, /* ',' separates */
    /* the file sink */
    { "file:@", STP_LOG_LEVEL_WARN, TO_FILE },
    { "level:info,file:@", STP_LOG_LEVEL_INFO, TO_FILE },
    { "file:@,error", STP_LOG_LEVEL_ERROR, TO_FILE },
    { "file:", STP_LOG_LEVEL_WARN, TO_STDERR },
    { "file:/nonexistent-stp-dir/x.log,level:info", STP_LOG_LEVEL_INFO,
      TO_STDERR },
};

static void env_case(int r)
{
    const struct env_row *row = &env_rows[r];
    char value[400], buf[4096], want_msg[64];
    const char *at;
    long long lo, hi;
    long n_a, n_err;
    int saved;

    if (row->value == NULL) {
        unsetenv("OCSPSTAPLE_DEBUG");
    } else {
        at = strchr(row->value, '@');
        if (at != NULL)
            snprintf(value, sizeof(value), "%.*s%s%s", (int)(at - row->value),
                     row->value, path_a, at + 1);
        else
            snprintf(value, sizeof(value), "%s", row->value);
        setenv("OCSPSTAPLE_DEBUG", value, 1);
    }
    saved = stderr_to(path_err);
    stp_log_init();
    lo = now_ms();
    STP_LOG_ERR("test", "row %d", r);
    hi = now_ms();
    stderr_back(saved);

    if (stp_log_threshold != row->want)
        fprintf(stderr, "  OCSPSTAPLE_DEBUG=\"%s\"\n",
                row->value != NULL ? row->value : "(unset)");
    ASSERT_EQ(stp_log_threshold, row->want);
    snprintf(want_msg, sizeof(want_msg), "row %d", r);
    n_a = slurp(path_a, buf, sizeof(buf));
    if (row->sink == TO_FILE) {
        ASSERT_EQ(count_lines(buf), 1);
        check_line(buf, "ERROR", "test", want_msg, lo, hi);
        ASSERT_EQ(slurp(path_err, buf, sizeof(buf)), 0);
        return;
    }
    ASSERT_EQ(n_a, -1); /* no file was created */
    n_err = slurp(path_err, buf, sizeof(buf));
    if (row->want == STP_LOG_LEVEL_OFF) {
        ASSERT_EQ(n_err, 0);
    } else {
        ASSERT_EQ(count_lines(buf), 1);
        check_line(buf, "ERROR", "test", want_msg, lo, hi);
    }
}

/* 1023 characters are parsed; 1024 or more are ignored as a whole. */
static void env_long(int len)
{
    char value[1100];

    memset(value, 'x', sizeof(value));
    memcpy(value, "level:debug,", 12);
    value[len] = '\0';
    setenv("OCSPSTAPLE_DEBUG", value, 1);
    stp_log_init();
    ASSERT_EQ(stp_log_threshold,
              len < 1024 ? STP_LOG_LEVEL_DEBUG : STP_LOG_LEVEL_WARN);
}

/* Parsed once: a later change of the variable is not seen. */
static void env_once(int unused)
{
    (void)unused;
    setenv("OCSPSTAPLE_DEBUG", "level:debug", 1);
    stp_log_init();
    ASSERT_EQ(stp_log_threshold, STP_LOG_LEVEL_DEBUG);
    setenv("OCSPSTAPLE_DEBUG", "level:error", 1);
    stp_log_init();
    ASSERT_EQ(stp_log_threshold, STP_LOG_LEVEL_DEBUG);
    ASSERT_OK(stp_log_configure(-1, NULL));
    ASSERT_EQ(stp_log_threshold, STP_LOG_LEVEL_DEBUG);
}

/* An existing file is appended to; the policy's file is then ignored. */
static void env_append(int unused)
{
    char value[400], buf[4096];
    struct stat sb;
    FILE *f;

    (void)unused;
    f = fopen(path_a, "w");
    fputs("kept\n", f);
    fclose(f);
    snprintf(value, sizeof(value), "file:%s,level:info", path_a);
    setenv("OCSPSTAPLE_DEBUG", value, 1);
    stp_log_init();
    STP_LOG_INFO("test", "appended");
    slurp(path_a, buf, sizeof(buf));
    ASSERT_EQ(count_lines(buf), 2);
    ASSERT_EQ(strncmp(buf, "kept\n", 5), 0);
    ASSERT_CONTAINS(buf + 5, "] INFO test: appended\n");
    ASSERT_OK(stp_log_configure(-1, path_b)); /* env has a file: ignored */
    ASSERT_EQ(stat(path_b, &sb), -1);
}

static void file_mode(int unused)
{
    struct stat sb;

    (void)unused;
    unsetenv("OCSPSTAPLE_DEBUG");
    umask(022);
    ASSERT_OK(stp_log_configure(STP_LOG_LEVEL_INFO, path_a));
    ASSERT_EQ(stat(path_a, &sb), 0);
    ASSERT_EQ(sb.st_mode & 0777, 0640);
}

/* ---- stp_log_configure: the policy's log keys ---------------------------- */

static void configure_level(int unused)
{
    (void)unused;
    unsetenv("OCSPSTAPLE_DEBUG");
    ASSERT_OK(stp_log_configure(STP_LOG_LEVEL_DEBUG, NULL));
    ASSERT_EQ(stp_log_threshold, STP_LOG_LEVEL_DEBUG);
    ASSERT_OK(stp_log_configure(-1, NULL)); /* -1: level unchanged */
    ASSERT_EQ(stp_log_threshold, STP_LOG_LEVEL_DEBUG);
    ASSERT_OK(stp_log_configure(STP_LOG_LEVEL_OFF, NULL));
    ASSERT_EQ(stp_log_threshold, STP_LOG_LEVEL_OFF);
    ASSERT_OK(stp_log_configure(STP_LOG_LEVEL_ERROR, NULL));
    ASSERT_EQ(stp_log_threshold, STP_LOG_LEVEL_ERROR);
}

/* An OCSPSTAPLE_DEBUG level and file win over the policy's. */
static void configure_env_wins(int unused)
{
    char value[400], buf[4096];

    (void)unused;
    snprintf(value, sizeof(value), "level:error,file:%s", path_a);
    setenv("OCSPSTAPLE_DEBUG", value, 1);
    /* configure parses OCSPSTAPLE_DEBUG itself when init was not called */
    ASSERT_OK(stp_log_configure(STP_LOG_LEVEL_DEBUG, path_b));
    ASSERT_EQ(stp_log_threshold, STP_LOG_LEVEL_ERROR);
    STP_LOG_WARN("test", "dropped");
    STP_LOG_ERR("test", "kept");
    ASSERT_EQ(slurp(path_b, buf, sizeof(buf)), -1);
    slurp(path_a, buf, sizeof(buf));
    ASSERT_EQ(count_lines(buf), 1);
    ASSERT_CONTAINS(buf, "] ERROR test: kept\n");
}

/*
 * The policy's file: lines move from one file to the next; a file that
 * cannot be opened is refused (0), said in an ERROR line to the current
 * sink, which stays.
 */
static void configure_files(int unused)
{
    char buf[4096], want[400], line[3][1024];
    const char *bad = "/nonexistent-stp-dir/x.log";
    long long lo, hi;
    int saved;

    (void)unused;
    unsetenv("OCSPSTAPLE_DEBUG");
    saved = stderr_to(path_err);
    STP_LOG_WARN("test", "on stderr");
    ASSERT_OK(stp_log_configure(STP_LOG_LEVEL_INFO, path_a));
    STP_LOG_INFO("test", "to a");
    ASSERT_OK(stp_log_configure(STP_LOG_LEVEL_INFO, path_b));
    lo = now_ms();
    STP_LOG_INFO("test", "to b");
    ASSERT_EQ(stp_log_configure(STP_LOG_LEVEL_INFO, bad), 0);
    STP_LOG_WARN("test", "still b");
    hi = now_ms();
    stderr_back(saved);

    slurp(path_err, buf, sizeof(buf));
    ASSERT_EQ(count_lines(buf), 1);
    ASSERT_CONTAINS(buf, "] WARN test: on stderr\n");
    slurp(path_a, buf, sizeof(buf));
    ASSERT_EQ(count_lines(buf), 1);
    ASSERT_CONTAINS(buf, "] INFO test: to a\n");
    slurp(path_b, buf, sizeof(buf));
    ASSERT_EQ(count_lines(buf), 3);
    ASSERT_EQ(split_lines(buf, line, 3), 3);
    snprintf(want, sizeof(want),
             "cannot open log_file '%s': No such file or directory", bad);
    check_line(line[0], "INFO", "test", "to b", lo, hi);
    check_line(line[1], "ERROR", "log", want, lo, hi);
    check_line(line[2], "WARN", "test", "still b", lo, hi);
}

/* With logging off, the refusal of a file is silent (still 0). */
static void configure_bad_quiet(int unused)
{
    char buf[256];
    int saved;

    (void)unused;
    unsetenv("OCSPSTAPLE_DEBUG");
    saved = stderr_to(path_err);
    ASSERT_EQ(stp_log_configure(STP_LOG_LEVEL_OFF, "/nonexistent-stp-dir/x"),
              0);
    STP_LOG_ERR("test", "not written");
    ASSERT_OK(stp_log_configure(STP_LOG_LEVEL_ERROR, NULL));
    ASSERT_EQ(stp_log_configure(-1, "/nonexistent-stp-dir/y"), 0);
    stderr_back(saved);
    slurp(path_err, buf, sizeof(buf));
    ASSERT_EQ(count_lines(buf), 1);
    ASSERT_CONTAINS(buf, "] ERROR log: cannot open log_file "
                         "'/nonexistent-stp-dir/y': No such file or "
                         "directory\n");
}

/* ---- the line ------------------------------------------------------------ */

static void format_case(int unused)
{
    char value[400], buf[8192], line[6][1024];
    long long lo, hi;

    (void)unused;
    snprintf(value, sizeof(value), "level:debug,file:%s", path_a);
    setenv("OCSPSTAPLE_DEBUG", value, 1);
    stp_log_init();
    lo = now_ms();
    STP_LOG_ERR("fetch", "HTTP %ld from %s", 500L, "http://127.0.0.1:9/");
    STP_LOG_WARN("store", "%s", "a message with 100% and \"quotes\"");
    STP_LOG_INFO("cache", "%d%%", 42);
    STP_LOG_DEBUG("hook", "%s", "");
    STP_LOG_DEBUG("refresh", "%5s|%-3d|%03x", "ab", 7, 255);
    stp_log(STP_LOG_LEVEL_INFO, "x", "file.c", 1, "fn", "direct");
    hi = now_ms();
    slurp(path_a, buf, sizeof(buf));
    ASSERT_EQ(count_lines(buf), 6);
    ASSERT_EQ(split_lines(buf, line, 6), 6);
    check_line(line[0], "ERROR", "fetch", "HTTP 500 from http://127.0.0.1:9/",
               lo, hi);
    check_line(line[1], "WARN", "store", "a message with 100% and \"quotes\"",
               lo, hi);
    check_line(line[2], "INFO", "cache", "42%", lo, hi);
    check_line(line[3], "DEBUG", "hook", "", lo, hi);
    check_line(line[4], "DEBUG", "refresh", "   ab|7  |0ff", lo, hi);
    check_line(line[5], "INFO", "x", "direct", lo, hi);
}

/*
 * A line holds at most LINE_CAP - 2 characters before its newline: a
 * message that would make it longer is cut, and the line still ends with
 * exactly one newline.
 */
static void length_case(int extra)
{
    static char msg[LINE_CAP + 1024]; /* room for the longest case (+500) */
    char value[400], tail[LINE_CAP + 128];
    static char buf[LINE_CAP * 4];
    size_t head, fit;
    long n;

    snprintf(value, sizeof(value), "level:info,file:%s", path_a);
    setenv("OCSPSTAPLE_DEBUG", value, 1);
    stp_log_init();
    /* the header: timestamp and tail without a message */
    tail_of(tail, sizeof(tail), "WARN", "test", "");
    head = TS_LEN + strlen(tail) - 1;
    fit = LINE_CAP - 2 - head; /* the longest message written whole */
    memset(msg, 'm', sizeof(msg));
    msg[fit + (size_t)extra] = '\0';
    STP_LOG_WARN("test", "%s", msg);
    n = slurp(path_a, buf, sizeof(buf));
    ASSERT_EQ(n, (long)head + (long)fit + (extra < 0 ? extra : 0) + 1);
    ASSERT_EQ(count_lines(buf), 1);
    ASSERT_EQ(buf[n - 1], '\n');
    ASSERT_EQ(buf[n - 2], 'm');
    ASSERT_EQ(strncmp(buf + TS_LEN, tail, strlen(tail) - 1), 0);
}

/* The macros: a level above the threshold writes nothing, and its
 * arguments are not evaluated. */
static void threshold_case(int unused)
{
    char value[400], buf[4096];
    int evaluated = 0;

    (void)unused;
    snprintf(value, sizeof(value), "file:%s", path_a);
    setenv("OCSPSTAPLE_DEBUG", value, 1);
    stp_log_init();
    ASSERT_EQ(stp_log_threshold, STP_LOG_LEVEL_WARN);
    STP_LOG_DEBUG("test", "d1 %d", ++evaluated);
    STP_LOG_INFO("test", "i1 %d", ++evaluated);
    ASSERT_EQ(evaluated, 0);
    STP_LOG_WARN("test", "w1");
    STP_LOG_ERR("test", "e1");
    ASSERT_OK(stp_log_configure(STP_LOG_LEVEL_DEBUG, NULL));
    STP_LOG_DEBUG("test", "d2 %d", ++evaluated);
    STP_LOG_INFO("test", "i2");
    ASSERT_EQ(evaluated, 1);
    ASSERT_OK(stp_log_configure(STP_LOG_LEVEL_OFF, NULL));
    STP_LOG_ERR("test", "e3 %d", ++evaluated);
    ASSERT_EQ(evaluated, 1);
    ASSERT_OK(stp_log_configure(STP_LOG_LEVEL_ERROR, NULL));
    STP_LOG_WARN("test", "w4");
    STP_LOG_ERR("test", "e4");
    slurp(path_a, buf, sizeof(buf));
    ASSERT_EQ(count_lines(buf), 5);
    ASSERT_CONTAINS(buf, "] WARN test: w1\n");
    ASSERT_CONTAINS(buf, "] ERROR test: e1\n");
    ASSERT_CONTAINS(buf, "] DEBUG test: d2 1\n");
    ASSERT_CONTAINS(buf, "] INFO test: i2\n");
    ASSERT_CONTAINS(buf, "] ERROR test: e4\n");
    ASSERT_TRUE(strstr(buf, " d1 ") == NULL && strstr(buf, " i1 ") == NULL
                && strstr(buf, " e3 ") == NULL && strstr(buf, " w4") == NULL);
}

/* ---- threads: one write per line ----------------------------------------- */

#define THREADS    4
#define PER_THREAD 250
#define PAYLOAD    1500

static char pad[PAYLOAD + 1];

static void *writer(void *arg)
{
    int t = (int)(long)arg, i;

    for (i = 0; i < PER_THREAD; i++)
        STP_LOG_INFO("thread", "t%d n%03d %s", t, i, pad);
    return NULL;
}

static void threads_case(int unused)
{
    static char buf[THREADS * PER_THREAD * (PAYLOAD + 128)];
    pthread_t th[THREADS];
    int next[THREADS] = { 0 }, bad = 0, lines = 0, t, n;
    char *line, *nl;
    long i;

    (void)unused;
    memset(pad, 'p', PAYLOAD);
    {
        char value[400];

        snprintf(value, sizeof(value), "level:info,file:%s", path_a);
        setenv("OCSPSTAPLE_DEBUG", value, 1);
    }
    stp_log_init();
    for (i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, writer, (void *)i);
    for (i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    slurp(path_a, buf, sizeof(buf));
    for (line = buf; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        const char *m = strstr(line, "] INFO thread: t");

        lines++;
        if (m == NULL || m > nl
            || sscanf(m, "] INFO thread: t%d n%d", &t, &n) != 2 || t < 0
            || t >= THREADS || n != next[t] || nl - strchr(m, 'p') != PAYLOAD) {
            bad++;
            continue;
        }
        next[t]++;
    }
    ASSERT_EQ(*line, '\0');
    ASSERT_EQ(lines, THREADS * PER_THREAD);
    ASSERT_EQ(bad, 0);
    for (t = 0; t < THREADS; t++)
        ASSERT_EQ(next[t], PER_THREAD);
}

int main(void)
{
    size_t r;
    char name[64];

    snprintf(dir, sizeof(dir), "%s/stp_log_test.XXXXXX",
             getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path_a, sizeof(path_a), "%s/a.log", dir);
    snprintf(path_b, sizeof(path_b), "%s/b.log", dir);
    snprintf(path_err, sizeof(path_err), "%s/stderr", dir);

    test_names();
    for (r = 0; r < sizeof(env_rows) / sizeof(env_rows[0]); r++) {
        snprintf(name, sizeof(name), "env row %zu", r);
        in_child(name, env_case, (int)r);
    }
    in_child("env 1023 chars", env_long, 1023);
    in_child("env 1024 chars", env_long, 1024);
    in_child("env parsed once", env_once, 0);
    in_child("env file appended", env_append, 0);
    in_child("file mode", file_mode, 0);
    in_child("configure level", configure_level, 0);
    in_child("configure: env wins", configure_env_wins, 0);
    in_child("configure files", configure_files, 0);
    in_child("configure bad, quiet", configure_bad_quiet, 0);
    in_child("format", format_case, 0);
    in_child("length: fits", length_case, 0);
    in_child("length: one short", length_case, -1);
    in_child("length: one over", length_case, 1);
    in_child("length: far over", length_case, 500);
    in_child("threshold", threshold_case, 0);
    in_child("threads", threads_case, 0);

    clear_files();
    rmdir(dir);
    STP_TEST_MAIN_END();
}
