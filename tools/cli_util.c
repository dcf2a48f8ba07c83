/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the ocspstaple subcommands share (declared in cli.h): the ranking of
 * exit statuses, policy loading for --conf, the preamble of the commands
 * that read a store, the engine's verification defaults, and time and JSON
 * formatting.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509_vfy.h>

#include "cli.h"
#include "engine/clock.h"
#include "engine/conf.h"
#include "engine/certinfo.h"
#include "engine/err.h"
#include "engine/policy.h"
#include "engine/store.h"
#include "engine/verify.h"

/* Worse outcomes rank higher (README, "The CLI"). */
static int rank(int code)
{
    switch (code) {
    case CLI_EXIT_ERROR:
        return 5;
    case CLI_EXIT_BAD_STAPLE:
        return 4;
    case CLI_EXIT_REVOKED:
        return 3;
    case CLI_EXIT_UNKNOWN:
        return 2;
    case CLI_EXIT_NO_STAPLE:
    case CLI_EXIT_NO_URL:
        return 1;
    default:
        return 0;
    }
}

int cli_worst(int a, int b)
{
    return rank(b) > rank(a) ? b : a;
}

int cli_exit_of_status(int ocsp_status)
{
    if (ocsp_status == V_OCSP_CERTSTATUS_GOOD)
        return CLI_EXIT_GOOD;
    if (ocsp_status == V_OCSP_CERTSTATUS_REVOKED)
        return CLI_EXIT_REVOKED;
    return CLI_EXIT_UNKNOWN;
}

void cli_diag_print(void *arg, const char *msg)
{
    struct cli_diag *d = arg;

    fprintf(stderr, "%s%s\n", d->prefix, msg);
    d->problems++;
}

struct stp_policy *cli_parse_conf(const struct stp_conf *c, struct cli_diag *d)
{
    char prefix[1024];
    const char *saved = d->prefix;
    struct stp_policy *pol;

    snprintf(prefix, sizeof(prefix), "%s%s [%s]: ", saved, c->file,
             c->self->section);
    d->prefix = prefix;
    pol = stp_policy_parse(c->kv, c->nkv, cli_diag_print, d);
    d->prefix = saved;
    return pol;
}

struct stp_policy *cli_load_policy(const char *conf_file)
{
    struct cli_diag d = { "ocspstaple: ", 0 };
    struct stp_conf *c = NULL;
    struct stp_policy *pol;

    if (conf_file == NULL) {
        /* as check and the servers do: $OPENSSL_CONF, else the system
         * file; one that does not load ocspstaple means the defaults */
        char *file = stp_conf_default_file();
        int r = file != NULL
                    ? stp_conf_load_if_any(file, &c, cli_diag_print, &d)
                    : -1;

        OPENSSL_free(file);
        if (r < 0)
            return stp_policy_new_default();
        if (r == 0)
            return NULL;
    } else if (!stp_conf_load(conf_file, &c, cli_diag_print, &d)) {
        return NULL;
    }
    pol = cli_parse_conf(c, &d);
    stp_conf_free(c);
    return pol;
}

static int load_anchors(struct cli_store_cmd *cmd);

int cli_store_cmd_open(const struct cli_store_spec *spec, int argc, char **argv,
                       struct cli_store_cmd *out, int *rc)
{
    struct option opts[6] = {
        { "store-dir", required_argument, NULL, 'd' },
        { "conf", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
    };
    char shorts[16] = "d:c:h";
    size_t no = 3, ns = strlen(shorts);
    const char *dir = NULL, *conf = NULL;
    struct stp_err err;
    int ch;

    /* the command's own flag and option with a value, when it has them */
    if (spec->flag != NULL) {
        opts[no++] =
            (struct option){ spec->flag, no_argument, NULL, spec->flag_char };
        shorts[ns++] = (char)spec->flag_char;
    }
    if (spec->arg != NULL) {
        opts[no++] = (struct option){ spec->arg, required_argument, NULL,
                                      spec->arg_char };
        shorts[ns++] = (char)spec->arg_char;
        shorts[ns++] = ':';
    }
    memset(out, 0, sizeof(*out));
    while ((ch = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
        if (ch == 'd') {
            dir = optarg;
        } else if (ch == 'c') {
            conf = optarg;
        } else if (spec->flag != NULL && ch == spec->flag_char) {
            out->flag = 1;
        } else if (spec->arg != NULL && ch == spec->arg_char) {
            out->value = optarg;
        } else if (ch == 'h') {
            spec->usage(stdout);
            *rc = CLI_EXIT_GOOD;
            return 0;
        } else {
            *rc = CLI_EXIT_USAGE;
            return 0;
        }
    }
    *rc = CLI_EXIT_ERROR;
    out->pol = cli_load_policy(conf);
    if (out->pol == NULL)
        return 0;
    if (!load_anchors(out)) {
        cli_store_cmd_close(out);
        return 0;
    }
    if (!stp_store_open_shared(dir != NULL ? dir : out->pol->store_dir, 0,
                               out->pol->store_group, &out->st, &err)) {
        fprintf(stderr, "ocspstaple: %s\n", err.msg);
        cli_store_cmd_close(out);
        return 0;
    }
    *rc = CLI_EXIT_GOOD;
    return 1;
}

struct stp_fleet *cli_fleet_open(const struct stp_policy *pol)
{
    struct stp_fleet *f;
    struct stp_err err;

