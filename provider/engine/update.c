/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fetch -> verify -> store for one certificate (see update.h).
 */
#include "engine/update.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rand.h>

#include "engine/clock.h"
#include "engine/fetch.h"
#include "engine/log.h"

void stp_update_sched_params(const struct stp_policy *p,
                             struct stp_sched_params *out)
{
    out->margin_pct = p->refresh_margin;
    out->jitter = p->refresh_jitter;
    out->min_delay = p->refresh_min;
    out->max_delay = p->refresh_max;
    out->retry_base = p->retry_base;
    out->retry_max = p->retry_max;
    out->skew = p->clock_skew;
}

static void verify_opts_of(const struct stp_update_ctx *c, time_t now,
                           struct stp_verify_opts *o)
{
    o->now = now;
    o->skew = c->policy->clock_skew;
    o->cache_ttl = c->certpol->cache_ttl;
    o->skip_verify = c->certpol->skip_verify;
    o->extra_trust = c->extra_trust;
}

int stp_update_load_stored(const struct stp_update_ctx *c, time_t now,
                           unsigned char **der, size_t *len,
                           struct stp_verdict *out, struct stp_err *err)
{
    struct stp_verify_opts vo;

    *der = NULL;
    *len = 0;
    /* Without the authorisation check, a response that any store writer
     * can plant (signed by any key it chooses) proves nothing: under
     * skip_verify only what this process fetched is trusted. */
    if (c->certpol->skip_verify)
        return stp_err_set(err, STP_E_UNTRUSTED, 0,
                           "skip_verify: a response read from store_dir is "
                           "not trusted (any store writer could have made "
                           "it)");
    if (!stp_store_read_response(c->store, c->ci->id_hex,
                                 c->policy->max_response_size, der, len, err))
        return 0;
    verify_opts_of(c, now, &vo);
    if (!stp_verify_response(*der, *len, c->ci->leaf, c->ci->issuer, &vo, out,
                             err)) {
        OPENSSL_free(*der);
        *der = NULL;
        *len = 0;
        return 0;
    }
    return 1;
}

/* One run of the cycle: its context, options and the time it started. */
struct cycle {
    const struct stp_update_ctx *c;
    const struct stp_update_opts *o;
    time_t now;
};

static void sched_in_of(time_t now, int have, const struct stp_verdict *v,
                        unsigned failures, struct stp_sched_in *in)
{
    memset(in, 0, sizeof(*in));
    in->now = now;
    in->have_response = have;
    if (have) {
        in->this_update = v->this_update;
        in->next_update = v->next_update;
    }
    in->failures = failures;
}

/* The next attempt; <from_peer>: the response held came from the fleet
 * (stp_sched_in.from_peer). */
static time_t next_of(const struct stp_policy *p, time_t now, int have,
                      const struct stp_verdict *v, unsigned failures,
                      int from_peer)
{
    struct stp_sched_params sp;
    struct stp_sched_in in;

    stp_update_sched_params(p, &sp);
    sched_in_of(now, have, v, failures, &in);
    in.from_peer = from_peer;
    if (RAND_bytes((unsigned char *)&in.random, sizeof(in.random)) != 1)
        in.random = 0;
    return stp_sched_next(&sp, &in);
}

static time_t next_time(const struct cycle *cy, int have,
                        const struct stp_verdict *v, unsigned failures)
{
    return next_of(cy->c->policy, cy->now, have, v, failures, 0);
}

static int due(const struct cycle *cy, const struct stp_verdict *v)
{
    struct stp_sched_params sp;
    struct stp_sched_in in;

    stp_update_sched_params(cy->c->policy, &sp);
    sched_in_of(cy->now, 1, v, 0, &in);
    return stp_sched_due(&sp, &in);
}

time_t stp_update_next_refresh(const struct stp_policy *policy,
                               const struct stp_verdict *v, time_t now)
{
    struct stp_update_ctx c = { .policy = policy };
    struct cycle cy = { .c = &c, .now = now };

    /* as the cycle decides for a stored response */
    return due(&cy, v) ? now : next_of(policy, now, 1, v, 0, 0);
}

