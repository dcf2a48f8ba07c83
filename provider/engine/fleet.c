/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fleet tier's Redis client (see fleet.h), on hiredis's blocking API:
 * one connection per operation at a time, taken from a small pool, each
 * with send and receive timeouts of fleet_timeout.
 */
#include "engine/fleet.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "engine/clock.h"
#include "engine/log.h"
#include "engine/policy_value.h"

#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS   30000
#define AUTH_MAX         512 /* bytes of fleet_auth_file */

/* Compare and delete, in one step on the server: a lease that expired and
 * was taken by another host is not released by its first holder. */
static const char release_lua[] =
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('del', KEYS[1]) else return 0 end";

struct conn {
    redisContext *rc;
    struct conn *next;
    int probe; /* made while the fleet was down: its verdict ends the probe */
};

struct stp_fleet {
    char *url;
    struct stp_pv_redis addr;
    char *prefix;
    char host[65];
    char *user; /* NULL: the default user */
    char *pass; /* NULL: no AUTH */
    struct timeval tv;
    long timeout_ms;

    pthread_mutex_t lock; /* the fields below */
    struct conn *idle;
    int retired;           /* stp_fleet_retire(): pool nothing */
    int down;              /* an outage was logged; not yet its end */
    long long retry_at_ms; /* while down: no attempt before */
    /* while down, a thread is trying a connection: the others wait for its
     * verdict (.probed) rather than give up the fleet for this refresh */
    int probing;
    pthread_cond_t probed;
    long backoff_ms;
    char why[256]; /* the outage's cause, as logged */
};

/* Wipes and frees a secret. */
static void free_secret(char *s)
{
    if (s != NULL)
        OPENSSL_clear_free(s, strlen(s) + 1);
}

/* Closes and frees every connection of the list <c> (a close(2) each:
 * nothing is sent). */
static void close_all(struct conn *c)
{
    struct conn *next;

    for (; c != NULL; c = next) {
        next = c->next;
        redisFree(c->rc);
        OPENSSL_free(c);
    }
}

/* "PASSWORD" or "USER PASSWORD" from <path> into f->user and f->pass. */
static int read_auth(struct stp_fleet *f, const char *path, struct stp_err *err)
{
    char buf[AUTH_MAX + 1], *line, *sp;
    struct stat st;
    ssize_t n;
    size_t len;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

    if (fd < 0)
        return stp_err_set(err, STP_E_FLEET, errno,
                           "fleet_auth_file %s: cannot be read: %s", path,
                           strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return stp_err_set(err, STP_E_FLEET, 0,
                           "fleet_auth_file %s: not a regular file", path);
    }
    if ((st.st_mode & 027) != 0) {
        close(fd);
        return stp_err_set(err, STP_E_FLEET, 0,
                           "fleet_auth_file %s: mode %04o lets others read "
                           "it or its group write it: refused (chmod 600 "
                           "or 640)",
                           path, (unsigned)(st.st_mode & 07777));
    }
    n = read(fd, buf, AUTH_MAX + 1);
    close(fd);
    if (n < 0 || n > AUTH_MAX) {
        OPENSSL_cleanse(buf, sizeof(buf));
        return stp_err_set(err, STP_E_FLEET, n < 0 ? errno : 0,
                           "fleet_auth_file %s: %s", path,
                           n < 0 ? strerror(errno) : "larger than 512 bytes");
    }
    buf[n] = '\0';
    line = buf + strspn(buf, " \t");
    len = strcspn(line, "\r\n");
    line[len] = '\0';
    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
        line[--len] = '\0';
    if (len == 0) {
        OPENSSL_cleanse(buf, sizeof(buf));
        return stp_err_set(err, STP_E_FLEET, 0,
                           "fleet_auth_file %s: empty (accepted: one line, "
                           "PASSWORD or USER PASSWORD)",
                           path);
    }
    sp = strpbrk(line, " \t");
    if (sp != NULL) {
        *sp = '\0';
        f->user = OPENSSL_strdup(line);
        line = sp + 1 + strspn(sp + 1, " \t");
    }
    f->pass = OPENSSL_strdup(line);
    OPENSSL_cleanse(buf, sizeof(buf));
    if (f->pass == NULL || (sp != NULL && f->user == NULL))
        return stp_err_set(err, STP_E_INTERNAL, 0, "out of memory");
    return 1;
}

