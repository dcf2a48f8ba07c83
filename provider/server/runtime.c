/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Process state shared by the routes (see runtime.h). Nothing here runs at
 * load time: the policy is parsed when the provider is initialised, or on
 * the first SSL_new of a process for the other routes.
 */
#include "server/runtime.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "engine/certinfo.h"
#include "engine/conf.h"
#include "engine/log.h"

static pthread_mutex_t rt_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int route = STP_ROUTE_NONE;
static struct stp_policy *policy;
static int policy_state; /* 0: not loaded, 1: valid, -1: invalid */
static atomic_int active = -1;
static STACK_OF(X509) *trust;
static struct stp_store *store;
static struct stp_fleet *fleet;
static int fleet_failed; /* the policy's fleet could not be made (said) */
/* Where the policy came from, to read it again (stp_runtime_recheck):
 * the file, the provider name that had to match (NULL: any), and its
 * section flattened ("key=value\n"...), to tell a change. NULL source: not
 * from a file (the provider's own section, or defaults). */
static char *policy_file, *policy_name, *policy_text;
static unsigned long policy_checked; /* the context generation last checked */

/*
 * Taken when the hooks are registered (a constructor, or provider init
 * during the application's configuration): servers such as nginx rewrite
 * argv[0] and clear the environment of their workers afterwards.
 */
static char program[64];
static char *conf_env;         /* $OCSPSTAPLE_CONF */
static char *openssl_conf_env; /* $OPENSSL_CONF */

void stp_runtime_capture(void)
{
    char exe[4096];
    const char *base = program_invocation_short_name;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    const char *v;

    if (n > 0) {
        exe[n] = '\0';
        base = strrchr(exe, '/') != NULL ? strrchr(exe, '/') + 1 : exe;
    }
    n = (ssize_t)strlen(base);
    if (n >= (ssize_t)sizeof(program))
        n = sizeof(program) - 1;
    memcpy(program, base, (size_t)n);
    program[n] = '\0';
    v = secure_getenv("OCSPSTAPLE_CONF");
    conf_env = v != NULL && *v != '\0' ? strdup(v) : NULL;
    v = secure_getenv("OPENSSL_CONF");
    openssl_conf_env = v != NULL && *v != '\0' ? strdup(v) : NULL;
}

int stp_runtime_parent_is_same_program(char *comm, size_t len)
{
    char path[64], buf[64] = "";
    const char *me = stp_runtime_program();
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/comm", (int)getppid());
    if ((f = fopen(path, "re")) == NULL)
        return 0;
    if (fgets(buf, sizeof(buf), f) == NULL)
        buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    snprintf(comm, len, "%s", buf);
    /* comm holds at most 15 characters of the executable's name */
    return buf[0] != '\0' && strncmp(buf, me, 15) == 0;
}

const char *stp_runtime_program(void)
{
    return program[0] != '\0' ? program : program_invocation_short_name;
}

/*
 * Problems of the policy are said where they matter: in a process that
 * serves TLS. A system-wide openssl.cnf is read by every OpenSSL program
 * (curl, ssh-agent helpers, python, cron jobs), and none of them should
 * print our errors on its stderr. So they wait here (a few lines, bounded)
 * until stp_runtime_report() is called by a process that acts as a server;
 * `ocspstaple check` reports them to the operator at any time.
 */
#define REPORT_MAX 32
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static char *report_lines[REPORT_MAX];
static int report_n, report_dropped;
static atomic_int report_pending;

static void defer(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void defer(const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&report_lock);
    if (report_n < REPORT_MAX
        && (report_lines[report_n] = OPENSSL_strdup(line)) != NULL)
        report_n++;
    else
        report_dropped++;
    atomic_store(&report_pending, 1);
    pthread_mutex_unlock(&report_lock);
}

int stp_runtime_report_pending(void)
{
    return atomic_load(&report_pending);
}