/* The verified answer <der> echoes the nonce of <req> (RFC 8954 2.1). */
static int nonce_echoed(OCSP_REQUEST *req, const unsigned char *der, size_t len,
                        struct stp_err *err)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    OCSP_BASICRESP *bs = resp != NULL ? OCSP_response_get1_basic(resp) : NULL;
    int r = bs != NULL ? OCSP_check_nonce(req, bs) : 0;

    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    if (r == 1)
        return 1;
    return stp_err_set(err, STP_E_NONCE, r,
                       "the answer does not echo the request's nonce "
                       "(client_ocsp_nonce = yes): %s",
                       r == -1 ? "it carries none" : "it carries another");
}

static int fetch_verified(const struct cycle *cy, const char *url,
                          unsigned char **der, size_t *len,
                          struct stp_verdict *v, struct stp_err *err)
{
    const struct stp_update_ctx *c = cy->c;
    struct stp_fetch_opts fo;
    struct stp_verify_opts vo;
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    OCSP_CERTID *id = stp_certinfo_certid(c->ci);
    int ok = 0;

    if (req == NULL || id == NULL || !OCSP_request_add0_id(req, id)) {
        OCSP_CERTID_free(id);
        OCSP_REQUEST_free(req);
        return stp_err_set(err, STP_E_INTERNAL, 0, "cannot build request");
    }
    /* client_ocsp_nonce: a client certificate's request carries a nonce */
    if (c->client && c->policy->client_nonce
        && !OCSP_request_add1_nonce(req, NULL, -1)) {
        OCSP_REQUEST_free(req);
        return stp_err_set(err, STP_E_INTERNAL, 0, "cannot add a nonce");
    }
    fo.timeout_ms = c->certpol->timeout * 1000;
    fo.connect_timeout_ms = (c->policy->connect_timeout < c->certpol->timeout
                                 ? c->policy->connect_timeout
                                 : c->certpol->timeout)
                            * 1000;
    fo.max_size = c->policy->max_response_size;
    if (cy->o->fetch != NULL
            ? cy->o->fetch(cy->o->fetch_arg, url, req, &fo, der, len, err)
            : stp_fetch(url, req, &fo, der, len, err)) {
        verify_opts_of(c, stp_now(), &vo);
        ok = stp_verify_response(*der, *len, c->ci->leaf, c->ci->issuer, &vo, v,
                                 err);
        if (ok && c->client && c->policy->client_nonce)
            ok = nonce_echoed(req, *der, *len, err);
        if (!ok) {
            OPENSSL_free(*der);
            *der = NULL;
        }
    }
    OCSP_REQUEST_free(req);
    return ok;
}

static void record(const struct cycle *cy, struct stp_state *s, const char *url)
{
    const struct stp_certinfo *ci = cy->c->ci;
    struct stp_err e;

    snprintf(s->url, sizeof(s->url), "%s", url);
    snprintf(s->subject, sizeof(s->subject), "%s", ci->subject);
    snprintf(s->serial, sizeof(s->serial), "%s", ci->serial);
    snprintf(s->role, sizeof(s->role), "%s", cy->c->client ? "client" : "");
    if (!stp_store_write_state(cy->c->store, ci->id_hex, s, &e))
        STP_LOG_WARN("store", "%s: %s", ci->ident, e.msg);
}

/* Hands <der> and its verdict to <res> as the response now held. */
static void hold(struct stp_update_result *res, unsigned char **der, size_t len,
                 const struct stp_verdict *v)
{
    OPENSSL_free(res->der);
    res->der = *der;
    res->len = len;
    res->verdict = *v;
    res->have_verdict = 1;
    *der = NULL;
}

/* The stored response, if it verifies now (no store: none). */
static int load_old(const struct cycle *cy, unsigned char **der, size_t *len,
                    struct stp_verdict *old)
{
    const struct stp_update_ctx *c = cy->c;
    struct stp_err e;

    if (c->store == NULL)
        return 0;
    if (stp_update_load_stored(c, cy->now, der, len, old, &e))
        return 1;
    if (e.detail != ENOENT && e.code != STP_E_UNTRUSTED)
        STP_LOG_WARN("store", "%s: stored response %s/%s.der rejected: %s",
                     c->ci->ident, stp_store_dir(c->store), c->ci->id_hex,
                     e.msg);
    return 0;
}

