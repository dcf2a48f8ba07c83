/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The probe's TLS client (probe_client.h): a non-blocking connect and
 * handshake bounded by one deadline, what the server showed (protocol,
 * signature, chain, staple), and the verification memo.
 */
#include "probe_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "engine/certinfo.h"
#include "cli.h"
#include "engine/clock.h"
#include "engine/err.h"
#include "engine/verify.h"

#define SHUTDOWN_MS 1000 /* at most this long for the peer's close */

/* The previous good verification: identical bytes need no new signature. */
struct staple_memo {
    unsigned char *der;
    size_t len;
    X509 *leaf, *issuer;
    struct stp_verdict v;
};

struct probe_client {
    struct probe_conf conf;
    SSL_CTX *ctx;
    STACK_OF(X509) *trust;     /* certificates of the CA file, or NULL */
    struct stp_verify_opts vo; /* the engine's defaults */
    struct staple_memo memo;
};

enum io_wait { IO_RETRY, IO_FAILED, IO_TIMEOUT };

int probe_conf_set_addr(struct probe_conf *c, int family, const char *host,
                        unsigned short port)
{
    struct sockaddr_in *a4 = (struct sockaddr_in *)&c->addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&c->addr;
    int v6 = family == AF_INET6;
    void *ip = v6 ? (void *)&a6->sin6_addr : (void *)&a4->sin_addr;

    memset(&c->addr, 0, sizeof(c->addr));
    if (inet_pton(family, host, ip) != 1)
        return 0;
    c->addr.ss_family = (sa_family_t)family;
    if (v6)
        a6->sin6_port = htons(port);
    else
        a4->sin_port = htons(port);
    c->addrlen = v6 ? sizeof(*a6) : sizeof(*a4);
    return 1;
}

static void memo_clear(struct staple_memo *m)
{
    OPENSSL_free(m->der);
    X509_free(m->leaf);
    X509_free(m->issuer);
    memset(m, 0, sizeof(*m));
}

void probe_client_free(struct probe_client *pc)
{
    if (pc == NULL)
        return;
    memo_clear(&pc->memo);
    sk_X509_pop_free(pc->trust, X509_free);
    SSL_CTX_free(pc->ctx);
    OPENSSL_free(pc);
}

/*
 * One SSL_CTX for the whole run: no session cache and no tickets, so that
 * every handshake is a full one. The chain is checked after the handshake
 * (SSL_get_verify_result), so that a failure still shows the staple.
 */
static int client_init(struct probe_client *pc)
{
    const struct probe_conf *o = &pc->conf;
    struct stp_err err;

    if (!cli_default_verify_opts(&pc->vo)) {
        fprintf(stderr, "ocspstaple probe: out of memory\n");
        return CLI_EXIT_ERROR;
    }
    pc->ctx = SSL_CTX_new(TLS_client_method());
    if (pc->ctx == NULL) {
        fprintf(stderr, "ocspstaple probe: cannot create a TLS context\n");
        return CLI_EXIT_ERROR;
    }
    SSL_CTX_set_options(pc->ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(pc->ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_verify(pc->ctx, SSL_VERIFY_NONE, NULL);
    if (!SSL_CTX_set_min_proto_version(pc->ctx, o->version)
        || !SSL_CTX_set_max_proto_version(pc->ctx, o->version)) {
        fprintf(stderr, "ocspstaple probe: cannot set the TLS version\n");
        return CLI_EXIT_ERROR;
    }
    if (o->sigalgs != NULL && !SSL_CTX_set1_sigalgs_list(pc->ctx, o->sigalgs)) {
        fprintf(stderr, "ocspstaple probe: --sigalgs '%s': not a valid list\n",
                o->sigalgs);
        return CLI_EXIT_USAGE;
    }
    if (o->cafile == NULL)
        return CLI_EXIT_GOOD;
    pc->trust = stp_load_certs(o->cafile, &err);
    if (pc->trust == NULL
        || !SSL_CTX_load_verify_locations(pc->ctx, o->cafile, NULL)) {
        if (pc->trust == NULL)
            fprintf(stderr, "ocspstaple probe: --CAfile %s\n", err.msg);
        else
            fprintf(stderr, "ocspstaple probe: --CAfile %s: not usable\n",
                    o->cafile);
        return CLI_EXIT_ERROR;
    }
    return CLI_EXIT_GOOD;
}

int probe_client_new(const struct probe_conf *conf, struct probe_client **out)
{
    struct probe_client *pc = OPENSSL_zalloc(sizeof(*pc));
    int rc;

    *out = NULL;
    if (pc == NULL) {
        fprintf(stderr, "ocspstaple probe: out of memory\n");
        return CLI_EXIT_ERROR;
    }
    pc->conf = *conf;
    rc = client_init(pc);
    if (rc != CLI_EXIT_GOOD)
        probe_client_free(pc);
    else
        *out = pc;
    return rc;
}

/* Waits until <fd> is ready for <events>. Returns 1, or 0 at <deadline>. */
static int wait_fd(int fd, short events, long long deadline)
{
    struct pollfd p = { fd, events, 0 };
    long long left;
    int n;

    for (;;) {
        left = deadline - stp_monotonic_ms();
        if (left <= 0)
            return 0;
        n = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return 0;
    }
}

/* Non-blocking connect bounded by <deadline>. Returns the socket, or -1. */
static int tcp_connect(const struct probe_conf *o, long long deadline,
                       struct probe_result *r)
{
    int fd, soerr = 0, one = 1;
    socklen_t sl = sizeof(soerr);

    fd = socket(o->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                0);
    if (fd < 0) {
        snprintf(r->err, sizeof(r->err), "socket: %s", strerror(errno));
        return -1;
    }
    /* a handshake flight must not wait for a delayed ACK */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)&o->addr, o->addrlen) == 0)
        return fd;
    if (errno != EINPROGRESS) {
        soerr = errno;
    } else if (!wait_fd(fd, POLLOUT, deadline)) {
        snprintf(r->err, sizeof(r->err), "connect: timed out");
        close(fd);
        return -1;
    } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
        soerr = errno;
    }
    if (soerr == 0)
        return fd;
    snprintf(r->err, sizeof(r->err), "connect: %s", strerror(soerr));
    close(fd);
    return -1;
}

