/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Result codes of the OCSP engine and a small error record that carries one
 * code, a numeric detail (HTTP status, OCSP response status, errno) and a
 * human-readable message naming the certificate, URL or file concerned.
 * Transport failures, OCSP error statuses and verification failures are
 * distinct codes so that callers (CLI exit status, backoff, logs) can tell
 * them apart. Also the one formatter of configuration diagnostics, shared by
 * the policy parser and the openssl.cnf reader.
 */
#ifndef STP_ERR_H
#define STP_ERR_H

#include <stdarg.h>
#include <stddef.h>

enum stp_code {
    STP_OK = 0,
    STP_E_NO_URL,    /* not applicable: the cert names no responder */
    STP_E_NO_ISSUER, /* issuer certificate not found */
    STP_E_BAD_URL,   /* unsupported scheme or unparsable URL */
    STP_E_CONNECT,   /* could not connect to the responder */
    STP_E_TIMEOUT,   /* connect or total timeout */
    STP_E_HTTP,      /* HTTP status other than 200; detail = status */
    STP_E_TOO_LARGE, /* body over max_response_size */
    STP_E_TRANSPORT, /* other transfer failure */
    STP_E_MALFORMED, /* body is not a DER OCSPResponse */
    STP_E_OCSP_MALFORMED_REQUEST, /* OCSP responseStatus 1 */
    STP_E_OCSP_INTERNAL_ERROR,    /* 2 */
    STP_E_OCSP_TRY_LATER,         /* 3 */
    STP_E_OCSP_SIG_REQUIRED,      /* 5 */
    STP_E_OCSP_UNAUTHORIZED,      /* 6 */
    STP_E_OCSP_STATUS,            /* any other non-successful responseStatus */
    STP_E_NOT_BASIC,              /* responseBytes not id-pkix-ocsp-basic */
    STP_E_SIGNATURE,              /* signature, signer chain or authorisation */
    STP_E_CERTID,                 /* no SingleResponse for this certificate */
    STP_E_EXPIRED,                /* nextUpdate (plus skew) is past */
    STP_E_NOT_YET_VALID, /* thisUpdate is in the future (beyond skew) */
    STP_E_OLDER,         /* older than the response already stored */
    STP_E_CERT_UNKNOWN,  /* "unknown" while a "good" one is held */
    STP_E_STORE,         /* store directory I/O */
    STP_E_BUSY,          /* another process holds the certificate's lock */
    STP_E_UNTRUSTED,     /* skip_verify: a stored response is not trusted */
    STP_E_DEFERRED,      /* another process's attempt failed: its backoff */
    STP_E_NONCE,         /* the answer does not echo the request's nonce */
    STP_E_FLEET,         /* the fleet tier (Redis): unusable or misconfigured */
    STP_E_INTERNAL,      /* allocation or library failure */
    STP_CODE_COUNT
};

struct stp_err {
    enum stp_code code;
    long detail;
    char msg[512];
};

/* Short stable name of a code, e.g. "http", "tryLater", "signature". */
const char *stp_code_name(enum stp_code code);

/*
 * Sets <err> (may be NULL) to <code> and a formatted message. If the OpenSSL
 * error queue holds anything, its first reason is appended and the queue is
 * cleared, so that a message carries the library's cause. Always returns 0,
 * so that failing paths can `return stp_err_set(...)`.
 */
int stp_err_set(struct stp_err *err, enum stp_code code, long detail,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Resets <err> to STP_OK with an empty message. */
void stp_err_clear(struct stp_err *err);

/*
 * Maps a non-successful OCSP responseStatus (RFC 6960 4.2.1) to its code.
 */
enum stp_code stp_code_from_ocsp_status(int status);

/* Receives one complete, human-readable problem description per call. */
typedef void (*stp_diag_fn)(void *arg, const char *msg);

/*
 * Formats one problem and hands it to <diag> (nothing if NULL), control
 * characters replaced by '?' (values come from files). Any thread.
 */
void stp_vdiag(stp_diag_fn diag, void *arg, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