struct stp_fleet *stp_fleet_new(const struct stp_policy *p, struct stp_err *err)
{
    struct stp_fleet *f = OPENSSL_zalloc(sizeof(*f));

    stp_err_clear(err);
    if (f == NULL) {
        stp_err_set(err, STP_E_INTERNAL, 0, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&f->lock, NULL);
    stp_cond_init_monotonic(&f->probed);
    f->timeout_ms = p->fleet_timeout_ms;
    f->tv.tv_sec = p->fleet_timeout_ms / 1000;
    f->tv.tv_usec = (p->fleet_timeout_ms % 1000) * 1000;
    if (p->fleet_url == NULL || !stp_pv_redis_url(p->fleet_url, &f->addr)) {
        stp_err_set(err, STP_E_FLEET, 0, "fleet_url '%s' is not usable",
                    p->fleet_url != NULL ? p->fleet_url : "");
        goto fail;
    }
    f->url = OPENSSL_strdup(p->fleet_url);
    f->prefix = OPENSSL_strdup(p->fleet_prefix != NULL ? p->fleet_prefix
                                                       : "ocspstaple:");
    if (f->url == NULL || f->prefix == NULL) {
        stp_err_set(err, STP_E_INTERNAL, 0, "out of memory");
        goto fail;
    }
    if (p->fleet_host != NULL)
        snprintf(f->host, sizeof(f->host), "%s", p->fleet_host);
    else if (gethostname(f->host, sizeof(f->host) - 1) != 0)
        snprintf(f->host, sizeof(f->host), "?");
    if (p->fleet_auth_file != NULL && !read_auth(f, p->fleet_auth_file, err))
        goto fail;
    return f;
fail:
    stp_fleet_free(f);
    return NULL;
}

void stp_fleet_free(struct stp_fleet *f)
{
    if (f == NULL)
        return;
    close_all(f->idle);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->probed);
    OPENSSL_free(f->url);
    OPENSSL_free(f->prefix);
    free_secret(f->user);
    free_secret(f->pass);
    OPENSSL_free(f);
}

static int same_str(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

int stp_fleet_same_conf(const struct stp_policy *a, const struct stp_policy *b)
{
    return same_str(a->fleet_url, b->fleet_url)
           && same_str(a->fleet_auth_file, b->fleet_auth_file)
           && same_str(a->fleet_prefix, b->fleet_prefix)
           && same_str(a->fleet_host, b->fleet_host)
           && a->fleet_timeout_ms == b->fleet_timeout_ms;
}

void stp_fleet_retire(struct stp_fleet *f)
{
    struct conn *c;

    if (f == NULL)
        return;
    pthread_mutex_lock(&f->lock);
    f->retired = 1;
    c = f->idle;
    f->idle = NULL;
    pthread_mutex_unlock(&f->lock);
    close_all(c);
}

const char *stp_fleet_url(const struct stp_fleet *f)
{
    return f->url;
}

const char *stp_fleet_host(const struct stp_fleet *f)
{
    return f->host;
}

void stp_fleet_after_fork(struct stp_fleet *f)
{
    if (f == NULL)
        return;
    pthread_mutex_init(&f->lock, NULL);
    stp_cond_init_monotonic(&f->probed);
    f->probing = 0;
    close_all(f->idle);
    f->idle = NULL;
}

/* Under f->lock: the probe has its verdict; its waiters look again. */
static void end_probe_locked(struct stp_fleet *f)
{
    if (f->probing) {
        f->probing = 0;
        pthread_cond_broadcast(&f->probed);
    }
}

/* The probe has its verdict (f->lock not held). */
static void end_probe(struct stp_fleet *f)
{
    pthread_mutex_lock(&f->lock);
    end_probe_locked(f);
    pthread_mutex_unlock(&f->lock);
}

/* Under f->lock: the fleet works again (said once). */
static void up_locked(struct stp_fleet *f)
{
    if (f->down)
        STP_LOG_INFO("fleet",
                     "%s reachable again: responses are shared with the "
                     "fleet again",
                     f->url);
    f->down = 0;
    f->backoff_ms = 0;
    f->why[0] = '\0';
}

/* The fleet cannot be used now because of <why> (said once per outage):
 * no attempt before the backoff has passed. */
static void went_down(struct stp_fleet *f, const char *why)
{
    struct conn *stale;

    pthread_mutex_lock(&f->lock);
    /* the idle connections were made to the same server: after one failed,
     * none is trusted (each would fail in turn, one backoff period each) */
    stale = f->idle;
    f->idle = NULL;
    f->backoff_ms = f->backoff_ms == 0                    ? BACKOFF_FIRST_MS
                    : f->backoff_ms >= BACKOFF_MAX_MS / 2 ? BACKOFF_MAX_MS
                                                          : f->backoff_ms * 2;
    f->retry_at_ms = stp_monotonic_ms() + f->backoff_ms;
    if (!f->down)
        STP_LOG_WARN("fleet",
                     "%s %s (%s): each host fetches for itself until it is "
                     "back (next try in %lds, then with backoff)",
                     f->url,
                     strstr(why, " refused: ") != NULL ? "refuses this host"
                                                       : "unreachable",
                     why, f->backoff_ms / 1000);
    /* later failures of the same outage are not said (their cause may
     * change from try to try): `ocspstaple check` tells the current one */
    f->down = 1;
    snprintf(f->why, sizeof(f->why), "%s", why);
    end_probe_locked(f); /* the verdict: down */
    pthread_mutex_unlock(&f->lock);
    close_all(stale);
}

/* An error reply that means this client may not use the server. */
static int access_error(const redisReply *r)
{
    static const char *const codes[] = { "NOAUTH",   "WRONGPASS",
                                         "NOPERM",   "ERR invalid password",
                                         "ERR AUTH", "ERR Client sent AUTH" };
    size_t i;

    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        if (strncmp(r->str, codes[i], strlen(codes[i])) == 0)
            return 1;
    }
    return 0;
}

