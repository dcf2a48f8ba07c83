/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared pieces of the ocspstaple CLI: exit statuses, and the helpers of
 * tools/cli_util.c (policy loading, time and JSON formatting). Each
 * subcommand lives in its own file, tools/cli_<name>.c.
 */
#ifndef STP_CLI_H
#define STP_CLI_H

#include <stdio.h>
#include <time.h>

#include <openssl/x509_vfy.h>

#include "engine/err.h"
#include "engine/policy.h"
#include "engine/fleet.h"
#include "engine/store.h"
#include "engine/verify.h"

/* Exit statuses, documented in README.md. */
#define CLI_EXIT_GOOD    0 /* every certificate good / command succeeded */
#define CLI_EXIT_ERROR   1 /* a fetch, verification, store or config error */
#define CLI_EXIT_USAGE   2 /* bad command line */
#define CLI_EXIT_REVOKED 3 /* a certificate is revoked */
#define CLI_EXIT_UNKNOWN 4 /* the responder does not know a certificate */
#define CLI_EXIT_NO_URL  5 /* a certificate names no OCSP responder */
/* probe only */
#define CLI_EXIT_NO_STAPLE  6 /* no staple while --require-staple */
#define CLI_EXIT_BAD_STAPLE 7 /* a staple that does not verify */
/* status: a certificate past its refresh point whose refresh keeps failing */
#define CLI_EXIT_STALE 8

/*
 * The worse of two exit statuses, by the one ranking of fetch and probe:
 * error > bad staple > revoked > unknown > no staple = no URL > good. <a>
 * on a tie. A run of several certificates or handshakes exits with the
 * worst.
 */
int cli_worst(int a, int b);

/* The exit status of an OCSP certificate status (V_OCSP_CERTSTATUS_*). */
int cli_exit_of_status(int ocsp_status);

struct stp_conf;
struct stp_store;
struct stp_verify_opts;

/* Diagnostics printed to stderr behind <prefix>, and counted. */
struct cli_diag {
    const char *prefix;
    int problems;
};

/* An stp_diag_fn: prints one problem for <arg>, a struct cli_diag. */
void cli_diag_print(void *arg, const char *msg);

/*
 * Parses the policy section of <c>; each problem is printed with the file
 * and section it comes from. Returns NULL if there was one.
 */
struct stp_policy *cli_parse_conf(const struct stp_conf *c, struct cli_diag *d);

/*
 * Loads the policy: from the ocspstaple section of <conf_file> when given
 * (every problem printed to stderr), else the defaults. Returns NULL after
 * printing the problems.
 */
struct stp_policy *cli_load_policy(const char *conf_file);

/* The commands that read a store (status, refresh) and their options. */
struct cli_store_spec {
    const char *flag; /* the command's own flag: "json" (--json, -j), or NULL */
    int flag_char;
    void (*usage)(FILE *out);
    const char *arg; /* an option with a value ("textfile"), or NULL */
    int arg_char;
};

/* What cli_store_cmd_open() sets up. */
struct cli_store_cmd {
    struct stp_policy *pol;
    struct stp_store *st;
    int flag;          /* the command's own flag was given */
    const char *value; /* the value of its option with a value, or NULL */
    /* the trust anchors in force: the system's, plus the policy's ca_file */
    X509_STORE *anchors;
    STACK_OF(X509) *ca_file; /* the ca_file certificates, or NULL */
    /* the fleet tier when the policy sets fleet_url (and fleet_auth_file
     * could be read: else said, and NULL); no connection made yet */
    struct stp_fleet *fleet;
};

/*
 * The preamble of a store command: parses `[--store-dir DIR] [--conf FILE]
 * [--<flag>] [--help]`, loads the policy and opens the store (the given
 * directory, else the policy's store_dir) read-only. Returns 1 with <out>
 * set, to go on. Returns 0 when the command is over, with <rc> its exit
 * status: after --help (usage on stdout), a bad option, or an error printed
 * to stderr.
 */
int cli_store_cmd_open(const struct cli_store_spec *spec, int argc, char **argv,
                       struct cli_store_cmd *out, int *rc);

/*
 * The fleet of <pol> (fleet_url), or NULL when it has none or it cannot be
 * set up (said on stderr: the command goes on without it).
 */
