/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The per-process table of certificates the hook serves, and the staple
 * each one currently holds.
 *
 * Lookup is O(1) whatever the number of certificates: the X509 object that
 * libssl selected carries a pointer to its record in X509 ex_data (set under
 * the table's write lock when the object is first mapped, read under the
 * read lock), and records are also hashed by certificate identity (SHA-256
 * of the DER), so that another X509 object of the same certificate (one per
 * Apache vhost, say) finds the same record. Every object mapped is an alias
 * that holds a reference, so an object cannot be freed while it points at a
 * record. No handshake takes the write lock but the first one to meet a new
 * object (at most MAX_ALIASES_PER_REC objects per record are mapped; beyond
 * that a lookup hashes the DER, still under the read lock).
 *
 * Lifecycle. A record lives while a context uses it: every context that
 * carries the certificate holds a claim (stp_cache_claim()), dropped when
 * the context is freed (stp_cache_release()). At the last claim the record
 * leaves the table (its aliases are unmapped and released) and is no longer
 * refreshed; its memory goes with the last reference (stp_cache_get1(),
 * stp_cache_snapshot() take references). A record that no context claims
 * (tracked by a handshake on a context that the hook never saw created)
 * stays until the process exits.
 *
 * Memory in fork children. A master makes the records before it forks and
 * every worker writes to them, and a write copies the page it falls on:
 * records come from a slab of their own (slab.h), and the records of one CA
 * share one issuer object (stp_cache_share_issuer()), so that a worker's
 * references and locks do not copy a page per certificate (unit/cow).
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

#define MAX_ALIASES_PER_REC 256 /* X509 objects mapped to one record */

/* A tracked certificate. Its fields are grouped by owner. */
struct stp_rec {
    /* track.c, before insertion; immutable afterwards (but ci->issuer,
     * which the refresher may fill in while it is NULL) */
    struct stp_certinfo *ci;
    struct stp_certpol pol; /* effective policy; strings borrowed */
    struct stp_decision dec;
    int client; /* a client certificate's (client.h), not a server's */
    /* cache.c, under the table lock */
    struct stp_staple *cur;
    struct stp_rec *hnext; /* hash chain */
    X509 **aliases;        /* own references, each mapped to this record */
    unsigned naliases, capaliases;
    unsigned claims;    /* contexts using the record */
    atomic_int refs;    /* the table's, and every get1/snapshot holder's */
    atomic_int dropped; /* left the table: no longer refreshed */
    atomic_int busy;    /* queued or in flight in the fetch pool (pool.c) */
    atomic_int urgent;  /* a handshake waits for it: first in its queue */
    /* 1 until the first refresh attempt has finished (the bounded wait) */
    atomic_int loading;
    /* the refresher's workers, one at a time (claimed by .busy) */
    struct {
        time_t next;
        unsigned failures;
        int done; /* not applicable: no responder, or expired */
        int exit_sent;
        int issuer_logged;
        /* stp_cache_issuers_generation() when the issuer was last looked
         * for in vain */
        unsigned long issuer_gen;
        int busy_logged; /* the held lock was said */
        /* since when another process has held the certificate's lock at
         * each try (0: it was not held at the last try) */
        time_t lock_held_since;
        int expired_logged; /* the leaf is past notAfter */
        /* the stored response as this process last read or wrote it
         * (store.h stamp; 0 unknown) */
        unsigned long long file_stamp;
    } rf;
    /* any thread, atomically */
    atomic_int issuer_known; /* ci->issuer is set (the refresher sets it) */
    /* an issuer a context offered after the record was made without one
     * (it was still being configured): a reference, taken by the refresher */
    _Atomic(X509 *) offered_issuer;
    atomic_int refused_logged;
    /* the stored response: 0 not read, 1 being read, 2 read (refresh.c) */
    atomic_int stored_read;
    /* client records (client.c): the last handshake that checked it (a
     * time_t), the decision last logged, and whether an answer ever said
     * "revoked" (fail-open never admits such a certificate) */
    atomic_llong client_used;
    atomic_int client_said;
    atomic_int client_revoked;
    atomic_int client_resume_said; /* a refused resumption was logged */
    /* said once until a staple is published again (cache.c clears them):
     * the last valid staple expired; a Must-Staple handshake got none */
    atomic_int said_lost;
    atomic_int said_must_none;
    atomic_int said_revoked; /* a revoked staple held was said (refresh.c) */
};

enum stp_copy_result {
    STP_COPY_OK = 0, /* a staple valid now was copied */
    STP_COPY_NONE,   /* nothing held */
    STP_COPY_EXPIRED /* the held staple is at or past nextUpdate */
};

