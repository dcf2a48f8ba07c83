/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Store directory (engine/store.h): atomic replace, caps, refusal of
 * symlinks and FIFOs, the chain file, the per-certificate lock across
 * processes, sidecar state and listing, the host's fetch slots, the lists
 * of what each process uses and whether a process is alive.
 */
#include "engine/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "stp_test.h"
#include "test_pki.h"

static const char ID1[] =
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
static const char ID2[] =
    "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

static const char ID3[] =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static char dir[256];

static void path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

static void test_rw(struct stp_store *st)
{
    unsigned char *data = NULL;
    size_t len = 0;
    struct stp_err err;

    ASSERT_EQ(stp_store_read_response(st, ID1, 100, &data, &len, &err), 0);
    ASSERT_EQ(err.detail, ENOENT);
    ASSERT_OK(stp_store_write_response(st, ID1, (const unsigned char *)"abc", 3,
                                       &err));
    ASSERT_OK(stp_store_read_response(st, ID1, 100, &data, &len, &err));
    ASSERT_EQ(len, 3);
    ASSERT_TRUE(memcmp(data, "abc", 3) == 0);
    OPENSSL_free(data);
    /* replace */
    ASSERT_OK(stp_store_write_response(st, ID1, (const unsigned char *)"defgh",
                                       5, &err));
    ASSERT_OK(stp_store_read_response(st, ID1, 100, &data, &len, &err));
    ASSERT_EQ(len, 5);
    OPENSSL_free(data);
    /* the cap */
    ASSERT_EQ(stp_store_read_response(st, ID1, 4, &data, &len, &err), 0);
    ASSERT_EQ(err.code, STP_E_TOO_LARGE);
    /* ids that are not 64 hex digits never reach the file system */
    ASSERT_EQ(
        stp_store_read_response(st, "../../etc/passwd", 100, &data, &len, &err),
        0);
    ASSERT_EQ(stp_store_write_response(st, "ABC", (const unsigned char *)"x", 1,
                                       &err),
              0);
}

static void test_hostile(struct stp_store *st)
{
    char p[512], q[512];
    unsigned char *data = NULL;
    size_t len = 0;
    struct stp_err err;
    struct stat sb;

    /* a symlink at the target name is never followed on read ... */
    path_of(p, sizeof(p), "victim");
    path_of(q, sizeof(q), ID2);
    strcat(q, ".der");
    ASSERT_EQ(symlink(p, q), 0);
    ASSERT_EQ(stp_store_read_response(st, ID2, 100, &data, &len, &err), 0);
    ASSERT_EQ(err.code, STP_E_STORE);
    /* ... and replaced, not written through, on write */
    ASSERT_OK(stp_store_write_response(st, ID2, (const unsigned char *)"new", 3,
                                       &err));
    ASSERT_EQ(lstat(q, &sb), 0);
    ASSERT_TRUE(S_ISREG(sb.st_mode));
    ASSERT_EQ(stat(p, &sb), -1);
    /* a FIFO must not block the reader */
    path_of(q, sizeof(q), ID3);
    strcat(q, ".der");
    ASSERT_EQ(mkfifo(q, 0600), 0);
    ASSERT_EQ(stp_store_read_response(st, ID3, 100, &data, &len, &err), 0);
    ASSERT_CONTAINS(err.msg, "not a regular file");
    unlink(q);
}

