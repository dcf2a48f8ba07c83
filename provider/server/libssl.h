/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libssl's own SSL_CTX_ctrl, SSL_CTX_callback_ctrl, SSL_set_SSL_CTX,
 * SSL_CTX_set_cert_verify_callback and SSL_CTX_set_session_ticket_cb,
 * whatever is interposed in front of them
 * (ours under LD_PRELOAD, or another library's): the hook reads and sets
 * its callbacks through these, never through the interposers the
 * application sees.
 */
#ifndef STP_SERVER_LIBSSL_H
#define STP_SERVER_LIBSSL_H

#include <openssl/ssl.h>

long stp_real_ctx_ctrl(SSL_CTX *ctx, int cmd, long larg, void *parg);
long stp_real_ctx_callback_ctrl(SSL_CTX *ctx, int cmd, void (*fp)(void));
SSL_CTX *stp_real_set_ssl_ctx(SSL *ssl, SSL_CTX *ctx);

/* The certificate verification callback type
 * (SSL_CTX_set_cert_verify_callback). */
typedef int (*stp_cert_verify_cb)(X509_STORE_CTX *x, void *arg);

void stp_real_set_cert_verify_cb(SSL_CTX *ctx, stp_cert_verify_cb cb,
                                 void *arg);

int stp_real_set_session_ticket_cb(SSL_CTX *ctx,
                                   SSL_CTX_generate_session_ticket_fn gen,
                                   SSL_CTX_decrypt_session_ticket_fn dec,
                                   void *arg);

#endif
