/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Resolution of libssl's real functions (see libssl.h): from libssl.so.3
 * itself when it is loaded, else the next definition after ours.
 */
#include "server/libssl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

static long (*real_ctrl)(SSL_CTX *, int, long, void *);
static long (*real_cbctrl)(SSL_CTX *, int, void (*)(void));
static SSL_CTX *(*real_set_ctx)(SSL *, SSL_CTX *);
static void (*real_set_verify)(SSL_CTX *, stp_cert_verify_cb, void *);
static int (*real_set_ticket)(SSL_CTX *, SSL_CTX_generate_session_ticket_fn,
                              SSL_CTX_decrypt_session_ticket_fn, void *);
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

static void resolve_real(void)
{
    void *h = dlopen("libssl.so.3", RTLD_NOW | RTLD_NOLOAD);
    void *sym;

    if (h != NULL) {
        sym = dlsym(h, "SSL_CTX_ctrl");
        memcpy(&real_ctrl, &sym, sizeof(sym));
        sym = dlsym(h, "SSL_CTX_callback_ctrl");
        memcpy(&real_cbctrl, &sym, sizeof(sym));
        sym = dlsym(h, "SSL_set_SSL_CTX");
        memcpy(&real_set_ctx, &sym, sizeof(sym));
        sym = dlsym(h, "SSL_CTX_set_cert_verify_callback");
        memcpy(&real_set_verify, &sym, sizeof(sym));
        sym = dlsym(h, "SSL_CTX_set_session_ticket_cb");
        memcpy(&real_set_ticket, &sym, sizeof(sym));
        dlclose(h);
    }
    if (real_ctrl == NULL || real_cbctrl == NULL || real_set_ctx == NULL
        || real_set_verify == NULL || real_set_ticket == NULL) {
        sym = dlsym(RTLD_NEXT, "SSL_CTX_ctrl");
        memcpy(&real_ctrl, &sym, sizeof(sym));
        sym = dlsym(RTLD_NEXT, "SSL_CTX_callback_ctrl");
        memcpy(&real_cbctrl, &sym, sizeof(sym));
        sym = dlsym(RTLD_NEXT, "SSL_set_SSL_CTX");
        memcpy(&real_set_ctx, &sym, sizeof(sym));
        sym = dlsym(RTLD_NEXT, "SSL_CTX_set_cert_verify_callback");
        memcpy(&real_set_verify, &sym, sizeof(sym));
        sym = dlsym(RTLD_NEXT, "SSL_CTX_set_session_ticket_cb");
        memcpy(&real_set_ticket, &sym, sizeof(sym));
    }
}

long stp_real_ctx_ctrl(SSL_CTX *ctx, int cmd, long larg, void *parg)
{
    pthread_once(&real_once, resolve_real);
    return real_ctrl != NULL ? real_ctrl(ctx, cmd, larg, parg) : 0;
}

long stp_real_ctx_callback_ctrl(SSL_CTX *ctx, int cmd, void (*fp)(void))
{
    pthread_once(&real_once, resolve_real);
    return real_cbctrl != NULL ? real_cbctrl(ctx, cmd, fp) : 0;
}

SSL_CTX *stp_real_set_ssl_ctx(SSL *ssl, SSL_CTX *ctx)
{
    pthread_once(&real_once, resolve_real);
    return real_set_ctx != NULL ? real_set_ctx(ssl, ctx) : NULL;
}

void stp_real_set_cert_verify_cb(SSL_CTX *ctx, stp_cert_verify_cb cb, void *arg)
{
    pthread_once(&real_once, resolve_real);
    if (real_set_verify != NULL)
        real_set_verify(ctx, cb, arg);
}

int stp_real_set_session_ticket_cb(SSL_CTX *ctx,
                                   SSL_CTX_generate_session_ticket_fn gen,
                                   SSL_CTX_decrypt_session_ticket_fn dec,
                                   void *arg)
{
    pthread_once(&real_once, resolve_real);
    return real_set_ticket != NULL ? real_set_ticket(ctx, gen, dec, arg) : 0;
}
