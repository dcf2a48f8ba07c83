/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stapling policy: the keys of the provider's openssl.cnf section, parsed once
 * from key/value strings into an immutable struct stp_policy. Pure: no file
 * system, no network, no globals, so it is the same for the provider, the
 * preload hook and `ocspstaple check`. Semantics come from the NATS (mode,
 * url, store_dir, timeout), APISIX (responder override, skip_verify,
 * cache_ttl, client OCSP) and Ferron (refresh schedule, logs, metrics) seeds;
 * README.md maps each seed option to its key here.
 */
#ifndef STP_POLICY_H
#define STP_POLICY_H

#include <stddef.h>
#include <openssl/x509.h>

#include "engine/err.h"
#include "engine/policy_value.h"

/* NATS modes. */
enum stp_mode {
    STP_MODE_AUTO = 0, /* staple Must-Staple certs (all certs if staple_all) */
    STP_MODE_MUST,     /* as auto; a revoked cert is not served */
    STP_MODE_ALWAYS, /* every cert treated as Must-Staple; revoked not served */
    STP_MODE_NEVER   /* off: no fetch, no staple */
};

enum stp_revoked_action {
    STP_REVOKED_REFUSE = 0, /* refuse handshakes that select the revoked cert */
    STP_REVOKED_EXIT        /* exit the process (NATS "server shuts down") */
};

/* Client-certificate OCSP: which certificates of a verified client chain
 * are checked (the trust anchor never is). */
enum stp_client_ocsp {
    STP_CLIENT_OCSP_OFF = 0,
    STP_CLIENT_OCSP_LEAF, /* the client's own certificate */
    STP_CLIENT_OCSP_CHAIN /* and every intermediate */
};
/* When no answer can be had in time (closed: refuse; open: admit, unless
 * the last answer known for the certificate was "revoked"). */
enum stp_fail_mode { STP_FAIL_CLOSED = 0, STP_FAIL_OPEN };
/* An "unknown" answer for a client certificate. */
enum stp_client_unknown { STP_UNKNOWN_REFUSE = 0, STP_UNKNOWN_ALLOW };
/* A certificate of the client chain that names no responder (and no
 * client_ocsp_default_responder applies). */
enum stp_client_no_url { STP_NO_URL_SKIP = 0, STP_NO_URL_REFUSE };

/* Settings a per-certificate section may override. */
struct stp_certpol {
    enum stp_mode mode;
    int staple_all;            /* staple certs without Must-Staple too */
    const char *responder_url; /* NULL: the certificate's AIA */
    int skip_verify;
    long cache_ttl; /* s; lifetime of a response with no nextUpdate */
    long timeout;   /* s; total time of one fetch */
    /* client-certificate OCSP on the contexts that serve this certificate
     * (a section names the server's certificate) */
    enum stp_client_ocsp client_ocsp;
    enum stp_fail_mode client_fail;
    long client_timeout_ms; /* longest wait of a handshake for an answer */
    enum stp_client_unknown client_unknown;
    enum stp_client_no_url client_no_url;
};

/* Bits of stp_cert_override.set: which fields of .pol were given. */
#define STP_SET_MODE           0x01u
#define STP_SET_STAPLE_ALL     0x02u
#define STP_SET_RESPONDER_URL  0x04u
#define STP_SET_SKIP_VERIFY    0x08u
#define STP_SET_CACHE_TTL      0x10u
#define STP_SET_TIMEOUT        0x20u
#define STP_SET_CLIENT_OCSP    0x40u
#define STP_SET_CLIENT_FAIL    0x80u
#define STP_SET_CLIENT_TIMEOUT 0x100u
#define STP_SET_CLIENT_UNKNOWN 0x200u
#define STP_SET_CLIENT_NO_URL  0x400u

struct stp_cert_override {
    char *label; /* the section label, e.g. "www" */
    enum stp_match_kind kind;
    unsigned char sha256[32]; /* kind == STP_MATCH_SHA256 */
    char *name;               /* kind == STP_MATCH_NAME, lower case */
    unsigned set;             /* STP_SET_* */
    struct stp_certpol pol;   /* only the fields named in .set are meaningful */
};

