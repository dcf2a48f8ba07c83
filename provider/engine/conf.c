/* SPDX-License-Identifier: Apache-2.0 */
/*
 * openssl.cnf reader: mirrors OpenSSL 3.0's conf_mod.c ("openssl_conf", init
 * section, module "providers") and provider_conf.c (skip_dot() on provider
 * names and OpenSSL's own keys, recursive flattening of nested sections into
 * dotted names, 511-character names, recursion refused). It only reads.
 */
#include "engine/conf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/conf.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "engine/err.h"

#define OUR_NAME   "ocspstaple"
#define OUR_MODULE "ocspstaple.so"
#define NAME_MAX_  512 /* provider_conf.c: char buffer[512] */
#define MAX_NEST   256 /* each level adds at least 2 characters to a name */

struct loader {
    const char *file;
    stp_diag_fn diag;
    void *arg;
    CONF *cnf;
    struct stp_conf *conf;
    size_t cap_providers;
    size_t cap_lists;
    const char **lists; /* providers section of each providers[] entry */
    size_t cap_kv;
    char name[NAME_MAX_];          /* dotted name being built */
    const char *visited[MAX_NEST]; /* sections on the current path */
    size_t depth;
    int quiet_absent; /* a file without our provider is no problem */
    int absent;       /* it has none */
};

static void report(struct loader *ld, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One diagnostic line: "<file>: <text>". */
static void report(struct loader *ld, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    stp_vdiag(ld->diag, ld->arg, fmt, ap);
    va_end(ap);
}

static const char *skip_dot(const char *name)
{
    const char *p = strchr(name, '.');

    return p != NULL ? p + 1 : name;
}

/* NCONF_load() reports a missing file without errno, and reads directories. */
static int check_readable(struct loader *ld)
{
    char buf[256];
    struct stat st;
    FILE *f;
    int err;

    f = fopen(ld->file, "r");
    if (f == NULL) {
        err = errno;
        report(ld, "%s: cannot open: %s", ld->file,
               strerror_r(err, buf, sizeof(buf)));
        return 0;
    }
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        report(ld, "%s: cannot read: %s", ld->file,
               strerror_r(EISDIR, buf, sizeof(buf)));
        fclose(f);
        return 0;
    }
    fclose(f);
    return 1;
}

static int load_file(struct loader *ld)
{
    const char *reason;
    long eline = 0;

    if (!check_readable(ld))
        return 0;
    ld->cnf = NCONF_new_ex(NULL, NULL);
    if (ld->cnf == NULL) {
        report(ld, "%s: out of memory", ld->file);
        return 0;
    }
    if (NCONF_load(ld->cnf, ld->file, &eline) > 0)
        return 1;
    reason = ERR_reason_error_string(ERR_peek_last_error());
    if (reason == NULL)
        reason = "unknown error";
    if (eline > 0)
        report(ld, "%s:%ld: syntax error: %s", ld->file, eline, reason);
    else
        report(ld, "%s: cannot load: %s", ld->file, reason);
    return 0;
}

static int grow(void **array, size_t *cap, size_t n, size_t size)
{
    size_t ncap;
    void *p;

    if (n < *cap)
        return 1;
    ncap = *cap == 0 ? 8 : *cap * 2;
    p = OPENSSL_realloc(*array, ncap * size);
    if (p == NULL)
        return 0;
    *array = p;
    *cap = ncap;
    return 1;
}

/* Records one providers-section entry with what provider_conf_load() sees. */
static int add_provider(struct loader *ld, const CONF_VALUE *entry)
{
    struct stp_conf *c = ld->conf;
    struct stp_conf_provider *p;
    STACK_OF(CONF_VALUE) *cmds = NCONF_get_section(ld->cnf, entry->value);
    const char *name = skip_dot(entry->name), *module = NULL, *cname;
    int i, activate = 0;

    for (i = 0; i < sk_CONF_VALUE_num(cmds); i++) {
        const CONF_VALUE *cmd = sk_CONF_VALUE_value(cmds, i);

        cname = skip_dot(cmd->name);
        if (strcmp(cname, "identity") == 0)
            name = cmd->value;
        else if (strcmp(cname, "module") == 0)
            module = cmd->value;
        else if (strcmp(cname, "activate") == 0)
            activate = 1;
    }
    if (!grow((void **)&c->providers, &ld->cap_providers, c->nproviders,
              sizeof(*p)))
        goto oom;
    p = &c->providers[c->nproviders++];
    memset(p, 0, sizeof(*p));
    p->found = cmds != NULL;
    p->activate = activate;
    p->name = OPENSSL_strdup(name);
    p->section = OPENSSL_strdup(entry->value);
    if (module != NULL)
        p->module = OPENSSL_strdup(module);
    if (p->name == NULL || p->section == NULL
        || (module != NULL && p->module == NULL))
        goto oom;
    return 1;
oom:
    report(ld, "%s: out of memory", ld->file);
    return 0;
}

