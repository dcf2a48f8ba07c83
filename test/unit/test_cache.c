/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The certificate table (server/cache.h): claim and alias (any number of
 * objects per certificate), the lifecycle (the last claim drops a record,
 * references keep its memory), thousands of records, copy only while
 * valid, never replace a staple by an older one, expiry, the bounded wait,
 * and concurrent copies while a writer publishes.
 */
#include "server/cache.h"

#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>

#include "engine/clock.h"
#include "stp_test.h"
#include "test_pki.h"

static struct stp_rec *new_rec(X509 *leaf, X509 *issuer)
{
    STACK_OF(X509) *cand = sk_X509_new_null();
    struct stp_rec *rec = stp_rec_new();
    struct stp_err err;

    sk_X509_push(cand, issuer);
    stp_certinfo_new(leaf, cand, &rec->ci, &err);
    sk_X509_free(cand);
    rec->dec.staple = 1;
    atomic_init(&rec->loading, 1);
    return rec;
}

static struct stp_verdict verdict(time_t this_update, time_t next_update)
{
    struct stp_verdict v = {
        V_OCSP_CERTSTATUS_GOOD, -1, 0, 0, this_update, next_update, 1
    };

    return v;
}

static struct stp_rec *claim(X509 *leaf, struct stp_rec *fresh, int *is_new)
{
    return stp_cache_claim(fresh->ci->id, leaf, fresh, is_new);
}

/* A new reference's record, dropped at once (the tests hold claims). */
static struct stp_rec *peek(X509 *leaf)
{
    struct stp_rec *r = stp_cache_get1(leaf);

    stp_rec_unref(r);
    return r;
}

static struct stp_rec *test_insert(const struct tp_pki *pki)
{
    struct stp_rec *a, *b;
    int is_new;

    a = claim(pki->leaf.cert, new_rec(pki->leaf.cert, pki->ca.cert), &is_new);
    ASSERT_NOT_NULL(a);
    ASSERT_EQ(is_new, 1);
    ASSERT_TRUE(peek(pki->leaf.cert) == a);
    ASSERT_EQ(stp_cache_count(), 1);
    /* a second X509 object with the same DER maps to the same record */
    {
        X509 *copy = X509_dup(pki->leaf.cert);

        b = claim(copy, new_rec(copy, pki->ca.cert), &is_new);
        ASSERT_TRUE(b == a);
        ASSERT_EQ(is_new, 0);
        ASSERT_TRUE(peek(copy) == a);
        X509_free(copy); /* the table keeps its own reference */
        stp_cache_release(b);
    }
    ASSERT_NULL(peek(pki->leaf2.cert));
    ASSERT_EQ(stp_cache_count(), 1);
    return a;
}

/* Any number of objects of one certificate: the first MAX_ALIASES_PER_REC
 * are mapped, the others are found by identity; none is re-registered. */
static void test_many_aliases(const struct tp_pki *pki, struct stp_rec *a)
{
    enum { N = MAX_ALIASES_PER_REC + 20 };
    static X509 *objs[N];
    int i, is_new;

    for (i = 0; i < N; i++) {
        objs[i] = X509_dup(pki->leaf.cert);
        ASSERT_TRUE(stp_cache_claim(a->ci->id, objs[i], NULL, &is_new) == a);
        ASSERT_EQ(is_new, 0);
    }
    ASSERT_EQ(a->naliases, MAX_ALIASES_PER_REC);
    for (i = 0; i < N; i++) {
        ASSERT_TRUE(peek(objs[i]) == a);
        stp_cache_release(a);
        X509_free(objs[i]);
    }
    ASSERT_EQ(stp_cache_count(), 1);
}

/* The last claim takes a record out of the table; a reference held keeps
 * its memory until released. */
static void test_lifecycle(const struct tp_pki *pki)
{
    struct stp_rec *r, *held;
    int is_new;
    size_t before = stp_cache_count();

    r = claim(pki->leaf2.cert, new_rec(pki->leaf2.cert, pki->ca.cert), &is_new);
    ASSERT_EQ(is_new, 1);
    ASSERT_TRUE(stp_cache_claim(r->ci->id, pki->leaf2.cert, NULL, &is_new)
                == r);
    ASSERT_EQ(stp_cache_count(), before + 1);
    held = stp_cache_get1(pki->leaf2.cert);
    ASSERT_TRUE(held == r);
    stp_cache_release(r);
    ASSERT_TRUE(peek(pki->leaf2.cert) == r); /* one claim left */
    stp_cache_release(r);
    ASSERT_EQ(stp_cache_count(), before);
    ASSERT_NULL(peek(pki->leaf2.cert));
    ASSERT_EQ(atomic_load(&held->dropped), 1);
    ASSERT_TRUE(strlen(held->ci->id_hex) == STP_ID_HEX_LEN); /* still there */
    stp_rec_unref(held);
    /* tracked again later: a new record */
    r = claim(pki->leaf2.cert, new_rec(pki->leaf2.cert, pki->ca.cert), &is_new);
    ASSERT_EQ(is_new, 1);
    stp_cache_release(r);
    ASSERT_EQ(stp_cache_count(), before);
}

/* Thousands of records: each object finds its own record, the snapshot
 * sees them all, and releasing them empties the table. */