struct stp_fleet *cli_fleet_open(const struct stp_policy *pol);

/* Closes the store and frees the policy of cli_store_cmd_open(). */
void cli_store_cmd_close(struct cli_store_cmd *cmd);

/*
 * The stored chain of <id> (leaf, issuer), as the CLI may use it: every
 * file in store_dir is untrusted input (any store writer can plant one), so
 * the leaf must be the certificate <id> names (its SHA-256) and must chain
 * to the trust anchors in force (<cmd>->anchors: the system's and ca_file),
 * at the current time. Only then is its subject shown or its responder URL
 * followed. Returns a new stack (sk_X509_pop_free()), or NULL with <err>.
 */
STACK_OF(X509) *cli_trusted_chain(const struct cli_store_cmd *cmd,
                                  const char *id, struct stp_err *err);

/*
 * Verification options as the engine's defaults have them (clock_skew and
 * cache_ttl of stp_policy_new_default()), for now, every check on, no extra
 * trust. Returns 1, or 0 out of memory.
 */
int cli_default_verify_opts(struct stp_verify_opts *out);

/* "2026-11-21T12:00:00Z" into <buf> (>= 21 bytes); "-" for 0. */
const char *cli_time(time_t t, char *buf, size_t len);

/* "3d4h", "12m", "expired" into <buf>. */
const char *cli_left(time_t until, time_t now, char *buf, size_t len);

/* Prints <s> as a JSON string literal (quotes and escapes included). */
void cli_json_str(const char *s);

/*
 * The subcommands, one file each (tools/cli_<name>.c): each takes argv
 * from its own name on and returns the exit status; each answers --help.
 */
int cli_fetch(int argc, char **argv);
int cli_show(int argc, char **argv);
int cli_status(int argc, char **argv);
int cli_metrics(int argc, char **argv);
int cli_prune(int argc, char **argv);

/*
 * Which running processes use which store entry (the store's "uses-<proc>"
 * files, store.h): cli_uses_load() reads those of the processes alive now,
 * cli_uses_of() gives entry <id>'s pairs (*first and how many, in
 * u->v[]), cli_used_by() writes them as "nginx[1201,1202],haproxy[900]"
 * ("-" none, "?" when they could not be read).
 */
struct cli_user {
    long pid;
    char program[32];
};

struct cli_use {
    char id[65];
    size_t user;
};

struct cli_uses {
    struct cli_user *users;
    size_t nusers, capusers;
    struct cli_use *v;
    size_t n, cap;
    int failed; /* out of memory: the column says "?" */
};

void cli_uses_load(struct stp_store *st, struct cli_uses *u);
size_t cli_uses_of(const struct cli_uses *u, const char *id, size_t *first);
void cli_used_by(const struct cli_uses *u, const char *id, char *buf,
                 size_t len);
void cli_uses_free(struct cli_uses *u);

/* After <stored> responses were written to <st>: tells the running servers
 * (the store's "changed" file), which then serve them within 10 s. */
void cli_tell_servers(struct stp_store *st, int stored);

/* One stored response as `status` shows it (cli_status.c). */
struct cli_row {
    char id[65];
    char status[48]; /* good / revoked / unknown / invalid:<code> / none */
    int verified;    /* against a trusted stored chain */
    struct stp_verdict v;
    int have_v;     /* valid now */
    int have_times; /* r->v holds the times (valid or expired) */
    struct stp_state s;
};

/* Evaluates the stored response <id> at <now> into <r>, as `status` does:
 * verified against its stored chain when that chain is trusted. */
void cli_status_row(const struct cli_store_cmd *cmd, const char *id, time_t now,
                    struct cli_row *r);
int cli_check(int argc, char **argv);
int cli_refresh(int argc, char **argv);

/*
 * `ocspstaple probe HOST:PORT ...`: handshakes with a TLS server, asks for
 * its OCSP staple and verifies it (tools/cli_probe.c). Returns the exit
 * status: CLI_EXIT_GOOD, _REVOKED, _UNKNOWN, _NO_STAPLE, _BAD_STAPLE,
 * _ERROR (connection, handshake or chain) or _USAGE.
 */
int cli_probe(int argc, char **argv);

#endif
