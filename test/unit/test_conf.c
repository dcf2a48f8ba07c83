/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for conf.c: openssl.cnf files written to a temporary directory,
 * then the flattened ocspstaple section, the providers facts (order,
 * activation, module, identity) and every error path compared with what
 * OpenSSL 3.0's provider configuration code would do with the same file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "engine/conf.h"
#include "engine/policy.h"
#include "stp_test.h"

struct diags {
    int n;
    char text[8192];
};

static char tmpdir[] = "/tmp/stp_test_conf.XXXXXX";

static void collect(void *arg, const char *msg)
{
    struct diags *d = arg;
    size_t used = strlen(d->text);

    d->n++;
    snprintf(d->text + used, sizeof(d->text) - used, "%s\n", msg);
}

/* Writes <text> to <tmpdir>/<name>; returns the path (static buffer). */
static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    if (f == NULL)
        return path;
    fputs(text, f);
    fclose(f);
    return path;
}

/* "key=value\n" for each entry. */
static const char *kv_text(const struct stp_conf *c)
{
    static char buf[8192];
    size_t i, off = 0;

    buf[0] = '\0';
    for (i = 0; c != NULL && i < c->nkv; i++)
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s=%s\n",
                                c->kv[i].key, c->kv[i].value);
    return buf;
}

/* "name[section]" + '+' if activated, '-' if not, '!' if no section. */
static const char *providers_text(const struct stp_conf *c)
{
    static char buf[2048];
    const struct stp_conf_provider *p;
    size_t i, off = 0;

    buf[0] = '\0';
    for (i = 0; c != NULL && i < c->nproviders; i++) {
        p = &c->providers[i];
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s[%s]%c",
                                i > 0 ? " " : "", p->name, p->section,
                                !p->found     ? '!'
                                : p->activate ? '+'
                                              : '-');
    }
    return buf;
}

#define HEAD                                          \
    "openssl_conf = openssl_init\n\n[openssl_init]\n" \
    "providers = provider_sect\n\n"

static const char full_cnf[] =
    "# The usual shape: default first, then ocspstaple.\n" HEAD
    "[provider_sect]\n"
    "default = default_sect\n"
    "ocspstaple = ocspstaple_sect\n\n"
    "[default_sect]\n"
    "activate = 1\n\n"
    "[ocspstaple_sect]\n"
    "module = /usr/lib/x86_64-linux-gnu/ossl-modules/ocspstaple.so\n"
    "activate = 1\n"
    "mode = must\n"
    "store_dir = /var/cache/ocspstaple\n"
    "certs = certs_sect\n"
    "refresh_margin = 30%\n\n"
    "[certs_sect]\n"
    "www = www_sect\n"
    "api = api_sect\n\n"
    "[www_sect]\n"
    "match = name:www.example.com\n"
    "mode = always\n\n"
    "[api_sect]\n"
    "match = sha256:00112233445566778899aabbccddeeff"
    "00112233445566778899AABBCCDDEEFF\n"
    "timeout = 30\n";

static const struct {
    const char *name;
    const char *text;
    const char *providers; /* providers_text() */
    const char *self;      /* our provider's name */
    const char *module;    /* its module, or NULL */
    int activate;
    const char *kv; /* kv_text() */
} good[] = {
    { "full.cnf", full_cnf,
      "default[default_sect]+ ocspstaple[ocspstaple_sect]+", "ocspstaple",
      "/usr/lib/x86_64-linux-gnu/ossl-modules/ocspstaple.so", 1,
      "module=/usr/lib/x86_64-linux-gnu/ossl-modules/ocspstaple.so\n"
      "activate=1\n"
      "mode=must\n"
      "store_dir=/var/cache/ocspstaple\n"
      "certs.www.match=name:www.example.com\n"
      "certs.www.mode=always\n"
      "certs.api.match=sha256:00112233445566778899aabbccddeeff"
      "00112233445566778899AABBCCDDEEFF\n"
      "certs.api.timeout=30\n"
      "refresh_margin=30%\n" },
    /* Found by module; skip_dot() on names and on activate; 3.0 treats
     * "activate = 0" as activate. */
    { "module.cnf",
      HEAD "[provider_sect]\n0.base = base_sect\nx.stp = stp_sect\n"
           "[base_sect]\n1.activate = 0\n"
           "[stp_sect]\nmodule = ocspstaple.so\nmode = never\n",
      "base[base_sect]+ stp[stp_sect]-", "stp", "ocspstaple.so", 0,
      "module=ocspstaple.so\nmode=never\n" },
    /* identity renames; the name wins over an earlier module match. */
    { "identity.cnf",
      HEAD "[provider_sect]\nother = other_sect\nx = x_sect\n"
           "[other_sect]\nmodule = /opt/lib/ocspstaple.so\n"
           "[x_sect]\nidentity = ocspstaple\nactivate = yes\nfetch = no\n",
      "other[other_sect]- ocspstaple[x_sect]+", "ocspstaple", NULL, 1,
      "identity=ocspstaple\nactivate=yes\nfetch=no\n" },
    /* Ours before default, another provider whose section is missing,
     * "providers.1" in the init section (module name up to the last dot),
     * a top-level dotted key passed through unchanged, deep nesting. */
    { "order.cnf",
      "openssl_conf = init\n[init]\nproviders.1 = plist\n"
      "[plist]\nocspstaple = o\ndefault = d\nlegacy = nowhere\n"
      "[d]\nactivate = 1\n"
      "[o]\nactivate = 1\n1.mode = auto\nx = x1\n"
      "[x1]\ny = x2\nplain = v\n[x2]\nz = deep\n",
      "ocspstaple[o]+ default[d]+ legacy[nowhere]!", "ocspstaple", NULL, 1,
      "activate=1\n1.mode=auto\nx.y.z=deep\nx.plain=v\n" },
    /* NCONF keeps only the last of a repeated key, at its position. */
    { "dup.cnf",
      HEAD "[provider_sect]\nocspstaple = o\n"
           "[o]\nmode = auto\ntimeout = 5\nmode = must\n",
      "ocspstaple[o]-", "ocspstaple", NULL, 0, "timeout=5\nmode=must\n" },
    /* A module path that merely ends in ocspstaple.so is not ours. */
    { "suffix.cnf",
      HEAD "[provider_sect]\nfake = f\nreal = r\n"
           "[f]\nmodule = /x/notocspstaple.so\n"
           "[r]\nmodule = /x/ocspstaple.so\n",
      "fake[f]- real[r]-", "real", "/x/ocspstaple.so", 0,
      "module=/x/ocspstaple.so\n" },
};

