/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The refresh cycle's decisions (engine/update.h), one table row each,
 * through the fetch seam (no network): reuse of a stored response that is
 * not due, a fetch when it is due, forced or missing; what may replace the
 * stored or held response (older refused, unknown over good refused,
 * revoked taken); a failure keeps the stored response and counts in the
 * sidecar state; an invalid answer is never stored; no URL means no fetch;
 * a failure another process recorded defers the fetch to its next attempt;
 * a fresh stored response is kept while another process holds the lock.
 */
#include "engine/update.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "engine/clock.h"
#include "stp_test.h"
#include "test_pki.h"

#define H 3600L

static struct tp_pki pki;

/* What is in the store before the cycle (kind NONE: nothing). */
enum stored { S_NONE, S_FRESH, S_DUE, S_GARBAGE };
/* What the responder answers. */
enum answer { A_GOOD, A_GOOD_OLDER, A_UNKNOWN, A_REVOKED, A_ROGUE, A_TIMEOUT };

struct row {
    const char *name;
    enum stored stored;
    int no_store;  /* the store directory is unusable */
    int held_good; /* the caller holds a good response in memory */
    int force;
    int noaia; /* the certificate names no responder */
    enum answer answer;
    /* expected */
    int ok;
    enum stp_code code; /* when !ok */
    int fetches;
    int stored_new;  /* the stored response was replaced */
    int held_status; /* status of res.der, or -1 for none */
    unsigned state_failures;
    /* another process's attempt failed a moment ago (sidecar state), and
     * the caller honours it (.shared_backoff) */
    int prior_failure, shared;
};

static const struct row rows[] = {
    { "cold store: fetched and stored", S_NONE, 0, 0, 0, 0, A_GOOD, 1, STP_OK,
      1, 1, V_OCSP_CERTSTATUS_GOOD, 0, 0, 0 },
    { "fresh stored: reused, no fetch", S_FRESH, 0, 0, 0, 0, A_GOOD, 1, STP_OK,
      0, 0, V_OCSP_CERTSTATUS_GOOD, 0, 0, 0 },
    { "fresh stored, forced: fetched", S_FRESH, 0, 0, 1, 0, A_GOOD, 1, STP_OK,
      1, 1, V_OCSP_CERTSTATUS_GOOD, 0, 0, 0 },
    { "due: fetched and replaced", S_DUE, 0, 0, 0, 0, A_GOOD, 1, STP_OK, 1, 1,
      V_OCSP_CERTSTATUS_GOOD, 0, 0, 0 },
    { "due, older answer: stored kept", S_DUE, 0, 0, 0, 0, A_GOOD_OLDER, 0,
      STP_E_OLDER, 1, 0, V_OCSP_CERTSTATUS_GOOD, 1, 0, 0 },
    { "due, unknown answer: good kept", S_DUE, 0, 0, 0, 0, A_UNKNOWN, 0,
      STP_E_CERT_UNKNOWN, 1, 0, V_OCSP_CERTSTATUS_GOOD, 1, 0, 0 },
    { "due, revoked answer: taken", S_DUE, 0, 0, 0, 0, A_REVOKED, 1, STP_OK, 1,
      1, V_OCSP_CERTSTATUS_REVOKED, 0, 0, 0 },
    { "due, timeout: stored kept", S_DUE, 0, 0, 0, 0, A_TIMEOUT, 0,
      STP_E_TIMEOUT, 1, 0, V_OCSP_CERTSTATUS_GOOD, 1, 0, 0 },
    { "cold, timeout: nothing held", S_NONE, 0, 0, 0, 0, A_TIMEOUT, 0,
      STP_E_TIMEOUT, 1, 0, -1, 1, 0, 0 },
    { "cold, rogue signer: nothing stored", S_NONE, 0, 0, 0, 0, A_ROGUE, 0,
      STP_E_SIGNATURE, 1, 0, -1, 1, 0, 0 },
    { "garbage stored: fetched and replaced", S_GARBAGE, 0, 0, 0, 0, A_GOOD, 1,
      STP_OK, 1, 1, V_OCSP_CERTSTATUS_GOOD, 0, 0, 0 },
    { "unknown, empty store: taken", S_NONE, 0, 0, 0, 0, A_UNKNOWN, 1, STP_OK,
      1, 1, V_OCSP_CERTSTATUS_UNKNOWN, 0, 0, 0 },
    { "no store, good held, unknown: refused", S_NONE, 1, 1, 0, 0, A_UNKNOWN, 0,
      STP_E_CERT_UNKNOWN, 1, 0, -1, 0, 0, 0 },
    { "no store, good held, good: taken", S_NONE, 1, 1, 0, 0, A_GOOD, 1, STP_OK,
      1, 0, V_OCSP_CERTSTATUS_GOOD, 0, 0, 0 },
    { "no URL: not applicable, no fetch", S_NONE, 0, 0, 0, 1, A_GOOD, 0,
      STP_E_NO_URL, 0, 0, -1, 0, 0, 0 },
    { "another process failed: deferred", S_DUE, 0, 0, 0, 0, A_GOOD, 0,
      STP_E_DEFERRED, 0, 0, V_OCSP_CERTSTATUS_GOOD, 1, 1, 1 },
    { "another process failed, not honoured: fetched", S_DUE, 0, 0, 0, 0,
      A_GOOD, 1, STP_OK, 1, 1, V_OCSP_CERTSTATUS_GOOD, 0, 1, 0 },
    { "another process failed, forced: fetched", S_DUE, 0, 0, 1, 0, A_GOOD, 1,
      STP_OK, 1, 1, V_OCSP_CERTSTATUS_GOOD, 0, 1, 1 },
};

