/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `ocspstaple prune`: removes the store entries of certificates that no
 * server uses any more. A serving process refreshes each certificate it
 * holds at least every refresh_max, and every attempt writes the entry's
 * state; so an entry untouched for --older-than DAYS (default: 7, or three
 * times refresh_max if that is longer) is not used by any running server.
 * A server that starts with such a certificate later simply fetches it.
 * An entry a running process says it uses (its "uses-<proc>" file) is kept
 * whatever its age, and the lists of processes that are gone are removed.
 * Each entry is removed under its lock, never while a writer holds it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine/clock.h"

#define DAY_S (24L * 3600)

struct prune_ctx {
    struct stp_store *st;
    time_t cutoff;
    int dry_run;
    int kept, pruned, failed;
    struct cli_uses uses;
    int gone; /* lists of processes that are gone, removed */
};

/* stp_store_list_uses(): the list of a process that is gone goes. */
static void on_uses(void *arg, const char *proc, const char *text, time_t mtime)
{
    struct prune_ctx *c = arg;

    (void)text;
    (void)mtime;
    if (stp_store_proc_alive(proc))
        return;
    if (c->dry_run || stp_store_remove_uses(c->st, proc))
        c->gone++;
}

static void on_id(void *arg, const char *id)
{
    struct prune_ctx *c = arg;
    time_t t = stp_store_entry_time(c->st, id);
    struct stp_err err;
    size_t first;

    if (t >= c->cutoff || c->uses.failed
        || cli_uses_of(&c->uses, id, &first) > 0) {
        c->kept++;
        return;
    }
    if (c->dry_run) {
        printf("%s: would be pruned (last written %lld s ago)\n", id,
               (long long)(stp_now() - t));
        c->pruned++;
        return;
    }
    if (!stp_store_remove(c->st, id, &err)) {
        fprintf(stderr, "ocspstaple prune: %s: %s\n", id, err.msg);
        c->failed++;
        return;
    }
    printf("%s: pruned (last written %lld s ago)\n", id,
           (long long)(stp_now() - t));
    c->pruned++;
}

static void prune_usage(FILE *out)
{
    fprintf(out,
            "usage: ocspstaple prune [--store-dir DIR] [--conf FILE] "
            "[--older-than DAYS] [--dry-run]\n"
            "  Removes the entries of certificates no server uses any more: "
            "those not\n"
            "  written for DAYS (default 7, or 3 x refresh_max if longer) "
            "and used by\n"
            "  no running process (USED BY in status). --dry-run only lists "
            "them.\n"
            "  Exit status: 0, or 1 if an entry could not be removed.\n");
}

int cli_prune(int argc, char **argv)
{
    static const struct cli_store_spec spec = { "dry-run", 'n', prune_usage,
                                                "older-than", 'o' };
    struct cli_store_cmd cmd;
    struct prune_ctx c = { 0 };
    struct stp_err err;
    long days;
    int rc, n;

    if (!cli_store_cmd_open(&spec, argc, argv, &cmd, &rc))
        return rc;
    days = 3 * cmd.pol->refresh_max / DAY_S + 1;
    if (days < 7)
        days = 7;
    if (cmd.value != NULL) {
        char *end;

        errno = 0;
        days = strtol(cmd.value, &end, 10);
        if (errno != 0 || *end != '\0' || days < 1 || days > 3650) {
            fprintf(stderr,
                    "ocspstaple prune: --older-than '%s': expected a number "
                    "of days from 1 to 3650\n",
                    cmd.value);
            cli_store_cmd_close(&cmd);
            return CLI_EXIT_USAGE;
        }
    }
    c.st = cmd.st;
    c.dry_run = cmd.flag;
    c.cutoff = stp_now() - (time_t)days * DAY_S;
    cli_uses_load(cmd.st, &c.uses);
    if (c.uses.failed)
        fprintf(stderr, "ocspstaple prune: cannot read which processes use "
                        "the entries: keeping them all\n");
    else
        stp_store_list_uses(cmd.st, on_uses, &c, &err);
    n = stp_store_list(cmd.st, on_id, &c, &err);
    if (n < 0)
        fprintf(stderr, "ocspstaple prune: %s\n", err.msg);
    else
        printf("%d entr%s %s, %d kept (pruned: not written for %ld days, used "
               "by no running process)\n",
               c.pruned, c.pruned == 1 ? "y" : "ies",
               c.dry_run ? "to prune" : "pruned", c.kept, days);
    if (c.gone > 0)
        printf("%d list%s of processes that are gone %s\n", c.gone,
               c.gone == 1 ? "" : "s", c.dry_run ? "to remove" : "removed");
    cli_uses_free(&c.uses);
    cli_store_cmd_close(&cmd);
    return n < 0 || c.failed > 0 ? CLI_EXIT_ERROR : CLI_EXIT_GOOD;
}