static void test_good(void)
{
    struct stp_conf *c;
    struct diags d;
    const char *path;
    size_t i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        memset(&d, 0, sizeof(d));
        path = write_file(good[i].name, good[i].text);
        c = (struct stp_conf *)1;
        ASSERT_OK(stp_conf_load(path, &c, collect, &d));
        ASSERT_EQ(d.n, 0);
        ASSERT_NOT_NULL(c);
        if (c == NULL) {
            fprintf(stderr, "  row %zu: %s", i, d.text);
            continue;
        }
        ASSERT_STREQ(c->file, path);
        ASSERT_STREQ(providers_text(c), good[i].providers);
        ASSERT_NOT_NULL(c->self);
        ASSERT_STREQ(c->self->name, good[i].self);
        if (good[i].module == NULL)
            ASSERT_NULL(c->self->module);
        else
            ASSERT_STREQ(c->self->module, good[i].module);
        ASSERT_EQ(c->self->activate, good[i].activate);
        ASSERT_STREQ(kv_text(c), good[i].kv);
        stp_conf_free(c);
    }
}

static void test_facts_and_policy(void)
{
    struct stp_policy *pol;
    struct stp_conf *c = NULL;
    struct diags d;

    memset(&d, 0, sizeof(d));
    ASSERT_OK(stp_conf_load(write_file("f.cnf", full_cnf), &c, collect, &d));
    if (c == NULL)
        return;
    ASSERT_STREQ(c->providers_section, "provider_sect");
    ASSERT_STREQ(c->self->section, "ocspstaple_sect");
    ASSERT_TRUE(c->self == &c->providers[1]);
    ASSERT_EQ(c->nproviders, 2);
    /* The flattened list is exactly what the policy parser takes. */
    pol = stp_policy_parse(c->kv, c->nkv, collect, &d);
    ASSERT_NOT_NULL(pol);
    ASSERT_EQ(d.n, 0);
    if (pol != NULL) {
        ASSERT_EQ(pol->defaults.mode, STP_MODE_MUST);
        ASSERT_EQ(pol->refresh_margin, 30);
        ASSERT_EQ(pol->ncerts, 2);
        ASSERT_STREQ(pol->certs[0].label, "www");
        ASSERT_STREQ(pol->certs[1].label, "api");
        ASSERT_EQ(pol->certs[1].pol.timeout, 30);
        ASSERT_EQ(pol->certs[1].sha256[15], 0xff);
    }
    stp_policy_free(pol);
    stp_conf_free(c);
    stp_conf_free(NULL);
}

static void long_key_cnf(char *buf, size_t len)
{
    char k[201];

    memset(k, 'k', 200);
    k[200] = '\0';
    snprintf(buf, len,
             HEAD "[provider_sect]\nocspstaple = o\n[o]\n%s = s1\n"
                  "[s1]\n%s = s2\n[s2]\n%s = v\n",
             k, k, k);
}

