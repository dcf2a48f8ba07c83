/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The refresher (see refresh.h): a dispatcher thread and fetch_concurrency
 * workers. The dispatcher tracks the contexts the hook queued, reads the
 * store, and queues every due record in the fetch pool (pool.h: per-host
 * queues, caps and circuit breakers); a worker takes one record at a time
 * and runs its update cycle. A record's schedule (rf: next, failures) is
 * written by the one worker that holds it while it is busy, and read by the
 * dispatcher only while it is not. Staples are touched only through
 * cache.c.
 */
#include "server/refresh.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "engine/expo.h"
#include "server/cache.h"
#include "server/client.h"
#include "engine/clock.h"
#include "engine/fetch.h"
#include "engine/log.h"
#include "server/metrics.h"
#include "server/pool.h"
#include "server/runtime.h"
#include "server/stack.h"
#include "engine/update.h"

#define MAX_SLEEP_S    60 /* re-evaluate at least this often */
#define METRICS_S      10 /* this process's counters to the store this often */
#define METRICS_FILE_S 30 /* metrics_file this often */

static pthread_mutex_t rf_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rf_cond;
static atomic_int running;
static int woken; /* under rf_lock */
static atomic_int store_err_logged;
static pthread_once_t cond_once = PTHREAD_ONCE_INIT;
/* Read-held by a refresher thread while it works on one certificate (but
 * for the network exchange), so that a fork (prepare handler) and OpenSSL's
 * cleanup at exit, which take it for writing, wait for the steps to finish,
 * bounded, instead of catching a thread inside OpenSSL or holding our
 * locks. Writers are preferred: no new step starts while one waits. */
static pthread_rwlock_t work_gate;
static pthread_once_t gate_once = PTHREAD_ONCE_INIT;
static atomic_int stopping; /* OpenSSL is being cleaned up: stop */
static int fork_held;       /* prepare took work_gate */
/* under rf_lock: the dispatcher's next pass (0 while it runs one), and the
 * earliest next attempt a worker scheduled while it ran one */
static time_t planned_wake, missed_next;
static atomic_int nworkers; /* worker threads running */
static atomic_int cleanup_registered;
static atomic_int prepared; /* stp_refresh_prepare() ran in this process */

#define QUIESCE_MS 2000 /* longest wait for the refresher's current step */

static void init_gate(void)
{
    pthread_rwlockattr_t a;

    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&work_gate, &a);
    pthread_rwlockattr_destroy(&a);
}

static void step_begin(void)
{
    pthread_once(&gate_once, init_gate);
    pthread_rwlock_rdlock(&work_gate);
}

static void step_end(void)
{
    pthread_rwlock_unlock(&work_gate);
}

/* Takes work_gate for writing within <ms>: every step has ended. */
static int gate_within(long ms)
{
    struct timespec ts;

    pthread_once(&gate_once, init_gate);
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_rwlock_timedwrlock(&work_gate, &ts) == 0;
}

static void init_cond(void)
{
    stp_cond_init_monotonic(&rf_cond);
}

/* The update cycle's view of <rec>: its settings were resolved once, when
 * it was tracked. */
static void ctx_of(const struct stp_rec *rec, struct stp_store *st,
                   struct stp_update_ctx *c)
{
    c->policy = stp_runtime_get0_policy();
    c->certpol = &rec->pol;
    c->store = st;
    c->ci = rec->ci;
    c->extra_trust = stp_runtime_get0_trust();
    c->client = rec->client;
    /* a client certificate's answer is this host's own (it may carry this
     * host's nonce): the fleet shares staples only */
    c->fleet = rec->client ? NULL : stp_runtime_get0_fleet();
}

/* A response was published for <rec>: a revoked one is said (WARN, once
 * while it stays revoked), whatever the mode does with it. */
static void published(struct stp_rec *rec, const struct stp_verdict *v)
{
    int revoked = v->status == V_OCSP_CERTSTATUS_REVOKED;

    if (rec->client)
        return; /* client decisions are said by client.c */
    if (!revoked) {
        atomic_store(&rec->said_revoked, 0);
        return;
    }
    if (atomic_exchange(&rec->said_revoked, 1) == 0)
        STP_LOG_WARN("refresh",
                     "%s: the responder says this certificate is revoked%s",
                     rec->ci->ident,
                     rec->dec.refuse_revoked
                         ? ": handshakes that select it are refused"
                         : ": its revoked status is stapled (mode auto); "
                           "replace the certificate");
}

/* Publishes the stored response of <rec> if it verifies now. */
static void take_stored(struct stp_rec *rec, struct stp_store *st, time_t now)
{
    struct stp_update_ctx c;
    unsigned char *der = NULL;
    size_t len = 0;
    struct stp_verdict v;
    struct stp_err err;

    ctx_of(rec, st, &c);
    if (!stp_update_load_stored(&c, now, &der, &len, &v, &err)) {
        if (err.detail != ENOENT && err.code != STP_E_UNTRUSTED)
            STP_LOG_DEBUG("refresh", "%s: stored response not usable: %s",
                          rec->ci->ident, err.msg);
        return;
    }
    if (stp_cache_publish(rec, der, len, &v, now) == STP_REPLACE_YES) {
        stp_metric_inc(STP_M_STORE_LOAD);
        published(rec, &v);
    }
    OPENSSL_free(der);
}

static struct stp_store *store_or_log(void);

