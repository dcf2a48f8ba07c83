/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocspstaple.so, the provider module that openssl.cnf loads. It offers no
 * algorithms: its initialisation hands the core's parameter function to
 * libocspstaple.so, which registers the SSL hooks and reads the policy. It
 * always initialises successfully (a broken policy leaves it passive, never
 * breaks the host's TLS) and exposes the counters as "metric.*" parameters.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include "entry/api.h"

#define MAX_GETTABLE 40

static OSSL_PARAM gettable[MAX_GETTABLE];
static char metric_keys[MAX_GETTABLE][48];

static void build_gettable(void)
{
    const char *name;
    int i, n = 0;

    gettable[n++] =
        OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_NAME, NULL, 0);
    gettable[n++] =
        OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_VERSION, NULL, 0);
    gettable[n++] =
        OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, NULL, 0);
    gettable[n++] = OSSL_PARAM_construct_int(OSSL_PROV_PARAM_STATUS, NULL);
    for (i = 0;
         (name = ocspstaple_metric_name(i)) != NULL && n < MAX_GETTABLE - 1;
         i++) {
        snprintf(metric_keys[n], sizeof(metric_keys[n]), "metric.%s", name);
        gettable[n] = OSSL_PARAM_construct_uint64(metric_keys[n], NULL);
        n++;
    }
    gettable[n] = OSSL_PARAM_construct_end();
}

static const OSSL_PARAM *prov_gettable_params(void *provctx)
{
    (void)provctx;
    return gettable;
}

static int prov_get_params(void *provctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p;
    uint64_t v;

    (void)provctx;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(p, "ocspstaple"))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(p, OCSPSTAPLE_VERSION))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(p, "ocspstaple " OCSPSTAPLE_VERSION))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS)) != NULL
        && !OSSL_PARAM_set_int(p, 1))
        return 0;
    for (p = params; p->key != NULL; p++) {
        if (strncmp(p->key, "metric.", 7) == 0
            && ocspstaple_metric(p->key + 7, &v)
            && !OSSL_PARAM_set_uint64(p, v))
            return 0;
    }
    return 1;
}

static const OSSL_ALGORITHM *prov_query(void *provctx, int operation_id,
                                        int *no_cache)
{
    (void)provctx;
    (void)operation_id;
    *no_cache = 0;
    return NULL;
}

static void prov_teardown(void *provctx)
{
    (void)provctx; /* state lives for the process (-z nodelete) */
}

static const OSSL_DISPATCH prov_dispatch[] = {
    { OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))prov_teardown },
    { OSSL_FUNC_PROVIDER_GETTABLE_PARAMS,
      (void (*)(void))prov_gettable_params },
    { OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))prov_get_params },
    { OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))prov_query },
    { 0, NULL }
};

__attribute__((visibility("default"))) int
OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                   const OSSL_DISPATCH **out, void **provctx)
{
    OSSL_FUNC_core_get_params_fn *gp = NULL;

    for (; in != NULL && in->function_id != 0; in++)
        if (in->function_id == OSSL_FUNC_CORE_GET_PARAMS)
            gp = OSSL_FUNC_core_get_params(in);
    build_gettable();
    ocspstaple_provider_entry(handle, gp);
    *out = prov_dispatch;
    *provctx = (void *)handle;
    return 1;
}
