/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The per-process table of certificates the hook serves, and the staple
 * each one currently holds. The status callback looks a record up by the
 * X509 pointer that libssl selected (the table holds a reference to every
 * such X509, so an address cannot be reused while it maps to a record) and
 * copies the staple out under a read lock; the refresher publishes a new
 * staple under the write lock. Records live until the process exits: their
 * number is bounded by the certificates the process loads.
 */
#ifndef STP_CACHE_H
#define STP_CACHE_H

#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "engine/certinfo.h"
#include "engine/policy.h"
#include "engine/verify.h"

struct stp_staple;

/* A tracked certificate. Its fields are grouped by owner. */
struct stp_rec {
    /* track.c, before insertion; immutable afterwards (but ci->issuer,
     * which the refresher may fill in while it is NULL) */
    struct stp_certinfo *ci;
    struct stp_certpol pol; /* effective policy; strings borrowed */
    struct stp_decision dec;
    /* cache.c, under the table lock */
    struct stp_staple *cur;
    /* 1 until the first refresh attempt has finished (the bounded wait) */
    atomic_int loading;
    /* the refresher thread alone */
    struct {
        time_t next;
        unsigned failures;
        int done; /* not applicable: no responder */
        int exit_sent;
        int issuer_logged;
        int busy_logged; /* the held lock was said */
    } rf;
    /* any thread, atomically */
    atomic_int issuer_known; /* ci->issuer is set (the refresher sets it) */
    /* an issuer a context offered after the record was made without one
     * (it was still being configured): a reference, taken by the refresher */
    _Atomic(X509 *) offered_issuer;
    atomic_int refused_logged;
    atomic_int preloaded; /* the store was read once synchronously */
};

enum stp_copy_result {
    STP_COPY_OK = 0, /* a staple valid now was copied */
    STP_COPY_NONE,   /* nothing held */
    STP_COPY_EXPIRED /* the held staple is at or past nextUpdate */
};

/* Initialises the locks. Call once before any other function. */
void stp_cache_init(void);

/* In a fork child: reinitialises the locks (another thread may have held
 * them at fork time). Async-signal-safe enough for pthread_atfork. */
void stp_cache_after_fork(void);

/*
 * Returns the record that <leaf> maps to, or NULL. Any thread; takes the
 * read lock. Records are never freed, so the pointer stays valid.
 */
struct stp_rec *stp_cache_get0(X509 *leaf);

/*
 * Inserts <rec> (owned by the table from now on), mapping <leaf> to it,
 * unless a record for the same certificate (same SHA-256) exists: then
 * <rec> is freed, <leaf> is mapped to the existing one, and that one is
 * returned. Returns NULL on allocation failure (<rec> freed). Any thread.
 */
struct stp_rec *stp_cache_insert(struct stp_rec *rec, X509 *leaf, int *is_new);

/* Frees a record that was never inserted. */
void stp_rec_free(struct stp_rec *rec);

/*
 * Copies the staple of <rec> if it is valid at <now>: *<der> (caller frees
 * with OPENSSL_free(), or hands it to libssl) and the certificate status
 * in *<status>. Any thread; holds the read lock for the copy only.
 */
enum stp_copy_result stp_cache_copy(struct stp_rec *rec, time_t now,
                                    unsigned char **der, size_t *len,
                                    int *status);

/*
 * Replaces the staple of <rec> with a copy of <der> and its verdict, if
 * stp_verdict_may_replace() allows it at <now>. Wakes handshakes waiting in
 * stp_cache_wait(). Returns STP_REPLACE_YES if published, else why not
 * (STP_REPLACE_NO_MEMORY: allocation failure).
 */
enum stp_replace stp_cache_publish(struct stp_rec *rec,
                                   const unsigned char *der, size_t len,
                                   const struct stp_verdict *v, time_t now);

/* Drops the staple of <rec> if it is at or past nextUpdate at <now>. */
void stp_cache_expire(struct stp_rec *rec, time_t now);

/* Marks the first attempt for <rec> finished and wakes the waiters. */
void stp_cache_loaded(struct stp_rec *rec);

/*
 * Waits at most <ms> for <rec> to get a staple or finish its first attempt.
 * The only wait on a handshake path (a cold Must-Staple certificate).
 */
void stp_cache_wait(struct stp_rec *rec, long ms);

/*
 * A snapshot of every record, for the refresher: *<out> is a new array the
 * caller frees with OPENSSL_free(). Returns the count.
 */
size_t stp_cache_snapshot(struct stp_rec ***out);

/*
 * An issuer for <leaf> among the issuers of the tracked certificates (in
 * SNI setups a context often lacks the chain that a sibling carries).
 * Returns a new reference, or NULL. Any thread.
 */
X509 *stp_cache_get1_issuer(X509 *leaf);

/* Fields of the held staple, for logs: 1 and *<v>, or 0 if none. */
int stp_cache_verdict(struct stp_rec *rec, struct stp_verdict *v);

#endif
