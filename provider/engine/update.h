/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One certificate's refresh cycle, shared by the CLI and the in-process
 * refresher: under the certificate's store lock, load and re-verify the
 * stored response; if it is missing, invalid or due, fetch a new one,
 * verify it, and store it if it may replace the one held
 * (stp_verdict_may_replace(): a replayed "good" after a revocation must not
 * win, nor an "unknown" over a good one). The sidecar state records every
 * attempt. The last good response is never removed on a failure: it stays
 * until its nextUpdate, after which nothing serves it.
 */
#ifndef STP_ENGINE_UPDATE_H
#define STP_ENGINE_UPDATE_H

#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "engine/certinfo.h"
#include "engine/err.h"
#include "engine/fetch.h"
#include "engine/fleet.h"
#include "engine/policy.h"
#include "engine/schedule.h"
#include "engine/store.h"
#include "engine/verify.h"

/* What one cycle works on; every pointer is borrowed. */
struct stp_update_ctx {
    const struct stp_policy *policy;
    /* the effective settings for .ci (stp_policy_resolve()), resolved once
     * by the caller */
    const struct stp_certpol *certpol;
    struct stp_store *store; /* NULL: unusable (fetch for this process) */
    const struct stp_certinfo *ci;
    STACK_OF(X509) *extra_trust; /* more anchors (ca_file), or NULL */
    int client; /* a client certificate's answer (client_ocsp): its state
                 * says so, for `ocspstaple status` */
    /* the fleet tier (fleet_url), or NULL: before a fetch, a newer response
     * from the fleet is taken, else its lease; a fetched one is published */
    struct stp_fleet *fleet;
};

/* The exchange with the responder; stp_fetch() unless a test replaces it. */
typedef int (*stp_fetch_fn)(void *arg, const char *url, OCSP_REQUEST *req,
                            const struct stp_fetch_opts *opts,
                            unsigned char **body, size_t *len,
                            struct stp_err *err);

struct stp_update_opts {
    const char *url;   /* responder override (CLI --url), or NULL */
    int force;         /* fetch even if the stored response is not yet due */
    long lock_wait_ms; /* how long to wait for another process's fetch */
    /* the response the caller holds (in memory), or NULL: a fetched one
     * must be allowed to replace it when no stored one is there */
    const struct stp_verdict *held;
    /* honour a failure another process recorded in the sidecar state: no
     * fetch before the next attempt it scheduled (STP_E_DEFERRED) */
    int shared_backoff;
    stp_fetch_fn fetch; /* NULL: stp_fetch() */
    void *fetch_arg;
    /* around each exchange with the fleet and each wait for it (the
     * refresher leaves its fork gate there), or NULL */
    void (*net_begin)(void);
    void (*net_end)(void);
    int (*stopping)(void); /* non-zero: stop waiting for the fleet; or NULL */
};

struct stp_update_result {
    struct stp_verdict verdict; /* of the response now held, if .have_verdict */
    int have_verdict;
    unsigned char *der; /* that response (stp_update_result_free()) */
    size_t len;
    int fetched;    /* a request went to the responder */
    int reused;     /* the stored response was kept, not due yet */
    int stored;     /* a new response was written */
    int from_fleet; /* that response came from the fleet, not the responder */
    int lock_held;  /* another process held the certificate's lock past
                     * lock_wait_ms: nothing was done (STP_E_BUSY) */
    time_t next_refresh;
    char url[512]; /* the responder URL used */
};

/*
 * Runs the cycle for <c>->ci. Unless forced, a stored response that
 * verifies and is not due is kept without taking the certificate's store
 * lock (which only the process that fetches needs). With <c>->fleet, a
 * due certificate is first looked up in the fleet: a response there that
 * verifies like a stored file, is newer than the one held and is not due itself
 * is taken (stored, no request; res->from_fleet); else this host takes the
 * certificate's lease, or waits (at most the fetch timeout plus 2 s, polling)
 * for the host that holds it, then fetches and publishes what it fetched. The
 * fleet being down or wrong only costs that lookup (fleet_timeout).
 * <c>->store may be NULL when the store
 * directory is unusable: the response is then fetched and verified but
 * neither shared nor kept. A response that verifies but cannot be written
 * is held in memory (res->stored stays 0, a warning is logged). Returns 1
 * when a response was fetched now (or, unless forced, the stored one is not
 * due yet), 0 with <err> otherwise (STP_E_NO_URL when the certificate names
 * no usable responder: not applicable, not a failure of the responder;
 * STP_E_DEFERRED with .shared_backoff when another process's attempt failed
 * and its next attempt, res->next_refresh, has not come: not a failure);
 * either way res->der holds the verified response current now, if any (the
 * last good one survives a failed fetch). The caller frees it with
 * stp_update_result_free(). Blocks for at most the lock wait plus the fetch
 * timeout. Any thread.
 */
int stp_update_cert(const struct stp_update_ctx *c,
                    const struct stp_update_opts *opts,
                    struct stp_update_result *res, struct stp_err *err);

/*
 * Loads <c>->ci's stored response and verifies it at <now>. Returns 1 with
 * the DER (caller frees with OPENSSL_free()) and its verdict, or 0 with
 * <err> (detail ENOENT when there is none; STP_E_UNTRUSTED under
 * skip_verify, where no stored response is trusted). Takes no lock: the file is
 * replaced by rename, so a read sees a whole file.
 */
int stp_update_load_stored(const struct stp_update_ctx *c, time_t now,
                           unsigned char **der, size_t *len,
                           struct stp_verdict *out, struct stp_err *err);

/* Frees the response held in <res>. */
void stp_update_result_free(struct stp_update_result *res);

/*
 * When a response with verdict <v>, held at <now>, is due for a refresh
 * under <policy>, as the cycle decides for a stored response: <now> if it
 * is due, else its schedule (stp_sched_next(), with jitter). For a
 * response taken from the store without a cycle.
 */
time_t stp_update_next_refresh(const struct stp_policy *policy,
                               const struct stp_verdict *v, time_t now);

/* The schedule parameters of <policy>. */
void stp_update_sched_params(const struct stp_policy *policy,
                             struct stp_sched_params *out);

#endif