/* The chain file: written as PEM, read back as a stack; garbage refused. */
static void test_chain(struct stp_store *st)
{
    struct tp_pki pki;
    STACK_OF(X509) *chain;
    struct stp_err err;
    char p[512];
    FILE *f;

    ASSERT_OK(tp_pki_new(&pki));
    ASSERT_NULL(stp_store_read_chain(st, ID1, &err));
    ASSERT_EQ(err.detail, ENOENT);
    ASSERT_OK(stp_store_write_chain(st, ID1, pki.leaf.cert, pki.ca.cert, &err));
    chain = stp_store_read_chain(st, ID1, &err);
    ASSERT_NOT_NULL(chain);
    ASSERT_EQ(sk_X509_num(chain), 2);
    ASSERT_EQ(X509_cmp(sk_X509_value(chain, 0), pki.leaf.cert), 0);
    ASSERT_EQ(X509_cmp(sk_X509_value(chain, 1), pki.ca.cert), 0);
    sk_X509_pop_free(chain, X509_free);
    /* not PEM */
    path_of(p, sizeof(p), ID1);
    strcat(p, ".pem");
    f = fopen(p, "w");
    ASSERT_NOT_NULL(f);
    fputs("garbage\n", f);
    fclose(f);
    ASSERT_NULL(stp_store_read_chain(st, ID1, &err));
    ASSERT_CONTAINS(err.msg, "no certificate");
    tp_pki_free(&pki);
}

static void test_lock(struct stp_store *st)
{
    struct stp_err err;
    int fd = stp_store_lock(st, ID1, 0, &err), status = 0;
    pid_t pid;

    ASSERT_TRUE(fd >= 0);
    pid = fork();
    if (pid == 0) {
        struct stp_store *st2 = NULL;
        int fd2;

        if (!stp_store_open(dir, 0, &st2, &err))
            _exit(3);
        fd2 = stp_store_lock(st2, ID1, 100, &err);
        _exit(fd2 < 0 && err.code == STP_E_BUSY ? 0 : 1);
    }
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    stp_store_unlock(fd);
    fd = stp_store_lock(st, ID1, 0, &err);
    ASSERT_TRUE(fd >= 0);
    stp_store_unlock(fd);
}

static void count_id(void *arg, const char *id)
{
    (void)id;
    (*(int *)arg)++;
}

static void test_state(struct stp_store *st)
{
    struct stp_state s, r;
    struct stp_err err;
    int n = 0;

    memset(&s, 0, sizeof(s));
    s.last_attempt = 1800000000;
    s.last_success = 1799990000;
    s.failures = 3;
    snprintf(s.last_error, sizeof(s.last_error), "http: line\nbreak");
    snprintf(s.url, sizeof(s.url), "http://127.0.0.1:1/");
    ASSERT_EQ(stp_store_read_state(st, ID1, &r), 0);
    ASSERT_OK(stp_store_write_state(st, ID1, &s, &err));
    ASSERT_OK(stp_store_read_state(st, ID1, &r));
    ASSERT_EQ(r.last_attempt, s.last_attempt);
    ASSERT_EQ(r.last_success, s.last_success);
    ASSERT_EQ(r.failures, 3);
    ASSERT_STREQ(r.last_error, "http: line break");
    ASSERT_STREQ(r.url, s.url);
    /* ID1 (der + state) and ID2 (der) */
    ASSERT_EQ(stp_store_list(st, count_id, &n, &err), 2);
    ASSERT_EQ(n, 2);
}

static void touch_temp(const char *id, const char *rest)
{
    char p[512], name[160];
    int fd;

    snprintf(name, sizeof(name), ".%s%s", id, rest);
    path_of(p, sizeof(p), name);
    fd = open(p, O_WRONLY | O_CREAT, 0644);
    ASSERT_TRUE(fd >= 0);
    close(fd);
}

static int temp_exists(const char *id, const char *rest)
{
    char p[512], name[160];
    struct stat sb;

    snprintf(name, sizeof(name), ".%s%s", id, rest);
    path_of(p, sizeof(p), name);
    return stat(p, &sb) == 0;
}

/* Temp files of dead writers go (whoever's lock is free), those of a live
 * writer (its lock held, even by another descriptor of this process) stay;
 * and the directory is scanned at the first lock of a handle only, not at
 * every lock. */
/* stp_store_list_metrics(): what each process's file held. */
struct seen {
    int n;
    char procs[4][48];
    char texts[4][128];
};