/* conf_mod.c's module_find(): the module name is the key up to its last dot. */
static int is_providers_module(const char *key)
{
    const char *dot = strrchr(key, '.');
    size_t len = dot != NULL ? (size_t)(dot - key) : strlen(key);

    return len == strlen("providers") && strncmp(key, "providers", len) == 0;
}

static int collect_providers(struct loader *ld)
{
    STACK_OF(CONF_VALUE) *init, *list;
    const CONF_VALUE *v;
    const char *init_name;
    int i, j;

    init_name = NCONF_get_string(ld->cnf, NULL, "openssl_conf");
    if (init_name == NULL) {
        ld->absent = 1;
        if (ld->quiet_absent)
            return 0;
        report(ld,
               "%s: no openssl_conf in the default section, so OpenSSL "
               "configures no providers from this file",
               ld->file);
        return 0;
    }
    init = NCONF_get_section(ld->cnf, init_name);
    if (init == NULL) {
        report(ld,
               "%s: openssl_conf names section [%s], which does not "
               "exist",
               ld->file, init_name);
        return 0;
    }
    for (i = 0; i < sk_CONF_VALUE_num(init); i++) {
        v = sk_CONF_VALUE_value(init, i);
        if (!is_providers_module(v->name))
            continue;
        list = NCONF_get_section(ld->cnf, v->value);
        if (list == NULL) {
            report(ld,
                   "%s: %s = %s in [%s] names a section that does not "
                   "exist",
                   ld->file, v->name, v->value, init_name);
            return 0;
        }
        for (j = 0; j < sk_CONF_VALUE_num(list); j++) {
            if (!grow((void **)&ld->lists, &ld->cap_lists, ld->conf->nproviders,
                      sizeof(*ld->lists))) {
                report(ld, "%s: out of memory", ld->file);
                return 0;
            }
            ld->lists[ld->conf->nproviders] = v->value;
            if (!add_provider(ld, sk_CONF_VALUE_value(list, j)))
                return 0;
        }
    }
    return 1;
}

static int module_is_ours(const char *module)
{
    size_t len = module != NULL ? strlen(module) : 0;
    size_t olen = strlen("/" OUR_MODULE);

    if (module == NULL)
        return 0;
    return strcmp(module, OUR_MODULE) == 0
           || (len > olen && strcmp(module + len - olen, "/" OUR_MODULE) == 0);
}

/* The entry named ocspstaple, else the first one loading our module. */
static int find_self(struct loader *ld)
{
    struct stp_conf *c = ld->conf;
    const struct stp_conf_provider *self = NULL;
    size_t i;

    for (i = 0; i < c->nproviders && self == NULL; i++) {
        if (strcmp(c->providers[i].name, OUR_NAME) == 0)
            self = &c->providers[i];
    }
    for (i = 0; i < c->nproviders && self == NULL; i++) {
        if (module_is_ours(c->providers[i].module))
            self = &c->providers[i];
    }
    if (self == NULL) {
        ld->absent = 1;
        if (ld->quiet_absent)
            return 0;
        report(ld,
               "%s: no %s provider: the providers section needs an "
               "entry named %s, or one whose section sets module = "
               ".../%s",
               ld->file, OUR_NAME, OUR_NAME, OUR_MODULE);
        return 0;
    }
    if (!self->found) {
        report(ld,
               "%s: provider %s names section [%s], which does not "
               "exist",
               ld->file, self->name, self->section);
        return 0;
    }
    c->self = self;
    c->providers_section = OPENSSL_strdup(ld->lists[self - c->providers]);
    if (c->providers_section == NULL) {
        report(ld, "%s: out of memory", ld->file);
        return 0;
    }
    return 1;
}

static int add_kv(struct loader *ld, const char *value)
{
    struct stp_conf *c = ld->conf;
    struct stp_kv *kv;

    if (!grow((void **)&c->kv, &ld->cap_kv, c->nkv, sizeof(*kv)))
        goto oom;
    kv = &c->kv[c->nkv];
    kv->key = OPENSSL_strdup(ld->name);
    kv->value = OPENSSL_strdup(value);
    c->nkv++;
    if (kv->key == NULL || kv->value == NULL)
        goto oom;
    return 1;
oom:
    report(ld, "%s: out of memory", ld->file);
    return 0;
}

