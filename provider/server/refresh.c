/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The refresher thread (see refresh.h). It owns each record's schedule
 * (next, failures); it touches staples only through cache.c.
 */
#include "server/refresh.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "server/cache.h"
#include "engine/clock.h"
#include "engine/fetch.h"
#include "engine/log.h"
#include "server/metrics.h"
#include "server/runtime.h"
#include "engine/update.h"

#define MAX_SLEEP_S 60 /* re-evaluate at least this often */

static pthread_mutex_t rf_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rf_cond;
static atomic_int running;
static int woken; /* under rf_lock */
static atomic_int store_err_logged;
static pthread_once_t cond_once = PTHREAD_ONCE_INIT;
/* Held by the refresher while it works on one certificate, so that a fork
 * (prepare handler) and OpenSSL's cleanup at exit wait for it to finish the
 * step, bounded, instead of catching it inside OpenSSL or holding our
 * locks. */
static pthread_mutex_t work_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int stopping; /* OpenSSL is being cleaned up: stop */
static int fork_held;       /* prepare took work_lock */
static atomic_int cleanup_registered;
static atomic_int prepared; /* stp_refresh_prepare() ran in this process */

#define QUIESCE_MS 2000 /* longest wait for the refresher's current step */

static int lock_within(pthread_mutex_t *m, long ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_mutex_timedlock(m, &ts) == 0;
}

static void init_cond(void)
{
    pthread_condattr_t a;

    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&rf_cond, &a);
    pthread_condattr_destroy(&a);
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
    if (stp_cache_publish(rec, der, len, &v, now) == STP_REPLACE_YES)
        stp_metric_inc(STP_M_STORE_LOAD);
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
    if (rec->ci->issuer == NULL)
        rec->ci->issuer = atomic_exchange(&rec->offered_issuer, NULL);
    if (rec->ci->issuer == NULL)
        rec->ci->issuer = stp_cache_get1_issuer(rec->ci->leaf);
    if (rec->ci->issuer != NULL && !atomic_load(&rec->issuer_known)) {
        stp_cache_note_issuer(rec->ci->issuer);
        atomic_store(&rec->issuer_known, 1);
    }
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

/* The exchange with the responder, without work_lock: a fork or the exit
 * cleanup need not wait for the network (no lock of ours or of OpenSSL's
 * libcrypto is held across a plain HTTP exchange). */
static int fetch_unlocked(void *arg, const char *url, OCSP_REQUEST *req,
                          const struct stp_fetch_opts *opts,
                          unsigned char **body, size_t *len,
                          struct stp_err *err)
{
    int ok;

    (void)arg;
    pthread_mutex_unlock(&work_lock);
    ok = stp_fetch(url, req, opts, body, len, err);
    pthread_mutex_lock(&work_lock);
    return ok;
}

