/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `ocspstaple probe`: asks a TLS server for its OCSP staple and verifies
 * it; the client is probe_client.c. This file holds the options, the
 * report (a text line or one JSON object) and the loop: with --count it
 * does N full handshakes (no resumption) and reports the rate, for the
 * benchmark. IP literals only: no name resolution; every handshake is
 * bounded by --timeout.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/ssl.h>

#include "cli.h"
#include "engine/err.h"
#include "engine/verify.h"
#include "probe_client.h"

#define MAX_COUNT 1000000L

struct probe_opts {
    struct probe_conf conf;
    const char *target; /* HOST:PORT as given */
    int require_staple, json;
    long count;
};

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

/* "127.0.0.1:443" or "[::1]:443" into o->conf. Returns 1, or 0. */
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
    if (!probe_conf_set_addr(&o->conf, h == s ? AF_INET : AF_INET6, host,
                             (unsigned short)port))
        return 0;
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
    o->conf.timeout_ms = 5000;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o->conf.servername = optarg;
            break;
        case 'C':
            o->conf.cafile = optarg;
            break;
        case '2':
        case '3':
            if (o->conf.version != 0) {
                fprintf(stderr, "ocspstaple probe: give one of --tls1.2 and "
                                "--tls1.3\n");
                return CLI_EXIT_USAGE;
            }
            o->conf.version = c == '2' ? TLS1_2_VERSION : TLS1_3_VERSION;
            break;
        case 's':
            o->conf.sigalgs = optarg;
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
            o->conf.timeout_ms = (long long)(d * 1000);
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

/* The exit status of one handshake (README, "The CLI"). */
static int outcome(const struct probe_result *r, int require_staple)
{
    if (!r->done || r->err[0] != '\0')
        return CLI_EXIT_ERROR;
    if (!r->stapled)
        return require_staple ? CLI_EXIT_NO_STAPLE : CLI_EXIT_GOOD;
    if (!r->verified)
        return CLI_EXIT_BAD_STAPLE;
    return cli_exit_of_status(r->v.status);
}

static const char *chain_name(int chain)
{
    return chain < 0 ? "unchecked" : chain ? "ok" : "failed";
}

/* The causes go to stderr; the result line (text mode) to stdout. */
static void report(const struct probe_opts *o, const struct probe_result *r)
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
static void print_json(const struct probe_opts *o, const struct probe_result *r,
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
static int probe_loop(const struct probe_opts *o, struct probe_client *pc,
                      struct probe_result *first, struct tally *t)
{
    struct probe_result cur;
    long long t0 = now_us();
    int worst = CLI_EXIT_GOOD, prev = -1, code;
    long i;

    for (i = 0; i < o->count; i++) {
        probe_client_handshake(pc, &cur);
        code = outcome(&cur, o->require_staple);
        if (i == 0)
            *first = cur;
        t->handshakes += cur.done;
        t->stapled += cur.stapled;
        t->verified += cur.verified;
        if (i == 0 || code != prev)
            report(o, &cur);
        prev = code;
        worst = cli_worst(worst, code);
        if (code == CLI_EXIT_ERROR || code == CLI_EXIT_NO_STAPLE)
            break;
    }
    t->elapsed_us = now_us() - t0;
    return worst;
}

int cli_probe(int argc, char **argv)
{
    struct probe_opts o = { 0 };
    struct probe_client *pc = NULL;
    struct probe_result first;
    struct tally t = { 0 };
    int rc;

    rc = parse_args(argc, argv, &o);
    if (rc != CLI_EXIT_GOOD)
        return rc < 0 ? CLI_EXIT_GOOD : rc;
    /* a server that resets the connection must not kill the probe */
    signal(SIGPIPE, SIG_IGN);
    rc = probe_client_new(&o.conf, &pc);
    if (rc == CLI_EXIT_GOOD) {
        rc = probe_loop(&o, pc, &first, &t);
        if (o.json)
            print_json(&o, &first, &t, rc);
        else if (o.count > 1)
            printf("handshakes=%ld stapled=%ld verified=%ld elapsed_ms=%lld "
                   "hs_per_s=%.1f\n",
                   t.handshakes, t.stapled, t.verified, t.elapsed_us / 1000,
                   per_second(&t));
    }
    probe_client_free(pc);
    return rc;
}
