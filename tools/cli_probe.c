/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `ocspstaple probe`: the project's own TLS client. It asks a server for its
 * certificate status (RFC 6066 8 status_request; in TLS 1.3 the staple rides
 * in the leaf's CertificateEntry, RFC 8446 4.4.2.1) and verifies what comes
 * back with the engine's stp_verify_response(), against the leaf and issuer
 * the server actually sent. With --count it does N full handshakes (no
 * resumption) and reports the rate, for the benchmark. IP literals only: no
 * name resolution; every handshake is bounded by --timeout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "engine/certinfo.h"
#include "cli.h"
#include "engine/clock.h"
#include "engine/err.h"
#include "engine/verify.h"

#define SHUTDOWN_MS 1000 /* at most this long for the peer's close */
#define MAX_COUNT   1000000L

struct probe_opts {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const char *target; /* HOST:PORT as given */
    const char *servername, *cafile, *sigalgs;
    int version; /* 0: any; else TLS1_2_VERSION or TLS1_3_VERSION */
    int require_staple, json;
    long count;
    long long timeout_ms;
};

/* The previous good verification: identical bytes need no new signature. */
struct staple_memo {
    unsigned char *der;
    size_t len;
    X509 *leaf, *issuer;
    struct stp_verdict v;
};

struct probe_run {
    const struct probe_opts *o;
    SSL_CTX *ctx;
    STACK_OF(X509) *trust;     /* certificates of --CAfile, or NULL */
    struct stp_verify_opts vo; /* the engine's defaults */
    struct staple_memo memo;
};

/* What one handshake showed. */
struct hs_result {
    int done;      /* the handshake completed */
    char err[512]; /* why not, or why the chain failed */
    int chain;     /* -1 unchecked (no --CAfile), 0 failed, 1 ok */
    int stapled;   /* the server sent a status response */
    int verified;  /* ... and it verified for this leaf */
    struct stp_verdict v;
    struct stp_err verr;
    char protocol[16], sigalg[48], cert_key[24], subject[256];
    int outcome; /* the exit status this handshake alone gives */
};

enum io_wait { IO_RETRY, IO_FAILED, IO_TIMEOUT };

static void probe_usage(FILE *out)
{
    fprintf(out,
            "usage: ocspstaple probe HOST:PORT [--servername NAME] "
            "[--CAfile FILE]\n"
            "           [--tls1.2|--tls1.3] [--sigalgs LIST] "
            "[--require-staple] [--json]\n"
            "           [--count N] [--timeout S]\n"
            "  HOST is an IP literal: 127.0.0.1 or [::1]. Exit status: 0 "
            "good (or no\n"
            "  staple and none required), 3 revoked, 4 unknown, 6 no staple "
            "with\n"
            "  --require-staple, 7 a staple that does not verify, 1 "
            "connection,\n"
            "  handshake or chain error, 2 usage.\n");
}

/* "127.0.0.1:443" or "[::1]:443" into o->addr. Returns 1, or 0. */
static int parse_target(const char *s, struct probe_opts *o)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *colon = strrchr(s, ':'), *h = s;
    size_t hlen;
    char *end;
    long port;

    if (colon == NULL)
        return 0;
    hlen = (size_t)(colon - s);
    if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
        h = s + 1;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof(host))
        return 0;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535)
        return 0;
    memset(&o->addr, 0, sizeof(o->addr));
    if (h == s) {
        struct sockaddr_in *a = (struct sockaddr_in *)&o->addr;

        if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
            return 0;
        a->sin_family = AF_INET;
        a->sin_port = htons((unsigned short)port);
        o->addrlen = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&o->addr;

        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            return 0;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((unsigned short)port);
        o->addrlen = sizeof(*a);
    }
    o->target = s;
    return 1;
}

static int parse_number(const char *opt, const char *v, double lo, double hi,
                        double *out)
{
    char *end;

    errno = 0;
    *out = strtod(v, &end);
    if (errno == 0 && end != v && *end == '\0' && *out >= lo && *out <= hi)
        return 1;
    fprintf(
        stderr,
        "ocspstaple probe: %s '%s': expected a number from %.10g to %.10g\n",
        opt, v, lo, hi);
    return 0;
}

