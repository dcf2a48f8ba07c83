/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `ocspstaple check`: lints the ocspstaple section of an openssl.cnf the way
 * the provider will read it, plus what only the host can tell (provider
 * order, module file, store directory, files named by keys).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"
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

static void check_module(const struct stp_conf *c, struct cli_diag *d)
{
    if (!c->self->activate)
        problem(d, "%s: provider %s has no 'activate = 1': it will not load",
                c->file, c->self->name);
    if (c->self->module != NULL && c->self->module[0] == '/'
        && access(c->self->module, R_OK) != 0)
        problem(d, "%s: module '%s': %s", c->file, c->self->module,
                strerror(errno));
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
            "usage: ocspstaple check [--conf FILE]\n"
            "  Report every problem of the ocspstaple section of an "
            "openssl.cnf (default:\n"
            "  $OPENSSL_CONF, else OpenSSL's default file). Exit status: 0 "
            "OK, 1 problems.\n");
}

int cli_check(int argc, char **argv)
{
    static const struct option opts[] = {
        { "conf", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct cli_diag d = { "ocspstaple check: ", 0 };
    struct stp_conf *c = NULL;
    struct stp_policy *pol = NULL;
    char *file = NULL;
    int ch;

    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
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
        check_files(pol, &d);
        check_store_safety(pol, &d);
        stp_policy_inert_keys(pol, cli_diag_print, &d);
    }
    if (d.problems == 0)
        printf("%s: [%s] OK: %zu keys, mode %s, store_dir %s, %zu "
               "per-certificate override(s)\n",
               file, c->self->section, c->nkv,
               stp_mode_name(pol->defaults.mode), pol->store_dir, pol->ncerts);
    else
        fprintf(stderr, "%s: %d problem(s)\n", file, d.problems);
    stp_policy_free(pol);
    stp_conf_free(c);
    OPENSSL_free(file);
    return d.problems == 0 ? 0 : CLI_EXIT_ERROR;
}
