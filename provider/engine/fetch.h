/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One OCSP request/response exchange over HTTP (RFC 6960 appendix A, RFC
 * 5019 5): GET with the URL-encoded base64 request when that is shorter
 * than 255 bytes (cacheable by proxies), POST application/ocsp-request
 * otherwise. http and https only, also across redirects (at most 2); connect
 * and total timeouts; the body is capped; proxies come from the environment
 * (http_proxy, https_proxy, no_proxy) as libcurl reads them.
 *
 * libcurl is loaded with dlopen() on first use, never at load time: a
 * process that only reads openssl.cnf must not map it (see DESIGN 3).
 * Does not parse or verify the body.
 */
#ifndef STP_FETCH_H
#define STP_FETCH_H

#include <stddef.h>

#include <openssl/ocsp.h>

#include "engine/err.h"

struct stp_fetch_opts {
    long timeout_ms; /* total */
    long connect_timeout_ms;
    size_t max_size; /* body cap in bytes */
};

/*
 * Sends <req> to <url>. Returns 1 with the body in *<body> (caller frees
 * with OPENSSL_free()) and its length in *<len> when the responder answered
 * HTTP 200. Returns 0 with <err> otherwise: STP_E_BAD_URL, STP_E_CONNECT,
 * STP_E_TIMEOUT, STP_E_HTTP (detail = HTTP status), STP_E_TOO_LARGE,
 * STP_E_TRANSPORT, or STP_E_INTERNAL when libcurl cannot be loaded. Blocks
 * for at most the timeout. Any thread, no signals used.
 */
int stp_fetch(const char *url, OCSP_REQUEST *req,
              const struct stp_fetch_opts *opts, unsigned char **body,
              size_t *len, struct stp_err *err);

/*
 * The request URL stp_fetch() would use for GET, or NULL when the request
 * is too long for GET (or on allocation failure). Caller frees with
 * OPENSSL_free(). Exposed for tests.
 */
char *stp_fetch_get_url(const char *url, const unsigned char *der, size_t len);

/*
 * Test seam: AUTO uses CURLOPT_PROTOCOLS_STR (libcurl 7.85 and later) and
 * falls back to the bitmask options; LEGACY acts as if the _STR options
 * were unknown (an older libcurl); NONE as if neither were known, where a
 * fetch must fail closed (STP_E_INTERNAL) without any connection.
 */
enum stp_fetch_protocols {
    STP_FETCH_PROTOCOLS_AUTO = 0,
    STP_FETCH_PROTOCOLS_LEGACY,
    STP_FETCH_PROTOCOLS_NONE
};
void stp_fetch_force_protocols(enum stp_fetch_protocols how);

/*
 * Loads libcurl now (it is loaded at the first fetch otherwise), for a
 * process about to chroot. Returns 1, or 0 with <err>.
 */
int stp_fetch_preload(struct stp_err *err);

/* 1 if libcurl is loaded in this process (tests of "bystanders pay nothing").
 */
int stp_fetch_loaded(void);

/* The bounds (ms) of the fetch duration histogram (server/metrics.h),
 * shared with `ocspstaple metrics`, which turns them into seconds. */
#define STP_FETCH_BUCKETS 8
#define STP_FETCH_BUCKET_MS                        \
    {                                              \
        50, 100, 250, 500, 1000, 2500, 5000, 10000 \
    }

#endif