/* A fetched response: kept if it may replace <old> (NULL: none; <what>
 * names it in messages), then stored. */
static int take_fresh(const struct cycle *cy, unsigned char **der, size_t len,
                      const struct stp_verdict *fresh,
                      const struct stp_verdict *old, const char *what,
                      struct stp_update_result *res, struct stp_err *err)
{
    const struct stp_update_ctx *c = cy->c;
    struct stp_err e;

    switch (stp_verdict_may_replace(old, fresh, stp_now())) {
    case STP_REPLACE_NO_UNKNOWN:
        return stp_err_set(err, STP_E_CERT_UNKNOWN, 0,
                           "responder says unknown; keeping the good response "
                           "held until it expires");
    case STP_REPLACE_NO_OLDER:
        return stp_err_set(err, STP_E_OLDER, 0,
                           "responder sent a response older than the %s one "
                           "(thisUpdate %lds earlier); keeping the %s one",
                           what, (long)(old->this_update - fresh->this_update),
                           what);
    default:
        break;
    }
    if (c->store != NULL
        && stp_store_write_response(c->store, c->ci->id_hex, *der, len, &e)) {
        /* the leaf and its issuer, so the CLI can show and re-verify */
        if (!stp_store_write_chain(c->store, c->ci->id_hex, c->ci->leaf,
                                   c->ci->issuer, &e))
            STP_LOG_WARN("store", "%s: %s", c->ci->ident, e.msg);
        res->stored = 1;
    } else if (c->store != NULL) {
        STP_LOG_WARN("store", "%s: %s (the response is held in memory only)",
                     c->ci->ident, e.msg);
    }
    hold(res, der, len, fresh);
    return 1;
}

/*
 * The fleet tier (fleet.h) in the cycle. Every value read from the fleet is
 * verified like a stored file and must be newer than the response held,
 * and not itself due, to be taken; anything else is refused (said once per
 * cycle) and this host fetches, then overwrites it.
 */
enum fleet_step { FLEET_FETCH, FLEET_TOOK, FLEET_LEASED, FLEET_STOP };

/* Whether the fleet takes part for this certificate: not under
 * skip_verify, where nothing read from it could be trusted (and waiting
 * for another host's lease would buy nothing). */
static int fleet_on(const struct cycle *cy)
{
    return cy->c->fleet != NULL && !cy->c->certpol->skip_verify;
}

static void net_begin(const struct cycle *cy)
{
    if (cy->o->net_begin != NULL)
        cy->o->net_begin();
}

static void net_end(const struct cycle *cy)
{
    if (cy->o->net_end != NULL)
        cy->o->net_end();
}

/* The fleet's response, taken if it may be (1); 0 when there is none to
 * take; -1 when the fleet cannot be asked. <said>: a refusal was logged in
 * this cycle. */
static int fleet_take(const struct cycle *cy, const struct stp_verdict *base,
                      struct stp_update_result *res, int *said)
{
    const struct stp_update_ctx *c = cy->c;
    struct stp_fleet_meta m;
    struct stp_verify_opts vo;
    struct stp_verdict v;
    struct stp_err e;
    unsigned char *der = NULL;
    const char *why = NULL;
    size_t len = 0;
    int r;