void stp_runtime_report(void)
{
    int i;

    if (!atomic_load(&report_pending))
        return;
    pthread_mutex_lock(&report_lock);
    if (atomic_exchange(&report_pending, 0)) {
        for (i = 0; i < report_n; i++) {
            STP_LOG_ERR("policy", "%s", report_lines[i]);
            OPENSSL_free(report_lines[i]);
            report_lines[i] = NULL;
        }
        if (report_dropped > 0)
            STP_LOG_ERR("policy",
                        "and %d more problem(s): run ocspstaple "
                        "check",
                        report_dropped);
        report_n = report_dropped = 0;
    }
    pthread_mutex_unlock(&report_lock);
}

void stp_runtime_after_fork(void)
{
    stp_fleet_after_fork(fleet); /* the parent's connections are not ours */
    pthread_mutex_init(&rt_lock, NULL);
    pthread_mutex_init(&report_lock, NULL);
}

int stp_runtime_set_route(enum stp_route r)
{
    int none = STP_ROUTE_NONE;

    if (!atomic_compare_exchange_strong(&route, &none, (int)r))
        return 0;
    return 1;
}

enum stp_route stp_runtime_route(void)
{
    return (enum stp_route)atomic_load(&route);
}

static void diag_log(void *arg, const char *msg)
{
    defer("%s: %s", (const char *)arg, msg);
}

static void load_trust(const char *file)
{
    struct stp_err err;

    if (file == NULL)
        return;
    trust = stp_load_certs(file, &err);
    if (trust == NULL)
        defer("ca_file: %s", err.msg);
}

/* Under rt_lock. */
static void set_policy_locked(const struct stp_kv *kv, size_t n,
                              const char *origin)
{
    struct stp_policy *p = stp_policy_parse(kv, n, diag_log, (void *)origin);

    if (p == NULL) {
        policy_state = -1;
        defer("%s: invalid policy: ocspstaple stays passive in %s (TLS is "
              "not affected)",
              origin, stp_runtime_program());
        return;
    }
    policy = p;
    policy_state = 1;
    stp_log_configure(p->log_level, p->log_file);
    stp_log_configure_syslog(p->log_syslog);
    load_trust(p->ca_file);
}

/* The section <kv> flattened, one "key=value" line each, to compare. */
static char *flatten(const struct stp_kv *kv, size_t n)
{
    size_t i, len = 1, off = 0;
    char *t;

    for (i = 0; i < n; i++)
        len += strlen(kv[i].key) + strlen(kv[i].value) + 2;
    if ((t = OPENSSL_malloc(len)) == NULL)
        return NULL;
    for (i = 0; i < n; i++)
        off += (size_t)snprintf(t + off, len - off, "%s=%s\n", kv[i].key,
                                kv[i].value);
    t[off] = '\0';
    return t;
}

/* Under rt_lock: the source of the policy now in force. */
static void remember_source_locked(const char *file, const char *name,
                                   const struct stp_conf *c)
{
    OPENSSL_free(policy_file);
    OPENSSL_free(policy_name);
    OPENSSL_free(policy_text);
    policy_file = OPENSSL_strdup(file);
    policy_name = name != NULL ? OPENSSL_strdup(name) : NULL;
    policy_text = flatten(c->kv, c->nkv);
}

/* Under rt_lock: the named file's ocspstaple section (the section of
 * provider <name>, or any when NULL); 0 if it has none. */
static int set_policy_from_file_locked(const char *file, const char *name,
                                       int required)
{
    struct stp_conf *c = NULL;
    char origin[1024];
    int found;

    found = stp_conf_load(file, &c, required ? diag_log : NULL,
                          (void *)"configuration")
            && c->self != NULL
            && (name == NULL || strcmp(c->self->name, name) == 0);
    if (found) {
        snprintf(origin, sizeof(origin), "%s [%s]", c->file, c->self->section);
        set_policy_locked(c->kv, c->nkv, origin);
        remember_source_locked(file, name, c);
    }
    stp_conf_free(c);
    return found;
}

/* Under rt_lock: <p> (valid) replaces the policy in force, read from
 * <origin>. The old one is kept: records and threads borrow its strings. */
