/* SPDX-License-Identifier: Apache-2.0 */
/*
 * openssl.cnf reader for the preload route and `ocspstaple check`: finds the
 * ocspstaple entry the way OpenSSL 3.0's "providers" config module does and
 * flattens its section exactly as the provider would receive it (nested
 * sections become dotted names). No policy parsing (stp_policy_parse() takes
 * the result), no module loading, and the configuration is never applied.
 */
#ifndef OCSPSTAPLE_PROVIDER_CONF_H
#define OCSPSTAPLE_PROVIDER_CONF_H

#include <stddef.h>

#include "engine/err.h"
#include "engine/policy.h"

/* One entry of a providers section, as OpenSSL reads it. */
struct stp_conf_provider {
    char *name;    /* identity, else the entry's key minus any "prefix." */
    char *section; /* the section the entry names */
    char *module;  /* that section's module value, or NULL */
    int found;     /* 1 if <section> exists; OpenSSL fails the config if not */
    int activate;  /* 1 if it has an activate key: in 3.0 any value activates */
};

/* A loaded file; read-only after stp_conf_load(). */
struct stp_conf {
    char *file;              /* the file that was read */
    char *providers_section; /* the providers section that holds ours */
    /* Every providers entry in the order OpenSSL activates them. */
    struct stp_conf_provider *providers;
    size_t nproviders;
    const struct stp_conf_provider *self; /* ours; points into providers */
    /*
     * Our section flattened as OpenSSL hands it to the provider, in file
     * order, including OpenSSL's own keys (module, activate, ...). The
     * strings are owned by the stp_conf.
     */
    struct stp_kv *kv;
    size_t nkv;
};

/*
 * Reads <file> with NCONF and looks up, as OpenSSL 3.0 does: openssl_conf in
 * the default section, its init section, the "providers" entry there, and in
 * that providers section the entry named ocspstaple (by key or identity), or
 * failing that the first whose section has module = ocspstaple.so or
 * .../ocspstaple.so. Each problem (file missing or unreadable, syntax error
 * with its line, missing section, no ocspstaple entry, recursive section,
 * over-long key) is passed to <diag> (may be NULL) as one line starting with
 * the file name. On success *out is a new stp_conf (free it with
 * stp_conf_free()) and 1 is returned; otherwise *out is NULL and 0. Leaves
 * the OpenSSL error stack as it found it. Any thread.
 */
int stp_conf_load(const char *file, struct stp_conf **out, stp_diag_fn diag,
                  void *arg);

/*
 * The same, for a file that may configure no ocspstaple provider at all
 * (the system openssl.cnf of a host that does not load it): returns -1,
 * saying nothing, when it has no openssl_conf or no ocspstaple entry in its
 * providers; 1 or 0 (said) otherwise.
 */
int stp_conf_load_if_any(const char *file, struct stp_conf **out,
                         stp_diag_fn diag, void *arg);

/* Frees <conf> and every string it holds. NULL is fine. */
void stp_conf_free(struct stp_conf *conf);

/*
 * The file OpenSSL reads by default: $OPENSSL_CONF (ignored in setuid
 * programs), else OPENSSLDIR/openssl.cnf. Returns a new string the caller
 * frees with OPENSSL_free(), or NULL on allocation failure. Any thread.
 */
char *stp_conf_default_file(void);

#endif
