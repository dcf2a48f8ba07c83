/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shared store directory (store_dir): one file set per certificate,
 * named by the hex SHA-256 of the leaf DER (<id>):
 *   <id>.der    the raw DER OCSP response, so `openssl ocsp -respin` reads it
 *   <id>.state  sidecar text: last attempt/success, failures, last error, URL
 *   <id>.pem    the leaf and its issuer, so the CLI can show and re-verify
 *   <id>.lock   flock(2) target: one process fetches a certificate at a time
 * Writes go to a temp file in the same directory, fsync, rename, fsync of
 * the directory: a reader sees the old file or the new one, never a torn
 * one. Reads never follow a symlink, accept regular files only and cap the
 * size. This module moves bytes; it trusts none of them: callers verify
 * every response they read back (the directory is a trust boundary).
 */
#ifndef STP_STORE_H
#define STP_STORE_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "engine/err.h"

struct stp_store;

struct stp_state {
    time_t last_attempt; /* 0: never */
    time_t last_success; /* 0: never */
    time_t next_attempt; /* scheduled, for display; 0: unknown */
    unsigned failures;   /* consecutive */
    char last_error[640];
    char url[512];
    char subject[256];
    char serial[80];
    char role[8]; /* "client": a client certificate's answer; "": a staple */
};

/*
 * Opens <dir>. With <create>, a missing directory is created (mode 0755,
 * parents too). Fails with STP_E_STORE naming the directory when it is
 * missing, not a directory or not accessible. Warns (log) when it is
 * writable by others without the sticky bit. Returns 1 and *<out>, or 0.
 */
int stp_store_open(const char *dir, int create, struct stp_store **out,
                   struct stp_err *err);

/*
 * The same, for a store shared by the users of several servers through the
 * group <group> (store_group; NULL: as stp_store_open()). The layout
 * (docs/design-notes.md, "One store for several server users"): the
 * directory is <group>'s, setgid, 2770 (its files then get <group> whoever
 * writes them, root included); a missing one is created so, and an
 * existing one that is not is made so when this process owns it or is
 * root (said once at INFO, its files' group fixed too), else said at WARN
 * with the command that fixes it. Fails when <group> does not exist.
 */
int stp_store_open_shared(const char *dir, int create, const char *group,
                          struct stp_store **out, struct stp_err *err);

void stp_store_close(struct stp_store *st);

/* The directory path given to stp_store_open(). */
const char *stp_store_dir(const struct stp_store *st);

/*
 * Reads <id>'s response (<id>.der) into a new buffer that the caller frees
 * with OPENSSL_free(). Refuses symlinks, non-regular files and files over
 * <cap> bytes. Returns 1, or 0 with <err> (detail ENOENT when there is
 * none). <id> must be 64 lower-case hex digits. The bytes are untrusted.
 */
int stp_store_read_response(struct stp_store *st, const char *id, size_t cap,
                            unsigned char **der, size_t *len,
                            struct stp_err *err);

/*
 * Atomically replaces <id>'s response with <len> bytes of <der>. Returns 1,
 * or 0 with <err> naming the file; the old file is intact then.
 */
int stp_store_write_response(struct stp_store *st, const char *id,
                             const unsigned char *der, size_t len,
                             struct stp_err *err);

/*
 * Reads <id>'s chain (<id>.pem: the leaf, then its issuer) as a new stack
 * (sk_X509_pop_free()). Returns NULL with <err> when it is missing (detail
 * ENOENT), unreadable, over its cap or holds no certificate. The
 * certificates are untrusted: anyone who can write the store can plant
 * them.
 */
STACK_OF(X509) *stp_store_read_chain(struct stp_store *st, const char *id,
                                     struct stp_err *err);

/* Atomically writes <id>'s chain: <leaf>, then <issuer> if not NULL. */
int stp_store_write_chain(struct stp_store *st, const char *id, X509 *leaf,
                          X509 *issuer, struct stp_err *err);

/*
 * Takes the exclusive lock of <id>, waiting at most <wait_ms> ms (0: do not
 * wait). Returns a descriptor to pass to stp_store_unlock(), or -1 with
 * <err> (STP_E_BUSY when another process holds it).
 */
int stp_store_lock(struct stp_store *st, const char *id, long wait_ms,
                   struct stp_err *err);

void stp_store_unlock(int fd);

/*
 * Reads the sidecar state of <id>. A missing or unparsable file yields a
 * zeroed state and returns 0; returns 1 when a state was read.
 */
int stp_store_read_state(struct stp_store *st, const char *id,
                         struct stp_state *out);

/* Atomically writes the sidecar state of <id>. Returns 1, or 0 with <err>. */
int stp_store_write_state(struct stp_store *st, const char *id,
                          const struct stp_state *state, struct stp_err *err);