static void test_scale(const struct tp_pki *pki)
{
    enum { N = 5000 };
    static X509 *objs[N];
    static struct stp_rec *recs[N];
    struct stp_rec **snap = NULL;
    size_t before = stp_cache_count(), n;
    int i, is_new;

    for (i = 0; i < N; i++) {
        struct stp_rec *f;

        objs[i] = X509_dup(pki->leaf.cert);
        f = new_rec(objs[i], pki->ca.cert);
        /* a distinct identity per record */
        memcpy(f->ci->id, &i, sizeof(i));
        f->ci->id[31] ^= 0x5a;
        recs[i] = claim(objs[i], f, &is_new);
        ASSERT_EQ(is_new, 1);
    }
    ASSERT_EQ(stp_cache_count(), before + N);
    for (i = 0; i < N; i++)
        ASSERT_TRUE(peek(objs[i]) == recs[i]);
    n = stp_cache_snapshot(&snap);
    ASSERT_EQ(n, before + N);
    stp_cache_snapshot_free(snap, n);
    for (i = 0; i < N; i++) {
        stp_cache_release(recs[i]);
        X509_free(objs[i]);
    }
    ASSERT_EQ(stp_cache_count(), before);
}

static void test_copy(const struct tp_pki *pki, time_t now)
{
    struct stp_rec *rec = peek(pki->leaf.cert);
    struct stp_verdict v1 = verdict(now - 100, now + 100);
    struct stp_verdict v0 = verdict(now - 200, now + 100);
    unsigned char *der;
    size_t len;
    int status;

    ASSERT_EQ(stp_cache_copy(rec, now, &der, &len, &status), STP_COPY_NONE);
    ASSERT_OK(stp_cache_publish(rec, (const unsigned char *)"new", 3, &v1, now)
              == STP_REPLACE_YES);
    /* an older response never replaces a newer one */
    ASSERT_EQ(stp_cache_publish(rec, (const unsigned char *)"old", 3, &v0, now),
              STP_REPLACE_NO_OLDER);
    ASSERT_EQ(stp_cache_copy(rec, now, &der, &len, &status), STP_COPY_OK);
    ASSERT_EQ(len, 3);
    ASSERT_TRUE(memcmp(der, "new", 3) == 0);
    ASSERT_EQ(status, V_OCSP_CERTSTATUS_GOOD);
    OPENSSL_free(der);
    /* an unknown answer never replaces a good staple still valid, however
     * new it is (the same rule as the update cycle's: verify.h) */
    {
        struct stp_verdict u = verdict(now - 10, now + 100);

        u.status = V_OCSP_CERTSTATUS_UNKNOWN;
        ASSERT_EQ(
            stp_cache_publish(rec, (const unsigned char *)"unk", 3, &u, now),
            STP_REPLACE_NO_UNKNOWN);
        ASSERT_EQ(stp_cache_copy(rec, now, &der, &len, &status), STP_COPY_OK);
        ASSERT_TRUE(memcmp(der, "new", 3) == 0);
        ASSERT_EQ(status, V_OCSP_CERTSTATUS_GOOD);
        OPENSSL_free(der);
    }
    /* never at or past nextUpdate */
    ASSERT_EQ(stp_cache_copy(rec, now + 100, &der, &len, &status),
              STP_COPY_EXPIRED);
    ASSERT_NULL(der);
    ASSERT_EQ(stp_cache_expire(rec, now + 99), 0);
    ASSERT_EQ(stp_cache_copy(rec, now, &der, &len, &status), STP_COPY_OK);
    OPENSSL_free(der);
    ASSERT_EQ(stp_cache_expire(rec, now + 100), 1);
    ASSERT_EQ(stp_cache_copy(rec, now, &der, &len, &status), STP_COPY_NONE);
}

static void test_wait(const struct tp_pki *pki)
{
    struct stp_rec *rec = peek(pki->leaf.cert);
    long long t0 = stp_monotonic_ms();

    /* loading and empty: waits for the bound */
    stp_cache_wait(rec, 150);
    ASSERT_TRUE(stp_monotonic_ms() - t0 >= 140);
    /* loaded: does not wait */
    stp_cache_loaded(rec);
    t0 = stp_monotonic_ms();
    stp_cache_wait(rec, 5000);
    ASSERT_TRUE(stp_monotonic_ms() - t0 < 1000);
}

struct race {
    struct stp_rec *rec;
    time_t now;
    int bad;
};

static void *reader(void *arg)
{
    struct race *r = arg;
    unsigned char *der;
    size_t len;
    int i, status;

    for (i = 0; i < 20000; i++) {
        if (stp_cache_copy(r->rec, r->now, &der, &len, &status)
            == STP_COPY_OK) {
            if (len != 4 || der[0] != der[3])
                r->bad++;
            OPENSSL_free(der);
        }
    }
    return NULL;
}

static void test_race(const struct tp_pki *pki, time_t now)
{
    struct race r = { peek(pki->leaf.cert), now, 0 };
    pthread_t t[2];
    int i;

    pthread_create(&t[0], NULL, reader, &r);
    pthread_create(&t[1], NULL, reader, &r);
    for (i = 0; i < 2000; i++) {
        unsigned char buf[4];
        struct stp_verdict v = verdict(now - 50 + i, now + 1000);

        memset(buf, 'a' + i % 26, sizeof(buf));
        stp_cache_publish(r.rec, buf, sizeof(buf), &v, r.now);
    }
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    ASSERT_EQ(r.bad, 0);
}

int main(void)
{
    struct tp_pki pki;
    struct stp_rec *a;
    time_t now = time(NULL);

    ASSERT_OK(stp_cache_init());
    ASSERT_OK(tp_pki_new(&pki));
    a = test_insert(&pki);
    test_many_aliases(&pki, a);
    test_lifecycle(&pki);
    test_scale(&pki);
    test_copy(&pki, now);
    test_wait(&pki);
    test_race(&pki, now);
    stp_cache_release(a);
    ASSERT_EQ(stp_cache_count(), 0);
    tp_pki_free(&pki);
    STP_TEST_MAIN_END();
}