static void swap_policy_locked(struct stp_policy *p, const char *origin)
{
    static struct stp_policy **retired; /* kept reachable, never freed */
    static size_t nretired;
    struct stp_policy **r;
    const struct stp_policy *old = policy;

    if (policy != NULL
        && (r = OPENSSL_realloc(retired, (nretired + 1) * sizeof(*r)))
               != NULL) {
        retired = r;
        retired[nretired++] = policy;
    }

    policy = p;
    policy_state = 1;
    stp_log_configure(p->log_level, p->log_file);
    stp_log_configure_syslog(p->log_syslog);
    if (p->ca_file != NULL
        && (old == NULL || old->ca_file == NULL
            || strcmp(old->ca_file, p->ca_file) != 0))
        load_trust(p->ca_file);
    else if (p->ca_file == NULL)
        trust = NULL; /* the old stack may still be borrowed: not freed */
    if (store != NULL
        && (old == NULL || strcmp(old->store_dir, p->store_dir) != 0
            || (old->store_group == NULL) != (p->store_group == NULL)
            || (p->store_group != NULL
                && strcmp(old->store_group, p->store_group) != 0)))
        store = NULL; /* opened again on use; the old handle is not freed */
    if (old == NULL || !stp_fleet_same_conf(old, p)) {
        stp_fleet_retire(fleet); /* still borrowed by a running cycle */
        fleet = NULL;
        fleet_failed = 0;
    }
    atomic_store(&active, -1); /* decided again, with the new policy */
    STP_LOG_INFO("policy",
                 "%s changed: read again in %s (default mode %s, store_dir "
                 "%s)",
                 origin, stp_runtime_program(), stp_mode_name(p->defaults.mode),
                 p->store_dir);
}

int stp_runtime_recheck(unsigned long generation)
{
    struct stp_conf *c = NULL;
    struct stp_policy *p;
    char origin[1024], *text = NULL;
    int swapped = 0;

    pthread_mutex_lock(&rt_lock);
    if (policy_file == NULL || generation == policy_checked)
        goto done;
    policy_checked = generation;
    if (!stp_conf_load(policy_file, &c, diag_log, (void *)"configuration")) {
        defer("%s: cannot be read again: keeping the policy read before",
              policy_file);
        goto done;
    }
    if (c->self == NULL
        || (policy_name != NULL && strcmp(c->self->name, policy_name) != 0)) {
        /* a kill switch is `mode = never`; a lost section may be a slip */
        STP_LOG_WARN("policy",
                     "%s no longer has the ocspstaple section: keeping the "
                     "policy read before (mode = never turns ocspstaple off; "
                     "a restart applies the file as it is)",
                     policy_file);
        goto done;
    }
    if ((text = flatten(c->kv, c->nkv)) == NULL || policy_text == NULL
        || strcmp(text, policy_text) == 0)
        goto done;
    snprintf(origin, sizeof(origin), "%s [%s]", c->file, c->self->section);
    if ((p = stp_policy_parse(c->kv, c->nkv, diag_log, (void *)origin))
        == NULL) {
        defer("%s: the changed policy is invalid: keeping the policy read "
              "before in %s (run ocspstaple check)",
              origin, stp_runtime_program());
        /* said once: the same text is not parsed again */
        OPENSSL_free(policy_text);
        policy_text = text;
        text = NULL;
        goto done;
    }
    swap_policy_locked(p, origin);
    OPENSSL_free(policy_text);
    policy_text = text;
    text = NULL;
    swapped = 1;
done:
    OPENSSL_free(text);
    stp_conf_free(c);
    pthread_mutex_unlock(&rt_lock);
    stp_runtime_report();
    return swapped;
}

void stp_runtime_configure(const char *provider_name, const struct stp_kv *kv,
                           size_t n)
{
    char *file = openssl_conf_env != NULL ? OPENSSL_strdup(openssl_conf_env)
                                          : stp_conf_default_file();

    pthread_mutex_lock(&rt_lock);
    if (policy_state == 0
        && (file == NULL
            || !set_policy_from_file_locked(file, provider_name, 0)))
        set_policy_locked(kv, n, "provider section");
    pthread_mutex_unlock(&rt_lock);
    OPENSSL_free(file);
}