    net_begin(cy);
    r = stp_fleet_get(c->fleet, c->ci->id_hex, c->policy->max_response_size,
                      &der, &len, &m);
    net_end(cy);
    if (r <= 0)
        return r;
    verify_opts_of(c, stp_now(), &vo);
    if (!stp_verify_response(der, len, c->ci->leaf, c->ci->issuer, &vo, &v,
                             &e)) {
        why = e.msg;
    } else {
        switch (stp_verdict_may_replace(base, &v, vo.now)) {
        case STP_REPLACE_NO_OLDER:
            why = "older than the response held";
            break;
        case STP_REPLACE_NO_UNKNOWN:
            why = "\"unknown\" while the response held says good";
            break;
        default:
            break;
        }
    }
    if (why != NULL) {
        if (!*said)
            STP_LOG_WARN("fleet",
                         "%s: the fleet's response (published by %s) "
                         "refused: %s; fetching it here",
                         c->ci->ident, m.host[0] ? m.host : "?", why);
        *said = 1;
        OPENSSL_free(der);
        return 0;
    }
    /* not newer, or due itself: the fleet needs a fetch as much as we do */
    if ((base != NULL && v.this_update <= base->this_update) || due(cy, &v)) {
        OPENSSL_free(der);
        return 0;
    }
    if (!take_fresh(cy, &der, len, &v, base, "held", res, &e)) {
        OPENSSL_free(der);
        return 0;
    }
    res->from_fleet = 1;
    STP_LOG_INFO("refresh",
                 "%s: took the fleet's %s response (fetched by %s %lds ago), "
                 "no request",
                 c->ci->ident, stp_cert_status_name(v.status),
                 m.host[0] ? m.host : "?",
                 m.at > 0 ? (long)(cy->now - m.at) : -1L);
    return 1;
}

/*
 * Before a fetch: the fleet's response if it may be taken; else this host's
 * lease on the certificate; else, while another host holds the lease, its
 * response as soon as it is published, polled until the lease would have
 * expired (a host killed mid-fetch costs that wait, once). With .force the
 * fleet's response is not taken and no lease is waited for.
 */
static enum fleet_step fleet_before(const struct cycle *cy,
                                    const struct stp_verdict *base,
                                    struct stp_update_result *res,
                                    char token[STP_FLEET_TOKEN_LEN])
{
    const struct stp_update_ctx *c = cy->c;
    long lease_ms = c->certpol->timeout * 1000 + 2000;
    long long deadline = stp_monotonic_ms() + lease_ms;
    int r, said = 0;

    if (!cy->o->force && (r = fleet_take(cy, base, res, &said)) != 0)
        return r > 0 ? FLEET_TOOK : FLEET_FETCH;
    for (;;) {
        unsigned char rnd = 0;

        net_begin(cy);
        r = stp_fleet_lease(c->fleet, c->ci->id_hex, lease_ms, token);
        net_end(cy);
        if (r > 0) {
            /* the host that held the lease may have published between
             * our look and our lease: look again before asking */
            if (!cy->o->force && fleet_take(cy, base, res, &said) > 0) {
                net_begin(cy);
                stp_fleet_release(c->fleet, c->ci->id_hex, token);
                net_end(cy);
                return FLEET_TOOK;
            }
            return FLEET_LEASED;
        }
        if (r < 0 || cy->o->force)
            return FLEET_FETCH;
        if (cy->o->stopping != NULL && cy->o->stopping())
            return FLEET_STOP; /* the process exits: no request now */
        if (stp_monotonic_ms() >= deadline) {
            STP_LOG_INFO("fleet",
                         "%s: another host held the lease for %lds without "
                         "publishing: fetching it here",
                         c->ci->ident, lease_ms / 1000);
            return FLEET_FETCH;
        }
        RAND_bytes(&rnd, 1);
        net_begin(cy);
        poll(NULL, 0, 100 + rnd % 50);
        net_end(cy);
        if ((r = fleet_take(cy, base, res, &said)) != 0)
            return r > 0 ? FLEET_TOOK : FLEET_FETCH;
    }
}

/* After a fetch: what this host now holds, for the others; the lease
 * released if it is still ours. */
static void fleet_after(const struct cycle *cy, int ok, int leased,
                        const struct stp_update_result *res,
                        const char token[STP_FLEET_TOKEN_LEN])
{
    const struct stp_update_ctx *c = cy->c;
    time_t now = stp_now();

    net_begin(cy);
    if (ok && res->der != NULL && res->verdict.next_update > now
        && stp_fleet_publish(c->fleet, c->ci->id_hex, res->der, res->len,
                             (long long)(res->verdict.next_update - now) * 1000,
                             now)
               < 0)
        STP_LOG_DEBUG("fleet", "%s: not published (the fleet is down)",
                      c->ci->ident);
    if (leased)
        stp_fleet_release(c->fleet, c->ci->id_hex, token);
    net_end(cy);
}