/* After an SSL call returned <rc>: wait for the socket if it asks to. */
static enum io_wait ssl_wait(SSL *ssl, int fd, int rc, long long deadline)
{
    switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        return wait_fd(fd, POLLIN, deadline) ? IO_RETRY : IO_TIMEOUT;
    case SSL_ERROR_WANT_WRITE:
        return wait_fd(fd, POLLOUT, deadline) ? IO_RETRY : IO_TIMEOUT;
    default:
        return IO_FAILED;
    }
}

/* The handshake failed: the library's reason, else errno, else EOF. */
static void tls_error(struct probe_result *r, enum io_wait w)
{
    unsigned long e = ERR_peek_last_error();
    char buf[256];

    if (w == IO_TIMEOUT)
        snprintf(r->err, sizeof(r->err), "handshake: timed out");
    else if (e != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        snprintf(r->err, sizeof(r->err), "handshake: %s", buf);
    } else if (errno != 0)
        snprintf(r->err, sizeof(r->err), "handshake: %s", strerror(errno));
    else
        snprintf(r->err, sizeof(r->err),
                 "handshake: the server closed the connection");
    ERR_clear_error();
}

/*
 * Sends close_notify and waits (briefly) for the server to close too, so
 * that the next handshake does not overlap this connection's teardown in
 * the server. A failure here is not the handshake's.
 */
static void tls_close(SSL *ssl, int fd, long long deadline)
{
    long long cap = stp_monotonic_ms() + SHUTDOWN_MS;
    int rc;

    if (deadline > cap)
        deadline = cap;
    rc = SSL_shutdown(ssl);
    while (rc != 1 && stp_monotonic_ms() < deadline) {
        if (rc < 0 && ssl_wait(ssl, fd, rc, deadline) != IO_RETRY)
            break;
        rc = SSL_shutdown(ssl);
    }
    ERR_clear_error();
}

/* "ECDSA+SHA256", "RSA-PSS+SHA256", "ED25519": the syntax of --sigalgs. */
static void sigalg_name(SSL *ssl, char *buf, size_t len)
{
    int type = NID_undef, md = NID_undef;
    const char *t;

    if (!SSL_get_peer_signature_type_nid(ssl, &type)) {
        snprintf(buf, len, "-");
        return;
    }
    switch (type) {
    case EVP_PKEY_RSA:
        t = "RSA";
        break;
    case EVP_PKEY_RSA_PSS:
        t = "RSA-PSS";
        break;
    case EVP_PKEY_EC:
        t = "ECDSA";
        break;
    default:
        t = OBJ_nid2sn(type);
    }
    if (SSL_get_peer_signature_nid(ssl, &md) && md != NID_undef)
        snprintf(buf, len, "%s+%s", t, OBJ_nid2sn(md));
    else
        snprintf(buf, len, "%s", t);
}

/*
 * The same staple bytes for the same leaf and issuer as the last verified
 * one: its signature and CertID stand, only the time is checked again.
 */
static int memo_hit(const struct staple_memo *m, const unsigned char *der,
                    size_t len, const struct stp_certinfo *ci,
                    const struct stp_verify_opts *vo, struct stp_verdict *out)
{
    if (m->der == NULL || m->len != len || memcmp(m->der, der, len) != 0
        || ci->issuer == NULL || X509_cmp(m->leaf, ci->leaf) != 0
        || X509_cmp(m->issuer, ci->issuer) != 0)
        return 0;
    if (vo->now >= m->v.next_update || m->v.this_update > vo->now + vo->skew)
        return 0;
    *out = m->v;
    return 1;
}