/*
 * Calls <fn> for each <id> that has a ".der" or ".state" file, in sorted
 * order. Returns the number of ids, or -1 with <err> if the directory
 * cannot be listed.
 */
int stp_store_list(struct stp_store *st, void (*fn)(void *arg, const char *id),
                   void *arg, struct stp_err *err);

/*
 * Removes the temp files that writers left behind when they died: those of
 * every id whose lock nobody holds (a live writer holds it while it writes).
 * A scan of the directory: stp_store_lock() runs it at the first lock of a
 * handle and then at most once an hour, never at every lock.
 */
void stp_store_clean_temps(struct stp_store *st);

/* How many times this handle scanned the directory for temp files. */
unsigned long stp_store_scans(struct stp_store *st);

/* Returns 0 if the directory was removed since it was opened. */
int stp_store_alive(struct stp_store *st);

/* Returns 1 if <id> is 64 lower-case hex digits. */
int stp_store_id_valid(const char *id);

/*
 * Per-process counters (server/metrics.h): the file "metrics-<proc>" of the
 * directory, <proc> being "<pid>-<start time>" of the writing process,
 * replaced atomically. Public data (0644), like the responses. Returns 1,
 * or 0 with <err>.
 */
int stp_store_write_metrics(struct stp_store *st, const char *proc,
                            const char *text, struct stp_err *err);

/*
 * Calls <fn> with each process's counters file (its text, NUL-terminated,
 * at most 64 KiB, and its modification time). Returns how many, or -1 with
 * <err> when the directory cannot be listed.
 */
int stp_store_list_metrics(struct stp_store *st,
                           void (*fn)(void *arg, const char *proc,
                                      const char *text, time_t mtime),
                           void *arg, struct stp_err *err);

/*
 * One of the <cap> fetch slots of responder host <host_key> (pool.h's
 * stp_pool_host_key()) for every process sharing the directory: the file
 * "slot-<hash>-<k>", flocked without waiting, starting at a random k.
 * Returns its descriptor (release it with stp_store_unlock()), or -1 with
 * errno EWOULDBLOCK when every slot is held, another errno when a slot file
 * cannot be opened.
 */
int stp_store_slot_try(struct stp_store *st, const char *host_key, int cap);

/*
 * Which entries each process uses: the file "uses-<proc>" (same <proc> as
 * above), written by the process when the set of certificates it holds
 * changes: a first line "program NAME", then one line per certificate,
 * "<id> staple" or "<id> client". Public (0644): ids are file names of the
 * directory anyway. Listed like the counters (at most 16 MiB each);
 * stp_store_remove_uses() removes one (a process that is gone). Returns 1,
 * or 0 with <err> (remove: 0 on an error other than "no such file").
 */
int stp_store_write_uses(struct stp_store *st, const char *proc,
                         const char *text, struct stp_err *err);
int stp_store_list_uses(struct stp_store *st,
                        void (*fn)(void *arg, const char *proc,
                                   const char *text, time_t mtime),
                        void *arg, struct stp_err *err);
int stp_store_remove_uses(struct stp_store *st, const char *proc);

/* The start time (clock ticks after boot, /proc/PID/stat field 22) of
 * process <pid> (0 or less: this process), or 0 if it cannot be read. */
unsigned long long stp_proc_start_time(long pid);

/* Whether the process named <proc> ("<pid>-<start time>") is running: its
 * pid exists and started at that time (not a later process given the same
 * pid). */
int stp_store_proc_alive(const char *proc);

/*
 * `ocspstaple fetch` and `refresh` tell running servers that they wrote
 * responses: the file "changed" of the directory, replaced (public, 0644).
 * A stamp is an identity of a file as it is now (inode, modification time,
 * size), 0 when it is not there: that of "changed", and that of <id>'s
 * response, so that a server re-reads only what changed since it looked.
 */
int stp_store_mark_changed(struct stp_store *st, struct stp_err *err);
unsigned long long stp_store_changed_stamp(struct stp_store *st);
unsigned long long stp_store_response_stamp(struct stp_store *st,
                                            const char *id);

/* When <id>'s entry was last written (its response or its state: every
 * refresh attempt writes the state), or 0 when it has neither. */
time_t stp_store_entry_time(struct stp_store *st, const char *id);

/*
 * Removes <id>'s entry (response, state, chain and lock file) under its
 * lock, taken without waiting. Returns 1, or 0 with <err> (STP_E_BUSY when
 * a writer holds the lock: the entry is in use).
 */
int stp_store_remove(struct stp_store *st, const char *id, struct stp_err *err);

#endif