/*
 * Before the lock: a stored response that verifies and is not due is kept
 * as the cycle under the lock would keep it (res->reused), and the lock is
 * not taken. The lock is for the process that fetches; a file is replaced
 * by rename, so a reader sees a whole one. Taking it to read made the
 * other processes of a server, which each read what one of them fetched,
 * hold it in turn: a process that met it held at two of its tries (one
 * process's fetch, another's read half a minute later) took it for a lock
 * stuck for the whole time (issue #9, the N = 10,000 benchmark). Anything
 * else (no file, due, not verifying) is left to the cycle under the lock,
 * which reads it again and says why it was rejected.
 */
/* Keeps the stored response <der> (verdict <v>), not due: res->reused. */
static void keep_stored(const struct cycle *cy, unsigned char **der, size_t len,
                        const struct stp_verdict *v,
                        struct stp_update_result *res)
{
    hold(res, der, len, v);
    res->reused = 1;
    res->next_refresh = next_time(cy, 1, v, 0);
}

static int stored_not_due(const struct cycle *cy, struct stp_update_result *res)
{
    unsigned char *der = NULL;
    size_t len = 0;
    struct stp_verdict v;
    struct stp_err e;

    if (cy->c->store == NULL || cy->o->force
        || !stp_update_load_stored(cy->c, cy->now, &der, &len, &v, &e))
        return 0;
    if (due(cy, &v)) {
        OPENSSL_free(der);
        return 0;
    }
    keep_stored(cy, &der, len, &v, res);
    return 1;
}

/* Under the lock (if there is a store): decide, fetch, compare, write. */
static int cycle(const struct cycle *cy, struct stp_update_result *res,
                 struct stp_err *err)
{
    struct stp_verdict old, fresh;
    struct stp_state state;
    unsigned char *der = NULL, *old_der = NULL;
    size_t len = 0, old_len = 0;
    char token[STP_FLEET_TOKEN_LEN];
    enum fleet_step fs = FLEET_FETCH;
    int have_old, ok = 0;

    memset(&state, 0, sizeof(state));
    if (cy->c->store != NULL)
        stp_store_read_state(cy->c->store, cy->c->ci->id_hex, &state);
    have_old = load_old(cy, &old_der, &old_len, &old);
    if (have_old && !cy->o->force && !due(cy, &old)) {
        keep_stored(cy, &old_der, old_len, &old, res);
        return 1;
    }
    if (cy->o->shared_backoff && !cy->o->force && state.failures > 0
        && state.next_attempt > cy->now) {
        /* a process that waited on the lock of a failing responder must
         * not ask it again at once: the holder's backoff is everyone's */
        if (have_old)
            hold(res, &old_der, old_len, &old);
        OPENSSL_free(old_der);
        res->next_refresh = state.next_attempt;
        return stp_err_set(err, STP_E_DEFERRED, 0,
                           "%lds after a failed attempt (%s): next attempt "
                           "in %lds",
                           (long)(cy->now - state.last_attempt),
                           state.last_error[0] ? state.last_error : "?",
                           (long)(state.next_attempt - cy->now));
    }
    if (fleet_on(cy))
        fs = fleet_before(cy, have_old ? &old : cy->o->held, res, token);
    if (fs == FLEET_STOP) {
        if (have_old)
            hold(res, &old_der, old_len, &old);
        OPENSSL_free(old_der);
        return stp_err_set(err, STP_E_BUSY, 0,
                           "stopping while another host holds the lease");
    }
    if (fs == FLEET_TOOK) {
        OPENSSL_free(old_der);
        state.failures = 0;
        state.last_success = cy->now;
        state.last_error[0] = '\0';
        /* on the fleet's schedule: a response another host fetched a while
         * ago is due sooner than refresh_min, and then this host looks at
         * the fleet (or fetches for it) with the others, not a round late */
        res->next_refresh =
            next_of(cy->c->policy, cy->now, 1, &res->verdict, 0, 1);
        state.next_attempt = res->next_refresh;
        if (cy->c->store != NULL)
            record(cy, &state, res->url);
        return 1;
    }
    res->fetched = 1;
    state.last_attempt = cy->now;
    ok = fetch_verified(cy, res->url, &der, &len, &fresh, err);
    if (!ok && err->code == STP_E_BUSY) {
        /* the fetch callback had no fetch slot: no request went out, and
         * the responder is not to blame (nothing recorded) */
        if (fs == FLEET_LEASED)
            fleet_after(cy, 0, 1, res, token);
        res->fetched = 0;
        if (have_old)
            hold(res, &old_der, old_len, &old);
        OPENSSL_free(old_der);
        OPENSSL_free(der);
        return 0;
    }
    if (ok) {
        /* compared with the stored response, else with the caller's */
        const struct stp_verdict *base = have_old      ? &old
                                         : cy->o->held ? cy->o->held
                                                       : NULL;

        ok = take_fresh(cy, &der, len, &fresh, base,
                        have_old ? "stored" : "held", res, err);
    }
    OPENSSL_free(der);
    if (fleet_on(cy))
        fleet_after(cy, ok, fs == FLEET_LEASED, res, token);
    if (ok) {
        state.failures = 0;
        state.last_success = cy->now;
        state.last_error[0] = '\0';
    } else {
        state.failures++;
        snprintf(state.last_error, sizeof(state.last_error), "%s: %s",
                 stp_code_name(err->code), err->msg);
        if (have_old)
            hold(res, &old_der, old_len, &old);
    }
    OPENSSL_free(old_der);
    res->next_refresh =
        next_time(cy, res->have_verdict, &res->verdict, state.failures);
    state.next_attempt = res->next_refresh;
    if (cy->c->store != NULL)
        record(cy, &state, res->url);
    return ok;
}