/* Returns CLI_EXIT_GOOD to go on, CLI_EXIT_USAGE, or -1 after --help. */
static int parse_args(int argc, char **argv, struct probe_opts *o)
{
    static const struct option opts[] = {
        { "servername", required_argument, NULL, 'n' },
        { "CAfile", required_argument, NULL, 'C' },
        { "tls1.2", no_argument, NULL, '2' },
        { "tls1.3", no_argument, NULL, '3' },
        { "sigalgs", required_argument, NULL, 's' },
        { "require-staple", no_argument, NULL, 'r' },
        { "json", no_argument, NULL, 'j' },
        { "count", required_argument, NULL, 'c' },
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    double d;
    int c;

    o->count = 1;
    o->timeout_ms = 5000;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o->servername = optarg;
            break;
        case 'C':
            o->cafile = optarg;
            break;
        case '2':
        case '3':
            if (o->version != 0) {
                fprintf(stderr, "ocspstaple probe: give one of --tls1.2 and "
                                "--tls1.3\n");
                return CLI_EXIT_USAGE;
            }
            o->version = c == '2' ? TLS1_2_VERSION : TLS1_3_VERSION;
            break;
        case 's':
            o->sigalgs = optarg;
            break;
        case 'r':
            o->require_staple = 1;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'c':
            if (!parse_number("--count", optarg, 1, MAX_COUNT, &d)
                || d != (long)d)
                return CLI_EXIT_USAGE;
            o->count = (long)d;
            break;
        case 't':
            if (!parse_number("--timeout", optarg, 0.01, 300, &d))
                return CLI_EXIT_USAGE;
            o->timeout_ms = (long long)(d * 1000);
            break;
        case 'h':
            probe_usage(stdout);
            return -1;
        default:
            probe_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc) {
        probe_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!parse_target(argv[optind], o)) {
        fprintf(stderr,
                "ocspstaple probe: '%s': expected IP:PORT or [IPv6]:PORT\n",
                argv[optind]);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_GOOD;
}

/*
 * One SSL_CTX for the whole run: no session cache and no tickets, so that
 * every handshake is a full one. The chain is checked after the handshake
 * (SSL_get_verify_result), so that a failure still shows the staple.
 */
static int run_init(struct probe_run *run, const struct probe_opts *o)
{
    struct stp_err err;

    run->o = o;
    if (!cli_default_verify_opts(&run->vo)) {
        fprintf(stderr, "ocspstaple probe: out of memory\n");
        return CLI_EXIT_ERROR;
    }
    run->ctx = SSL_CTX_new(TLS_client_method());
    if (run->ctx == NULL) {
        fprintf(stderr, "ocspstaple probe: cannot create a TLS context\n");
        return CLI_EXIT_ERROR;
    }
    SSL_CTX_set_options(run->ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(run->ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_verify(run->ctx, SSL_VERIFY_NONE, NULL);
    if (!SSL_CTX_set_min_proto_version(run->ctx, o->version)
        || !SSL_CTX_set_max_proto_version(run->ctx, o->version)) {
        fprintf(stderr, "ocspstaple probe: cannot set the TLS version\n");
        return CLI_EXIT_ERROR;
    }
    if (o->sigalgs != NULL
        && !SSL_CTX_set1_sigalgs_list(run->ctx, o->sigalgs)) {
        fprintf(stderr, "ocspstaple probe: --sigalgs '%s': not a valid list\n",
                o->sigalgs);
        return CLI_EXIT_USAGE;
    }
    if (o->cafile == NULL)
        return CLI_EXIT_GOOD;
    run->trust = stp_load_certs(o->cafile, &err);
    if (run->trust == NULL
        || !SSL_CTX_load_verify_locations(run->ctx, o->cafile, NULL)) {
        if (run->trust == NULL)
            fprintf(stderr, "ocspstaple probe: --CAfile %s\n", err.msg);
        else
            fprintf(stderr, "ocspstaple probe: --CAfile %s: not usable\n",
                    o->cafile);
        return CLI_EXIT_ERROR;
    }
    return CLI_EXIT_GOOD;
}

static void memo_clear(struct staple_memo *m)
{
    OPENSSL_free(m->der);
    X509_free(m->leaf);
    X509_free(m->issuer);
    memset(m, 0, sizeof(*m));
}

static void run_free(struct probe_run *run)
{
    memo_clear(&run->memo);
    sk_X509_pop_free(run->trust, X509_free);
    SSL_CTX_free(run->ctx);
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
static int tcp_connect(const struct probe_opts *o, long long deadline,
                       struct hs_result *r)
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
static void tls_error(struct hs_result *r, enum io_wait w)
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

static void check_staple(struct probe_run *run, const struct stp_certinfo *ci,
                         const unsigned char *der, size_t len,
                         struct hs_result *r)
{
    struct stp_verify_opts vo = run->vo;

    vo.now = stp_now();
    vo.extra_trust = run->trust;
    r->stapled = 1;
    if (memo_hit(&run->memo, der, len, ci, &vo, &r->v)) {
        r->verified = 1;
        return;
    }
    r->verified = stp_verify_response(der, len, ci->leaf, ci->issuer, &vo,
                                      &r->v, &r->verr);
    if (r->verified)
        memo_set(&run->memo, der, len, ci, &r->v);
}

/*
 * After the handshake: protocol, signature, chain result, and the staple
 * verified for the leaf the server sent. Its issuer is the first certificate
 * of the peer's chain, then of --CAfile, that X509_check_issued() accepts.
 */
static void inspect(struct probe_run *run, SSL *ssl, struct hs_result *r)
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
    if (run->o->cafile != NULL) {
        r->chain = vr == X509_V_OK;
        if (!r->chain)
            snprintf(r->err, sizeof(r->err), "certificate verify failed: %s",
                     X509_verify_cert_error_string(vr));
    }
    for (i = 0; ok && i < sk_X509_num(chain); i++)
        ok = sk_X509_push(cands, sk_X509_value(chain, i)) > 0;
    for (i = 0; ok && i < sk_X509_num(run->trust); i++)
        ok = sk_X509_push(cands, sk_X509_value(run->trust, i)) > 0;
    if (leaf == NULL) {
        snprintf(r->err, sizeof(r->err), "the server sent no certificate");
    } else if (!ok || !stp_certinfo_new(leaf, cands, &ci, &r->verr)) {
        snprintf(r->err, sizeof(r->err),
                 "cannot inspect the certificate: %.400s",
                 ok ? r->verr.msg : "out of memory");
    } else {
        snprintf(r->subject, sizeof(r->subject), "%s", ci->subject);
        if (der != NULL && len > 0)
            check_staple(run, ci, der, (size_t)len, r);
    }
    stp_certinfo_free(ci);
    sk_X509_free(cands);
}

/* The exit status of one handshake (README, "The CLI"). */
static int outcome(const struct hs_result *r, int require_staple)
{
    if (!r->done || r->err[0] != '\0')
        return CLI_EXIT_ERROR;
    if (!r->stapled)
        return require_staple ? CLI_EXIT_NO_STAPLE : CLI_EXIT_GOOD;
    if (!r->verified)
        return CLI_EXIT_BAD_STAPLE;
    return cli_exit_of_status(r->v.status);
}

/* One full handshake on a fresh connection, bounded by --timeout. */
static void handshake(struct probe_run *run, struct hs_result *r)
{
    const struct probe_opts *o = run->o;
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
    ssl = SSL_new(run->ctx);
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
    inspect(run, ssl, r);
    tls_close(ssl, fd, deadline);
end:
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    r->outcome = outcome(r, o->require_staple);
}

static const char *chain_name(int chain)
{
    return chain < 0 ? "unchecked" : chain ? "ok" : "failed";
}

/* The causes go to stderr; the result line (text mode) to stdout. */
static void report(const struct probe_opts *o, const struct hs_result *r)
{
    char t1[32], t2[32];

    if (r->err[0] != '\0')
        fprintf(stderr, "ocspstaple probe: %s: %s\n", o->target, r->err);
    if (r->stapled && !r->verified)
        fprintf(stderr,
                "ocspstaple probe: %s: stapled response does not verify: "
                "%s: %s\n",
                o->target, stp_code_name(r->verr.code), r->verr.msg);
    if (r->done && !r->stapled && o->require_staple)
        fprintf(stderr, "ocspstaple probe: %s: no stapled OCSP response\n",
                o->target);
    if (o->json || !r->done)
        return;
    if (!r->stapled)
        printf("stapled=no");
    else if (!r->verified)
        printf("stapled=yes verified=no error=%s", stp_code_name(r->verr.code));
    else
        printf("stapled=yes status=%s verified=yes this_update=%s "
               "next_update=%s",
               stp_cert_status_name(r->v.status),
               cli_time(r->v.this_update, t1, sizeof(t1)),
               cli_time(r->v.next_update, t2, sizeof(t2)));
    /* the subject may hold spaces: last, to the end of the line */
    printf(" protocol=%s sigalg=%s cert_key=%s chain=%s subject=%s\n",
           r->protocol, r->sigalg, r->cert_key, chain_name(r->chain),
           r->subject);
}

struct tally {
    long handshakes, stapled, verified;
    long long elapsed_us;
};

static void json_str(const char *key, const char *s)
{
    printf("\"%s\": ", key);
    cli_json_str(s);
    printf(", ");
}

static double per_second(const struct tally *t)
{
    return t->elapsed_us > 0 ? t->handshakes * 1e6 / (double)t->elapsed_us
                             : 0.0;
}

/* One JSON object: the first handshake, the run's summary, the status. */
static void print_json(const struct probe_opts *o, const struct hs_result *r,
                       const struct tally *t, int code)
{
    char t1[32], t2[32];

    printf("{");
    json_str("target", o->target);
    if (r->err[0] != '\0')
        json_str("error", r->err);
    if (r->done) {
        json_str("protocol", r->protocol);
        json_str("sigalg", r->sigalg);
        json_str("cert_key", r->cert_key);
        json_str("subject", r->subject);
        json_str("chain", chain_name(r->chain));
        printf("\"stapled\": %s, ", r->stapled ? "true" : "false");
    }
    if (r->stapled) {
        printf("\"verified\": %s, ", r->verified ? "true" : "false");
        if (r->verified) {
            json_str("status", stp_cert_status_name(r->v.status));
            json_str("this_update", cli_time(r->v.this_update, t1, 32));
            json_str("next_update", cli_time(r->v.next_update, t2, 32));
        } else {
            json_str("verify_error", stp_code_name(r->verr.code));
            json_str("verify_message", r->verr.msg);
        }
    }
    if (o->count > 1)
        printf("\"summary\": {\"handshakes\": %ld, \"stapled\": %ld, "
               "\"verified\": %ld, \"elapsed_ms\": %lld, "
               "\"hs_per_s\": %.1f}, ",
               t->handshakes, t->stapled, t->verified, t->elapsed_us / 1000,
               per_second(t));
    printf("\"exit\": %d}\n", code);
}

static long long now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * Runs --count handshakes; details of the first one, and of any later one
 * whose outcome differs from its predecessor's. Stops at a connection error
 * and, with --require-staple, at the first handshake without a staple.
 */
static int probe_loop(struct probe_run *run, struct hs_result *first,
                      struct tally *t)
{
    const struct probe_opts *o = run->o;
    struct hs_result cur;
    long long t0 = now_us();
    int worst = CLI_EXIT_GOOD, prev = -1;
    long i;

    for (i = 0; i < o->count; i++) {
        handshake(run, &cur);
        if (i == 0)
            *first = cur;
        t->handshakes += cur.done;
        t->stapled += cur.stapled;
        t->verified += cur.verified;
        if (i == 0 || cur.outcome != prev)
            report(o, &cur);
        prev = cur.outcome;
        worst = cli_worst(worst, cur.outcome);
        if (cur.outcome == CLI_EXIT_ERROR || cur.outcome == CLI_EXIT_NO_STAPLE)
            break;
    }
    t->elapsed_us = now_us() - t0;
    return worst;
}

int cli_probe(int argc, char **argv)
{
    struct probe_opts o = { 0 };
    struct probe_run run = { 0 };
    struct hs_result first;
    struct tally t = { 0 };
    int rc;

    rc = parse_args(argc, argv, &o);
    if (rc != CLI_EXIT_GOOD)
        return rc < 0 ? CLI_EXIT_GOOD : rc;
    /* a server that resets the connection must not kill the probe */
    signal(SIGPIPE, SIG_IGN);
    rc = run_init(&run, &o);
    if (rc == CLI_EXIT_GOOD) {
        rc = probe_loop(&run, &first, &t);
        if (o.json)
            print_json(&o, &first, &t, rc);
        else if (o.count > 1)
            printf("handshakes=%ld stapled=%ld verified=%ld elapsed_ms=%lld "
                   "hs_per_s=%.1f\n",
                   t.handshakes, t.stapled, t.verified, t.elapsed_us / 1000,
                   per_second(&t));
    }
    run_free(&run);
    return rc;
}
