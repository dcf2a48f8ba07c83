/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The LD_PRELOAD route: a constructor that registers the hooks (and nothing
 * else: no OPENSSL_init_*, which would take the application's configuration
 * choices away), interposers on SSL_CTX_callback_ctrl / SSL_CTX_ctrl so
 * that an application that sets or reads its status callback only ever
 * sees its own, while ours stays installed and chains to it, and one on
 * SSL_set_SSL_CTX, where a context reached only through SNI is examined
 * while a handshake holds it, and ones on SSL_CTX_set_cert_verify_callback
 * and SSL_CTX_set_session_ticket_cb, so that the client-certificate check
 * chains to the application's own verification and ticket callbacks
 * instead of replacing them.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "entry/api.h"
#include "entry/boot.h"
#include "server/hook.h"
#include "server/libssl.h"

static int preloaded(void)
{
    const char *v = secure_getenv("LD_PRELOAD");

    return v != NULL && strstr(v, "libocspstaple") != NULL;
}

__attribute__((constructor)) static void stp_preload_init(void)
{
    if (preloaded())
        stp_boot(STP_ROUTE_PRELOAD);
}

STP_EXPORT long SSL_CTX_callback_ctrl(SSL_CTX *ctx, int cmd, void (*fp)(void))
{
    if (cmd == SSL_CTRL_SET_TLSEXT_STATUS_REQ_CB) {
        stp_status_cb cb;

        memcpy(&cb, &fp, sizeof(cb));
        if (stp_hook_capture_set(ctx, cb))
            return 1;
    }
    return stp_real_ctx_callback_ctrl(ctx, cmd, fp);
}

STP_EXPORT long SSL_CTX_ctrl(SSL_CTX *ctx, int cmd, long larg, void *parg)
{
    if (cmd == SSL_CTRL_GET_TLSEXT_STATUS_REQ_CB && parg != NULL) {
        stp_status_cb cb;

        if (stp_hook_capture_get(ctx, &cb)) {
            memcpy(parg, &cb, sizeof(cb));
            return 1;
        }
    }
    return stp_real_ctx_ctrl(ctx, cmd, larg, parg);
}

/* A handshake switched to another context (SNI): examined now, while the
 * SSL holds a reference to it, if it was not yet. */
STP_EXPORT SSL_CTX *SSL_set_SSL_CTX(SSL *ssl, SSL_CTX *ctx)
{
    SSL_CTX *r = stp_real_set_ssl_ctx(ssl, ctx);

    if (r != NULL && ctx != NULL)
        stp_hook_switched(ssl, ctx);
    return r;
}

/* The application's certificate verification procedure: kept and called
 * by ours where ours is installed (it then still decides the chain). */
STP_EXPORT void
SSL_CTX_set_cert_verify_callback(SSL_CTX *ctx, stp_cert_verify_cb cb, void *arg)
{
    if (stp_hook_capture_verify(ctx, cb, arg))
        return;
    stp_real_set_cert_verify_cb(ctx, cb, arg);
}

/* The application's session ticket callbacks: kept, and called by ours
 * where ours is installed. */
STP_EXPORT int SSL_CTX_set_session_ticket_cb(
    SSL_CTX *ctx, SSL_CTX_generate_session_ticket_fn gen_cb,
    SSL_CTX_decrypt_session_ticket_fn dec_cb, void *arg)
{
    if (stp_hook_capture_ticket(ctx, gen_cb, dec_cb, arg))
        return 1;
    return stp_real_set_session_ticket_cb(ctx, gen_cb, dec_cb, arg);
}