static void test_errors(void)
{
    static char long_cnf[2048];
    static const struct {
        const char *name; /* NULL: use <text> as the path itself */
        const char *text;
        const char *want; /* after "<path>" */
        const char *also; /* elsewhere in the line, or NULL */
    } rows[] = {
        { NULL, "/nonexistent/dir/openssl.cnf",
          ": cannot open: No such file or directory", NULL },
        { NULL, "/tmp", ": cannot read: Is a directory", NULL },
        { "syntax.cnf", HEAD "[provider_sect]\nocspstaple\n",
          ":7: syntax error: missing equal sign", NULL },
        { "section.cnf", "openssl_conf = init\n[init\n",
          ":2: syntax error: missing close square bracket", NULL },
        { "empty.cnf", "", ": no openssl_conf in the default section", NULL },
        { "noinit.cnf", "openssl_conf = nowhere\n",
          ": openssl_conf names section [nowhere], which does not exist",
          NULL },
        { "nolist.cnf", "openssl_conf = i\n[i]\nproviders = p\n",
          ": providers = p in [i] names a section that does not exist", NULL },
        { "noours.cnf",
          HEAD "[provider_sect]\ndefault = d\n[d]\nactivate = 1\n",
          ": no ocspstaple provider: the providers section needs an entry "
          "named ocspstaple, or one whose section sets module = "
          ".../ocspstaple.so",
          NULL },
        { "noprov.cnf", "openssl_conf = i\n[i]\nalg_section = a\n[a]\nx=1\n",
          ": no ocspstaple provider", NULL },
        { "nosect.cnf", HEAD "[provider_sect]\nocspstaple = missing_sect\n",
          ": provider ocspstaple names section [missing_sect], which does "
          "not exist",
          NULL },
        { "loop.cnf",
          HEAD "[provider_sect]\nocspstaple = o\n[o]\ncerts = c\n"
               "[c]\nwww = w\n[w]\nback = c\n",
          ": key certs.www.back refers back to section [c] (OpenSSL refuses "
          "recursive sections)",
          NULL },
        { "self.cnf", HEAD "[provider_sect]\nocspstaple = o\n[o]\nme = o\n",
          ": key me refers back to section [o]", NULL },
        { "long.cnf", long_cnf, ": key kkkk",
          "kkk is longer than the 511 characters OpenSSL accepts" },
    };
    char want[1024];
    struct stp_conf *c;
    struct diags d;
    const char *path;
    size_t i;

    long_key_cnf(long_cnf, sizeof(long_cnf));
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        memset(&d, 0, sizeof(d));
        path = rows[i].name != NULL ? write_file(rows[i].name, rows[i].text)
                                    : rows[i].text;
        snprintf(want, sizeof(want), "%s%s", path, rows[i].want);
        c = (struct stp_conf *)1;
        ASSERT_EQ(stp_conf_load(path, &c, collect, &d), 0);
        ASSERT_NULL(c);
        ASSERT_EQ(d.n, 1);
        ASSERT_CONTAINS(d.text, want);
        if (rows[i].also != NULL)
            ASSERT_CONTAINS(d.text, rows[i].also);
        /* Problems go through diag only, never onto the error stack. */
        ASSERT_EQ(ERR_peek_error(), 0);
    }
    /* No callback: still a clean failure. */
    ASSERT_EQ(stp_conf_load("/nonexistent", &c, NULL, NULL), 0);
}

static void test_unreadable(void)
{
    struct stp_conf *c;
    struct diags d;
    const char *path;
    char want[600];

    if (geteuid() == 0)
        return; /* root reads anything */
    path = write_file("unreadable.cnf", full_cnf);
    chmod(path, 0);
    memset(&d, 0, sizeof(d));
    ASSERT_EQ(stp_conf_load(path, &c, collect, &d), 0);
    snprintf(want, sizeof(want), "%s: cannot open: Permission denied", path);
    ASSERT_CONTAINS(d.text, want);
}

static void test_default_file(void)
{
    char *old = getenv("OPENSSL_CONF"), *saved = NULL, *f;

    if (old != NULL)
        saved = strdup(old);
    setenv("OPENSSL_CONF", "/etc/ocspstaple-test.cnf", 1);
    f = stp_conf_default_file();
    ASSERT_STREQ(f, "/etc/ocspstaple-test.cnf");
    OPENSSL_free(f);
    unsetenv("OPENSSL_CONF");
    f = stp_conf_default_file();
    ASSERT_NOT_NULL(f);
    ASSERT_CONTAINS(f, "/openssl.cnf");
    OPENSSL_free(f);
    if (saved != NULL)
        setenv("OPENSSL_CONF", saved, 1);
    free(saved);
}

static void cleanup(void)
{
    static const char *const names[] = {
        "full.cnf",    "module.cnf", "identity.cnf",   "order.cnf",
        "dup.cnf",     "suffix.cnf", "f.cnf",          "syntax.cnf",
        "section.cnf", "empty.cnf",  "noinit.cnf",     "nolist.cnf",
        "noours.cnf",  "noprov.cnf", "nosect.cnf",     "loop.cnf",
        "self.cnf",    "long.cnf",   "unreadable.cnf",
    };
    char path[512];
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
}

int main(void)
{
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_good();
    test_facts_and_policy();
    test_errors();
    test_unreadable();
    test_default_file();
    cleanup();
    STP_TEST_MAIN_END();
}