void stp_update_result_free(struct stp_update_result *res)
{
    OPENSSL_free(res->der);
    res->der = NULL;
    res->len = 0;
}

int stp_update_cert(const struct stp_update_ctx *c,
                    const struct stp_update_opts *opts,
                    struct stp_update_result *res, struct stp_err *err)
{
    const struct stp_certinfo *ci = c->ci;
    struct cycle cy = { c, opts, 0 };
    const char *url;
    int lock, ok;

    memset(res, 0, sizeof(*res));
    stp_err_clear(err);
    url = opts->url != NULL                   ? opts->url
          : c->certpol->responder_url != NULL ? c->certpol->responder_url
                                              : ci->url;
    if (url == NULL)
        return stp_err_set(err, STP_E_NO_URL, 0,
                           "%s: no OCSP responder URL in the certificate "
                           "(not applicable)",
                           ci->ident);
    if (!stp_url_usable(url))
        return stp_err_set(err, STP_E_BAD_URL, 0,
                           "%s: responder URL '%s' is not http(s)", ci->ident,
                           url);
    if (ci->issuer == NULL)
        return stp_err_set(err, STP_E_NO_ISSUER, 0,
                           "%s: issuer certificate not found (give the chain "
                           "or --issuer)",
                           ci->ident);
    snprintf(res->url, sizeof(res->url), "%s", url);
    lock = -1;
    ERR_clear_error(); /* messages must carry this cycle's causes only */
    cy.now = stp_now();
    if (stored_not_due(&cy, res))
        return 1;
    if (c->store != NULL) {
        lock = stp_store_lock(c->store, ci->id_hex, opts->lock_wait_ms, err);
        if (lock < 0 && err->code == STP_E_BUSY) {
            res->lock_held = 1;
            return 0;
        }
        if (lock < 0)
            STP_LOG_WARN("store", "%s: %s: going on without the lock",
                         ci->ident, err->msg);
        stp_err_clear(err);
    }
    cy.now = stp_now();
    ok = cycle(&cy, res, err);
    stp_store_unlock(lock);
    if (ok && res->fetched) /* a response from the fleet: fleet_take() said */
        STP_LOG_INFO("refresh",
                     "%s: %s %s response from %s, next refresh in %lds",
                     ci->ident, res->stored ? "stored" : "holding",
                     stp_cert_status_name(res->verdict.status), url,
                     (long)(res->next_refresh - stp_now()));
    else if (!ok && (err->code == STP_E_DEFERRED || err->code == STP_E_BUSY))
        STP_LOG_DEBUG("refresh", "%s: %s", ci->ident, err->msg);
    else if (!ok)
        STP_LOG_WARN("refresh", "%s: %s", ci->ident, err->msg);
    return ok;
}