struct seam {
    const struct row *row;
    X509 *leaf;
    time_t now;
    int calls;
};

static size_t response(X509 *leaf, const struct tp_id *signer, int status,
                       time_t tu, time_t nu, unsigned char **der)
{
    struct tp_resp_spec spec = {
        leaf, pki.ca.cert, signer, 0, status, tu, nu, 0
    };

    return tp_response(&spec, der);
}

static int fake_fetch(void *arg, const char *url, OCSP_REQUEST *req,
                      const struct stp_fetch_opts *opts, unsigned char **body,
                      size_t *len, struct stp_err *err)
{
    struct seam *s = arg;
    time_t now = s->now;

    (void)url;
    (void)req;
    (void)opts;
    s->calls++;
    switch (s->row->answer) {
    case A_GOOD:
        *len = response(s->leaf, &pki.ca, V_OCSP_CERTSTATUS_GOOD, now - 10,
                        now + 8 * H, body);
        break;
    case A_GOOD_OLDER: /* older than the stored "due" one (now - 7h) */
        *len = response(s->leaf, &pki.ca, V_OCSP_CERTSTATUS_GOOD,
                        now - 7 * H - 60, now + 8 * H, body);
        break;
    case A_UNKNOWN:
        *len = response(s->leaf, &pki.ca, V_OCSP_CERTSTATUS_UNKNOWN, now - 10,
                        now + 8 * H, body);
        break;
    case A_REVOKED:
        *len = response(s->leaf, &pki.ca, V_OCSP_CERTSTATUS_REVOKED, now - 10,
                        now + 8 * H, body);
        break;
    case A_ROGUE:
        *len = response(s->leaf, &pki.rogue, V_OCSP_CERTSTATUS_GOOD, now - 10,
                        now + 8 * H, body);
        break;
    case A_TIMEOUT:
        return stp_err_set(err, STP_E_TIMEOUT, 0, "timed out (seam)");
    }
    return *len > 0;
}

/* Puts the row's stored response in place; returns its DER length. */
static size_t plant(struct stp_store *st, const struct stp_certinfo *ci,
                    enum stored what, time_t now, unsigned char **der)
{
    struct stp_err err;
    size_t len = 0;

