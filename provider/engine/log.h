/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging: one line per event (timestamp, pid, tid, component, message) to
 * stderr or a file. Always compiled in; the level is one integer read by the
 * STP_LOG_* macros, so a disabled level costs one comparison. The initial
 * level comes from OCSPSTAPLE_DEBUG ("level:debug,file:/path"), parsed once;
 * the policy's log keys set the steady state. Never logs response bodies.
 */
#ifndef STP_LOG_H
#define STP_LOG_H

enum stp_log_level {
    STP_LOG_LEVEL_OFF = 0,
    STP_LOG_LEVEL_ERROR = 1,
    STP_LOG_LEVEL_WARN = 2,
    STP_LOG_LEVEL_INFO = 3,
    STP_LOG_LEVEL_DEBUG = 4
};

/*
 * Every spelling of a level, X(name, level): the names in level order, then
 * the aliases ("warning"). The one list behind stp_log_level_name(),
 * stp_log_level_parse() and the policy's log_level key.
 */
#define STP_LOG_LEVEL_NAMES(X)      \
    X("off", STP_LOG_LEVEL_OFF)     \
    X("error", STP_LOG_LEVEL_ERROR) \
    X("warn", STP_LOG_LEVEL_WARN)   \
    X("info", STP_LOG_LEVEL_INFO)   \
    X("debug", STP_LOG_LEVEL_DEBUG) \
    X("warning", STP_LOG_LEVEL_WARN)

/* Current threshold; read racily by the macros (an int, written rarely). */
extern volatile int stp_log_threshold;

/*
 * Writes one formatted line if <level> passes the threshold. Any thread.
 * <comp> is a short fixed component name ("fetch", "store", ...).
 */
void stp_log(int level, const char *comp, const char *file, int line,
             const char *func, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/*
 * Parses OCSPSTAPLE_DEBUG once (pthread_once) and applies it. Any thread;
 * cheap after the first call. Called by every entry point before logging.
 */
void stp_log_init(void);

/*
 * Sets the steady-state level and destination from the policy. <file> NULL
 * means stderr. An OCSPSTAPLE_DEBUG setting wins over both. Returns 1, or 0
 * if the file cannot be opened (logging then stays on stderr).
 */
int stp_log_configure(int level, const char *file);

/*
 * Lines also go to the syslog socket <path> (log_syslog: facility daemon,
 * tag "ocspstaple[pid]"; NULL: off); reconnected at most every 10 s when
 * syslog restarts. Only the path is kept here: the socket is connected by
 * stp_log_syslog_connect(), which a serving process calls before it forks
 * or starts its refresher (before a server's chroot), or at the first line.
 * Returns 0 (said at ERROR) for a path too long for a socket address.
 */
int stp_log_configure_syslog(const char *path);

/* Connects the log_syslog socket now, if set and not connected; a socket
 * that cannot be connected is said at ERROR. */
void stp_log_syslog_connect(void);

/* A log file rotated away (moved or removed: its path now names another
 * file, or none) is opened again at its path. Any thread; the refresher
 * calls it every 10 s. */
void stp_log_reopen(void);

/* Name of a level ("error", "warn", ...); "?" for an unknown one. */
const char *stp_log_level_name(int level);

/*
 * Parses a level name (any of STP_LOG_LEVEL_NAMES, case-insensitively).
 * Returns the level, or -1 for an unknown name.
 */
int stp_log_level_parse(const char *name);

#define STP_LOG_AT(lvl, comp, ...)                                             \
    do {                                                                       \
        if (stp_log_threshold >= (lvl))                                        \
            stp_log((lvl), (comp), __FILE__, __LINE__, __func__, __VA_ARGS__); \
    } while (0)

#define STP_LOG_ERR(comp, ...) \
    STP_LOG_AT(STP_LOG_LEVEL_ERROR, comp, __VA_ARGS__)
#define STP_LOG_WARN(comp, ...) \
    STP_LOG_AT(STP_LOG_LEVEL_WARN, comp, __VA_ARGS__)
#define STP_LOG_INFO(comp, ...) \
    STP_LOG_AT(STP_LOG_LEVEL_INFO, comp, __VA_ARGS__)
#define STP_LOG_DEBUG(comp, ...) \
    STP_LOG_AT(STP_LOG_LEVEL_DEBUG, comp, __VA_ARGS__)

#endif