static void on_metrics(void *arg, const char *proc, const char *text,
                       time_t mtime)
{
    struct seen *s = arg;

    ASSERT_TRUE(mtime > 0);
    if (s->n < 4) {
        snprintf(s->procs[s->n], sizeof(s->procs[0]), "%s", proc);
        snprintf(s->texts[s->n], sizeof(s->texts[0]), "%s", text);
    }
    s->n++;
}

static void on_id_hex(void *arg, const char *id)
{
    (*(int *)arg)++;
    ASSERT_EQ(stp_store_id_valid(id), 1);
}

/* Per-process counters: written atomically, listed back, odd names and
 * the role of a state kept. */
static void test_metrics(struct stp_store *st)
{
    static const char *const bad[] = { "",      "12",     "-1",  "1-",
                                       "1-2-3", "1/../2", "a-1", NULL };
    struct stp_state s, r;
    struct seen seen = { 0 };
    struct stp_err err;
    int i;

    ASSERT_OK(
        stp_store_write_metrics(st, "123-456", "staples_served 7\n", &err));
    ASSERT_OK(
        stp_store_write_metrics(st, "123-456", "staples_served 9\n", &err));
    for (i = 0; bad[i] != NULL; i++)
        ASSERT_EQ(stp_store_write_metrics(st, bad[i], "x 1\n", &err), 0);
    ASSERT_EQ(stp_store_list_metrics(st, on_metrics, &seen, &err), 1);
    ASSERT_STREQ(seen.procs[0], "123-456");
    ASSERT_STREQ(seen.texts[0], "staples_served 9\n");
    /* a counters file is not a certificate of the store */
    i = 0;
    ASSERT_TRUE(stp_store_list(st, on_id_hex, &i, &err) >= 0);
    ASSERT_TRUE(i > 0);
    /* a state says whose answer it is */
    memset(&s, 0, sizeof(s));
    snprintf(s.role, sizeof(s.role), "client");
    ASSERT_OK(stp_store_write_state(st, ID2, &s, &err));
    ASSERT_OK(stp_store_read_state(st, ID2, &r));
    ASSERT_STREQ(r.role, "client");
    memset(&s, 0, sizeof(s));
    ASSERT_OK(stp_store_write_state(st, ID2, &s, &err));
    ASSERT_OK(stp_store_read_state(st, ID2, &r));
    ASSERT_STREQ(r.role, "");
}

static void test_clean_temps(void)
{
    struct stp_store *st = NULL;
    struct stp_err err;
    char id[65];
    int held, fd, i;

    ASSERT_OK(stp_store_open(dir, 0, &st, &err));
    held = stp_store_lock(st, ID2, 0, &err); /* a writer of ID2, alive */
    ASSERT_TRUE(held >= 0);
    ASSERT_EQ(stp_store_scans(st), 1); /* the first lock scanned */
    touch_temp(ID1, ".der.0badf00d.tmp");
    touch_temp(ID2, ".state.12345678.tmp");
    stp_store_clean_temps(st);
    ASSERT_EQ(temp_exists(ID1, ".der.0badf00d.tmp"), 0);
    ASSERT_EQ(temp_exists(ID2, ".state.12345678.tmp"), 1);
    stp_store_unlock(held);
    stp_store_clean_temps(st);
    ASSERT_EQ(temp_exists(ID2, ".state.12345678.tmp"), 0);
    /* a hundred locks later: still the one scan of the first lock */
    for (i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "%064x", i + 1);
        fd = stp_store_lock(st, id, 0, &err);
        ASSERT_TRUE(fd >= 0);
        stp_store_unlock(fd);
    }
    ASSERT_EQ(stp_store_scans(st), 3); /* the first lock's, and our two */
    stp_store_close(st);
}

/* A host's <cap> slots: held by one descriptor each, within a process as
 * between processes; another host's are its own; a closed one is free. */