/* stored_read: 0 not read, 1 being read, 2 read. The refresher reads what
 * nobody has claimed; a handshake reads what is not read yet, even while
 * the refresher reads it (it must not go without a staple that is there). */
static void load_stored(struct stp_rec *rec, int claimed_only)
{
    struct stp_store *st;
    int unread = 0;

    if (!atomic_compare_exchange_strong(&rec->stored_read, &unread, 1)
        && (claimed_only || unread == 2))
        return;
    if (stp_runtime_active() && (st = store_or_log()) != NULL)
        take_stored(rec, st, stp_now());
    atomic_store(&rec->stored_read, 2);
}

void stp_refresh_load_stored(struct stp_rec *rec)
{
    load_stored(rec, 0);
}

void stp_refresh_load_all(void)
{
    struct stp_rec **recs = NULL;
    size_t n = stp_cache_snapshot(&recs), i;

    for (i = 0; i < n; i++)
        if (recs[i]->dec.staple)
            load_stored(recs[i], 1);
    stp_cache_snapshot_free(recs, n);
}

static struct stp_store *store_or_log(void)
{
    struct stp_err err;
    struct stp_store *st = stp_runtime_get0_store(&err);

    if (st == NULL && atomic_exchange(&store_err_logged, 1) == 0)
        STP_LOG_ERR("store",
                    "%s: fetching for this process alone (no sharing with "
                    "other processes, nothing kept across restarts)",
                    err.msg);
    return st;
}

/*
 * revoked_action exit. A single-process server terminates itself. A worker
 * of a master/worker server (nginx, Apache, HAProxy -W: its parent runs the
 * same program) cannot stop the server: its master respawns it at once, the
 * new worker finds the same revoked response and exits again, forever, and
 * a worker running as www-data may not signal a master running as root.
 * There the certificate is refused (mode must or always already refuses
 * its handshakes) and one ERROR says what the operator has to do.
 */
static void check_revoked(struct stp_rec *rec)
{
    struct stp_verdict v;
    char parent[32];

    if (!rec->dec.refuse_revoked || rec->rf.exit_sent
        || stp_runtime_get0_policy()->revoked_action != STP_REVOKED_EXIT
        || !stp_cache_verdict(rec, &v) || v.status != V_OCSP_CERTSTATUS_REVOKED)
        return;
    rec->rf.exit_sent = 1;
    if (stp_runtime_parent_is_same_program(parent, sizeof(parent))) {
        STP_LOG_ERR("refresh",
                    "%s: certificate is revoked: revoked_action exit is not "
                    "possible in a worker of a master/worker server (its "
                    "parent %d is %s too, and would start it again): "
                    "refusing the handshakes that select it instead; stop "
                    "or fix the server with its own tools",
                    rec->ci->ident, (int)getppid(), parent);
        return;
    }
    STP_LOG_ERR("refresh",
                "%s: certificate is revoked: revoked_action exit: "
                "terminating %s",
                rec->ci->ident, stp_runtime_program());
    kill(getpid(), SIGTERM);
}

static enum stp_attempt attempt_of(int ok, const struct stp_err *err)
{
    if (ok)
        return STP_ATTEMPT_OK;
    switch (err->code) {
    case STP_E_BUSY:
        return STP_ATTEMPT_BUSY;
    case STP_E_DEFERRED:
        return STP_ATTEMPT_DEFERRED;
    case STP_E_NO_URL:
        return STP_ATTEMPT_NO_URL;
    default:
        return STP_ATTEMPT_FAILED;
    }
}

/* The schedule's answer (schedule.h) for attempt <a>, and its counters. */
static void after_attempt(struct stp_rec *rec, enum stp_attempt a,
                          time_t planned, int fetched,
                          const struct stp_err *err, time_t now)
{
    struct stp_sched_params sp;
    struct stp_sched_after next;

    switch (a) {
    case STP_ATTEMPT_OK:
        if (fetched)
            stp_metric_inc(STP_M_FETCH_OK);
        rec->rf.failures = 0;
        rec->rf.busy_logged = 0;
        break;
    case STP_ATTEMPT_FAILED:
        stp_metric_inc(STP_M_FETCH_FAIL);
        rec->rf.failures++;
        break;
    case STP_ATTEMPT_BUSY:
        /* one bounded wait per attempt, then backoff; said once */
        stp_metric_inc(STP_M_LOCK_BUSY);
        rec->rf.failures++;
        if (!rec->rf.busy_logged) {
            rec->rf.busy_logged = 1;
            STP_LOG_WARN("refresh", "%s: not fetching: %s", rec->ci->ident,
                         err->msg);
        } else {
            STP_LOG_DEBUG("refresh", "%s: still not fetching: %s",
                          rec->ci->ident, err->msg);
        }
        break;
    case STP_ATTEMPT_NO_URL:
        stp_metric_inc(STP_M_FETCH_SKIPPED);
        STP_LOG_DEBUG("refresh", "%s: no OCSP URL: stapling skipped",
                      rec->ci->ident);
        break;
    default:
        break;
    }
    stp_update_sched_params(stp_runtime_get0_policy(), &sp);
    next = stp_sched_after_attempt(&sp, a, now, planned, rec->rf.failures);
    rec->rf.next = next.next;
    rec->rf.done = next.done;
    stp_cache_loaded(rec);
}

