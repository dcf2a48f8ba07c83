/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libssl's own SSL_CTX_ctrl, SSL_CTX_callback_ctrl and SSL_set_SSL_CTX,
 * whatever is
 * interposed in front of them (ours under LD_PRELOAD, or another
 * library's): the hook reads and sets the status callback through these,
 * never through the interposers the application sees.
 */
#ifndef STP_SERVER_LIBSSL_H
#define STP_SERVER_LIBSSL_H

#include <openssl/ssl.h>

long stp_real_ctx_ctrl(SSL_CTX *ctx, int cmd, long larg, void *parg);
long stp_real_ctx_callback_ctrl(SSL_CTX *ctx, int cmd, void (*fp)(void));
SSL_CTX *stp_real_set_ssl_ctx(SSL *ssl, SSL_CTX *ctx);

#endif