    *der = NULL;
    switch (what) {
    case S_NONE:
        return 0;
    case S_FRESH: /* 8 h valid, 10 s old: not due */
        len = response(ci->leaf, &pki.ca, V_OCSP_CERTSTATUS_GOOD, now - 10,
                       now + 8 * H, der);
        break;
    case S_DUE: /* 8 h valid, 7 h old: inside the 25% margin */
        len = response(ci->leaf, &pki.ca, V_OCSP_CERTSTATUS_GOOD, now - 7 * H,
                       now + H, der);
        break;
    case S_GARBAGE:
        *der = OPENSSL_memdup("garbage", 7);
        len = 7;
        break;
    }
    ASSERT_OK(stp_store_write_response(st, ci->id_hex, *der, len, &err));
    return len;
}

/* Empties <dir>; the certinfo of <leaf> (issued by the test CA) and the
 * store in <dir>. */
static void setup(const char *dir, X509 *leaf, struct stp_certinfo **ci,
                  struct stp_store **st)
{
    STACK_OF(X509) *cand = sk_X509_new_null();
    struct stp_err err;
    char cmd[300];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'/*", dir);
    ASSERT_EQ(system(cmd), 0);
    sk_X509_push(cand, pki.ca.cert);
    ASSERT_OK(stp_certinfo_new(leaf, cand, ci, &err));
    sk_X509_free(cand);
    ASSERT_OK(stp_store_open(dir, 0, st, &err));
}

static void run_row(const struct row *r, const char *dir)
{
    struct stp_policy *pol = stp_policy_new_default();
    struct stp_store *st = NULL;
    struct stp_certinfo *ci = NULL;
    struct stp_certpol cp;
    struct stp_update_result res;
    struct stp_verdict held = { V_OCSP_CERTSTATUS_GOOD, -1, 0, 0, 0, 0, 1 };
    struct stp_err err;
    struct seam seam = { r, r->noaia ? pki.noaia.cert : pki.leaf.cert,
                         stp_now(), 0 };
    struct stp_update_opts uo = { .force = r->force,
                                  .shared_backoff = r->shared,
                                  .fetch = fake_fetch,
                                  .fetch_arg = &seam };
    struct stp_update_ctx uc;
    struct stp_state state;
    unsigned char *planted = NULL, *now_der = NULL;
    size_t planted_len, now_len = 0;
    int ok;

    fprintf(stderr, "# %s\n", r->name);
    ASSERT_NOT_NULL(pol);
    setup(dir, seam.leaf, &ci, &st);
    planted_len = plant(st, ci, r->stored, seam.now, &planted);
    if (r->prior_failure) {
        struct stp_state prior = { .last_attempt = seam.now - 5,
                                   .next_attempt = seam.now + 55,
                                   .failures = 1 };

        snprintf(prior.last_error, sizeof(prior.last_error),
                 "timeout: timed out");
        ASSERT_OK(stp_store_write_state(st, ci->id_hex, &prior, &err));
    }
    stp_policy_resolve(pol, ci->id, ci->leaf, &cp);
    uc = (struct stp_update_ctx){ pol, &cp, r->no_store ? NULL : st, ci, NULL,
                                  0,   NULL };
    if (r->held_good) {
        held.this_update = seam.now - H;
        held.next_update = seam.now + H;
        uo.held = &held;
    }
    ok = stp_update_cert(&uc, &uo, &res, &err);
    ASSERT_EQ(ok, r->ok);
    if (!r->ok)
        ASSERT_EQ(err.code, r->code);
    ASSERT_EQ(seam.calls, r->fetches);
    ASSERT_EQ(res.fetched, r->fetches);
    ASSERT_EQ(res.have_verdict, r->held_status >= 0);
    if (r->held_status >= 0)
        ASSERT_EQ(res.verdict.status, r->held_status);
    ASSERT_EQ(res.stored, r->stored_new);
    /* the store holds the new response, or still the planted bytes */
    if (stp_store_read_response(st, ci->id_hex, 65536, &now_der, &now_len,
                                &err)) {
        int same = now_len == planted_len
                   && memcmp(now_der, planted, planted_len) == 0;

        ASSERT_EQ(!same, r->stored_new);
        if (r->stored_new)
            ASSERT_TRUE(now_len == res.len
                        && memcmp(now_der, res.der, res.len) == 0);
    } else {
        ASSERT_EQ(r->stored, S_NONE);
        ASSERT_EQ(r->stored_new, 0);
    }
    if (!r->no_store && r->fetches > 0) {
        ASSERT_OK(stp_store_read_state(st, ci->id_hex, &state));
        ASSERT_EQ(state.failures, r->state_failures);
        ASSERT_TRUE(state.next_attempt >= seam.now);
    }
    ASSERT_TRUE(!ok || res.next_refresh >= seam.now);
    if (r->code == STP_E_DEFERRED)
        ASSERT_EQ(res.next_refresh, seam.now + 55); /* the other's plan */
    OPENSSL_free(now_der);
    OPENSSL_free(planted);
    stp_update_result_free(&res);
    stp_certinfo_free(ci);
    stp_store_close(st);
    stp_policy_free(pol);
}