/* The refresher alone writes ci->issuer, and only while it is NULL. */
static int have_issuer(struct stp_rec *rec)
{
    /* read before the lookup: an issuer added after it is seen next pass */
    unsigned long gen = stp_cache_issuers_generation();

    if (rec->ci->issuer == NULL)
        rec->ci->issuer = atomic_exchange(&rec->offered_issuer, NULL);
    if (rec->ci->issuer == NULL)
        rec->ci->issuer = stp_cache_get1_issuer(rec->ci->leaf);
    if (rec->ci->issuer != NULL && !atomic_load(&rec->issuer_known)) {
        /* a new issuer: records still without theirs look again now */
        if (stp_cache_share_issuer(&rec->ci->issuer))
            stp_refresh_wake();
        atomic_store(&rec->issuer_known, 1);
    }
    if (rec->ci->issuer == NULL)
        rec->rf.issuer_gen = gen;
    if (rec->ci->issuer == NULL && !rec->rf.issuer_logged) {
        rec->rf.issuer_logged = 1;
        STP_LOG_WARN("refresh",
                     "%s: issuer certificate not found in the "
                     "server's chain, its verify store or ca_file: cannot "
                     "staple it",
                     rec->ci->ident);
    }
    return rec->ci->issuer != NULL;
}

/*
 * One of the fetch_per_host_total slots of <url>'s host, shared by every
 * process of the store (store.h): tried every 10 to 30 ms until <wait_ms>
 * or the process stops. Returns the slot's descriptor, -2 when there is no
 * cap (or no store: the per-process cap alone holds), or -1 with <err>
 * (STP_E_BUSY: every slot stayed held; this attempt is not made).
 */
static int take_slot(struct stp_store *st, const char *url, long wait_ms,
                     struct stp_err *err)
{
    int cap = stp_runtime_get0_policy()->fetch_per_host_total, fd;
    long long deadline = stp_monotonic_ms() + wait_ms;
    char key[STP_POOL_HOST_KEY_LEN];

    if (cap <= 0 || st == NULL)
        return -2;
    stp_pool_host_key(url, key);
    for (;;) {
        unsigned char r = 0;

        if ((fd = stp_store_slot_try(st, key, cap)) >= 0)
            return fd;
        if (errno != EWOULDBLOCK)
            return -2; /* a slot file cannot be had: not a reason to stop */
        if (atomic_load(&stopping) || stp_monotonic_ms() >= deadline)
            break;
        RAND_bytes(&r, 1);
        poll(NULL, 0, 10 + r % 21);
    }
    stp_err_set(err, STP_E_BUSY, EWOULDBLOCK,
                "%s: its %d fetch slots (fetch_per_host_total) stayed held by "
                "this host's processes for %ld ms",
                key, cap, wait_ms);
    return -1;
}

/* The exchange with the responder, outside work_gate: a fork or the exit
 * cleanup need not wait for the network (no lock of ours or of OpenSSL's
 * libcrypto is held across a plain HTTP exchange), nor for a fetch slot.
 * <arg> is the record's timeout in ms (the longest wait for a slot). */
static int fetch_unlocked(void *arg, const char *url, OCSP_REQUEST *req,
                          const struct stp_fetch_opts *opts,
                          unsigned char **body, size_t *len,
                          struct stp_err *err)
{
    struct stp_err serr;
    int ok, slot;

    step_end();
    slot = take_slot(store_or_log(), url, *(const long *)arg, &serr);
    if (slot == -1) {
        step_begin();
        *err = serr;
        return 0;
    }
    ok = stp_fetch(url, req, opts, body, len, err);
    if (slot >= 0)
        stp_store_unlock(slot);
    step_begin();
    return ok;
}

/* What an attempt tells of the responder, for its circuit breaker. */
static enum stp_pool_outcome outcome_of(int ok, int fetched,
                                        const struct stp_err *err)
{
    if (ok)
        return fetched ? STP_POOL_ANSWERED : STP_POOL_NOTHING;
    switch (err->code) {
    case STP_E_CONNECT:
    case STP_E_TIMEOUT:
    case STP_E_TRANSPORT:
    case STP_E_OCSP_TRY_LATER:
    case STP_E_OCSP_INTERNAL_ERROR:
        return STP_POOL_FAULT;
    case STP_E_HTTP:
        return err->detail >= 500 ? STP_POOL_FAULT : STP_POOL_ANSWERED;
    default:
        return fetched ? STP_POOL_ANSWERED : STP_POOL_NOTHING;
    }
}

static int is_stopping(void)
{
    return atomic_load(&stopping);
}

/*
 * Another process holds <rec>'s lock: it is fetching the certificate (a
 * fresh stored file is taken without the lock, stp_update_cert()). Unless
 * that has lasted longer than a fetch can (<fetch_s>), the record is set
 * aside for a second, and its worker and the host's request go to the next
 * certificate: the other process's file is taken at the next try. Waiting
 * here instead held one of the host's fetch_per_host requests for as long
 * as the other process's fetch, and
 * the workers of a server then moved through their queues in a convoy,
 * one certificate fetched by one and awaited by the others (issue #9).
 * Returns 1 if the record was set aside; 0 if the lock has been held too
 * long (a stuck holder: the caller's "busy" path, backoff, said once).
 */