static int enter_section(struct loader *ld, const char *section)
{
    size_t i;

    for (i = 0; i < ld->depth; i++) {
        if (strcmp(ld->visited[i], section) == 0) {
            report(ld,
                   "%s: key %s refers back to section [%s] (OpenSSL "
                   "refuses recursive sections)",
                   ld->file, ld->name, section);
            return 0;
        }
    }
    if (ld->depth == MAX_NEST) {
        report(ld, "%s: sections nested deeper than %d at key %s", ld->file,
               MAX_NEST, ld->name);
        return 0;
    }
    ld->visited[ld->depth++] = section;
    return 1;
}

/*
 * provider_conf_params(): a value naming a section expands to "<name>.<key>"
 * for each of its keys; any other value is one entry. ld->name holds <name>
 * in its first <len> characters (none at the top).
 */
static int flatten(struct loader *ld, size_t len, int top, const char *value)
{
    STACK_OF(CONF_VALUE) *sect = NCONF_get_section(ld->cnf, value);
    const CONF_VALUE *v;
    size_t base, klen;
    int i, ok = 1;

    if (sect == NULL)
        return add_kv(ld, value);
    if (!enter_section(ld, value))
        return 0;
    base = top ? 0 : len + 1;
    if (!top)
        ld->name[len] = '.';
    for (i = 0; ok && i < sk_CONF_VALUE_num(sect); i++) {
        v = sk_CONF_VALUE_value(sect, i);
        klen = strlen(v->name);
        if (base + klen >= sizeof(ld->name)) {
            ld->name[base] = '\0';
            report(ld,
                   "%s: key %s%s is longer than the %d characters OpenSSL "
                   "accepts",
                   ld->file, ld->name, v->name, NAME_MAX_ - 1);
            ok = 0;
            break;
        }
        memcpy(ld->name + base, v->name, klen + 1);
        ok = flatten(ld, base + klen, 0, v->value);
    }
    ld->depth--;
    return ok;
}

static int load(const char *file, struct stp_conf **out, stp_diag_fn diag,
                void *arg, int quiet_absent)
{
    struct loader *ld = OPENSSL_zalloc(sizeof(*ld));
    int ok = 0;

    *out = NULL;
    if (ld == NULL) {
        if (diag != NULL)
            diag(arg, "out of memory while reading the configuration");
        return 0;
    }
    ERR_set_mark();
    ld->file = file;
    ld->diag = diag;
    ld->arg = arg;
    ld->quiet_absent = quiet_absent;
    ld->conf = OPENSSL_zalloc(sizeof(*ld->conf));
    if (ld->conf != NULL)
        ld->conf->file = OPENSSL_strdup(file);
    if (ld->conf == NULL || ld->conf->file == NULL) {
        report(ld, "%s: out of memory", file);
        goto end;
    }
    if (!load_file(ld) || !collect_providers(ld) || !find_self(ld))
        goto end;
    if (!flatten(ld, 0, 1, ld->conf->self->section))
        goto end;
    *out = ld->conf;
    ld->conf = NULL;
    ok = 1;
end:
    if (!ok && ld->absent && quiet_absent)
        ok = -1;
    stp_conf_free(ld->conf);
    NCONF_free(ld->cnf);
    OPENSSL_free(ld->lists);
    OPENSSL_free(ld);
    ERR_pop_to_mark();
    return ok;
}

int stp_conf_load(const char *file, struct stp_conf **out, stp_diag_fn diag,
                  void *arg)
{
    return load(file, out, diag, arg, 0);
}

int stp_conf_load_if_any(const char *file, struct stp_conf **out,
                         stp_diag_fn diag, void *arg)
{
    return load(file, out, diag, arg, 1);
}

void stp_conf_free(struct stp_conf *conf)
{
    size_t i;

    if (conf == NULL)
        return;
    for (i = 0; i < conf->nproviders; i++) {
        OPENSSL_free(conf->providers[i].name);
        OPENSSL_free(conf->providers[i].section);
        OPENSSL_free(conf->providers[i].module);
    }
    for (i = 0; i < conf->nkv; i++) {
        OPENSSL_free((char *)conf->kv[i].key);
        OPENSSL_free((char *)conf->kv[i].value);
    }
    OPENSSL_free(conf->providers);
    OPENSSL_free(conf->kv);
    OPENSSL_free(conf->providers_section);
    OPENSSL_free(conf->file);
    OPENSSL_free(conf);
}

char *stp_conf_default_file(void)
{
    /* Already prefers $OPENSSL_CONF (via secure_getenv) over OPENSSLDIR. */
    return CONF_get1_default_config_file();
}
