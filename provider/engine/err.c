/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Result codes and error records (see err.h). Messages are formatted once, at
 * the failure site, with the OpenSSL error queue's first reason appended.
 * Configuration diagnostics (stp_vdiag) are formatted here too.
 */
#include "engine/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>

static const char *const code_names[STP_CODE_COUNT] = {
    [STP_OK] = "ok",
    [STP_E_NO_URL] = "no-ocsp-url",
    [STP_E_NO_ISSUER] = "no-issuer",
    [STP_E_BAD_URL] = "bad-url",
    [STP_E_CONNECT] = "connect",
    [STP_E_TIMEOUT] = "timeout",
    [STP_E_HTTP] = "http",
    [STP_E_TOO_LARGE] = "too-large",
    [STP_E_TRANSPORT] = "transport",
    [STP_E_MALFORMED] = "malformed",
    [STP_E_OCSP_MALFORMED_REQUEST] = "malformedRequest",
    [STP_E_OCSP_INTERNAL_ERROR] = "internalError",
    [STP_E_OCSP_TRY_LATER] = "tryLater",
    [STP_E_OCSP_SIG_REQUIRED] = "sigRequired",
    [STP_E_OCSP_UNAUTHORIZED] = "unauthorized",
    [STP_E_OCSP_STATUS] = "ocsp-status",
    [STP_E_NOT_BASIC] = "not-basic",
    [STP_E_SIGNATURE] = "signature",
    [STP_E_CERTID] = "certid",
    [STP_E_EXPIRED] = "expired",
    [STP_E_NOT_YET_VALID] = "not-yet-valid",
    [STP_E_OLDER] = "older",
    [STP_E_CERT_UNKNOWN] = "unknown-over-good",
    [STP_E_STORE] = "store",
    [STP_E_BUSY] = "busy",
    [STP_E_UNTRUSTED] = "untrusted",
    [STP_E_DEFERRED] = "deferred",
    [STP_E_NONCE] = "nonce",
    [STP_E_FLEET] = "fleet",
    [STP_E_INTERNAL] = "internal",
};

const char *stp_code_name(enum stp_code code)
{
    if ((unsigned)code >= STP_CODE_COUNT)
        return "?";
    return code_names[code];
}

void stp_err_clear(struct stp_err *err)
{
    if (err == NULL)
        return;
    err->code = STP_OK;
    err->detail = 0;
    err->msg[0] = '\0';
}

int stp_err_set(struct stp_err *err, enum stp_code code, long detail,
                const char *fmt, ...)
{
    va_list ap;
    unsigned long e;
    size_t len;

    if (err == NULL) {
        ERR_clear_error();
        return 0;
    }
    err->code = code;
    err->detail = detail;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    e = ERR_peek_error();
    if (e != 0) {
        const char *reason = ERR_reason_error_string(e);

        len = strlen(err->msg);
        if (reason != NULL && len + 4 < sizeof(err->msg))
            snprintf(err->msg + len, sizeof(err->msg) - len, " (%s)", reason);
        ERR_clear_error();
    }
    return 0;
}

enum stp_code stp_code_from_ocsp_status(int status)
{
    switch (status) {
    case OCSP_RESPONSE_STATUS_MALFORMEDREQUEST:
        return STP_E_OCSP_MALFORMED_REQUEST;
    case OCSP_RESPONSE_STATUS_INTERNALERROR:
        return STP_E_OCSP_INTERNAL_ERROR;
    case OCSP_RESPONSE_STATUS_TRYLATER:
        return STP_E_OCSP_TRY_LATER;
    case OCSP_RESPONSE_STATUS_SIGREQUIRED:
        return STP_E_OCSP_SIG_REQUIRED;
    case OCSP_RESPONSE_STATUS_UNAUTHORIZED:
        return STP_E_OCSP_UNAUTHORIZED;
    default:
        return STP_E_OCSP_STATUS;
    }
}

void stp_vdiag(stp_diag_fn diag, void *arg, const char *fmt, va_list ap)
{
    va_list ap2;
    char *msg, *p;
    int len;

    if (diag == NULL)
        return;
    va_copy(ap2, ap);
    len = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (len < 0) {
        diag(arg, "a problem could not be formatted");
        return;
    }
    msg = OPENSSL_malloc((size_t)len + 1);
    if (msg == NULL) {
        diag(arg, "out of memory while reporting a problem");
        return;
    }
    vsnprintf(msg, (size_t)len + 1, fmt, ap);
    for (p = msg; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    }
    diag(arg, msg);
    OPENSSL_free(msg);
}
