/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pieces shared by the TLS test hosts we build (attach_server_mt.c,
 * churn_server.c): a listener on 127.0.0.1 with a kernel-chosen port
 * (printed as "ACCEPT 127.0.0.1:N"), a chain file added to a context, and
 * one server handshake on an accepted socket. Test code only.
 */
#ifndef STP_TEST_TLS_HOST_H
#define STP_TEST_TLS_HOST_H

#include <openssl/ssl.h>

/* Listens on 127.0.0.1, port chosen by the kernel; returns the fd or -1. */
int th_listen_loopback(void);

/* Adds the first certificate of PEM <file> to <ctx>'s chain. Returns 1. */
int th_add_chain(SSL_CTX *ctx, const char *file);

/* One handshake on accepted socket <fd> (closed here), 5 s I/O bound.
 * Returns 1 when it completed. */
int th_serve_one(SSL_CTX *ctx, int fd);

#endif
