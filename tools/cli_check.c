/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `ocspstaple check`: lints the ocspstaple section of an openssl.cnf the way
 * the provider will read it, plus what only the host can tell (provider
 * order, module file, store directory, files named by keys).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cli.h"
#include "engine/certinfo.h"
#include "engine/conf.h"
#include "engine/policy.h"

static void problem(struct cli_diag *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void problem(struct cli_diag *d, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s", d->prefix);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    d->problems++;
}

/* A providers section disables the implicit default provider. */
static void check_order(const struct stp_conf *c, struct cli_diag *d)
{
    size_t i;

    for (i = 0; i < c->nproviders; i++) {
        const struct stp_conf_provider *p = &c->providers[i];

        if (p == c->self)
            break;
        if ((strcmp(p->name, "default") == 0 || strcmp(p->name, "fips") == 0)
            && p->activate)
            return;
    }
    problem(d,
            "%s: no 'default' provider is activated before %s in the "
            "providers section: every TLS program on the host would fail "
            "(\"no ciphers\"); add 'default = default_sect' with "
            "'activate = 1' before it",
            c->file, c->self->name);
}

static void check_loadable(const char *module, struct cli_diag *d,
                           const char *file);

static void check_module(const struct stp_conf *c, struct cli_diag *d)
{
    char path[4096];
    const char *m = c->self->module;

    if (!c->self->activate && m == NULL) {
        /* neither activated nor located: a policy file for LD_PRELOAD
         * (OCSPSTAPLE_CONF), which OpenSSL is not meant to load */
        printf("note: %s: provider %s has neither 'module' nor 'activate': "
               "OpenSSL does not load ocspstaple.so from this file; its "
               "section is a policy for the LD_PRELOAD route "
               "(OCSPSTAPLE_CONF=%s)\n",
               c->file, c->self->name, c->file);
        return;
    }
    if (!c->self->activate)
        problem(d, "%s: provider %s has no 'activate = 1': it will not load",
                c->file, c->self->name);
    if (m == NULL)
        return;
    if (m[0] != '/') {
        /* as OpenSSL finds it: in its modules directory */
        const char *dir = OPENSSL_info(OPENSSL_INFO_MODULES_DIR);

        snprintf(path, sizeof(path), "%s/%s", dir != NULL ? dir : ".", m);
        m = path;
    }
    if (access(m, R_OK) != 0)
        problem(d, "%s: module '%s': %s", c->file, m, strerror(errno));
    else
        check_loadable(m, d, c->file);
}

/*
 * Whether the module loads at all: dlopen(RTLD_NOW) in a child process (its
 * constructors and whatever it links stay out of ours), so a dependency
 * that cannot be found (libocspstaple.so.0 of a prefix install) is said.
 */
static void check_loadable(const char *module, struct cli_diag *d,
                           const char *file)
{
    char msg[512] = "";
    int fds[2], status = 0;
    ssize_t n;
    pid_t pid;

    if (pipe(fds) != 0)
        return;
    fflush(NULL);
    if ((pid = fork()) == 0) {
        void *h;
        const char *e;

        close(fds[0]);
        h = dlopen(module, RTLD_NOW | RTLD_LOCAL);
        e = h == NULL ? dlerror() : NULL;
        if (e != NULL && write(fds[1], e, strlen(e)) < 0)
            _exit(2);
        _exit(h == NULL ? 1 : 0);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return;
    }
    n = read(fds[0], msg, sizeof(msg) - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    if (waitpid(pid, &status, 0) == pid && WIFEXITED(status)
        && WEXITSTATUS(status) == 0)
        return;
    problem(d,
            "%s: module '%s' cannot be loaded: %s (every server would run "
            "without it, silently)",
            file, module, msg[0] ? msg : "dlopen failed");
}

/* The servers Debian packages, and the user each one's workers run as. */
static const struct {
    const char *program, *binary, *user;
} servers[] = {
    { "nginx", "/usr/sbin/nginx", "www-data" },
    { "apache2", "/usr/sbin/apache2", "www-data" },
    { "lighttpd", "/usr/sbin/lighttpd", "www-data" },
    { "haproxy", "/usr/sbin/haproxy", "haproxy" },
    { "stunnel4", "/usr/bin/stunnel4", "stunnel4" },
};

/*
 * Whether <user> can create and write store_dir (traverse every parent,
 * write the directory, or create it in its parent), checked in a child
 * that becomes that user. Returns 1, 0 (said with the fix), or -1 if it
 * cannot be tried (not root, no such user).
 */
static int user_can_write(const char *dir, const char *user, const char *who,
                          struct cli_diag *d)
{
    struct passwd *pw = getpwnam(user);
    char parent[4096], *p;
    int status = 0, exists;
    pid_t pid;

    if (pw == NULL || geteuid() != 0)
        return -1;
    snprintf(parent, sizeof(parent), "%s", dir);
    p = dirname(parent);
    exists = access(dir, F_OK) == 0;
    fflush(NULL);
    if ((pid = fork()) == 0) {
        if (initgroups(user, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0
            || setuid(pw->pw_uid) != 0)
            _exit(3);
        if (exists)
            _exit(access(dir, W_OK | X_OK) == 0 ? 0 : errno == EACCES ? 1 : 2);
        _exit(access(p, W_OK | X_OK) == 0 ? 0 : 1);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)
        || WEXITSTATUS(status) == 3)
        return -1;
    if (WEXITSTATUS(status) == 0)
        return 1;
    if (exists)
        problem(d,
                "store_dir '%s': user %s (%s) cannot write it (or reach it): "
                "that server would fetch for each process alone and keep "
                "nothing; fix: chown %s: '%s' if it is the only server user, "
                "else give the servers' users one group: chgrp GROUP '%s' && "
                "chmod 2770 '%s' (and adduser %s GROUP)",
                dir, user, who, user, dir, dir, dir, user);
    else
        problem(d,
                "store_dir '%s' does not exist and user %s (%s) cannot create "
                "it in '%s'; fix: install -d -o %s -m 0750 '%s' (or 2770 with "
                "a group shared by the servers' users)",
                dir, user, who, p, user, dir);
    return 0;
}

/*
 * The users of the servers the policy acts in: --user NAMEs when given,
 * else the users of the installed servers that `programs` and
 * `skip_programs` let it act in. Each must be able to write store_dir.
 */
static void check_users(const struct stp_policy *pol, char **users, int nusers,
                        struct cli_diag *d)
{
    char checked[256] = "";
    size_t i, off = 0;
    int k, r, tried = 0;

    for (k = 0; k < nusers; k++) {
        r = user_can_write(pol->store_dir, users[k], "--user", d);
        if (r < 0)
            problem(d, "--user %s: %s", users[k],
                    geteuid() != 0 ? "check must run as root to act as "
                                     "another user"
                                   : "no such user");
    }
    if (nusers > 0)
        return;
    for (i = 0; i < sizeof(servers) / sizeof(servers[0]); i++) {
        if (access(servers[i].binary, X_OK) != 0
            || !stp_policy_program_allowed(pol, servers[i].program)
            || strstr(checked, servers[i].user) != NULL)
            continue;
        r = user_can_write(pol->store_dir, servers[i].user, servers[i].program,
                           d);
        if (r < 0)
            continue;
        tried++;
        off += (size_t)snprintf(checked + off, sizeof(checked) - off, "%s%s",
                                off ? ", " : "", servers[i].user);
        if (off >= sizeof(checked))
            break;
    }
    if (geteuid() != 0)
        printf("note: run check as root to verify that the servers' users "
               "can write store_dir\n");
    else if (tried > 0)
        printf("note: store_dir checked for the users of the installed "
               "servers: %s\n",
               checked);
}

/*
 * `programs` empty on a host with several TLS servers installed: the policy
 * acts in every OpenSSL program that reads the file (each server, and any
 * other TLS server a package adds later). Not a problem (it works), a
 * warning with the line that names them. Returns the number of warnings.
 */
static int check_programs(const struct stp_policy *pol)
{
    char names[256] = "";
    size_t i, off = 0;
    int n = 0;

    if (pol->nprograms > 0)
        return 0;
    for (i = 0; i < sizeof(servers) / sizeof(servers[0]); i++) {
        if (access(servers[i].binary, X_OK) != 0
            || !stp_policy_program_allowed(pol, servers[i].program))
            continue;
        n++;
        off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s",
                                off ? ", " : "", servers[i].program);
        if (off >= sizeof(names))
            break;
    }
    if (n < 2)
        return 0;
    printf("warning: programs is empty: the policy acts in every OpenSSL "
           "program that serves TLS on this host, and %d TLS servers are "
           "installed (%s); name those it is meant for: programs = %s\n",
           n, names, names);
    return 1;
}

static void print_certpol(const struct stp_certpol *cp)
{
    static const char *const client[] = { "off", "leaf", "chain" };

    printf(
        "mode %s%s, responder %s, timeout %lds, skip_verify %s, "
        "client_ocsp %s",
        stp_mode_name(cp->mode), cp->staple_all ? " (staple_all)" : "",
        cp->responder_url != NULL ? cp->responder_url : "from its AIA",
        cp->timeout, cp->skip_verify ? "yes" : "no",
        client[cp->client_ocsp <= STP_CLIENT_OCSP_CHAIN ? cp->client_ocsp : 0]);
    if (cp->client_ocsp != STP_CLIENT_OCSP_OFF)
        printf(" (fail %s, timeout %ldms)",
               cp->client_fail == STP_FAIL_OPEN ? "open" : "closed",
               cp->client_timeout_ms);
}

/*
 * --program NAME: whether the policy acts in NAME, its settings there, and
 * those of each certificate NAME's running processes use (the store's
 * lists, as status shows them), with the section that sets them. A stored
 * chain is shown only if its leaf is the certificate its name says.
 */
static void print_program(const struct stp_policy *pol, const char *name)
{
    struct stp_store *st = NULL;
    struct cli_uses u;
    struct stp_err err;
    size_t k, shown = 0;

    printf("program %s: ocspstaple %s\n", name,
           stp_policy_program_allowed(pol, name)
               ? "acts in it"
               : "does not act in it (programs / skip_programs)");
    printf("  defaults: ");
    print_certpol(&pol->defaults);
    printf("\n  store_dir %s%s%s, fetch %s, %zu per-certificate section(s)\n",
           pol->store_dir, pol->store_group != NULL ? ", group " : "",
           pol->store_group != NULL ? pol->store_group : "",
           pol->fetch ? "yes" : "no", pol->ncerts);
    if (!stp_store_open(pol->store_dir, 0, &st, &err)) {
        printf("  (no certificate: %s)\n", err.msg);
        return;
    }
    cli_uses_load(st, &u);
    for (k = 0; k < u.n; k++) {
        const struct stp_cert_override *ov;
        struct stp_certpol cp;
        STACK_OF(X509) *chain;
        unsigned char md[32];
        unsigned int mdlen = 0;
        char hex[65], subject[256] = "?";
        int i;

        if (strcmp(u.users[u.v[k].user].program, name) != 0
            || (k > 0 && strcmp(u.v[k].id, u.v[k - 1].id) == 0
                && strcmp(u.users[u.v[k - 1].user].program, name) == 0))
            continue;
        if ((chain = stp_store_read_chain(st, u.v[k].id, &err)) == NULL)
            continue;
        X509_digest(sk_X509_value(chain, 0), EVP_sha256(), md, &mdlen);
        for (i = 0; i < 32 && mdlen == 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        if (mdlen != 32 || strcmp(hex, u.v[k].id) != 0) {
            sk_X509_pop_free(chain, X509_free);
            continue; /* not the certificate its name says: not shown */
        }
        {
            struct stp_certinfo *ci = NULL;

            if (stp_certinfo_new(sk_X509_value(chain, 0), chain, &ci, &err))
                snprintf(subject, sizeof(subject), "%s", ci->subject);
            stp_certinfo_free(ci);
        }
        ov = stp_policy_resolve(pol, md, sk_X509_value(chain, 0), &cp);
        printf("  %.12s %s: ", u.v[k].id, subject);
        print_certpol(&cp);
        printf(" (%s%s%s)\n", ov != NULL ? "section " : "defaults",
               ov != NULL ? ov->label : "", "");
        shown++;
        sk_X509_pop_free(chain, X509_free);
    }
    if (shown == 0)
        printf("  no certificate used by a running %s process (USED BY in "
               "status)\n",
               name);
    cli_uses_free(&u);
    stp_store_close(st);
}

static void check_files(const struct stp_policy *pol, struct cli_diag *d)
{
    struct stat sb;

    if (stat(pol->store_dir, &sb) != 0)
        printf("note: store_dir '%s' does not exist yet (ocspstaple fetch "
               "creates it)\n",
               pol->store_dir);
    else if (!S_ISDIR(sb.st_mode))
        problem(d, "store_dir '%s': not a directory", pol->store_dir);
    else if (access(pol->store_dir, W_OK) != 0)
        printf("note: store_dir '%s' is not writable by this user; the "
               "servers' worker user must be able to write it\n",
               pol->store_dir);
    if (pol->ca_file != NULL && access(pol->ca_file, R_OK) != 0)
        problem(d, "ca_file '%s': %s", pol->ca_file, strerror(errno));
}

/*
 * fleet_url: the credentials file, then one connection as a server makes
 * it (AUTH, SELECT, PING). A server that refuses us is a problem of the
 * configuration; one that cannot be reached now is a warning (the hosts
 * work alone meanwhile). Returns the number of warnings.
 */
static int check_fleet(const struct stp_policy *pol, struct cli_diag *d)
{
    struct stp_fleet *f;
    struct stp_err err;
    int warnings = 0;

    if (pol->fleet_url == NULL)
        return 0;
    if ((f = stp_fleet_new(pol, &err)) == NULL) {
        problem(d, "%s", err.msg);
        return 0;
    }
    if (stp_fleet_ping(f, &err) > 0) {
        printf("note: fleet %s answers (as host '%s', prefix '%s')\n",
               pol->fleet_url, stp_fleet_host(f), pol->fleet_prefix);
    } else if (err.detail == 1) {
        problem(d, "fleet_url %s", err.msg);
    } else {
        printf("warning: fleet_url %s: the hosts work alone until it "
               "answers\n",
               err.msg);
        warnings++;
    }
    stp_fleet_free(f);
    return warnings;
}

/*
 * The permission model of store_dir (docs/design-notes.md, "Who may read
 * and write the store"): nobody outside the servers' user and group may
 * write the directory, and the lock and state files are not readable by
 * other users (a readable lock file can be held by anyone: no fetches).
 */
static void check_store_safety(const struct stp_policy *pol, struct cli_diag *d)
{
    struct stat sb;
    struct dirent *e;
    DIR *dir;
    int fd;

    if (stat(pol->store_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return;
    if (sb.st_mode & S_IWOTH)
        problem(d,
                "store_dir '%s' is writable by every user (mode %04o): any "
                "local user can create its lock files first and hold them, "
                "or remove files; fix: chmod o-w '%s'",
                pol->store_dir, (unsigned)(sb.st_mode & 07777), pol->store_dir);
    if ((dir = opendir(pol->store_dir)) == NULL)
        return;
    fd = dirfd(dir);
    while ((e = readdir(dir)) != NULL) {
        const char *dot = strrchr(e->d_name, '.');

        if (dot == NULL || e->d_name[0] == '.'
            || (strcmp(dot, ".lock") != 0 && strcmp(dot, ".state") != 0)
            || fstatat(fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (!S_ISREG(sb.st_mode))
            problem(d, "%s/%s: not a regular file (planted?)", pol->store_dir,
                    e->d_name);
        else if (sb.st_mode & (S_IROTH | S_IWOTH))
            problem(d,
                    "%s/%s is readable by every user (mode %04o): anyone "
                    "can hold the certificate's lock and stop its "
                    "refreshes; fix: chmod o-rw %s/*.lock %s/*.state",
                    pol->store_dir, e->d_name, (unsigned)(sb.st_mode & 07777),
                    pol->store_dir, pol->store_dir);
    }
    closedir(dir);
}

static void check_usage(FILE *out)
{
    fprintf(out,
            "usage: ocspstaple check [--conf FILE] [--user NAME]... "
            "[--program NAME]\n"
            "  Report every problem of the ocspstaple section of an "
            "openssl.cnf (default:\n"
            "  $OPENSSL_CONF, else OpenSSL's default file): its keys, the "
            "provider order,\n"
            "  whether the module loads, and (as root) whether the users of "
            "the installed\n"
            "  servers it acts in (or each --user NAME) can write "
            "store_dir.\n"
            "  --program NAME: whether it acts in program NAME, its "
            "settings there, and\n"
            "  those of every certificate NAME's running processes use.\n"
            "  Exit status: 0 OK, 1 problems.\n");
}

int cli_check(int argc, char **argv)
{
    static const struct option opts[] = {
        { "conf", required_argument, NULL, 'c' },
        { "user", required_argument, NULL, 'u' },
        { "program", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct cli_diag d = { "ocspstaple check: ", 0 };
    struct stp_conf *c = NULL;
    struct stp_policy *pol = NULL;
    char *file = NULL, *users[16];
    const char *program = NULL;
    int ch, nusers = 0, warnings = 0;

    while ((ch = getopt_long(argc, argv, "c:u:p:h", opts, NULL)) != -1) {
        if (ch == 'u' && nusers < 16) {
            users[nusers++] = optarg;
            continue;
        }
        if (ch == 'p') {
            program = optarg;
            continue;
        }
        if (ch != 'c') {
            OPENSSL_free(file);
            if (ch == 'h')
                check_usage(stdout);
            return ch == 'h' ? CLI_EXIT_GOOD : CLI_EXIT_USAGE;
        }
        OPENSSL_free(file);
        file = OPENSSL_strdup(optarg);
    }
    if (file == NULL)
        file = stp_conf_default_file();
    if (file == NULL || !stp_conf_load(file, &c, cli_diag_print, &d)) {
        OPENSSL_free(file);
        return CLI_EXIT_ERROR;
    }
    check_order(c, &d);
    check_module(c, &d);
    pol = cli_parse_conf(c, &d);
    if (pol != NULL) {
        warnings += check_programs(pol);
        check_files(pol, &d);
        check_users(pol, users, nusers, &d);
        check_store_safety(pol, &d);
        warnings += check_fleet(pol, &d);
        stp_policy_inert_keys(pol, cli_diag_print, &d);
        if (program != NULL)
            print_program(pol, program);
    }
    if (d.problems == 0)
        printf("%s: [%s] OK%s: %zu keys, mode %s, store_dir %s, %zu "
               "per-certificate override(s)\n",
               file, c->self->section,
               warnings > 0 ? " (with the warning above)" : "", c->nkv,
               stp_mode_name(pol->defaults.mode), pol->store_dir, pol->ncerts);
    else
        fprintf(stderr, "%s: %d problem(s)\n", file, d.problems);
    stp_policy_free(pol);
    stp_conf_free(c);
    OPENSSL_free(file);
    return d.problems == 0 ? 0 : CLI_EXIT_ERROR;
}