static int set_aside(struct stp_rec *rec, long fetch_s, const char *why)
{
    time_t now = stp_now();

    if (rec->rf.lock_held_since == 0)
        rec->rf.lock_held_since = now;
    if (now - rec->rf.lock_held_since > fetch_s)
        return 0;
    STP_LOG_DEBUG("refresh", "%s: set aside for a second: %s", rec->ci->ident,
                  why);
    /* not stp_cache_loaded(): a handshake waiting for the first attempt
     * waits on, for the other process's file */
    rec->rf.next = now + 1;
    return 1;
}

static enum stp_pool_outcome refresh_one(struct stp_rec *rec, time_t now)
{
    long fetch_ms = rec->pol.timeout * 1000 + 1000;
    long slot_wait_ms = fetch_ms;
    /* A handshake waits for this record (stp_pool_hurry()): wait for the
     * process that is fetching it, whose file is then taken at once. Any
     * other record is set aside while another process holds its lock. */
    int urgent = atomic_load(&rec->urgent);
    struct stp_update_opts uo = { .lock_wait_ms = urgent ? fetch_ms : 0,
                                  .shared_backoff = 1,
                                  .fetch = fetch_unlocked,
                                  .fetch_arg = &slot_wait_ms,
                                  .net_begin = step_end,
                                  .net_end = step_begin,
                                  .stopping = is_stopping };
    struct stp_update_result res = { 0 };
    struct stp_update_ctx c;
    struct stp_verdict held;
    struct stp_err err;
    struct stp_store *st = store_or_log();
    long long t0;
    int ok;

    if (!have_issuer(rec)) {
        after_attempt(rec, STP_ATTEMPT_NO_ISSUER, 0, 0, NULL, now);
        return STP_POOL_NOTHING;
    }
    if (!stp_runtime_get0_policy()->fetch) {
        if (st != NULL)
            take_stored(rec, st, now);
        after_attempt(rec, STP_ATTEMPT_NO_FETCH, 0, 0, NULL, now);
        return STP_POOL_NOTHING;
    }
    if (stp_cache_verdict(rec, &held))
        uo.held = &held;
    /* without a usable store the response is fetched for this process only */
    ctx_of(rec, st, &c);
    t0 = stp_monotonic_ms();
    ok = stp_update_cert(&c, &uo, &res, &err);
    if (res.lock_held && !urgent && set_aside(rec, fetch_ms / 1000, err.msg))
        return STP_POOL_NOTHING;
    if (res.lock_held && !urgent) { /* past what a fetch takes */
        char msg[sizeof(err.msg)];

        memcpy(msg, err.msg, sizeof(msg));
        stp_err_set(&err, STP_E_BUSY, EWOULDBLOCK, "%s for over %lds", msg,
                    (long)(stp_now() - rec->rf.lock_held_since));
    }
    if (!res.lock_held)
        rec->rf.lock_held_since = 0;
    if (res.fetched)
        stp_metric_observe_fetch(stp_monotonic_ms() - t0);
    if (res.der != NULL) {
        switch (
            stp_cache_publish(rec, res.der, res.len, &res.verdict, stp_now())) {
        case STP_REPLACE_YES:
            if (res.from_fleet)
                stp_metric_inc(STP_M_FLEET_TAKEN);
            else if (!res.fetched)
                stp_metric_inc(STP_M_STORE_LOAD);
            published(rec, &res.verdict);
            break;
        case STP_REPLACE_NO_MEMORY:
            break;
        default:
            STP_LOG_WARN("refresh",
                         "%s: the stored response %s/%s.der may not replace "
                         "the one held (older, or unknown over good): still "
                         "stapling the held one",
                         rec->ci->ident, st != NULL ? stp_store_dir(st) : "-",
                         rec->ci->id_hex);
        }
    }
    stp_update_result_free(&res);
    after_attempt(rec, attempt_of(ok, &err), res.next_refresh, res.fetched,
                  &err, now);
    check_revoked(rec);
    return outcome_of(ok, res.fetched, &err);
}

static int (*discover_fn)(void); /* stp_refresh_set_discover() */

void stp_refresh_set_discover(int (*fn)(void))
{
    discover_fn = fn;
}

/* A leaf past its notAfter is not fetched any more (said once); what is
 * held is served until its nextUpdate, as after any failure. */
static int expired(struct stp_rec *rec, time_t now)
{
    if (rec->ci->not_after == 0 || now <= rec->ci->not_after)
        return 0;
    if (!rec->rf.expired_logged) {
        rec->rf.expired_logged = 1;
        STP_LOG_WARN("refresh",
                     "%s: certificate expired (notAfter passed): no longer "
                     "fetched; renew it",
                     rec->ci->ident);
    }
    rec->rf.done = 1;
    stp_cache_loaded(rec);
    return 1;
}

/*
 * Before any request, what the store holds: a warm restart staples every
 * certificate without a fetch, and each one's next refresh follows its own
 * response (with jitter), so the refreshes after a restart are spread.
 */
static void load_pass(struct stp_rec **recs, size_t n, time_t now)
{
    struct stp_verdict v;
    size_t i;

    for (i = 0; i < n && !atomic_load(&stopping); i++) {
        struct stp_rec *rec = recs[i];

        if (atomic_load(&rec->dropped) || !rec->dec.staple
            || atomic_load(&rec->busy))
            continue;
        if (atomic_load(&rec->stored_read) == 0) {
            struct stp_store *st = store_or_log();

            step_begin();
            if (!atomic_load(&stopping)) {
                if (st != NULL)
                    rec->rf.file_stamp =
                        stp_store_response_stamp(st, rec->ci->id_hex);
                load_stored(rec, 1);
            }
            step_end();
        }
        if (rec->rf.next == 0 && stp_cache_verdict(rec, &v))
            rec->rf.next =
                stp_update_next_refresh(stp_runtime_get0_policy(), &v, now);
        check_revoked(rec); /* a revoked response found in the store */
    }
}

