/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Optional explicit API of libocspstaple.so, for applications that link it
 * instead of loading it through openssl.cnf (the provider) or LD_PRELOAD.
 * The policy comes from $OCSPSTAPLE_CONF, else OpenSSL's configuration file
 * (its ocspstaple provider section), else the defaults.
 */
#ifndef OCSPSTAPLE_OCSPSTAPLE_H
#define OCSPSTAPLE_OCSPSTAPLE_H

#include <stdint.h>

#include <openssl/ssl.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Makes <ctx> staple: installs the OCSP status callback (chaining to one the
 * application set before, which keeps priority), tracks every certificate
 * of <ctx> that has a private key, reads their stored responses, and starts
 * the background refresher. Call it after loading the certificates. Returns
 * 1, or 0 when the policy keeps the module passive (the reason is logged)
 * or on failure; <ctx> is never left unusable.
 */
int ocspstaple_attach(SSL_CTX *ctx);

/*
 * Reads a process-wide counter by name: staples_served, staples_none,
 * staples_expired, handshakes_refused, app_stapled, fetch_ok, fetch_fail,
 * fetch_skipped, store_load, certificates, refreshers, and for client
 * certificates (docs/client-ocsp.md) client_good, client_revoked,
 * client_unknown, client_error, client_fail_open, client_skipped,
 * client_certificates. Returns 1 and sets
 * *<value>, or 0 for an unknown name.
 */
int ocspstaple_metric(const char *name, uint64_t *value);

#ifdef __cplusplus
}
#endif

#endif