/* What a failed exchange on <rc> says, into <why>: a timeout (hiredis
 * reports the socket's EAGAIN) as such. */
static void io_why(const redisContext *rc, long timeout_ms, const char *what,
                   char *why, size_t len)
{
    if (rc->err == REDIS_ERR_IO
        && strstr(rc->errstr, "temporarily unavailable") != NULL)
        snprintf(why, len, "%sno answer within fleet_timeout (%ld ms)", what,
                 timeout_ms);
    else
        snprintf(why, len, "%s%s", what,
                 rc->errstr[0] ? rc->errstr : "I/O error");
}

/* A command on <rc> whose reply must not be an error; with <why> (of
 * <len> bytes) when it is, or when the exchange failed. */
static redisReply *command_ok(const struct stp_fleet *f, redisContext *rc,
                              int argc, const char **argv, const size_t *lens,
                              char *why, size_t len)
{
    redisReply *r = redisCommandArgv(rc, argc, argv, lens);

    if (r == NULL) {
        io_why(rc, f->timeout_ms, "", why, len);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, len, "%s refused: %.160s", argv[0], r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* A new connection, authenticated and on the right database; NULL with
 * <why> otherwise. */
static redisContext *connect_new(struct stp_fleet *f, char *why, size_t len)
{
    redisContext *rc =
        redisConnectWithTimeout(f->addr.host, f->addr.port, f->tv);
    redisReply *r;
    char db[8];

    if (rc == NULL) {
        snprintf(why, len, "out of memory");
        return NULL;
    }
    if (rc->err) {
        io_why(rc, f->timeout_ms, "connect: ", why, len);
        redisFree(rc);
        return NULL;
    }
    (void)fcntl(rc->fd, F_SETFD, FD_CLOEXEC); /* never into an exec()ed one */
    if (redisSetTimeout(rc, f->tv) != REDIS_OK) {
        snprintf(why, len, "cannot set a timeout: %s", rc->errstr);
        redisFree(rc);
        return NULL;
    }
    if (f->pass != NULL) {
        const char *argv[3] = { "AUTH", f->user != NULL ? f->user : f->pass,
                                f->pass };

        /* the reply's text may be shown; the secret never is */
        r = command_ok(f, rc, f->user != NULL ? 3 : 2, argv, NULL, why, len);
        if (r == NULL) {
            redisFree(rc);
            return NULL;
        }
        freeReplyObject(r);
    }
    if (f->addr.db != 0) {
        const char *argv[2] = { "SELECT", db };

        snprintf(db, sizeof(db), "%d", f->addr.db);
        r = command_ok(f, rc, 2, argv, NULL, why, len);
        if (r == NULL) {
            redisFree(rc);
            return NULL;
        }
        freeReplyObject(r);
    }
    return rc;
}

/* A connection for one operation: an idle one, else a new one. NULL when
 * the fleet is down and its backoff has not passed, or the connection
 * cannot be made (then the fleet is down). */
static struct conn *take(struct stp_fleet *f)
{
    struct conn *c;
    char why[256];
    int probe;

    pthread_mutex_lock(&f->lock);
    if (f->down && f->probing) {
        /* another thread is trying: its verdict, within the connection's
         * and one command's timeouts */
        long long until = stp_monotonic_ms() + 2 * f->timeout_ms + 100;
        struct timespec ts;

        stp_monotonic_ts(until, &ts);
        while (f->down && f->probing && stp_monotonic_ms() < until)
            pthread_cond_timedwait(&f->probed, &f->lock, &ts);
    }
    if (f->down && (f->probing || stp_monotonic_ms() < f->retry_at_ms)) {
        pthread_mutex_unlock(&f->lock);
        return NULL;
    }
    if ((c = f->idle) != NULL) {
        f->idle = c->next;
        c->next = NULL; /* in use: in no list */
        pthread_mutex_unlock(&f->lock);
        return c;
    }
    probe = f->down; /* this thread tries; the others wait for its verdict */
    if (probe) {
        f->retry_at_ms = stp_monotonic_ms() + f->backoff_ms;
        f->probing = 1;
    }
    pthread_mutex_unlock(&f->lock);
    c = OPENSSL_zalloc(sizeof(*c));
    if (c == NULL) {
        if (probe)
            end_probe(f);
        return NULL;
    }
    c->probe = probe;
    c->rc = connect_new(f, why, sizeof(why));
    if (c->rc == NULL) {
        OPENSSL_free(c);
        went_down(f, why);
        return NULL;
    }
    return c;
}

/* Gives <c> back after an operation that worked. */
static void give(struct stp_fleet *f, struct conn *c)
{
    pthread_mutex_lock(&f->lock);
    up_locked(f);
    if (c->probe)
        end_probe_locked(f);
    c->probe = 0;
    if (!f->retired) {
        c->next = f->idle;
        f->idle = c;
        c = NULL;
    }
    pthread_mutex_unlock(&f->lock);
    if (c != NULL)
        close_all(c); /* retired: not pooled */
}

/* Drops <c> after an operation that failed with <why>: an access error or
 * a broken exchange make the fleet down; another error reply does not. */
static void drop(struct stp_fleet *f, struct conn *c, const char *why,
                 int fatal)
{
    int probe = c->probe;

    close_all(c);
    if (fatal) {
        went_down(f, why); /* ends the probe: down */
        return;
    }
    STP_LOG_DEBUG("fleet", "%s: %s", f->url, why);
    if (probe) /* it answered: no verdict on the fleet, the probe ends */
        end_probe(f);
}

/*
 * Sends <n> commands in one round trip and reads their <n> replies into
 * <out>. Returns 1 when every reply came and none is an error; otherwise 0,
 * with the connection dropped and (for an exchange failure or an access
 * error) the fleet down.
 */
static int pipeline(struct stp_fleet *f, struct conn *c, int n, const int *argc,
                    const char *const *argv[], const size_t *const lens[],
                    redisReply **out)
{
    char why[256] = "";
    int i, fatal = 0, ok = 1;

    for (i = 0; i < n; i++)
        out[i] = NULL;
    for (i = 0; i < n; i++) {
        if (redisAppendCommandArgv(c->rc, argc[i], (const char **)argv[i],
                                   lens[i])
            != REDIS_OK) {
            snprintf(why, sizeof(why), "out of memory");
            drop(f, c, why, 1);
            return 0;
        }
    }
    for (i = 0; i < n; i++) {
        void *r = NULL;

        if (redisGetReply(c->rc, &r) != REDIS_OK || r == NULL) {
            io_why(c->rc, f->timeout_ms, "", why, sizeof(why));
            fatal = 1;
            ok = 0;
            break;
        }
        out[i] = r;
        if (out[i]->type == REDIS_REPLY_ERROR && ok) {
            snprintf(why, sizeof(why), "%s refused: %.160s", argv[i][0],
                     out[i]->str);
            fatal = access_error(out[i]);
            ok = 0;
        }
    }
    if (ok) {
        give(f, c);
        return 1;
    }
    for (i = 0; i < n; i++) {
        if (out[i] != NULL)
            freeReplyObject(out[i]);
        out[i] = NULL;
    }
    drop(f, c, why, fatal);
    return 0;
}

/* <f>'s key <kind>:<id> into <buf>. */
static const char *key_of(const struct stp_fleet *f, const char *kind,
                          const char *id, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s:%s", f->prefix, kind, id);
    return buf;
}

static void meta_of(const redisReply *r, struct stp_fleet_meta *m)
{
    memset(m, 0, sizeof(*m));
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        return;
    if (r->element[0]->type == REDIS_REPLY_STRING)
        snprintf(m->host, sizeof(m->host), "%.*s",
                 (int)(r->element[0]->len < 64 ? r->element[0]->len : 64),
                 r->element[0]->str);
    if (r->element[1]->type == REDIS_REPLY_STRING)
        m->pid = strtol(r->element[1]->str, NULL, 10);
    if (r->element[2]->type == REDIS_REPLY_STRING)
        m->at = (time_t)strtoll(r->element[2]->str, NULL, 10);
}

int stp_fleet_get(struct stp_fleet *f, const char *id, size_t max,
                  unsigned char **der, size_t *len, struct stp_fleet_meta *meta)
{
    char kr[256], km[256];
    const char *get[] = { "GET", key_of(f, "resp", id, kr, sizeof(kr)) };
    const char *hm[] = { "HMGET", key_of(f, "meta", id, km, sizeof(km)), "host",
                         "pid", "at" };
    const char *const *argv[] = { get, hm };
    const size_t *const lens[] = { NULL, NULL };
    const int argc[] = { 2, 5 };
    redisReply *r[2];
    struct conn *c;
    int n = meta != NULL ? 2 : 1, res = 0;

    *der = NULL;
    *len = 0;
    if ((c = take(f)) == NULL || !pipeline(f, c, n, argc, argv, lens, r))
        return -1;
    if (r[0]->type == REDIS_REPLY_STRING && r[0]->len > max) {
        STP_LOG_WARN("fleet",
                     "%s: %s holds %zu bytes, more than max_response_size: "
                     "refused",
                     f->url, kr, (size_t)r[0]->len);
    } else if (r[0]->type == REDIS_REPLY_STRING && r[0]->len > 0) {
        *der = OPENSSL_memdup(r[0]->str, r[0]->len);
        if (*der != NULL) {
            *len = r[0]->len;
            res = 1;
        }
    }
    if (meta != NULL)
        meta_of(r[1], meta);
    freeReplyObject(r[0]);
    if (n > 1)
        freeReplyObject(r[1]);
    return res;
}

int stp_fleet_lease(struct stp_fleet *f, const char *id, long ttl_ms,
                    char token[STP_FLEET_TOKEN_LEN])
{
    unsigned char raw[16];
    char kl[256], px[24];
    const char *set[] = { "SET", key_of(f, "lease", id, kl, sizeof(kl)),
                          token, "NX",
                          "PX",  px };
    const char *const *argv[] = { set };
    const size_t *const lens[] = { NULL };
    const int argc[] = { 6 };
    redisReply *r;
    struct conn *c;
    int i, res;

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    for (i = 0; i < 16; i++)
        snprintf(token + 2 * i, 3, "%02x", raw[i]);
    snprintf(px, sizeof(px), "%ld", ttl_ms > 0 ? ttl_ms : 1);
    if ((c = take(f)) == NULL || !pipeline(f, c, 1, argc, argv, lens, &r))
        return -1;
    res = r->type == REDIS_REPLY_STATUS ? 1 : 0; /* "OK", else nil */
    freeReplyObject(r);
    return res;
}

void stp_fleet_release(struct stp_fleet *f, const char *id,
                       const char token[STP_FLEET_TOKEN_LEN])
{
    char kl[256];
    const char *eval[] = { "EVAL", release_lua, "1",
                           key_of(f, "lease", id, kl, sizeof(kl)), token };
    const char *const *argv[] = { eval };
    const size_t *const lens[] = { NULL };
    const int argc[] = { 5 };
    redisReply *r;
    struct conn *c;

    if ((c = take(f)) != NULL && pipeline(f, c, 1, argc, argv, lens, &r))
        freeReplyObject(r);
}

int stp_fleet_publish(struct stp_fleet *f, const char *id,
                      const unsigned char *der, size_t len, long long ttl_ms,
                      time_t now)
{
    char kr[256], km[256], px[24], pid[24], at[24];
    const char *set[] = { "SET", key_of(f, "resp", id, kr, sizeof(kr)),
                          (const char *)der, "PX", px };
    const size_t set_lens[] = { 3, strlen(kr), len, 2, 0 };
    const char *hset[] = { "HSET", key_of(f, "meta", id, km, sizeof(km)),
                           "host", f->host,
                           "pid",  pid,
                           "at",   at };
    const char *exp[] = { "PEXPIRE", km, px };
    const char *const *argv[] = { set, hset, exp };
    const size_t *lens[] = { NULL, NULL, NULL };
    const int argc[] = { 5, 8, 3 };
    size_t sl[5];
    redisReply *r[3];
    struct conn *c;
    int i;

    snprintf(px, sizeof(px), "%lld", ttl_ms > 0 ? ttl_ms : 1);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    snprintf(at, sizeof(at), "%lld", (long long)now);
    memcpy(sl, set_lens, sizeof(sl));
    sl[4] = strlen(px);
    lens[0] = sl;
    if ((c = take(f)) == NULL || !pipeline(f, c, 3, argc, argv, lens, r))
        return -1;
    for (i = 0; i < 3; i++)
        freeReplyObject(r[i]);
    return 1;
}

int stp_fleet_ping(struct stp_fleet *f, struct stp_err *err)
{
    const char *ping[] = { "PING" };
    const char *const *argv[] = { ping };
    const size_t *const lens[] = { NULL };
    const int argc[] = { 1 };
    redisReply *r;
    struct conn *c;

    stp_err_clear(err);
    if ((c = take(f)) == NULL || !pipeline(f, c, 1, argc, argv, lens, &r)) {
        pthread_mutex_lock(&f->lock);
        stp_err_set(err, STP_E_FLEET, strstr(f->why, " refused: ") != NULL,
                    "%s: %s", f->url, f->why[0] ? f->why : "PING failed");
        pthread_mutex_unlock(&f->lock);
        return -1;
    }
    freeReplyObject(r);
    return 1;
}

int stp_fleet_describe(struct stp_fleet *f, const char *id,
                       struct stp_fleet_meta *meta, long long *ttl_ms,
                       struct stp_err *err)
{
    char kr[256], km[256];
    const char *pttl[] = { "PTTL", key_of(f, "resp", id, kr, sizeof(kr)) };
    const char *hm[] = { "HMGET", key_of(f, "meta", id, km, sizeof(km)), "host",
                         "pid", "at" };
    const char *const *argv[] = { pttl, hm };
    const size_t *const lens[] = { NULL, NULL };
    const int argc[] = { 2, 5 };
    redisReply *r[2];
    struct conn *c;

    stp_err_clear(err);
    if ((c = take(f)) == NULL || !pipeline(f, c, 2, argc, argv, lens, r)) {
        pthread_mutex_lock(&f->lock);
        stp_err_set(err, STP_E_FLEET, 0, "%s: %s", f->url,
                    f->why[0] ? f->why : "a command failed");
        pthread_mutex_unlock(&f->lock);
        return -1;
    }
    *ttl_ms = r[0]->type == REDIS_REPLY_INTEGER ? r[0]->integer : -2;
    meta_of(r[1], meta);
    freeReplyObject(r[0]);
    freeReplyObject(r[1]);
    return 1;
}