static void test_slots(struct stp_store *st)
{
    const char *a = "http://ocsp.a.test:80", *b = "http://ocsp.b.test:80";
    int s1 = stp_store_slot_try(st, a, 2), s2 = stp_store_slot_try(st, a, 2);
    int status = 0, s3;
    pid_t pid;

    ASSERT_TRUE(s1 >= 0 && s2 >= 0);
    errno = 0;
    ASSERT_EQ(stp_store_slot_try(st, a, 2), -1);
    ASSERT_EQ(errno, EWOULDBLOCK);
    pid = fork();
    if (pid == 0)
        _exit(stp_store_slot_try(st, a, 2) == -1 && errno == EWOULDBLOCK
                      && stp_store_slot_try(st, b, 2) >= 0
                  ? 0
                  : 1);
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* a third slot of the same host, with a larger cap */
    s3 = stp_store_slot_try(st, a, 3);
    ASSERT_TRUE(s3 >= 0);
    stp_store_unlock(s3);
    stp_store_unlock(s1);
    s3 = stp_store_slot_try(st, a, 2);
    ASSERT_TRUE(s3 >= 0);
    stp_store_unlock(s3);
    stp_store_unlock(s2);
}

/* uses-<proc> files, and whether <proc> is alive (pid and start time). */
static void test_uses(struct stp_store *st)
{
    char self[64], other[64], text[128];
    struct stp_err err;
    struct seen seen = { 0 };

    snprintf(self, sizeof(self), "%ld-%llu", (long)getpid(),
             stp_proc_start_time(0));
    snprintf(other, sizeof(other), "%ld-%llu", (long)getpid(),
             stp_proc_start_time(0) + 1);
    ASSERT_TRUE(stp_proc_start_time(0) > 0);
    ASSERT_EQ(stp_proc_start_time(getpid()), stp_proc_start_time(0));
    ASSERT_TRUE(stp_store_proc_alive(self));
    ASSERT_EQ(stp_store_proc_alive(other), 0); /* a reused pid */
    ASSERT_EQ(stp_store_proc_alive("999999999-1"), 0);
    ASSERT_EQ(stp_store_proc_alive("x-1"), 0);
    snprintf(text, sizeof(text), "program t\n%s staple\n", ID1);
    ASSERT_OK(stp_store_write_uses(st, self, text, &err));
    ASSERT_EQ(stp_store_list_uses(st, on_metrics, &seen, &err), 1);
    ASSERT_STREQ(seen.procs[0], self);
    ASSERT_STREQ(seen.texts[0], text);
    ASSERT_OK(stp_store_remove_uses(st, self));
    ASSERT_OK(stp_store_remove_uses(st, self)); /* gone already: fine */
    ASSERT_EQ(stp_store_write_uses(st, "../x", "program t\n", &err), 0);
}

int main(void)
{
    struct stp_store *st = NULL;
    struct stp_err err;
    char sub[300];

    snprintf(dir, sizeof(dir), "/tmp/stp_store_test.XXXXXX");
    ASSERT_NOT_NULL(mkdtemp(dir));
    snprintf(sub, sizeof(sub), "%s/a/b", dir);
    ASSERT_EQ(stp_store_open(sub, 0, &st, &err), 0);
    ASSERT_CONTAINS(err.msg, sub);
    ASSERT_OK(stp_store_open(sub, 1, &st, &err));
    stp_store_close(st);
    ASSERT_OK(stp_store_open(dir, 0, &st, &err));
    test_rw(st);
    test_hostile(st);
    test_chain(st);
    test_lock(st);
    test_state(st);
    test_metrics(st);
    test_slots(st);
    test_uses(st);
    stp_store_close(st);
    test_clean_temps();
    {
        char cmd[400];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        ASSERT_EQ(system(cmd), 0);
    }
    STP_TEST_MAIN_END();
}