/*
 * `ocspstaple fetch` or `refresh` wrote responses (the store's "changed"
 * file, store.h): every record whose stored response is not the one this
 * process last read or wrote takes it (if it verifies and may replace the
 * held one: a newer response), and its next refresh follows it. So an
 * operator's `refresh --force` is served without a reload. One stat of
 * the marker per pass; on a change, one stat per certificate.
 */
static unsigned long long changed_seen;
static int changed_known;

static void follow_store(struct stp_rec **recs, size_t n, time_t now)
{
    struct stp_store *st = stp_runtime_active() ? store_or_log() : NULL;
    unsigned long long stamp, fs;
    struct stp_verdict v;
    size_t i;
    int took = 0;

    if (st == NULL)
        return;
    stamp = stp_store_changed_stamp(st);
    if (!changed_known || stamp == changed_seen) {
        changed_known = 1;
        changed_seen = stamp;
        return;
    }
    changed_seen = stamp;
    for (i = 0; i < n && !atomic_load(&stopping); i++) {
        struct stp_rec *rec = recs[i];

        if (atomic_load(&rec->dropped) || atomic_load(&rec->busy)
            || !rec->dec.staple
            || (fs = stp_store_response_stamp(st, rec->ci->id_hex)) == 0
            || fs == rec->rf.file_stamp)
            continue;
        rec->rf.file_stamp = fs;
        step_begin();
        if (!atomic_load(&stopping)) {
            take_stored(rec, st, now);
            if (stp_cache_verdict(rec, &v))
                rec->rf.next =
                    stp_update_next_refresh(stp_runtime_get0_policy(), &v, now);
            took++;
        }
        step_end();
    }
    STP_LOG_INFO("store",
                 "%s: changed by ocspstaple: %d stored response(s) read "
                 "again",
                 stp_store_dir(st), took);
}

/* The URL a record is fetched from (its responder host's queue). */
static const char *url_of(const struct stp_rec *rec)
{
    return rec->pol.responder_url != NULL ? rec->pol.responder_url
                                          : rec->ci->url;
}

/* One step of a worker (or of the dispatcher without workers). */
static void work_on(struct stp_rec *rec, int slot)
{
    enum stp_pool_outcome o = STP_POOL_NOTHING;
    time_t next;

    step_begin();
    if (!atomic_load(&stopping) && !atomic_load(&rec->dropped)) {
        struct stp_store *st;

        o = refresh_one(rec, stp_now());
        if ((st = store_or_log()) != NULL)
            rec->rf.file_stamp = stp_store_response_stamp(st, rec->ci->id_hex);
    }
    step_end();
    next = rec->rf.next; /* ours until stp_pool_done() */
    stp_pool_done(rec, slot, o, stp_now());
    stp_rec_unref(rec);
    /* the dispatcher sleeps until its planned pass: sooner if needed */
    pthread_mutex_lock(&rf_lock);
    if (planned_wake == 0) {
        if (missed_next == 0 || next < missed_next)
            missed_next = next;
    } else if (next < planned_wake) {
        woken = 1;
        pthread_cond_signal(&rf_cond);
    }
    pthread_mutex_unlock(&rf_lock);
}

/*
 * One pass of the dispatcher: the queued contexts, the store, then every
 * due record into the pool, starting at a random place (the workers of one
 * server do not all begin with the same certificate). Returns when the next
 * record not in the pool is due.
 */
static time_t pass(void)
{
    struct stp_rec **recs = NULL, *rec;
    time_t now = stp_now(), wake = now + MAX_SLEEP_S;
    size_t n, i, start = 0;
    int slot;

    if (atomic_load(&stopping))
        return wake;
    if (discover_fn != NULL) {
        step_begin();
        if (!atomic_load(&stopping) && discover_fn() > 0)
            wake = now + 1; /* contexts left to settle: soon again */
        step_end();
    }
    n = stp_cache_snapshot(&recs);
    load_pass(recs, n, now);
    follow_store(recs, n, now);
    if (n > 0 && RAND_bytes((unsigned char *)&start, sizeof(start)) == 1)
        start %= n;
    for (i = 0; i < n && !atomic_load(&stopping); i++) {
        rec = recs[(start + i) % n];
        /* never past nextUpdate, queued or not */
        if (stp_cache_expire(rec, now) && !rec->client
            && atomic_exchange(&rec->said_lost, 1) == 0)
            STP_LOG_ERR("refresh",
                        "%s: its last valid staple expired (nextUpdate "
                        "passed) and no refresh has succeeded: handshakes "
                        "get no staple until one does",
                        rec->ci->ident);
        if (atomic_load(&rec->dropped) || atomic_load(&rec->busy))
            continue;
        if (stp_client_idle(rec, now)) {
            stp_cache_release(rec); /* its one claim: forgotten */
            continue;
        }
        if (!rec->dec.staple || rec->rf.done || expired(rec, now)) {
            stp_cache_loaded(rec);
            continue;
        }
        /* an issuer offered for a record that had none, or one more in
         * the list since it looked: try now */
        if (rec->rf.next <= now
            || (!atomic_load(&rec->issuer_known)
                && (atomic_load(&rec->offered_issuer) != NULL
                    || rec->rf.issuer_gen != stp_cache_issuers_generation()))) {
            if (stp_pool_submit(rec, url_of(rec)))
                continue;
        }
        if (rec->rf.next < wake)
            wake = rec->rf.next;
    }
    stp_cache_snapshot_free(recs, n);
    /* no worker could be started: do the work here */
    while (atomic_load(&nworkers) == 0 && !atomic_load(&stopping)
           && (rec = stp_pool_take(0, &slot)) != NULL)
        work_on(rec, slot);
    return wake;
}