    if (pol->fleet_url == NULL)
        return NULL;
    f = stp_fleet_new(pol, &err);
    if (f == NULL)
        fprintf(stderr,
                "ocspstaple: %s: this run goes on without the fleet tier\n",
                err.msg);
    return f;
}

void cli_store_cmd_close(struct cli_store_cmd *cmd)
{
    stp_fleet_free(cmd->fleet);
    cmd->fleet = NULL;
    stp_store_close(cmd->st);
    stp_policy_free(cmd->pol);
    X509_STORE_free(cmd->anchors);
    sk_X509_pop_free(cmd->ca_file, X509_free);
    cmd->st = NULL;
    cmd->pol = NULL;
    cmd->anchors = NULL;
    cmd->ca_file = NULL;
}

/* The system's anchors and the policy's ca_file, as the servers have them. */
static int load_anchors(struct cli_store_cmd *cmd)
{
    struct stp_err err;
    int i;

    cmd->anchors = X509_STORE_new();
    if (cmd->anchors == NULL || !X509_STORE_set_default_paths(cmd->anchors)) {
        fprintf(stderr, "ocspstaple: cannot load the system's trust anchors\n");
        return 0;
    }
    if (cmd->pol->ca_file == NULL)
        return 1;
    cmd->ca_file = stp_load_certs(cmd->pol->ca_file, &err);
    if (cmd->ca_file == NULL) {
        fprintf(stderr, "ocspstaple: ca_file: %s\n", err.msg);
        return 0;
    }
    ERR_set_mark();
    for (i = 0; i < sk_X509_num(cmd->ca_file); i++)
        X509_STORE_add_cert(cmd->anchors, sk_X509_value(cmd->ca_file, i));
    ERR_pop_to_mark(); /* a certificate already there is no problem */
    return 1;
}

STACK_OF(X509) *cli_trusted_chain(const struct cli_store_cmd *cmd,
                                  const char *id, struct stp_err *err)
{
    STACK_OF(X509) *chain = stp_store_read_chain(cmd->st, id, err), *rest;
    X509_STORE_CTX *vctx = NULL;
    unsigned char md[32];
    unsigned int mdlen = 0;
    char hex[65];
    X509 *leaf;
    int i, ok = 0;

    if (chain == NULL)
        return NULL;
    leaf = sk_X509_value(chain, 0);
    if (!X509_digest(leaf, EVP_sha256(), md, &mdlen) || mdlen != 32) {
        stp_err_set(err, STP_E_INTERNAL, 0, "cannot hash the stored leaf");
        goto end;
    }
    for (i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if (strcmp(hex, id) != 0) {
        stp_err_set(err, STP_E_CERTID, 0,
                    "%s.pem: its leaf is not the certificate %.12s (a file "
                    "moved or planted?)",
                    id, id);
        goto end;
    }
    rest = sk_X509_dup(chain);
    if (rest != NULL)
        (void)sk_X509_shift(rest);
    vctx = X509_STORE_CTX_new();
    if (rest == NULL || vctx == NULL
        || !X509_STORE_CTX_init(vctx, cmd->anchors, leaf, rest)) {
        sk_X509_free(rest);
        stp_err_set(err, STP_E_INTERNAL, 0, "out of memory");
        goto end;
    }
    X509_STORE_CTX_set_time(vctx, 0, stp_now());
    ERR_set_mark();
    ok = X509_verify_cert(vctx) == 1;
    ERR_pop_to_mark();
    if (!ok)
        stp_err_set(
            err, STP_E_SIGNATURE, 0,
            "%s.pem: the stored chain does not verify to the trust "
            "anchors in force (the system's and ca_file): %s",
            id, X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx)));
    sk_X509_free(rest);
end:
    X509_STORE_CTX_free(vctx);
    if (!ok) {
        sk_X509_pop_free(chain, X509_free);
        chain = NULL;
    }
    return chain;
}

int cli_default_verify_opts(struct stp_verify_opts *out)
{
    struct stp_policy *pol = stp_policy_new_default();

    if (pol == NULL)
        return 0;
    out->now = stp_now();
    out->skew = pol->clock_skew;
    out->cache_ttl = pol->defaults.cache_ttl;
    out->skip_verify = 0;
    out->extra_trust = NULL;
    stp_policy_free(pol);
    return 1;
}

const char *cli_time(time_t t, char *buf, size_t len)
{
    struct tm tm;

    if (t == 0 || gmtime_r(&t, &tm) == NULL
        || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "-");
    return buf;
}

const char *cli_left(time_t until, time_t now, char *buf, size_t len)
{
    long s = (long)(until - now);

    if (until == 0)
        snprintf(buf, len, "-");
    else if (s <= 0)
        snprintf(buf, len, "expired");
    else if (s >= 86400)
        snprintf(buf, len, "%ldd%ldh", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(buf, len, "%ldh%ldm", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, len, "%ldm%lds", s / 60, s % 60);
    return buf;
}

void cli_json_str(const char *s)
{
    putchar('"');
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

/* ---- which running processes use which entry (cli.h) ----------------- */

static int cmp_use(const void *a, const void *b)
{
    const struct cli_use *x = a, *y = b;
    int c = strcmp(x->id, y->id);

    if (c != 0)
        return c;
    return x->user < y->user ? -1 : x->user > y->user;
}

/* stp_store_list_uses(): one running process's list (a file of a process
 * that is gone is skipped: `ocspstaple prune` removes it). */
static void on_uses(void *arg, const char *proc, const char *text, time_t mtime)
{
    struct cli_uses *u = arg;
    const char *line = text, *nl;
    struct cli_user *usr;

    (void)mtime;
    if (u->failed || !stp_store_proc_alive(proc))
        return;
    if (u->nusers == u->capusers) {
        size_t ncap = u->capusers ? u->capusers * 2 : 16;
        struct cli_user *p = OPENSSL_realloc(u->users, ncap * sizeof(*p));

        if (p == NULL) {
            u->failed = 1;
            return;
        }
        u->users = p;
        u->capusers = ncap;
    }
    usr = &u->users[u->nusers];
    memset(usr, 0, sizeof(*usr));
    usr->pid = strtol(proc, NULL, 10);
    if (sscanf(text, "program %31s", usr->program) != 1)
        snprintf(usr->program, sizeof(usr->program), "?");
    for (; *line != '\0'; line = nl != NULL ? nl + 1 : line + strlen(line)) {
        char id[65];

        nl = strchr(line, '\n');
        if (sscanf(line, "%64[0-9a-f] ", id) != 1 || !stp_store_id_valid(id))
            continue;
        if (u->n == u->cap) {
            size_t ncap = u->cap ? u->cap * 2 : 256;
            struct cli_use *p = OPENSSL_realloc(u->v, ncap * sizeof(*p));

            if (p == NULL) {
                u->failed = 1;
                return;
            }
            u->v = p;
            u->cap = ncap;
        }
        memcpy(u->v[u->n].id, id, sizeof(id));
        u->v[u->n].user = u->nusers;
        u->n++;
    }
    u->nusers++;
}

/* The pairs of entry <id>: *<first> and how many. */
size_t cli_uses_of(const struct cli_uses *u, const char *id, size_t *first)
{
    size_t lo = 0, hi = u->n, k;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (strcmp(u->v[mid].id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (k = lo; k < u->n && strcmp(u->v[k].id, id) == 0; k++)
        ;
    *first = lo;
    return k - lo;
}

/* "nginx[1201,1202],haproxy[900]" (pairs sorted by process, which are in
 * listing order), "-" for none, "?" when they could not be read. */
void cli_used_by(const struct cli_uses *u, const char *id, char *buf,
                 size_t len)
{
    size_t first, n = cli_uses_of(u, id, &first), k, off = 0;
    const char *prev = NULL;

    if (u->failed) {
        snprintf(buf, len, "?");
        return;
    }
    buf[0] = '\0';
    for (k = first; k < first + n && off < len; k++) {
        const struct cli_user *usr = &u->users[u->v[k].user];
        int same = prev != NULL && strcmp(prev, usr->program) == 0;

        off += (size_t)snprintf(buf + off, len - off, "%s%s%s%ld",
                                same ? "," : (prev != NULL ? "]," : ""),
                                same ? "" : usr->program, same ? "" : "[",
                                usr->pid);
        prev = usr->program;
    }
    if (prev != NULL && off < len)
        snprintf(buf + off, len - off, "]");
    if (n == 0)
        snprintf(buf, len, "-");
}

void cli_uses_free(struct cli_uses *u)
{
    OPENSSL_free(u->users);
    OPENSSL_free(u->v);
}

void cli_uses_load(struct stp_store *st, struct cli_uses *u)
{
    struct stp_err err;

    memset(u, 0, sizeof(*u));
    if (stp_store_list_uses(st, on_uses, u, &err) < 0)
        u->failed = 1;
    else if (u->n > 0)
        qsort(u->v, u->n, sizeof(*u->v), cmp_use);
}

void cli_tell_servers(struct stp_store *st, int stored)
{
    struct stp_err err;

    if (stored > 0 && !stp_store_mark_changed(st, &err))
        fprintf(stderr,
                "ocspstaple: %s (running servers take the new responses at "
                "their next refresh instead)\n",
                err.msg);
}