struct stp_policy {
    struct stp_certpol defaults;
    enum stp_revoked_action revoked_action;
    long must_staple_wait_ms; /* bounded wait of a cold Must-Staple handshake */
    char *ca_file;            /* extra trust anchors for responses, or NULL */
    long clock_skew;          /* s */
    long connect_timeout;     /* s */
    size_t max_response_size; /* bytes */
    int fetch;                /* in-process fetching (0: CLI refresh does it) */
    int fetch_concurrency;    /* requests in flight per process, at most */
    int fetch_per_host;       /* of which to one responder host, at most */
    int fetch_per_host_total; /* to one host from every process sharing
                                 store_dir (the store's slots); 0: no cap */
    char *store_dir;          /* absolute path */
    char *store_group;        /* shared by several server users, or NULL */
    int refresh_margin;       /* percent of validity left when refresh is due */
    long refresh_jitter;      /* s, maximum */
    long refresh_min;         /* s */
    long refresh_max;         /* s */
    long retry_base;          /* s */
    long retry_max;           /* s */
    char *client_responder;   /* override: every client certificate, or NULL */
    char *client_default_responder; /* for those that name none, or NULL */
    int client_nonce;   /* a nonce in each request, echoed by the answer */
    int log_level;      /* enum stp_log_level */
    char *log_file;     /* NULL: stderr */
    char *log_syslog;   /* a syslog socket (/dev/log), or NULL */
    char *metrics_file; /* NULL: none */
    /* the fleet tier (engine/fleet.h), on when fleet_url is set */
    char *fleet_url;       /* redis://HOST[:PORT][/DB], or NULL */
    char *fleet_auth_file; /* "PASSWORD" or "USER PASSWORD", or NULL */
    char *fleet_prefix;    /* of every key this host writes or reads */
    long fleet_timeout_ms; /* connect, and each command */
    char *fleet_host;      /* this host's name in the fleet; NULL: hostname */
    char **programs;       /* fnmatch patterns; none: every program */
    size_t nprograms;
    char **skip_programs; /* fnmatch patterns */
    size_t nskip_programs;
    struct stp_cert_override *certs;
    size_t ncerts;
};

/* One configuration entry, as the provider receives it from openssl.cnf. */
struct stp_kv {
    const char *key;
    const char *value;
};

/*
 * Parses <n> entries into a new policy; keys not given take their defaults.
 * Every problem (unknown key, bad value, value out of range, inconsistent
 * pair) is reported through <diag> (may be NULL) as one line naming the key,
 * the value and what is accepted; all of them, not only the first. Keys that
 * OpenSSL itself uses in a provider section (module, activate, identity,
 * soft_load) are ignored. Returns the policy (caller frees with
 * stp_policy_free()), or NULL if there was any problem. Any thread.
 */
struct stp_policy *stp_policy_parse(const struct stp_kv *kv, size_t n,
                                    stp_diag_fn diag, void *arg);

/* A policy with every default. Returns NULL only on allocation failure. */
struct stp_policy *stp_policy_new_default(void);

void stp_policy_free(struct stp_policy *policy);

/*
 * The effective per-certificate settings: the defaults, overridden by the
 * first per-certificate section that matches <leaf> (whose SHA-256 is
 * <leaf_sha256>). <out> borrows strings from <policy>. Returns the matching
 * override, or NULL if none matched.
 */
const struct stp_cert_override *
stp_policy_resolve(const struct stp_policy *policy,
                   const unsigned char leaf_sha256[32], X509 *leaf,
                   struct stp_certpol *out);

/* What the policy does with one certificate (stp_policy_decide()). */
struct stp_decision {
    int staple;         /* staple it at all */
    int must;           /* Must-Staple semantics: the bounded first wait */
    int refuse_revoked; /* refuse handshakes that select it once revoked */
};

/*
 * The decision for a certificate with effective settings <cp> that does
 * (<must_staple> 1) or does not carry the TLS feature status_request: mode
 * never staples nothing; a Must-Staple certificate, or mode always, is
 * stapled with Must-Staple semantics; any other certificate is stapled when
 * staple_all is on. Modes must and always refuse a revoked certificate.
 * Pure.
 */
void stp_policy_decide(const struct stp_certpol *cp, int must_staple,
                       struct stp_decision *out);

/*
 * Returns 1 if the module should act in the program named <progname> (its
 * short name, e.g. "nginx"): it matches one of .programs (or .programs is
 * empty) and none of .skip_programs. Returns 0 otherwise.
 */
int stp_policy_program_allowed(const struct stp_policy *policy,
                               const char *progname);

/*
 * The name of the <i>-th top-level key (0, 1, ...), or NULL past the last
 * one. Lets the provider ask the core for every key by name.
 */
const char *stp_policy_key(size_t i);

/*
 * Reports through <diag> each key of <policy> that is set but has no effect
 * (the client_ocsp_* keys while client_ocsp is off), one line each naming
 * the key and what it does not do. Returns how many.
 */
int stp_policy_inert_keys(const struct stp_policy *policy, stp_diag_fn diag,
                          void *arg);

/* 1 if client_ocsp is on anywhere: in the defaults or in a section. */
int stp_policy_client_any(const struct stp_policy *policy);

/* Name of a mode ("auto", ...). */
const char *stp_mode_name(enum stp_mode mode);

#endif