static void sleep_until(time_t wake)
{
    long long ms, deadline;
    struct timespec ts;

    pthread_mutex_lock(&rf_lock);
    if (missed_next != 0 && missed_next < wake)
        wake = missed_next;
    missed_next = 0;
    planned_wake = wake;
    ms = ((long long)wake - (long long)stp_now()) * 1000;
    deadline = stp_monotonic_ms() + (ms > 0 ? ms : 0);
    while (!woken && stp_monotonic_ms() < deadline) {
        stp_monotonic_ts(deadline, &ts);
        if (pthread_cond_timedwait(&rf_cond, &rf_lock, &ts) == ETIMEDOUT)
            break;
    }
    woken = 0;
    planned_wake = 0;
    pthread_mutex_unlock(&rf_lock);
}

/* Never return: a thread that exits runs OpenSSL's thread-local
 * destructors, which would race with the cleanup that stopped us. The
 * cleanup holds work_gate: this waits until the process is gone. */
static void park(void)
{
    for (;;) {
        step_begin();
        step_end();
        sleep(MAX_SLEEP_S);
    }
}

/* The name of this process's counters file: "<pid>-<start time>" (a pid
 * alone would be taken over by a later process). Into <buf>. */
static void proc_name(char *buf, size_t len)
{
    snprintf(buf, len, "%ld-%llu", (long)getpid(), stp_proc_start_time(0));
}

/* Every METRICS_S, this process's counters go to the store, for
 * `ocspstaple metrics` (a host's total); said once if they cannot. */
static time_t metrics_last; /* when this process last wrote them */
static int metrics_failed_logged;
static char metrics_proc[64]; /* proc_name(), "" until the first write */

static void write_uses(struct stp_store *st);

static void write_metrics(time_t now)
{
    char text[4096];
    struct stp_store *st;
    struct stp_err err;

    if (metrics_last != 0 && now - metrics_last < METRICS_S)
        return;
    metrics_last = now;
    if ((st = store_or_log()) == NULL)
        return;
    if (metrics_proc[0] == '\0')
        proc_name(metrics_proc, sizeof(metrics_proc));
    stp_metrics_format(text, sizeof(text));
    step_begin();
    if (!stp_store_write_metrics(st, metrics_proc, text, &err)
        && !metrics_failed_logged) {
        metrics_failed_logged = 1;
        STP_LOG_WARN("metrics", "%s", err.msg);
    }
    step_end();
    write_uses(st);
}

/*
 * The store's "uses-<proc>" file (store.h): which certificates this process
 * holds, for `ocspstaple status` and `prune`. Rewritten only when that set
 * changes (an order-free digest of the ids and roles), checked with the
 * counters.
 */
static unsigned long long uses_digest;
static size_t uses_count = (size_t)-1;

static void write_uses(struct stp_store *st)
{
    struct stp_rec **recs = NULL;
    unsigned long long digest = 0;
    size_t n, i, held = 0, len = 0, cap;
    char *text;
    struct stp_err err;

    n = stp_cache_snapshot(&recs);
    for (i = 0; i < n; i++) {
        unsigned long long h = 0;

        if (atomic_load(&recs[i]->dropped))
            continue;
        memcpy(&h, recs[i]->ci->id, sizeof(h));
        digest += (h ^ (recs[i]->client ? 0x9e3779b97f4a7c15ULL : 0)) * 2 + 1;
        held++;
    }
    if (held == uses_count && digest == uses_digest) {
        stp_cache_snapshot_free(recs, n);
        return;
    }
    cap = 80 + held * (STP_ID_HEX_LEN + 8);
    if ((text = OPENSSL_malloc(cap)) != NULL) {
        len =
            (size_t)snprintf(text, cap, "program %s\n", stp_runtime_program());
        for (i = 0; i < n && len < cap; i++)
            if (!atomic_load(&recs[i]->dropped))
                len += (size_t)snprintf(text + len, cap - len, "%s %s\n",
                                        recs[i]->ci->id_hex,
                                        recs[i]->client ? "client" : "staple");
        step_begin();
        if (stp_store_write_uses(st, metrics_proc, text, &err)) {
            uses_digest = digest;
            uses_count = held;
        }
        step_end();
        OPENSSL_free(text);
    }
    stp_cache_snapshot_free(recs, n);
}

/* metrics_file: the host's counters (every process's file in the store)
 * and the certificates this process holds, in the exposition format. */