static void refresh_one(struct stp_rec *rec, time_t now)
{
    /* Wait for a process that is fetching this certificate: its file is
     * then taken at once (this is the refresher, not a handshake). */
    struct stp_update_opts uo = { .lock_wait_ms =
                                      rec->pol.timeout * 1000 + 1000,
                                  .shared_backoff = 1,
                                  .fetch = fetch_unlocked };
    struct stp_update_result res = { 0 };
    struct stp_update_ctx c;
    struct stp_verdict held;
    struct stp_err err;
    struct stp_store *st = store_or_log();
    int ok;

    if (!have_issuer(rec)) {
        after_attempt(rec, STP_ATTEMPT_NO_ISSUER, 0, 0, NULL, now);
        return;
    }
    if (!stp_runtime_get0_policy()->fetch) {
        if (st != NULL)
            take_stored(rec, st, now);
        after_attempt(rec, STP_ATTEMPT_NO_FETCH, 0, 0, NULL, now);
        return;
    }
    if (stp_cache_verdict(rec, &held))
        uo.held = &held;
    /* without a usable store the response is fetched for this process only */
    ctx_of(rec, st, &c);
    ok = stp_update_cert(&c, &uo, &res, &err);
    if (res.der != NULL) {
        switch (
            stp_cache_publish(rec, res.der, res.len, &res.verdict, stp_now())) {
        case STP_REPLACE_YES:
            if (!res.fetched)
                stp_metric_inc(STP_M_STORE_LOAD);
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

        if (atomic_load(&rec->dropped) || !rec->dec.staple)
            continue;
        if (atomic_load(&rec->stored_read) == 0) {
            pthread_mutex_lock(&work_lock);
            if (!atomic_load(&stopping))
                load_stored(rec, 1);
            pthread_mutex_unlock(&work_lock);
        }
        if (rec->rf.next == 0 && stp_cache_verdict(rec, &v))
            rec->rf.next =
                stp_update_next_refresh(stp_runtime_get0_policy(), &v, now);
        check_revoked(rec); /* a revoked response found in the store */
    }
}

/* One pass over the records; returns when the next one is due. */
static time_t pass(void)
{
    struct stp_rec **recs = NULL;
    time_t now = stp_now(), wake = now + MAX_SLEEP_S;
    size_t n, i;

    if (atomic_load(&stopping))
        return wake;
    if (discover_fn != NULL) {
        pthread_mutex_lock(&work_lock);
        if (!atomic_load(&stopping))
            discover_fn();
        pthread_mutex_unlock(&work_lock);
    }
    n = stp_cache_snapshot(&recs);
    load_pass(recs, n, now);
    for (i = 0; i < n; i++) {
        struct stp_rec *rec = recs[i];

        if (atomic_load(&rec->dropped))
            continue;
        if (!rec->dec.staple || rec->rf.done || expired(rec, now)) {
            stp_cache_loaded(rec);
            continue;
        }
        if (atomic_load(&stopping))
            break;
        /* an issuer offered for a record that had none: try now */
        if (rec->rf.next <= now
            || (!atomic_load(&rec->issuer_known)
                && atomic_load(&rec->offered_issuer) != NULL)) {
            pthread_mutex_lock(&work_lock);
            if (!atomic_load(&stopping))
                refresh_one(rec, now);
            pthread_mutex_unlock(&work_lock);
        }
        stp_cache_expire(rec, stp_now());
        if (rec->rf.next < wake)
            wake = rec->rf.next;
    }
    stp_cache_snapshot_free(recs, n);
    return wake;
}

static void sleep_until(time_t wake)
{
    long long ms = ((long long)wake - (long long)stp_now()) * 1000;
    long long deadline = stp_monotonic_ms() + (ms > 0 ? ms : 0);
    struct timespec ts;

    pthread_mutex_lock(&rf_lock);
    while (!woken && stp_monotonic_ms() < deadline) {
        long long at = deadline;

        ts.tv_sec = (time_t)(at / 1000);
        ts.tv_nsec = (long)(at % 1000) * 1000000L;
        if (pthread_cond_timedwait(&rf_cond, &rf_lock, &ts) == ETIMEDOUT)
            break;
    }
    woken = 0;
    pthread_mutex_unlock(&rf_lock);
}

static void *run(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "ocspstaple");
    STP_LOG_INFO("refresh", "refresher started in %s", stp_runtime_program());
    while (!atomic_load(&stopping))
        sleep_until(pass());
    /* Never return: a thread that exits runs OpenSSL's thread-local
     * destructors, which would race with the cleanup that stopped us. The
     * cleanup holds work_lock: this waits until the process is gone. */
    for (;;) {
        pthread_mutex_lock(&work_lock);
        pthread_mutex_unlock(&work_lock);
        sleep_until(stp_now() + MAX_SLEEP_S);
    }
    return NULL;
}

/* OPENSSL_atexit: OpenSSL is about to free what the refresher may be
 * using; let its current step finish (bounded) and stop it. */
static void quiesce(void)
{
    atomic_store(&stopping, 1);
    lock_within(&work_lock, QUIESCE_MS); /* kept: no further step */
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
    pthread_t t;
    pthread_attr_t attr;
    sigset_t all, old;
    int rc;

    if (atomic_load(&running)
        || (need_certs && atomic_load(&stp_metrics[STP_M_CERTS]) == 0)
        || stp_monotonic_ms() < atomic_load(&next_try_ms))
        return;
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
    fork_held = atomic_load(&running) && lock_within(&work_lock, QUIESCE_MS);
}

void stp_refresh_after_fork_parent(void)
{
    if (fork_held)
        pthread_mutex_unlock(&work_lock);
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
    pthread_mutex_init(&work_lock, NULL);
    atomic_store(&running, 0);
    pthread_mutex_init(&rf_lock, NULL);
    init_cond();
    woken = 0;
}
