/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TLS client of `ocspstaple probe` (tools/probe_client.c). It asks a
 * server for its certificate status (RFC 6066 8 status_request; in TLS 1.3
 * the staple rides in the leaf's CertificateEntry, RFC 8446 4.4.2.1) and
 * verifies what comes back with the engine's stp_verify_response(), against
 * the leaf and issuer the server actually sent. Every handshake is a full
 * one on a fresh connection, bounded by one deadline. A staple identical to
 * the last verified one, for the same leaf and issuer, reuses its
 * verification (only the time is checked again), so that a run of many
 * handshakes measures the server.
 */
#ifndef OCSPSTAPLE_TOOLS_PROBE_CLIENT_H
#define OCSPSTAPLE_TOOLS_PROBE_CLIENT_H

#include <sys/socket.h>

#include "engine/err.h"
#include "engine/verify.h"

/* Whom to ask, and how. The strings are borrowed for the client's life. */
struct probe_conf {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const char *servername; /* SNI; with cafile, also the name checked */
    const char *cafile;     /* checks the chain; more issuers; or NULL */
    const char *sigalgs;    /* OpenSSL's list syntax, or NULL */
    int version;            /* 0: any; else TLS1_2_VERSION or TLS1_3_VERSION */
    long long timeout_ms;   /* per handshake, connect included */
};

/* What one handshake showed. */
struct probe_result {
    int done;      /* the handshake completed */
    char err[512]; /* why not, or why the chain failed */
    int chain;     /* -1 unchecked (no cafile), 0 failed, 1 ok */
    int stapled;   /* the server sent a status response */
    int verified;  /* ... and it verified for this leaf */
    struct stp_verdict v;
    struct stp_err verr;
    char protocol[16], sigalg[48], cert_key[24], subject[256];
};

struct probe_client;

/*
 * Sets <c>'s address: <host> an IP literal of <family> (AF_INET or
 * AF_INET6), and <port>. Returns 1, or 0 if <host> is not one.
 */
int probe_conf_set_addr(struct probe_conf *c, int family, const char *host,
                        unsigned short port);

/*
 * A client for <conf> (copied), with one TLS context for all its
 * handshakes. Returns CLI_EXIT_GOOD with <out> set; else, after printing the
 * cause, CLI_EXIT_USAGE (sigalgs not a valid list) or CLI_EXIT_ERROR.
 */
int probe_client_new(const struct probe_conf *conf, struct probe_client **out);

void probe_client_free(struct probe_client *pc); /* NULL is fine */

/* One full handshake on a fresh connection; <r> tells what it showed. */
void probe_client_handshake(struct probe_client *pc, struct probe_result *r);

#endif