/*
 * Another process holds the certificate's store lock (here a second handle
 * on the store: flock conflicts across open files): a fresh stored response
 * is still kept, without the lock, which only the process that fetches
 * needs; a due one is left to the holder (lock_held, nothing done).
 */
static void test_lock_held(const char *dir)
{
    struct stp_policy *pol = stp_policy_new_default();
    struct stp_store *st = NULL, *other = NULL;
    struct stp_certinfo *ci = NULL;
    struct stp_certpol cp;
    struct stp_update_result res;
    struct stp_err err;
    struct seam seam = { &rows[0], pki.leaf.cert, stp_now(), 0 };
    struct stp_update_opts uo = { .fetch = fake_fetch, .fetch_arg = &seam };
    struct stp_update_ctx uc;
    unsigned char *planted = NULL;
    int fd;

    fprintf(stderr, "# lock held by another process\n");
    ASSERT_NOT_NULL(pol);
    setup(dir, seam.leaf, &ci, &st);
    ASSERT_OK(stp_store_open(dir, 0, &other, &err));
    fd = stp_store_lock(other, ci->id_hex, 0, &err);
    ASSERT_TRUE(fd >= 0);
    stp_policy_resolve(pol, ci->id, ci->leaf, &cp);
    uc = (struct stp_update_ctx){ pol, &cp, st, ci, NULL, 0, NULL };

    /* fresh: kept, no request, not "held" */
    plant(st, ci, S_FRESH, seam.now, &planted);
    ASSERT_EQ(stp_update_cert(&uc, &uo, &res, &err), 1);
    ASSERT_EQ(res.lock_held, 0);
    ASSERT_EQ(res.reused, 1);
    ASSERT_EQ(seam.calls, 0);
    ASSERT_TRUE(res.have_verdict
                && res.verdict.status == V_OCSP_CERTSTATUS_GOOD);
    ASSERT_TRUE(res.next_refresh > seam.now);
    stp_update_result_free(&res);
    OPENSSL_free(planted);

    /* due: the holder fetches it; nothing done here */
    plant(st, ci, S_DUE, seam.now, &planted);
    ASSERT_EQ(stp_update_cert(&uc, &uo, &res, &err), 0);
    ASSERT_EQ(err.code, STP_E_BUSY);
    ASSERT_EQ(res.lock_held, 1);
    ASSERT_EQ(seam.calls, 0);
    stp_update_result_free(&res);
    OPENSSL_free(planted);

    stp_store_unlock(fd);
    stp_certinfo_free(ci);
    stp_store_close(other);
    stp_store_close(st);
    stp_policy_free(pol);
}

int main(void)
{
    char dir[] = "/tmp/stp_update_test.XXXXXX";
    size_t i;

    ASSERT_NOT_NULL(mkdtemp(dir));
    ASSERT_OK(tp_pki_new(&pki));
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        run_row(&rows[i], dir);
    test_lock_held(dir);
    tp_pki_free(&pki);
    rmdir(dir);
    STP_TEST_MAIN_END();
}