static void memo_set(struct staple_memo *m, const unsigned char *der,
                     size_t len, const struct stp_certinfo *ci,
                     const struct stp_verdict *v)
{
    memo_clear(m);
    if (!X509_up_ref(ci->leaf))
        return;
    m->leaf = ci->leaf;
    if (!X509_up_ref(ci->issuer)) {
        memo_clear(m);
        return;
    }
    m->issuer = ci->issuer;
    m->der = OPENSSL_memdup(der, len);
    m->len = len;
    m->v = *v;
}

static void check_staple(struct probe_client *pc, const struct stp_certinfo *ci,
                         const unsigned char *der, size_t len,
                         struct probe_result *r)
{
    struct stp_verify_opts vo = pc->vo;

    vo.now = stp_now();
    vo.extra_trust = pc->trust;
    r->stapled = 1;
    if (memo_hit(&pc->memo, der, len, ci, &vo, &r->v)) {
        r->verified = 1;
        return;
    }
    r->verified = stp_verify_response(der, len, ci->leaf, ci->issuer, &vo,
                                      &r->v, &r->verr);
    if (r->verified)
        memo_set(&pc->memo, der, len, ci, &r->v);
}

/*
 * After the handshake: protocol, signature, chain result, and the staple
 * verified for the leaf the server sent. Its issuer is the first certificate
 * of the peer's chain, then of --CAfile, that X509_check_issued() accepts.
 */
static void inspect(struct probe_client *pc, SSL *ssl, struct probe_result *r)
{
    X509 *leaf = SSL_get0_peer_certificate(ssl);
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    STACK_OF(X509) *cands = sk_X509_new_null();
    struct stp_certinfo *ci = NULL;
    const unsigned char *der = NULL;
    long len = SSL_get_tlsext_status_ocsp_resp(ssl, &der);
    EVP_PKEY *pkey = leaf != NULL ? X509_get0_pubkey(leaf) : NULL;
    long vr = SSL_get_verify_result(ssl);
    int i, ok = cands != NULL;

    snprintf(r->protocol, sizeof(r->protocol), "%s", SSL_get_version(ssl));
    sigalg_name(ssl, r->sigalg, sizeof(r->sigalg));
    snprintf(r->cert_key, sizeof(r->cert_key), "%s",
             pkey != NULL ? EVP_PKEY_get0_type_name(pkey) : "-");
    if (pc->conf.cafile != NULL) {
        r->chain = vr == X509_V_OK;
        if (!r->chain)
            snprintf(r->err, sizeof(r->err), "certificate verify failed: %s",
                     X509_verify_cert_error_string(vr));
    }
    for (i = 0; ok && i < sk_X509_num(chain); i++)
        ok = sk_X509_push(cands, sk_X509_value(chain, i)) > 0;
    for (i = 0; ok && i < sk_X509_num(pc->trust); i++)
        ok = sk_X509_push(cands, sk_X509_value(pc->trust, i)) > 0;
    if (leaf == NULL) {
        snprintf(r->err, sizeof(r->err), "the server sent no certificate");
    } else if (!ok || !stp_certinfo_new(leaf, cands, &ci, &r->verr)) {
        snprintf(r->err, sizeof(r->err),
                 "cannot inspect the certificate: %.400s",
                 ok ? r->verr.msg : "out of memory");
    } else {
        snprintf(r->subject, sizeof(r->subject), "%s", ci->subject);
        if (der != NULL && len > 0)
            check_staple(pc, ci, der, (size_t)len, r);
    }
    stp_certinfo_free(ci);
    sk_X509_free(cands);
}

void probe_client_handshake(struct probe_client *pc, struct probe_result *r)
{
    const struct probe_conf *o = &pc->conf;
    long long deadline = stp_monotonic_ms() + o->timeout_ms;
    enum io_wait w;
    SSL *ssl = NULL;
    int fd, rc;

    memset(r, 0, sizeof(*r));
    r->chain = -1;
    ERR_clear_error();
    fd = tcp_connect(o, deadline, r);
    if (fd < 0)
        goto end;
    ssl = SSL_new(pc->ctx);
    if (ssl == NULL || !SSL_set_fd(ssl, fd)
        || !SSL_set_tlsext_status_type(ssl, TLSEXT_STATUSTYPE_ocsp)
        || (o->servername != NULL
            && !SSL_set_tlsext_host_name(ssl, o->servername))
        || (o->servername != NULL && o->cafile != NULL
            && !SSL_set1_host(ssl, o->servername))) {
        snprintf(r->err, sizeof(r->err), "cannot set up the TLS connection");
        goto end;
    }
    for (;;) {
        errno = 0;
        rc = SSL_connect(ssl);
        if (rc == 1)
            break;
        w = ssl_wait(ssl, fd, rc, deadline);
        if (w != IO_RETRY) {
            tls_error(r, w);
            goto end;
        }
    }
    r->done = 1;
    inspect(pc, ssl, r);
    tls_close(ssl, fd, deadline);
end:
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
}