/* Initialises the locks and the X509 ex_data index. Call once before any
 * other function; returns 0 if no ex_data index could be had. */
int stp_cache_init(void);

/* In a fork child: reinitialises the locks (another thread may have held
 * them at fork time). Async-signal-safe enough for pthread_atfork. */
void stp_cache_after_fork(void);

/*
 * Returns a new reference to the record that <leaf> maps to (by object or,
 * past the alias cap, by identity), or NULL. Any thread; read lock only.
 * Release with stp_rec_unref().
 */
struct stp_rec *stp_cache_get1(X509 *leaf);

/* Drops a reference; the last one frees the record. */
void stp_rec_unref(struct stp_rec *rec);

/*
 * Takes a claim on the record of <leaf>'s certificate (identity <id>):
 * maps <leaf> to it if it exists; otherwise inserts <fresh> (owned by the
 * table from now on; may be NULL: then nothing is inserted and NULL is
 * returned). <fresh>, if not inserted, is freed. *<is_new> tells whether
 * <fresh> was inserted. The pointer returned stays valid while the claim
 * is held. Returns NULL on allocation failure. Any thread.
 */
struct stp_rec *stp_cache_claim(const unsigned char id[STP_ID_LEN], X509 *leaf,
                                struct stp_rec *fresh, int *is_new);

/*
 * Client certificates (client.h) have records of their own, never mapped
 * to X509 objects (a peer's certificate is a new object per handshake) and
 * apart from a server certificate's record of the same certificate: found
 * by identity, with a new reference, or NULL. Any thread; read lock.
 */
struct stp_rec *stp_cache_client_get1(const unsigned char id[STP_ID_LEN]);

/*
 * Inserts <fresh> (fresh->client set; owned by the table from now on, or
 * freed) with one claim, unless a client record of that certificate is
 * there already. Returns a new reference to the record now in the table
 * (*<is_new> tells which), or NULL on allocation failure.
 */
struct stp_rec *stp_cache_client_insert1(struct stp_rec *fresh, int *is_new);

/* Releases a claim; the last one takes the record out of the table. */
void stp_cache_release(struct stp_rec *rec);

/* A zeroed record, from the table's slab (slab.h), or NULL. */
struct stp_rec *stp_rec_new(void);

/* Frees a record that was never inserted (stp_rec_new()'s, or NULL). */
void stp_rec_free(struct stp_rec *rec);

/* Records in the table (a gauge, for tests and metrics). */
size_t stp_cache_count(void);

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

/* Drops the staple of <rec> if it is at or past nextUpdate at <now>.
 * Returns 1 if it did (the record has no valid staple any more). */
int stp_cache_expire(struct stp_rec *rec, time_t now);

/* Marks the first attempt for <rec> finished and wakes the waiters. */
void stp_cache_loaded(struct stp_rec *rec);

/*
 * Waits at most <ms> for <rec> to get a staple or finish its first attempt.
 * The only wait on a handshake path (a cold Must-Staple certificate).
 */
void stp_cache_wait(struct stp_rec *rec, long ms);

/*
 * A snapshot of every record in the table, for the refresher: *<out> is a
 * new array holding a reference to each; the caller releases them with
 * stp_cache_snapshot_free(). Returns the count.
 */
size_t stp_cache_snapshot(struct stp_rec ***out);
void stp_cache_snapshot_free(struct stp_rec **recs, size_t n);

/*
 * An issuer for <leaf> among the issuers of the tracked certificates (in
 * SNI setups a context often lacks the chain that a sibling carries): a
 * list of the distinct issuers seen, a few per host. Returns a new
 * reference, or NULL. Any thread.
 */
X509 *stp_cache_get1_issuer(X509 *leaf);

/*
 * Adds *<issuer> (a reference) to that list if its certificate is not in it
 * (returns 1 then), or else replaces it by a reference to the list's object:
 * records of one CA share one issuer object (stp_cache_claim() does the
 * same for a record's issuer when it inserts it). Any thread.
 */
int stp_cache_share_issuer(X509 **issuer);

/*
 * How many issuers the list has had added so far. A record made without its
 * issuer is tried again when this changed since its last attempt: a sibling
 * context (an SNI one that s_server or a server gives no chain) may bring
 * the issuer only after the record was first tried. Any thread.
 */
unsigned long stp_cache_issuers_generation(void);

/* Fields of the held staple, for logs: 1 and *<v>, or 0 if none. */
int stp_cache_verdict(struct stp_rec *rec, struct stp_verdict *v);

#endif