/* Preload and API routes; under rt_lock. */
static void load_policy_locked(void)
{
    const char *env = conf_env;
    char *file;

    if (env != NULL) {
        if (!set_policy_from_file_locked(env, NULL, 1)) {
            policy_state = -1;
            defer("OCSPSTAPLE_CONF=%s: no usable ocspstaple section: "
                  "ocspstaple stays passive",
                  env);
        }
        return;
    }
    file = openssl_conf_env != NULL ? OPENSSL_strdup(openssl_conf_env)
                                    : stp_conf_default_file();
    if (file == NULL || !set_policy_from_file_locked(file, NULL, 0)) {
        STP_LOG_INFO("policy", "no ocspstaple section in %s: defaults",
                     file != NULL ? file : "the OpenSSL configuration");
        set_policy_locked(NULL, 0, "defaults");
    }
    OPENSSL_free(file);
}

/* Whether the policy has anything to do: staple, or check clients (mode
 * never stops stapling, not client-certificate checks). */
static int any_mode_on(const struct stp_policy *p)
{
    size_t i;

    if (p->defaults.mode != STP_MODE_NEVER || stp_policy_client_any(p))
        return 1;
    for (i = 0; i < p->ncerts; i++)
        if ((p->certs[i].set & STP_SET_MODE)
            && p->certs[i].pol.mode != STP_MODE_NEVER)
            return 1;
    return 0;
}

int stp_runtime_active(void)
{
    int a = atomic_load(&active);

    if (a >= 0)
        return a;
    pthread_mutex_lock(&rt_lock);
    if (policy_state == 0)
        load_policy_locked();
    a = 0;
    if (policy_state != 1) {
        /* set_policy_locked() or load_policy_locked() already said why */
    } else if (!stp_policy_program_allowed(policy, stp_runtime_program())) {
        STP_LOG_INFO("policy",
                     "program '%s' is outside programs / "
                     "skip_programs: ocspstaple stays passive",
                     stp_runtime_program());
    } else if (!any_mode_on(policy)) {
        STP_LOG_INFO("policy", "mode never: ocspstaple stays passive");
    } else {
        a = 1;
    }
    atomic_store(&active, a);
    pthread_mutex_unlock(&rt_lock);
    return a;
}

const struct stp_policy *stp_runtime_get0_policy(void)
{
    return policy;
}

STACK_OF(X509) *stp_runtime_get0_trust(void)
{
    return trust;
}

struct stp_store *stp_runtime_get0_store(struct stp_err *err)
{
    struct stp_store *st;

    pthread_mutex_lock(&rt_lock);
    if (store != NULL && !stp_store_alive(store)) {
        STP_LOG_WARN("store", "store_dir '%s' was removed: opening it again",
                     stp_store_dir(store));
        store = NULL; /* the old handle may still be in use: not freed */
    }
    if (store == NULL) {
        if (policy == NULL)
            stp_err_set(err, STP_E_INTERNAL, 0, "no policy");
        else
            stp_store_open_shared(policy->store_dir, 1, policy->store_group,
                                  &store, err);
    }
    st = store;
    pthread_mutex_unlock(&rt_lock);
    return st;
}

struct stp_fleet *stp_runtime_get0_fleet(void)
{
    struct stp_fleet *f;
    struct stp_err err;

    pthread_mutex_lock(&rt_lock);
    if (fleet == NULL && !fleet_failed && policy != NULL
        && policy->fleet_url != NULL) {
        fleet = stp_fleet_new(policy, &err);
        if (fleet == NULL) {
            fleet_failed = 1;
            STP_LOG_ERR("fleet", "%s: this host works without the fleet",
                        err.msg);
        }
    }
    f = fleet;
    pthread_mutex_unlock(&rt_lock);
    return f;
}
