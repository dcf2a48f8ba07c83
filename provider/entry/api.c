/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The exported entry points of libocspstaple.so: the public API
 * (include/ocspstaple/ocspstaple.h) and the entry the thin provider module
 * calls, so that the module holds no state of its own (one copy per process
 * whatever loads the library).
 */
#include "entry/api.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/params.h>

#include "entry/boot.h"
#include "server/hook.h"
#include "engine/log.h"
#include "server/metrics.h"
#include "engine/policy.h"

#define MAX_KEYS 64

STP_EXPORT int ocspstaple_attach(SSL_CTX *ctx)
{
    return ctx != NULL && stp_boot(STP_ROUTE_API) != STP_BOOT_FAILED
           && stp_hook_attach(ctx);
}

STP_EXPORT int ocspstaple_metric(const char *name, uint64_t *value)
{
    return name != NULL && value != NULL && stp_metric_get(name, value);
}

STP_EXPORT const char *ocspstaple_metric_name(int i)
{
    return i >= 0 && i < STP_M_COUNT ? stp_metric_name((enum stp_metric)i)
                                     : NULL;
}

/* Asks the core for every top-level key of our section by name. */
static size_t core_keys(const OSSL_CORE_HANDLE *handle,
                        OSSL_FUNC_core_get_params_fn *get_params,
                        struct stp_kv *kv, const char **name)
{
    OSSL_PARAM params[MAX_KEYS + 2];
    char *vals[MAX_KEYS + 1] = { NULL };
    const char *key;
    size_t i, n = 0, out = 0;

    for (i = 0; (key = stp_policy_key(i)) != NULL && n < MAX_KEYS; i++) {
        params[n] = OSSL_PARAM_construct_utf8_ptr(key, &vals[n], 0);
        n++;
    }
    params[n] = OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_CORE_PROV_NAME,
                                              &vals[n], 0);
    params[n + 1] = OSSL_PARAM_construct_end();
    if (get_params == NULL || !get_params(handle, params))
        return 0;
    *name = vals[n];
    for (i = 0; i < n; i++) {
        if (vals[i] == NULL)
            continue;
        kv[out].key = params[i].key;
        kv[out].value = vals[i];
        out++;
    }
    return out;
}

STP_EXPORT enum stp_boot_result
ocspstaple_provider_entry(const OSSL_CORE_HANDLE *handle,
                          OSSL_FUNC_core_get_params_fn *gp)
{
    struct stp_kv kv[MAX_KEYS];
    const char *name = NULL;
    size_t n;
    enum stp_boot_result r = stp_boot(STP_ROUTE_PROVIDER);

    switch (r) {
    case STP_BOOT_FAILED:
        STP_LOG_ERR("prov", "cannot register the SSL hooks: ocspstaple "
                            "stays passive");
        break;
    case STP_BOOT_ALREADY:
        STP_LOG_DEBUG("prov",
                      "the LD_PRELOAD hook is active in %s: the "
                      "provider stands down",
                      stp_runtime_program());
        break;
    case STP_BOOT_REGISTERED:
        n = core_keys(handle, gp, kv, &name);
        stp_runtime_configure(name != NULL ? name : "ocspstaple", kv, n);
        break;
    }
    return r;
}
