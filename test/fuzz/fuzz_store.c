/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for the store directory as a trust boundary: the input is
 * planted as <id>.der and as <id>.state for the fixed leaf in a private
 * store directory, then read back the ways servers and the CLI read them:
 * stp_store_read_response() (with a cap), stp_update_load_stored()
 * (engine/update.h: read + re-verify) and stp_store_read_state(). Invariants:
 * bytes read are the bytes planted, the cap holds, a response is served only
 * when it is valid at the instant asked (its window contains it) and it is the
 * planted file, and a state read back is clean and survives a write/read round
 * trip.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "engine/certinfo.h"
#include "fuzz.h"
#include "engine/policy.h"
#include "engine/store.h"
#include "engine/update.h"

#define SMALL_CAP 1024
#define STATE_CAP 8192 /* store.c: larger state files are not read */

static const struct fz_pki *pki;
static struct stp_store *store;
static struct stp_certinfo *ci;
static struct stp_policy *policies[2];
static time_t instants[2];
static char der_path[4200], state_path[4200];

static struct stp_policy *policy(const char *skip_verify, const char *ttl)
{
    const struct stp_kv kv[] = {
        { "skip_verify", skip_verify },
        { "cache_ttl", ttl },
        { "store_dir", fz_scratch_dir() },
    };
    struct stp_policy *p = stp_policy_parse(kv, 3, NULL, NULL);

    FZ_CHECK(p != NULL);
    return p;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    STACK_OF(X509) *candidates;
    struct stp_err err;

    (void)argc;
    (void)argv;
    pki = fz_setup();
    FZ_CHECK(stp_store_open(fz_scratch_dir(), 0, &store, &err));
    candidates = sk_X509_new_null();
    FZ_CHECK(candidates != NULL && sk_X509_push(candidates, pki->issuer));
    FZ_CHECK(stp_certinfo_new(pki->leaf, candidates, &ci, &err));
    FZ_CHECK(ci->issuer != NULL);
    sk_X509_free(candidates);
    policies[0] = policy("no", "1h");
    policies[1] = policy("yes", "1m");
    instants[0] = pki->now;
    instants[1] = pki->now + 86400; /* every seed has expired by then */
    snprintf(der_path, sizeof(der_path), "%s/%s.der", fz_scratch_dir(),
             ci->id_hex);
    snprintf(state_path, sizeof(state_path), "%s/%s.state", fz_scratch_dir(),
             ci->id_hex);
    return 0;
}

/* Plants <data> as <path> the way another process's writer would leave it. */
static void plant(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    FZ_CHECK(fd >= 0);
    FZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
    close(fd);
}

static void check_der(const uint8_t *data, size_t size)
{
    struct stp_verdict v;
    struct stp_err err;
    unsigned char *der = NULL;
    size_t len = 0, i, j;

    FZ_CHECK(stp_store_read_response(
        store, ci->id_hex, policies[0]->max_response_size, &der, &len, &err));
    FZ_CHECK(len == size && (size == 0 || memcmp(der, data, size) == 0));
    OPENSSL_free(der);
    if (stp_store_read_response(store, ci->id_hex, SMALL_CAP, &der, &len,
                                &err)) {
        FZ_CHECK(size <= SMALL_CAP && len == size);
        OPENSSL_free(der);
    } else {
        FZ_CHECK(size > SMALL_CAP && err.code == STP_E_TOO_LARGE);
    }
    for (i = 0; i < 2; i++) {
        for (j = 0; j < 2; j++) {
            struct stp_certpol cp;
            struct stp_update_ctx uc = { policies[i], &cp, store, ci,
                                         NULL,        0,   NULL };

            stp_policy_resolve(policies[i], ci->id, ci->leaf, &cp);
            memset(&v, 0, sizeof(v));
            if (!stp_update_load_stored(&uc, instants[j], &der, &len, &v,
                                        &err)) {
                FZ_CHECK(der == NULL);
                continue;
            }
            /* Served: the planted bytes, valid at the instant asked. */
            FZ_CHECK(len == size && memcmp(der, data, size) == 0);
            FZ_CHECK(v.this_update <= instants[j] + policies[i]->clock_skew);
            FZ_CHECK(instants[j] < v.next_update);
            OPENSSL_free(der);
        }
    }
}

static void check_clean(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap), k;

    FZ_CHECK(n < cap);
    for (k = 0; k < n; k++)
        FZ_CHECK((unsigned char)s[k] >= 0x20);
}

static void check_state(size_t size)
{
    struct stp_state s, again;
    struct stp_err err;

    if (!stp_store_read_state(store, ci->id_hex, &s)) {
        FZ_CHECK(size > STATE_CAP);
        return;
    }
    check_clean(s.last_error, sizeof(s.last_error));
    check_clean(s.url, sizeof(s.url));
    check_clean(s.subject, sizeof(s.subject));
    check_clean(s.serial, sizeof(s.serial));
    /* What the CLI reads it writes back: nothing may change on the way. */
    FZ_CHECK(stp_store_write_state(store, ci->id_hex, &s, &err));
    FZ_CHECK(stp_store_read_state(store, ci->id_hex, &again));
    FZ_CHECK(again.last_attempt == s.last_attempt);
    FZ_CHECK(again.last_success == s.last_success);
    FZ_CHECK(again.next_attempt == s.next_attempt);
    FZ_CHECK(again.failures == s.failures);
    FZ_CHECK(strcmp(again.last_error, s.last_error) == 0);
    FZ_CHECK(strcmp(again.url, s.url) == 0);
    FZ_CHECK(strcmp(again.subject, s.subject) == 0);
    FZ_CHECK(strcmp(again.serial, s.serial) == 0);
}

static void count_id(void *arg, const char *id)
{
    int *n = arg;

    FZ_CHECK(stp_store_id_valid(id));
    (*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct stp_err err;
    int n = 0;

    plant(der_path, data, size);
    check_der(data, size);
    plant(state_path, data, size);
    check_state(size);
    FZ_CHECK(stp_store_list(store, count_id, &n, &err) == 1 && n == 1);
    unlink(der_path);
    unlink(state_path);
    ERR_clear_error();
    return 0;
}
