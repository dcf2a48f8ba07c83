/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Exported functions of libocspstaple.so beyond the public header: the ones
 * the provider module (ocspstaple.so) calls. Not a supported API.
 */
#ifndef STP_ENTRY_API_H
#define STP_ENTRY_API_H

#include <openssl/core.h>
#include <openssl/core_dispatch.h>

#include "entry/boot.h"
#include "ocspstaple/ocspstaple.h"

/* What the library exports; everything else is hidden. */
#define STP_EXPORT __attribute__((visibility("default")))

/*
 * Called by OSSL_provider_init: registers the hooks for the provider route
 * and reads the policy through <gp> (and the configuration file). Returns
 * STP_BOOT_REGISTERED when the provider route is active, STP_BOOT_ALREADY
 * when it stands down (the LD_PRELOAD hook already is), STP_BOOT_FAILED on
 * failure. Never makes the provider fail to load.
 */
enum stp_boot_result
ocspstaple_provider_entry(const OSSL_CORE_HANDLE *handle,
                          OSSL_FUNC_core_get_params_fn *gp);

/* The name of the <i>-th metric, or NULL past the last one. */
const char *ocspstaple_metric_name(int i);

#endif