static void expose(FILE *out, struct stp_store *st, time_t now)
{
    struct stp_expo_sums sums;
    struct stp_rec **recs = NULL;
    struct stp_verdict v;
    struct stp_err err;
    size_t n, i;
    int pass, count[2] = { 0, 0 };

    memset(&sums, 0, sizeof(sums));
    stp_store_list_metrics(st, stp_expo_add_process, &sums, &err);
    stp_expo_counters(out, &sums);
    n = stp_cache_snapshot(&recs);
    for (i = 0; i < n; i++)
        count[recs[i]->client ? 1 : 0] += !atomic_load(&recs[i]->dropped);
    stp_expo_head(out, "ocspstaple_certificates", "gauge",
                  "Certificates the writing process holds, by role.");
    fprintf(out, "ocspstaple_certificates{role=\"staple\"} %d\n", count[0]);
    fprintf(out, "ocspstaple_certificates{role=\"client\"} %d\n", count[1]);
    for (pass = 0; pass < 4; pass++) {
        static const char *const names[] = {
            "ocspstaple_staple_present", "ocspstaple_cert_status",
            "ocspstaple_response_this_update_timestamp_seconds",
            "ocspstaple_response_next_update_timestamp_seconds"
        };

        stp_expo_head(out, names[pass], "gauge",
                      pass == 0 ? "1 if a verified response valid now is held."
                      : pass == 1 ? "The status of that response (1)."
                      : pass == 2 ? "thisUpdate of the response held."
                                  : "nextUpdate of the response held.");
        for (i = 0; i < n; i++) {
            struct stp_rec *r = recs[i];
            int held = stp_cache_verdict(r, &v), present;

            if (atomic_load(&r->dropped) || (!r->client && !r->dec.staple))
                continue;
            present = held && v.next_update > now;
            if ((pass == 1 && !present) || (pass >= 2 && !held))
                continue;
            stp_expo_cert(out, names[pass], r->ci->id_hex, r->ci->subject,
                          r->client);
            if (pass == 0)
                fprintf(out, "} %d\n", present);
            else if (pass == 1)
                fprintf(out, ",status=\"%s\"} 1\n",
                        stp_cert_status_name(v.status));
            else
                fprintf(out, "} %lld\n",
                        (long long)(pass == 2 ? v.this_update : v.next_update));
        }
    }
    stp_cache_snapshot_free(recs, n);
}

/* Every METRICS_FILE_S, metrics_file (when set) gets expose(), through a
 * temp file beside it and a rename; a failure is said once. */
static void write_metrics_file(time_t now)
{
    static time_t last;
    static int failed_logged;
    const char *path = stp_runtime_get0_policy()->metrics_file;
    char tmp[4096];
    struct stp_store *st;
    char *text = NULL;
    size_t len = 0, done = 0;
    FILE *out;
    int fd, ok;

    if (path == NULL || (last != 0 && now - last < METRICS_FILE_S))
        return;
    last = now;
    if ((st = store_or_log()) == NULL)
        return;
    out = open_memstream(&text, &len);
    if (out == NULL)
        return;
    step_begin();
    expose(out, st, now);
    step_end();
    fclose(out);
    ok = snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) < (int)sizeof(tmp);
    fd = ok ? mkstemp(tmp) : -1;
    while (fd >= 0 && done < len) {
        ssize_t w = write(fd, text + done, len - done);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    ok = fd >= 0 && done == len && fchmod(fd, 0644) == 0;
    if (fd >= 0)
        ok = close(fd) == 0 && ok;
    if (ok && rename(tmp, path) != 0)
        ok = 0;
    if (!ok) {
        if (fd >= 0)
            unlink(tmp);
        if (!failed_logged) {
            failed_logged = 1;
            STP_LOG_WARN("metrics", "metrics_file %s: cannot write: %s", path,
                         strerror(errno));
        }
    }
    free(text);
}

static void *run(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "ocspstaple");
    STP_LOG_INFO("refresh", "refresher started in %s (%d fetch workers)",
                 stp_runtime_program(), atomic_load(&nworkers));
    while (!atomic_load(&stopping)) {
        time_t wake = pass(), now = stp_now();

        write_metrics(now);
        write_metrics_file(now);
        stp_log_reopen(); /* after a logrotate */
        if (wake > now + METRICS_S)
            wake = now + METRICS_S;
        sleep_until(wake);
    }
    park();
    return NULL;
}

/* A worker idle this long after its last record gives its stack's pages
 * back (stack.h): after a start-up's fetches, or a refresh's */
#define IDLE_RELEASE_MS 5000

static void *worker(void *arg)
{
    struct stp_rec *rec;
    int slot, worked = 0;

    (void)arg;
    pthread_setname_np(pthread_self(), "ocspstaple-w");
    while (!atomic_load(&stopping)) {
        rec = stp_pool_take(worked ? IDLE_RELEASE_MS : -1, &slot);
        if (rec != NULL) {
            work_on(rec, slot);
            worked = 1;
        } else if (worked) {
            worked = 0;
            stp_stack_release();
        }
    }
    park();
    return NULL;
}

/* OPENSSL_atexit: OpenSSL is about to free what the refresher may be
 * using; let the current steps finish (bounded) and stop every thread. */
static void quiesce(void)
{
    struct stp_store *st;
    struct stp_err err;

    atomic_store(&stopping, 1);
    stp_pool_interrupt();
    gate_within(QUIESCE_MS); /* kept: no further step */
    /* a process that stops uses nothing any more */
    if (uses_count != (size_t)-1 && (st = stp_runtime_get0_store(&err)) != NULL)
        stp_store_remove_uses(st, metrics_proc);
}

static void inert_key(void *arg, const char *msg)
{
    STP_LOG_WARN("policy", "%s: %s", (const char *)arg, msg);
}

/* Once per process that serves TLS (its refresher starts), never in the
 * other OpenSSL programs that read the same openssl.cnf. */
static void warn_inert_keys(void)
{
    static atomic_int said;

    if (atomic_exchange(&said, 1) == 0)
        stp_policy_inert_keys(stp_runtime_get0_policy(), inert_key,
                              (void *)stp_runtime_program());
}

/*
 * Starts the thread, unless it runs or (<need_certs>) nothing is tracked
 * yet. A failure is said once, with its cause, and retried at most once a
 * minute: it happens in every handshake's SSL_new otherwise.
 */
static void spawn_refresher(int need_certs)
{
    static atomic_llong next_try_ms;
    static atomic_int failure_said;
    const struct stp_policy *pol = stp_runtime_get0_policy();
    pthread_t t;
    pthread_attr_t attr;
    sigset_t all, old;
    int rc, i;

    if (pol == NULL || atomic_load(&running)
        || (need_certs && atomic_load(&stp_metrics[STP_M_CERTS]) == 0)
        || stp_monotonic_ms() < atomic_load(&next_try_ms))
        return;
    stp_log_syslog_connect(); /* a serving process: syslog from now on */
    pthread_once(&cond_once, init_cond);
    pthread_mutex_lock(&rf_lock);
    if (!atomic_load(&running)) {
        /* the server's signals must keep going to its own threads */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (atomic_exchange(&cleanup_registered, 1) == 0)
            OPENSSL_atexit(quiesce);
        pthread_once(&gate_once, init_gate);
        stp_pool_configure(pol->fetch_per_host, pol->retry_base,
                           pol->retry_max);
        /* every thread now, at once: a server may forbid new threads
         * later (HAProxy's RLIMIT_NPROC). Workers are made once per
         * process (a retry after a failure makes only the dispatcher);
         * without any, the dispatcher does their work. */
        for (i = atomic_load(&nworkers); i < pol->fetch_concurrency; i++) {
            if (pthread_create(&t, &attr, worker, NULL) != 0)
                break;
            atomic_fetch_add(&nworkers, 1);
        }
        rc = pthread_create(&t, &attr, run, NULL);
        if (rc == 0) {
            atomic_store(&running, 1);
            stp_metric_inc(STP_M_REFRESHERS);
            warn_inert_keys();
        } else {
            atomic_store(&next_try_ms, stp_monotonic_ms() + 60000);
            if (atomic_exchange(&failure_said, 1) == 0)
                STP_LOG_ERR("refresh",
                            "cannot start the refresher thread in %s: %s%s: "
                            "nothing is fetched in this process (retried "
                            "every minute)",
                            stp_runtime_program(), strerror(rc),
                            rc == EAGAIN ? " (a server that lowered "
                                           "RLIMIT_NPROC after dropping "
                                           "privileges, as HAProxy does?)"
                                         : "");
        }
        pthread_attr_destroy(&attr);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    pthread_mutex_unlock(&rf_lock);
}

void stp_refresh_ensure(void)
{
    spawn_refresher(1);
}

void stp_refresh_start(void)
{
    spawn_refresher(0);
}

void stp_refresh_prepare(void)
{
    struct stp_err err;

    if (atomic_exchange(&prepared, 1) != 0 || !stp_runtime_active())
        return;
    /* failures are said by the refresher when it needs these */
    (void)stp_runtime_get0_store(&err);
    (void)stp_fetch_preload(&err);
    (void)stp_runtime_get0_fleet(); /* its credentials: before any setuid */
    stp_log_syslog_connect();       /* before the child's chroot */
}

void stp_refresh_policy_changed(void)
{
    atomic_store(&prepared, 0);
}

int stp_refresh_running(void)
{
    return atomic_load(&running);
}

void stp_refresh_wake(void)
{
    pthread_once(&cond_once, init_cond);
    pthread_mutex_lock(&rf_lock);
    woken = 1;
    pthread_cond_signal(&rf_cond);
    pthread_mutex_unlock(&rf_lock);
}

void stp_refresh_before_fork(void)
{
    fork_held = atomic_load(&running) && gate_within(QUIESCE_MS);
}

void stp_refresh_after_fork_parent(void)
{
    if (fork_held)
        pthread_rwlock_unlock(&work_gate);
    fork_held = 0;
}

void stp_refresh_start_after_fork(void)
{
    if (atomic_load(&prepared) && stp_runtime_active())
        spawn_refresher(0);
}

void stp_refresh_after_fork(void)
{
    fork_held = 0;
    planned_wake = missed_next = 0;
    init_gate();
    stp_pool_after_fork(); /* the parent's queues and workers are not ours */
    atomic_store(&nworkers, 0);
    atomic_store(&running, 0);
    pthread_mutex_init(&rf_lock, NULL);
    init_cond();
    woken = 0;
    /* the child writes its own counters under its own name */
    metrics_last = 0;
    metrics_failed_logged = 0;
    metrics_proc[0] = '\0';
    uses_count = (size_t)-1; /* and its own list of what it uses */
    uses_digest = 0;
    stp_metrics_after_fork();
}
