/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocsp_responder: a loopback-only HTTP front for the real `openssl ocsp`
 * responder, used by the integration tests. Each GET or POST request is
 * answered by running `openssl ocsp -index ... -reqin REQ -respout RESP`; a
 * mode file, re-read per connection (and every MODE_POLL_MS), switches to
 * fault behaviours (see modes[]). Its first line is "MODE [ARGUMENT]".
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ocsp.h>

#define MAX_CONNS        32
#define MAX_HEAD         16384 /* request line + headers */
#define MAX_BODY         65536 /* POST body */
#define MAX_IN           (MAX_HEAD + MAX_BODY)
#define MAX_RESP         (1024 * 1024)  /* openssl's DER response */
#define MAX_ARG          512            /* mode file argument */
#define MODE_LINE        (64 + MAX_ARG) /* mode file's first line */
#define CHILD_TIMEOUT_MS 10000          /* bound on one `openssl ocsp` run */
#define DRAIN_MS         1000 /* linger after the answer before close */
#define SLOW_GAP_MS      200  /* "slow" mode: one byte per gap */
#define MODE_POLL_MS     100  /* mode file re-read while idle ("refuse") */
#define HUGE_LEN         (10 * 1024 * 1024) /* "huge" mode body */
#define BIND_TRIES       20 /* kernel-chosen ports tried for --alt-addr */
#define NO_DEADLINE      INT64_MAX

#define CT_OCSP "application/ocsp-response"

enum cstate { C_FREE, C_READ, C_WRITE, C_HANG, C_DRAIN };

/* Listeners: the primary on 127.0.0.1, the optional --alt-addr one. */
enum { L_MAIN, L_ALT, NLISTEN };

struct config {
    char *index, *ca, *rsigner, *rkey, *mode_file, *replay_file;
    const char *dir, *port_file, *pid_file, *log_file, *openssl, *faketime;
    const char *validity_opt, *validity; /* "-ndays" / "-nmin", number */
    struct in_addr addr[NLISTEN];        /* addr[L_ALT].s_addr 0: none */
    long port, lifetime_s, timeout_s;
};

struct conn {
    int fd;
    int alt; /* accepted on the --alt-addr listener */
    enum cstate st;
    const struct mode *mode;
    char arg[MAX_ARG]; /* the mode file's argument when accepted */
    unsigned char *in;
    size_t inlen;
    unsigned char *out; /* owned: the head (and a small body) */
    size_t outlen, outoff;
    const unsigned char *tail; /* shared, sent after out ("huge") */
    size_t taillen;
    int64_t deadline;   /* state timeout, ms on the monotonic clock */
    int64_t next_write; /* "slow" mode: when the next byte is due */
};

/* A parsed HTTP request. status != 0: answer with that HTTP error. */
struct request {
    const char *method;
    const char *target; /* the request target (in conn.in), not terminated */
    size_t targetlen;
    unsigned char *der;
    size_t derlen;
    int status;
};

struct server {
    struct config cfg;
    int lfd[NLISTEN];  /* listening sockets, -1 when closed */
    int hold[NLISTEN]; /* bound, not listening: keeps the port ("refuse") */
    int listening;
    int logfd;
    char tmpdir[PATH_MAX - 32], reqpath[PATH_MAX], resppath[PATH_MAX];
    char emptyindex[PATH_MAX];
    unsigned long seq;
    int64_t end_ms, next_poll;
    char acked[MODE_LINE]; /* the mode line last acknowledged */
    int peak;              /* most answers in progress at once */
    unsigned char *huge;   /* "huge" mode body, built on first use */
    struct conn conns[MAX_CONNS];
};

struct mode;
/* Builds c->out (or sets another state); returns the HTTP status to log. */
typedef int (*respond_fn)(struct server *s, struct conn *c,
                          const struct mode *m, const struct request *rq);

#define MODE_AT_ACCEPT    0x1  /* acts on accept, before reading anything */
#define MODE_RESET        0x2  /* at accept: RST (SO_LINGER 0), not FIN */
#define MODE_REFUSE       0x4  /* listeners closed while the mode holds */
#define MODE_PRIMARY_ONLY 0x8  /* the --alt-addr listener answers "normal" */
#define MODE_LAG          0x10 /* the answer waits the argument's ms */

#define OCSP_NO_NEXT     0x1 /* no -ndays/-nmin: no nextUpdate */
#define OCSP_EMPTY_INDEX 0x2 /* an empty index: every status is unknown */
#define OCSP_HALF        0x4 /* send the first half of the DER only */

struct mode {
    const char *name;
    respond_fn respond;
    unsigned int flags;
    int status;                /* HTTP status of a fixed answer */
    const unsigned char *body; /* fixed answer body */
    size_t bodylen;
    int64_t write_gap_ms; /* > 0: trickle one byte per gap */
    /* respond_ocsp variants */
    const char *signer; /* DIR/<signer>.pem and .key sign, not --rsigner */
    const char *shift;  /* run openssl under `faketime -f <shift>` */
    unsigned int ocsp;  /* OCSP_* */
};

static volatile sig_atomic_t g_stop;
static int g_sigpipe[2] = { -1, -1 }; /* self-pipe: wakes poll() */

static int respond_ocsp(struct server *s, struct conn *c, const struct mode *m,
                        const struct request *rq);
static int respond_fixed(struct server *s, struct conn *c, const struct mode *m,
                         const struct request *rq);
static int respond_hang(struct server *s, struct conn *c, const struct mode *m,
                        const struct request *rq);
static int respond_replay(struct server *s, struct conn *c,
                          const struct mode *m, const struct request *rq);
static int respond_redirect(struct server *s, struct conn *c,
                            const struct mode *m, const struct request *rq);
static int respond_huge(struct server *s, struct conn *c, const struct mode *m,
                        const struct request *rq);

/* OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED } (RFC 6960 4.2.1) */
static const unsigned char der_malformed[] = { 0x30, 0x03, 0x0a, 0x01, 0x01 };
static const unsigned char der_internal[] = { 0x30, 0x03, 0x0a, 0x01, 0x02 };
static const unsigned char der_trylater[] = { 0x30, 0x03, 0x0a, 0x01, 0x03 };
static const unsigned char der_sigreq[] = { 0x30, 0x03, 0x0a, 0x01, 0x05 };
static const unsigned char der_unauth[] = { 0x30, 0x03, 0x0a, 0x01, 0x06 };
static const unsigned char garbage[] =
    "garbage from the ocspstaple test responder: this is not DER.....";
_Static_assert(sizeof(garbage) == 64 + 1, "garbage mode body is 64 bytes");
#define OCSP_ERR_LEN sizeof(der_malformed)

#define FIXED(n, st, der)                                               \
    {                                                                   \
        .name = n, .respond = respond_fixed, .status = st, .body = der, \
        .bodylen = sizeof(der)                                          \
    }
#define OCSP(n, ...)                                    \
    {                                                   \
        .name = n, .respond = respond_ocsp, __VA_ARGS__ \
    }

/*
 * Fault modes, selected by the first word of the mode file. A new mode is one
 * row: a fixed HTTP status/body for respond_fixed, a variant of the real
 * responder (respond_ocsp: signer, clock shift, index, cut), flags acting on
 * the connection, or its own respond_fn.
 */
static const struct mode modes[] = {
    OCSP("normal", .ocsp = 0),
    /* the real answer, one byte per SLOW_GAP_MS */
    OCSP("slow", .write_gap_ms = SLOW_GAP_MS),
    /* "lag MS": the real answer, sent MS ms (default 1000) after the
     * request (logged on arrival) */
    OCSP("lag", .flags = MODE_LAG),
    { .name = "http500", .respond = respond_fixed, .status = 500 },
    { .name = "http404", .respond = respond_fixed, .status = 404 },
    { .name = "garbage",
      .respond = respond_fixed,
      .status = 200,
      .body = garbage,
      .bodylen = sizeof(garbage) - 1 },
    FIXED("malformed", 200, der_malformed),
    FIXED("internalerror", 200, der_internal),
    FIXED("trylater", 200, der_trylater),
    FIXED("sigrequired", 200, der_sigreq),
    FIXED("unauthorized", 200, der_unauth),
    /* reads the request, never answers */
    { .name = "hang", .respond = respond_hang },
    /* accepts, then closes at once (FIN) */
    { .name = "close", .flags = MODE_AT_ACCEPT },
    /* accepts, then resets at once (RST) */
    { .name = "reset", .flags = MODE_AT_ACCEPT | MODE_RESET },
    /* no listening socket while the mode holds: connections are refused */
    { .name = "refuse", .flags = MODE_AT_ACCEPT | MODE_RESET | MODE_REFUSE },
    /* answers every request with the bytes of the replay file */
    { .name = "replay", .respond = respond_replay },
    /* "redirect URL": 302 to URL (a URL ending in '/' gets the request
     * target appended); the --alt-addr listener answers normally */
    { .name = "redirect",
      .respond = respond_redirect,
      .flags = MODE_PRIMARY_ONLY },
    /* a 10 MiB body (a DER SEQUENCE header, then zeros) */
    { .name = "huge", .respond = respond_huge },
    /* the real answer cut in half */
    OCSP("truncated", .ocsp = OCSP_HALF),
    /* signed by the rogue CA's responder (unrelated to the issuer) */
    OCSP("rogue", .signer = "rogue-ocsp"),
    /* signed by a certificate of the issuer without the OCSP-signing EKU */
    OCSP("noeku", .signer = "noeku"),
    /* made two days ago: nextUpdate (one validity later) is past */
    OCSP("expired", .shift = "-2d"),
    /* made one day ahead: thisUpdate is in the future */
    OCSP("notyet", .shift = "+1d"),
    /* no nextUpdate */
    OCSP("nonext", .ocsp = OCSP_NO_NEXT),
    /* the issuer's responder, knowing no certificate: status unknown */
    OCSP("unknown", .ocsp = OCSP_EMPTY_INDEX),
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static void complain(const char *what, const char *arg)
{
    fprintf(stderr, "ocsp_responder: %s%s%s\n", what, arg ? ": " : "",
            arg ? arg : "");
}

static void complain_errno(const char *what, const char *arg)
{
    fprintf(stderr, "ocsp_responder: %s %s: %s\n", what, arg ? arg : "",
            strerror(errno));
}

/* ---- small helpers -------------------------------------------------- */

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return 0;
    *out = v;
    return 1;
}

static int set_nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return 0;
    return fcntl(fd, F_SETFD, FD_CLOEXEC) == 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        p += n;
        len -= (size_t)n;
    }
    return 1;
}

/* Writes "<text>\n" to PATH.tmp, then renames it to PATH. */
static int write_text_atomic(const char *path, const char *text)
{
    char tmp[PATH_MAX];
    int fd, ok;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return 0;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        complain_errno("cannot create", tmp);
        return 0;
    }
    ok = write_all(fd, text, strlen(text)) && write_all(fd, "\n", 1);
    ok = (close(fd) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        complain_errno("cannot write", path);
        unlink(tmp);
        return 0;
    }
    return 1;
}

/* Writes "<value>\n" to PATH.tmp, then renames it to PATH. */
static int write_file_atomic(const char *path, long value)
{
    char line[32];

    snprintf(line, sizeof(line), "%ld", value);
    return write_text_atomic(path, line);
}

/* Reads a whole regular file of at most MAX_RESP bytes. */
static unsigned char *read_file(const char *path, size_t *lenp)
{
    unsigned char *buf = malloc(MAX_RESP);
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (buf == NULL || fd < 0)
        goto fail;
    for (;;) {
        ssize_t n = read(fd, buf + len, MAX_RESP - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (n > 0 && len + (size_t)n >= MAX_RESP))
            goto fail;
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    *lenp = len;
    return buf;
fail:
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

/* ---- log and mode file ------------------------------------------------ */

/* The serial number (hex) of the first certificate <der> asks about, or
 * "-": a test that counts requests can then say which certificate was asked
 * twice. */
static void request_serial(const unsigned char *der, size_t len, char *buf,
                           size_t cap)
{
    const unsigned char *p = der;
    OCSP_REQUEST *req =
        der != NULL ? d2i_OCSP_REQUEST(NULL, &p, (long)len) : NULL;
    OCSP_ONEREQ *one = req != NULL ? OCSP_request_onereq_get0(req, 0) : NULL;
    ASN1_INTEGER *serial = NULL;
    BIGNUM *bn = NULL;
    char *hex = NULL;

    snprintf(buf, cap, "-");
    if (one != NULL
        && OCSP_id_get0_info(NULL, NULL, NULL, &serial,
                             OCSP_onereq_get0_id(one))
        && (bn = ASN1_INTEGER_to_BN(serial, NULL)) != NULL
        && (hex = BN_bn2hex(bn)) != NULL)
        snprintf(buf, cap, "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
    OCSP_REQUEST_free(req);
}

/*
 * One line per request:
 * "<seq> <GET|POST|-> <reqlen> <mode> <http-status> <serial>".
 * reqlen is the OCSP request DER length (bytes received when unparsed); status
 * 0: no HTTP answer (hang, close, client left early), 408: request timed out.
 * A request on the --alt-addr listener logs its mode as "alt:<mode>". serial
 * is the first asked certificate's, in hex ("-" when there is no request).
 */
static void log_request(struct server *s, const char *method, size_t reqlen,
                        const struct mode *m, int alt, int status,
                        const struct request *rq)
{
    char line[320], serial[96];
    int n;

    if (s->logfd < 0)
        return;
    request_serial(rq != NULL ? rq->der : NULL, rq != NULL ? rq->derlen : 0,
                   serial, sizeof(serial));
    n = snprintf(line, sizeof(line), "%lu %s %zu %s%s %d %s\n", s->seq, method,
                 reqlen, alt ? "alt:" : "", m->name, status, serial);
    if (n > 0 && !write_all(s->logfd, line, (size_t)n))
        complain_errno("cannot write", s->cfg.log_file);
}

static const struct mode *find_mode(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (strcmp(modes[i].name, name) == 0)
            return &modes[i];
    return NULL;
}

/* The mode file's first line, untrimmed, in buf (empty when none). */
static void read_mode_line(const struct server *s, char *buf, size_t size)
{
    ssize_t n = -1;
    int fd = -1;

    if (s->cfg.mode_file != NULL)
        fd = open(s->cfg.mode_file, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, buf, size - 1);
        close(fd);
    }
    buf[n > 0 ? n : 0] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
}

/*
 * The mode named by the first word of the mode file's first line, buf
 * (modified): "normal" when it is empty; the rest of that line, trimmed,
 * goes to arg[MAX_ARG] (empty when there is none, or when it is too long).
 */
static const struct mode *parse_mode(char *buf, char *arg)
{
    char *w, *a, *end;
    const struct mode *m;

    arg[0] = '\0';
    if (buf[0] == '\0')
        return &modes[0];
    w = buf + strspn(buf, " \t");
    a = w + strcspn(w, " \t");
    if (*a != '\0')
        *a++ = '\0';
    a += strspn(a, " \t");
    for (end = a + strlen(a); end > a && (end[-1] == ' ' || end[-1] == '\t');)
        *--end = '\0';
    if (*w == '\0')
        return &modes[0];
    m = find_mode(w);
    if (m == NULL) {
        complain("unknown mode, using normal", w);
        return &modes[0];
    }
    if (strlen(a) < MAX_ARG)
        memcpy(arg, a, strlen(a) + 1);
    else
        complain("mode argument too long, ignored", m->name);
    return m;
}

static const struct mode *read_mode(const struct server *s, char *arg)
{
    char buf[MODE_LINE];

    read_mode_line(s, buf, sizeof(buf));
    return parse_mode(buf, arg);
}

/* ---- HTTP answers ------------------------------------------------------ */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 302:
        return "Found";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 431:
        return "Request Header Fields Too Large";
    default:
        return "Internal Server Error";
    }
}

/*
 * Queues an HTTP/1.0 answer on c: the head (with the extra header line
 * <extra>, if any), then <len> bytes of <body>, then c->tail (whose length
 * Content-Length counts too). Returns status, or 0 on failure.
 */
static int http_answer(struct conn *c, int status, const char *ctype,
                       const char *extra, const unsigned char *body, size_t len)
{
    char head[MAX_ARG + MAX_HEAD + 256];
    int n;

    n = snprintf(head, sizeof(head),
                 "HTTP/1.0 %d %s\r\n%s%s%s%s%sContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n",
                 status, reason(status), ctype ? "Content-Type: " : "",
                 ctype ? ctype : "", ctype ? "\r\n" : "", extra ? extra : "",
                 extra ? "\r\n" : "", len + c->taillen);
    if (n < 0 || (size_t)n >= sizeof(head))
        return 0;
    free(c->out);
    c->out = malloc((size_t)n + len);
    if (c->out == NULL)
        return 0;
    memcpy(c->out, head, (size_t)n);
    if (len > 0)
        memcpy(c->out + n, body, len);
    c->outlen = (size_t)n + len;
    c->outoff = 0;
    return status;
}

static int http_reply(struct conn *c, int status, const char *ctype,
                      const unsigned char *body, size_t len)
{
    return http_answer(c, status, ctype, NULL, body, len);
}

static int respond_fixed(struct server *s, struct conn *c, const struct mode *m,
                         const struct request *rq)
{
    (void)s;
    (void)rq;
    return http_reply(c, m->status, m->bodylen ? CT_OCSP : NULL, m->body,
                      m->bodylen);
}

static int respond_hang(struct server *s, struct conn *c, const struct mode *m,
                        const struct request *rq)
{
    (void)s;
    (void)m;
    (void)rq;
    c->st = C_HANG;
    return 0;
}

static int respond_replay(struct server *s, struct conn *c,
                          const struct mode *m, const struct request *rq)
{
    unsigned char *body;
    size_t len = 0;
    int status;

    (void)m;
    (void)rq;
    body = read_file(s->cfg.replay_file, &len);
    if (body == NULL) {
        complain("replay mode: cannot read", s->cfg.replay_file);
        return http_reply(c, 200, CT_OCSP, der_internal, OCSP_ERR_LEN);
    }
    status = http_reply(c, 200, CT_OCSP, body, len);
    free(body);
    return status;
}

/* 302 to the mode's argument; "URL/" gets the request target appended. */
static int respond_redirect(struct server *s, struct conn *c,
                            const struct mode *m, const struct request *rq)
{
    char loc[MAX_ARG + MAX_HEAD + 16];
    size_t alen = strlen(c->arg), tlen = rq->targetlen;
    const char *t = rq->target;

    (void)s;
    (void)m;
    if (alen == 0 || strpbrk(c->arg, "\r\n") != NULL) {
        complain("redirect mode needs a URL: \"redirect URL\"", NULL);
        return http_reply(c, 500, NULL, NULL, 0);
    }
    if (c->arg[alen - 1] != '/' || t == NULL)
        tlen = 0;
    if (tlen > 0 && t[0] == '/') {
        t++;
        tlen--;
    }
    if (tlen >= MAX_HEAD)
        tlen = 0;
    snprintf(loc, sizeof(loc), "Location: %s%.*s", c->arg, (int)tlen,
             tlen ? t : "");
    return http_answer(c, 302, NULL, loc, NULL, 0);
}

/* A DER SEQUENCE header announcing HUGE_LEN - 6 bytes, then zeros. */
static const unsigned char *huge_body(struct server *s)
{
    const unsigned long n = HUGE_LEN - 6;

    if (s->huge == NULL && (s->huge = calloc(1, HUGE_LEN)) != NULL) {
        s->huge[0] = 0x30;
        s->huge[1] = 0x84;
        s->huge[2] = (unsigned char)(n >> 24);
        s->huge[3] = (unsigned char)(n >> 16);
        s->huge[4] = (unsigned char)(n >> 8);
        s->huge[5] = (unsigned char)n;
    }
    return s->huge;
}

static int respond_huge(struct server *s, struct conn *c, const struct mode *m,
                        const struct request *rq)
{
    (void)m;
    (void)rq;
    c->tail = huge_body(s);
    if (c->tail == NULL) {
        complain("huge mode: out of memory", NULL);
        return http_reply(c, 500, NULL, NULL, 0);
    }
    c->taillen = HUGE_LEN;
    return http_reply(c, 200, CT_OCSP, NULL, 0);
}

/* ---- running openssl ocsp ---------------------------------------------- */

/* Waits for pid at most ms; kills it when over time or when stopping. */
static int wait_child(pid_t pid, int64_t ms, int *status)
{
    int64_t end = now_ms() + ms;
    long nap = 1;

    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);

        if (r == pid)
            return 1;
        if (r < 0 && errno != EINTR)
            return 0;
        if (g_stop || now_ms() >= end)
            break;
        sleep_ms(nap);
        if (nap < 20)
            nap *= 2;
    }
    complain("openssl ocsp timed out or interrupted; killing it", NULL);
    kill(pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    return 0;
}

/* The files one `openssl ocsp` run of mode m reads. */
struct ocsp_files {
    const char *index, *rsigner, *rkey;
    char signer_pem[PATH_MAX], signer_key[PATH_MAX];
};

static int ocsp_files_of(const struct server *s, const struct mode *m,
                         struct ocsp_files *f)
{
    const struct config *cf = &s->cfg;

    f->index = (m->ocsp & OCSP_EMPTY_INDEX) ? s->emptyindex : cf->index;
    f->rsigner = cf->rsigner;
    f->rkey = cf->rkey;
    if (m->signer == NULL)
        return 1;
    if (cf->dir == NULL) {
        complain("this mode signs with a DIR/ file: give --dir", m->name);
        return 0;
    }
    if ((size_t)snprintf(f->signer_pem, sizeof(f->signer_pem), "%s/%s.pem",
                         cf->dir, m->signer)
            >= sizeof(f->signer_pem)
        || (size_t)snprintf(f->signer_key, sizeof(f->signer_key), "%s/%s.key",
                            cf->dir, m->signer)
               >= sizeof(f->signer_key))
        return 0;
    f->rsigner = f->signer_pem;
    f->rkey = f->signer_key;
    return 1;
}

/* [faketime -f SHIFT] openssl ocsp ... for mode m. */
static int run_openssl(const struct server *s, const struct mode *m,
                       const struct ocsp_files *f)
{
    const struct config *cf = &s->cfg;
    const char *argv[24];
    int status, n = 0;
    pid_t pid;

    if (m->shift != NULL) {
        argv[n++] = cf->faketime;
        argv[n++] = "-f";
        argv[n++] = m->shift;
    }
    argv[n++] = cf->openssl;
    argv[n++] = "ocsp";
    argv[n++] = "-index";
    argv[n++] = f->index;
    argv[n++] = "-CA";
    argv[n++] = cf->ca;
    argv[n++] = "-rsigner";
    argv[n++] = f->rsigner;
    argv[n++] = "-rkey";
    argv[n++] = f->rkey;
    argv[n++] = "-reqin";
    argv[n++] = s->reqpath;
    argv[n++] = "-respout";
    argv[n++] = s->resppath;
    if (!(m->ocsp & OCSP_NO_NEXT)) {
        argv[n++] = cf->validity_opt;
        argv[n++] = cf->validity;
    }
    argv[n] = NULL;
    pid = fork();
    if (pid < 0) {
        complain_errno("fork", NULL);
        return 0;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);

        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDOUT_FILENO);
        }
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "ocsp_responder: cannot run %s: %s\n", argv[0],
                strerror(errno));
        _exit(127);
    }
    if (!wait_child(pid, CHILD_TIMEOUT_MS, &status))
        return 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "ocsp_responder: %s failed (status %d)\n", argv[0],
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return 0;
    }
    return 1;
}

static int pki_ready(const struct config *cf, const struct ocsp_files *f)
{
    const char *files[] = { f->index, cf->ca, f->rsigner, f->rkey };
    size_t i;

    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (access(files[i], R_OK) != 0) {
            complain_errno("cannot read", files[i]);
            return 0;
        }
    }
    return 1;
}

/* True if buf is exactly one DER SEQUENCE (a cheap request sanity check). */
static int der_is_sequence(const unsigned char *buf, size_t len)
{
    size_t hdr = 2, body = 0, i, n;

    if (len < 2 || buf[0] != 0x30)
        return 0;
    if (buf[1] < 0x80) {
        body = buf[1];
    } else {
        n = buf[1] & 0x7f;
        if (n == 0 || n > 4 || len < 2 + n)
            return 0;
        for (i = 0; i < n; i++)
            body = (body << 8) | buf[2 + i];
        hdr += n;
    }
    return hdr + body == len;
}

/*
 * Runs the real responder on the request (with the mode's signer, clock
 * shift, index and validity); answers with its DER, or half of it.
 */
static int respond_ocsp(struct server *s, struct conn *c, const struct mode *m,
                        const struct request *rq)
{
    const unsigned char *err = der_internal;
    struct ocsp_files f;
    unsigned char *resp;
    size_t len;
    int fd, ok, status;

    if (rq->status != 0)
        return http_reply(c, rq->status, NULL, NULL, 0);
    if (rq->der == NULL || !der_is_sequence(rq->der, rq->derlen)) {
        complain("request is not a DER SEQUENCE: malformedRequest", NULL);
        return http_reply(c, 200, CT_OCSP, der_malformed, OCSP_ERR_LEN);
    }
    if (!ocsp_files_of(s, m, &f) || !pki_ready(&s->cfg, &f))
        return http_reply(c, 200, CT_OCSP, der_internal, OCSP_ERR_LEN);
    unlink(s->resppath);
    fd = open(s->reqpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ok = fd >= 0 && write_all(fd, rq->der, rq->derlen);
    ok = (fd >= 0 && close(fd) == 0) && ok;
    if (ok && !run_openssl(s, m, &f)) {
        /* the PKI is there: blame the request, unless faketime is missing */
        err = m->shift != NULL ? der_internal : der_malformed;
        ok = 0;
    }
    resp = ok ? read_file(s->resppath, &len) : NULL;
    if (resp == NULL)
        return http_reply(c, 200, CT_OCSP, err, OCSP_ERR_LEN);
    if ((m->ocsp & OCSP_HALF) && len > 1)
        len /= 2;
    status = http_reply(c, 200, CT_OCSP, resp, len);
    free(resp);
    return status;
}

/* ---- request parsing ------------------------------------------------- */

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes src[0..len) into dst (same size or larger). */
static size_t pct_decode(const char *src, size_t len, char *dst)
{
    size_t i, o = 0;

    for (i = 0; i < len; i++) {
        int hi, lo;

        if (src[i] == '%' && i + 2 < len
            && (hi = hexval((unsigned char)src[i + 1])) >= 0
            && (lo = hexval((unsigned char)src[i + 2])) >= 0) {
            dst[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            dst[o++] = src[i];
        }
    }
    return o;
}

static int b64val(int ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+' || ch == '-')
        return 62;
    if (ch == '/' || ch == '_')
        return 63;
    return -1;
}

/* Base64 (standard or URL alphabet, padding optional); returns 1 if valid. */
static int b64_decode(const char *src, size_t len, unsigned char *dst,
                      size_t *outlen)
{
    unsigned long acc = 0;
    size_t i, o = 0, bits = 0;

    while (len > 0 && src[len - 1] == '=')
        len--;
    for (i = 0; i < len; i++) {
        int v = b64val((unsigned char)src[i]);

        if (v < 0)
            return 0;
        acc = (acc << 6) | (unsigned long)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dst[o++] = (unsigned char)(acc >> bits);
            acc &= (1UL << bits) - 1;
        }
    }
    *outlen = o;
    return len > 0 && len % 4 != 1;
}

/*
 * GET /<any prefix>/<url-encoded base64 of the DER request> (RFC 6960 A.1).
 * The request is the longest '/'-delimited suffix of the path that decodes
 * to exactly one DER SEQUENCE: the last segment when the client escaped the
 * base64 properly, more segments when it left a '/' of the base64 raw.
 */
static void decode_get(const char *t, size_t tlen, struct request *rq)
{
    size_t end = 0, start = 0, n, dlen;
    char *tmp;
    unsigned char *der;

    while (end < tlen && t[end] != '?' && t[end] != '#')
        end++;
    tmp = malloc(end + 1);
    der = malloc(end + 1);
    while (tmp != NULL && der != NULL && start < end) {
        n = pct_decode(t + start, end - start, tmp);
        if (b64_decode(tmp, n, der, &dlen) && der_is_sequence(der, dlen)) {
            free(tmp);
            rq->der = der;
            rq->derlen = dlen;
            return;
        }
        while (start < end && t[start] != '/')
            start++;
        start++;
    }
    free(tmp);
    free(der);
}

/* Finds the blank line ending the headers; *hlen is the offset after it. */
static int find_head_end(const char *in, size_t len, size_t *hlen)
{
    size_t i;

    for (i = 0; i + 1 < len; i++) {
        if (in[i] != '\n')
            continue;
        if (in[i + 1] == '\n') {
            *hlen = i + 2;
            return 1;
        }
        if (in[i + 1] == '\r' && i + 2 < len && in[i + 2] == '\n') {
            *hlen = i + 3;
            return 1;
        }
    }
    return 0;
}

/* Content-Length of a POST: 0 and *clen when valid, else an HTTP status. */
static int content_length(const char *in, size_t hlen, size_t *clen)
{
    static const char name[] = "Content-Length:";
    const size_t nlen = sizeof(name) - 1;
    size_t i = 0, v = 0;
    int digits = 0;

    for (;;) {
        while (i < hlen && in[i] != '\n')
            i++;
        if (++i >= hlen)
            return 411;
        if (hlen - i > nlen && strncasecmp(in + i, name, nlen) == 0)
            break;
    }
    for (i += nlen; i < hlen && (in[i] == ' ' || in[i] == '\t'); i++)
        ;
    for (; i < hlen && in[i] >= '0' && in[i] <= '9'; i++, digits++) {
        v = v * 10 + (size_t)(in[i] - '0');
        if (v > MAX_BODY)
            return 413;
    }
    if (digits == 0 || (in[i] != '\r' && in[i] != '\n' && in[i] != ' '))
        return 400;
    *clen = v;
    return 0;
}

/* Returns 1 when a whole request (or an HTTP error) is in rq, 0 if partial. */
static int parse_request(const struct conn *c, struct request *rq)
{
    const char *in = (const char *)c->in;
    size_t hlen, mlen, tstart, tend, clen = 0;

    memset(rq, 0, sizeof(*rq));
    rq->method = "-";
    if (!find_head_end(in, c->inlen, &hlen)) {
        if (c->inlen < MAX_HEAD)
            return 0;
        rq->status = 431;
        return 1;
    }
    mlen = strcspn(in, " \r\n");
    tstart = mlen + 1;
    tend = tstart;
    while (tend < hlen && in[tend] != ' ' && in[tend] != '\r'
           && in[tend] != '\n')
        tend++;
    if (mlen >= hlen || in[mlen] != ' ' || tend == tstart) {
        rq->status = 400;
        return 1;
    }
    rq->target = in + tstart;
    rq->targetlen = tend - tstart;
    if (mlen == 3 && memcmp(in, "GET", 3) == 0) {
        rq->method = "GET";
        decode_get(in + tstart, tend - tstart, rq);
    } else if (mlen == 4 && memcmp(in, "POST", 4) == 0) {
        rq->method = "POST";
        rq->status = content_length(in, hlen, &clen);
        if (rq->status == 0 && c->inlen < hlen + clen)
            return 0;
        if (rq->status == 0 && (rq->der = malloc(clen + 1)) != NULL) {
            memcpy(rq->der, c->in + hlen, clen);
            rq->derlen = clen;
        }
    } else {
        rq->status = 405;
    }
    return 1;
}

/* ---- connections ------------------------------------------------------- */

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->st = C_FREE;
}

/*
 * A new most of answers in progress at once (requests read, answer not yet
 * all sent: what a "lag" keeps open) goes to "<mode file>.peak", so that a
 * test can check a cap on concurrent requests. A new mode starts it again.
 */
static void note_peak(struct server *s)
{
    char path[PATH_MAX], text[32];
    int i, n = 0;

    for (i = 0; i < MAX_CONNS; i++)
        n += s->conns[i].st == C_WRITE;
    if (n <= s->peak || s->cfg.mode_file == NULL)
        return;
    s->peak = n;
    snprintf(text, sizeof(text), "%d", n);
    if (snprintf(path, sizeof(path), "%s.peak", s->cfg.mode_file)
        < (int)sizeof(path))
        write_text_atomic(path, text);
}

static void conn_answer(struct server *s, struct conn *c, struct request *rq)
{
    const struct mode *m = c->mode;
    int status;

    if (c->alt && (m->flags & MODE_PRIMARY_ONLY))
        m = &modes[0];
    s->seq++;
    c->st = C_WRITE;
    status = m->respond(s, c, m, rq);
    log_request(s, rq->method, rq->derlen, m, c->alt, status, rq);
    free(rq->der);
    rq->der = NULL;
    if (c->st == C_HANG) {
        c->deadline = NO_DEADLINE; /* until the client leaves or lifetime */
        return;
    }
    if (c->out == NULL) {
        conn_close(c);
        return;
    }
    note_peak(s);
    c->next_write = now_ms();
    if (m->flags & MODE_LAG) {
        long lag = c->arg[0] != '\0' ? strtol(c->arg, NULL, 10) : 1000;

        c->next_write += lag > 0 && lag < 600000 ? lag : 1000;
    }
    c->deadline = c->next_write + s->cfg.timeout_s * 1000;
}

/* Reads what is there; in C_READ, answers once the request is complete. */
static void conn_read(struct server *s, struct conn *c)
{
    unsigned char scratch[4096];
    struct request rq;
    int eof = 0;

    for (;;) {
        int keep = c->st == C_READ;
        size_t room = keep ? MAX_IN - c->inlen : sizeof(scratch);
        ssize_t n;

        if (room == 0)
            break;
        n = recv(c->fd, keep ? c->in + c->inlen : scratch, room, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            eof = 1;
            break;
        }
        if (keep) {
            c->inlen += (size_t)n;
            c->in[c->inlen] = '\0';
        }
    }
    if (c->st == C_READ && parse_request(c, &rq)) {
        conn_answer(s, c, &rq);
        return;
    }
    if (eof) {
        if (c->st == C_READ && c->inlen > 0) {
            s->seq++;
            log_request(s, "-", c->inlen, c->mode, c->alt, 0, NULL);
        }
        conn_close(c);
    }
}

/* Sends the head (c->out), then the shared tail, one byte per gap if slow. */
static void conn_write(struct server *s, struct conn *c)
{
    size_t total = c->outlen + c->taillen, n = total - c->outoff;
    const unsigned char *p;
    int64_t gap = c->mode->write_gap_ms;
    ssize_t r;

    if (c->outoff < c->outlen) {
        p = c->out + c->outoff;
        n = c->outlen - c->outoff;
    } else {
        p = c->tail + (c->outoff - c->outlen);
    }
    if (gap > 0 && n > 1)
        n = 1;
    r = send(c->fd, p, n, MSG_NOSIGNAL);
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (r <= 0) {
        conn_close(c);
        return;
    }
    c->outoff += (size_t)r;
    if (c->outoff == total) {
        shutdown(c->fd, SHUT_WR);
        c->st = C_DRAIN;
        c->deadline = now_ms() + DRAIN_MS;
    } else if (gap > 0) {
        c->next_write = now_ms() + gap;
        c->deadline = c->next_write + s->cfg.timeout_s * 1000;
    }
}

static void conn_timeout(struct server *s, struct conn *c)
{
    if (c->st == C_READ && c->inlen > 0) {
        s->seq++;
        log_request(s, "-", c->inlen, c->mode, c->alt, 408, NULL);
    }
    conn_close(c);
}

static struct conn *free_slot(struct server *s)
{
    size_t i;

    for (i = 0; i < MAX_CONNS; i++)
        if (s->conns[i].st == C_FREE)
            return &s->conns[i];
    return NULL;
}

/* ---- listeners ---------------------------------------------------------- */

static int bound_socket(const struct in_addr *addr, long port, int *fd)
{
    struct sockaddr_in sin;
    int one = 1;

    *fd = socket(AF_INET, SOCK_STREAM, 0);
    if (*fd < 0 || !set_nonblock_cloexec(*fd))
        return 0;
    setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr = *addr;
    return bind(*fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/*
 * "refuse": each listening socket is closed, and a socket bound to the same
 * address and port, never listening, holds the port, so that connections
 * are refused (RST to the SYN) and the port stays ours. The mode file is
 * then read every MODE_POLL_MS; listen_again() undoes this.
 */
static void stop_listening(struct server *s)
{
    int i;

    for (i = 0; i < NLISTEN; i++) {
        if (s->lfd[i] < 0)
            continue;
        close_fd(&s->lfd[i]);
        if (!bound_socket(&s->cfg.addr[i], s->cfg.port, &s->hold[i])) {
            complain_errno("refuse mode: cannot hold the port", NULL);
            close_fd(&s->hold[i]);
        }
    }
    s->listening = 0;
}

static void listen_again(struct server *s)
{
    int i, ok = 1;

    for (i = 0; i < NLISTEN; i++) {
        if (s->lfd[i] >= 0 || s->cfg.addr[i].s_addr == 0)
            continue;
        if (bound_socket(&s->cfg.addr[i], s->cfg.port, &s->lfd[i])
            && listen(s->lfd[i], 64) == 0) {
            close_fd(&s->hold[i]);
            continue;
        }
        complain_errno("cannot listen again; will retry", NULL);
        close_fd(&s->lfd[i]);
        ok = 0;
    }
    s->listening = ok;
}

/*
 * Once the listeners are as mode m wants, the mode file's line goes to
 * "<mode file>.applied", so that a test can await the switch instead of
 * racing the next poll: a connection made before "refuse" is applied is
 * accepted and reset, one made after it is refused.
 */
static void acknowledge_mode(struct server *s, const struct mode *m,
                             const char *line)
{
    char path[PATH_MAX];

    if (s->cfg.mode_file == NULL || ((m->flags & MODE_REFUSE) && s->listening)
        || (!(m->flags & MODE_REFUSE) && !s->listening))
        return;
    if (strcmp(line, s->acked) == 0)
        return;
    /* the peak starts again with the mode, before the mode is said */
    s->peak = 0;
    if (snprintf(path, sizeof(path), "%s.peak", s->cfg.mode_file)
        < (int)sizeof(path))
        write_text_atomic(path, "0");
    if (snprintf(path, sizeof(path), "%s.applied", s->cfg.mode_file)
            >= (int)sizeof(path)
        || !write_text_atomic(path, line))
        return;
    snprintf(s->acked, sizeof(s->acked), "%s", line);
}

/* Closes or reopens the listeners as the mode file says (every poll). */
static void poll_mode(struct server *s, int64_t now)
{
    char arg[MAX_ARG], line[MODE_LINE], parsed[MODE_LINE];
    const struct mode *m;

    if (now < s->next_poll)
        return;
    s->next_poll = now + MODE_POLL_MS;
    read_mode_line(s, line, sizeof(line));
    memcpy(parsed, line, sizeof(parsed));
    m = parse_mode(parsed, arg);
    if ((m->flags & MODE_REFUSE) && s->listening)
        stop_listening(s);
    else if (!(m->flags & MODE_REFUSE) && !s->listening)
        listen_again(s);
    acknowledge_mode(s, m, line);
}

/* Closes fd at once; with reset, with an RST (SO_LINGER 0) instead of FIN. */
static void drop(int fd, int reset)
{
    struct linger lg = { 1, 0 };

    if (reset)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

static void accept_conns(struct server *s, int which)
{
    struct conn *c;

    while (s->lfd[which] >= 0 && (c = free_slot(s)) != NULL) {
        const struct mode *m;
        int fd = accept(s->lfd[which], NULL, NULL);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                complain_errno("accept", NULL);
            return;
        }
        m = read_mode(s, c->arg);
        if (m->flags & MODE_AT_ACCEPT) {
            s->seq++;
            log_request(s, "-", 0, m, which == L_ALT, 0, NULL);
            drop(fd, m->flags & MODE_RESET);
            if (m->flags & MODE_REFUSE)
                stop_listening(s);
            continue;
        }
        c->in = malloc(MAX_IN + 1);
        if (c->in == NULL || !set_nonblock_cloexec(fd)) {
            free(c->in);
            c->in = NULL;
            close(fd);
            continue;
        }
        c->fd = fd;
        c->alt = which == L_ALT;
        c->st = C_READ;
        c->mode = m;
        c->deadline = now_ms() + s->cfg.timeout_s * 1000;
    }
}

/* ---- event loop --------------------------------------------------------- */

static void on_signal(int sig)
{
    int saved = errno;

    (void)sig;
    g_stop = 1;
    if (g_sigpipe[1] >= 0 && write(g_sigpipe[1], "x", 1) < 0) {
        /* the pipe is full: a wakeup is already pending */
    }
    errno = saved;
}

/*
 * Fills pfd/who/lis for one poll() round; returns the count, sets *wake.
 * who[i] is the connection of pfd[i]; lis[i] the listener, or -1.
 */
static int build_pollset(struct server *s, struct pollfd *pfd,
                         struct conn **who, int *lis, int64_t now,
                         int64_t *wake)
{
    int nfd = 0, have_free = 0, k;
    size_t i;

    pfd[nfd].fd = g_sigpipe[0];
    pfd[nfd].events = POLLIN;
    lis[nfd] = -1;
    who[nfd++] = NULL;
    for (i = 0; i < MAX_CONNS; i++) {
        struct conn *c = &s->conns[i];

        if (c->st != C_FREE && c->deadline <= now)
            conn_timeout(s, c);
        if (c->st == C_FREE) {
            have_free = 1;
            continue;
        }
        pfd[nfd].events = POLLIN;
        if (c->st == C_WRITE) {
            pfd[nfd].events = c->next_write <= now ? POLLOUT : 0;
            if (c->next_write > now && c->next_write < *wake)
                *wake = c->next_write;
        }
        if (c->deadline < *wake)
            *wake = c->deadline;
        pfd[nfd].fd = c->fd;
        lis[nfd] = -1;
        who[nfd++] = c;
    }
    for (k = 0; have_free && k < NLISTEN; k++) {
        if (s->lfd[k] < 0)
            continue;
        pfd[nfd].fd = s->lfd[k];
        pfd[nfd].events = POLLIN;
        lis[nfd] = k;
        who[nfd++] = NULL;
    }
    if (s->next_poll < *wake)
        *wake = s->next_poll;
    return nfd;
}

static int serve(struct server *s)
{
    struct pollfd pfd[MAX_CONNS + 1 + NLISTEN];
    struct conn *who[MAX_CONNS + 1 + NLISTEN];
    int lis[MAX_CONNS + 1 + NLISTEN];

    while (!g_stop) {
        int64_t now = now_ms(), wake = s->end_ms;
        int nfd, i, r;

        if (now >= s->end_ms) {
            complain("lifetime over, exiting", NULL);
            break;
        }
        poll_mode(s, now);
        nfd = build_pollset(s, pfd, who, lis, now, &wake);
        if (wake < now)
            wake = now;
        r = poll(pfd, (nfds_t)nfd,
                 wake - now > INT_MAX ? INT_MAX : (int)(wake - now));
        if (r < 0 && errno != EINTR) {
            complain_errno("poll", NULL);
            return 0;
        }
        for (i = 0; r > 0 && i < nfd && !g_stop; i++) {
            struct conn *c = who[i];
            short re = pfd[i].revents;

            if (re == 0)
                continue;
            if (c == NULL && lis[i] >= 0 && s->lfd[lis[i]] == pfd[i].fd)
                accept_conns(s, lis[i]);
            else if (c == NULL)
                continue; /* the signal pipe, or a listener closed since */
            else if (c->st == C_WRITE && (re & POLLOUT))
                conn_write(s, c);
            else if (c->st == C_WRITE)
                conn_close(c); /* POLLERR/POLLHUP: the client left */
            else
                conn_read(s, c);
        }
    }
    return 1;
}

/* ---- setup ----------------------------------------------------------- */

static int install_signals(void)
{
    struct sigaction sa;
    int i;

    if (pipe(g_sigpipe) != 0)
        return 0;
    for (i = 0; i < 2; i++)
        if (!set_nonblock_cloexec(g_sigpipe[i]))
            return 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGTERM, &sa, NULL) == 0
           && sigaction(SIGINT, &sa, NULL) == 0
           && sigaction(SIGHUP, &sa, NULL) == 0;
}

/* Binds and listens on addr:port; with port 0 the kernel's pick. */
static int listen_on(const struct in_addr *addr, long *port, int *fd)
{
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);

    if (!bound_socket(addr, *port, fd) || listen(*fd, 64) != 0
        || getsockname(*fd, (struct sockaddr *)&sin, &slen) != 0) {
        close_fd(fd);
        return 0;
    }
    *port = ntohs(sin.sin_port);
    return 1;
}

/*
 * 127.0.0.1:PORT, and with --alt-addr the same port on that address too:
 * a kernel-chosen port is chosen again (BIND_TRIES times) when it is taken
 * on the second address.
 */
static int open_listeners(struct server *s)
{
    struct config *cf = &s->cfg;
    int try;

    for (try = 0; try < BIND_TRIES; try++) {
        long port = cf->port;
        char addr[INET_ADDRSTRLEN];

        if (!listen_on(&cf->addr[L_MAIN], &port, &s->lfd[L_MAIN])) {
            complain_errno("cannot listen on 127.0.0.1", NULL);
            return 0;
        }
        if (cf->addr[L_ALT].s_addr == 0
            || listen_on(&cf->addr[L_ALT], &port, &s->lfd[L_ALT])) {
            cf->port = port;
            s->listening = 1;
            return 1;
        }
        inet_ntop(AF_INET, &cf->addr[L_ALT], addr, sizeof(addr));
        complain_errno("cannot listen on the same port of", addr);
        close_fd(&s->lfd[L_MAIN]);
        if (cf->port != 0)
            return 0;
    }
    return 0;
}

static int setup_tmp(struct server *s)
{
    const char *base = getenv("TMPDIR");
    size_t n = sizeof(s->tmpdir);
    int fd;

    if (base == NULL || *base == '\0')
        base = "/tmp";
    if (snprintf(s->tmpdir, n, "%s/stp-responder.XXXXXX", base) >= (int)n
        || mkdtemp(s->tmpdir) == NULL) {
        complain_errno("cannot create a temporary directory in", base);
        s->tmpdir[0] = '\0';
        return 0;
    }
    snprintf(s->reqpath, sizeof(s->reqpath), "%s/req.der", s->tmpdir);
    snprintf(s->resppath, sizeof(s->resppath), "%s/resp.der", s->tmpdir);
    snprintf(s->emptyindex, sizeof(s->emptyindex), "%s/empty-index.txt",
             s->tmpdir);
    fd = open(s->emptyindex, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || close(fd) != 0) {
        complain_errno("cannot create", s->emptyindex);
        return 0;
    }
    return 1;
}

static void cleanup(struct server *s)
{
    size_t i;

    for (i = 0; i < MAX_CONNS; i++)
        conn_close(&s->conns[i]);
    for (i = 0; i < NLISTEN; i++) {
        close_fd(&s->lfd[i]);
        close_fd(&s->hold[i]);
    }
    close_fd(&s->logfd);
    if (s->tmpdir[0] != '\0') {
        unlink(s->reqpath);
        unlink(s->resppath);
        unlink(s->emptyindex);
        rmdir(s->tmpdir);
    }
    free(s->huge);
    free(s->cfg.index);
    free(s->cfg.ca);
    free(s->cfg.rsigner);
    free(s->cfg.rkey);
    free(s->cfg.mode_file);
    free(s->cfg.replay_file);
}

/* ---- options ----------------------------------------------------------- */

struct opts {
    const char *dir, *index, *ca, *rsigner, *rkey, *mode_file, *openssl;
    const char *replay_file, *faketime, *alt_addr;
    const char *port, *port_file, *pid_file, *log, *ndays, *nmin;
    const char *lifetime, *timeout;
};

static void usage(void)
{
    size_t i;

    fputs("usage: ocsp_responder --dir DIR | --index F --ca F --rsigner F"
          " --rkey F\n"
          "  [--port N | --port-file F] [--pid-file F] [--log F]\n"
          "  [--ndays N | --nmin N] [--lifetime S] [--timeout S]\n"
          "  [--mode-file F] [--replay-file F] [--openssl PATH]\n"
          "  [--faketime PATH] [--alt-addr 127.X.Y.Z]\n"
          "Listens on 127.0.0.1 only (and on the same port of --alt-addr,"
          " a loopback\naddress). DIR defaults: index.txt int.pem ocsp.pem"
          " ocsp.key responder.mode\nresponder.replay.der. The mode file's"
          " first line is MODE [ARGUMENT]:\n",
          stderr);
    for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        fprintf(stderr, "%s%s", i ? " " : "  ", modes[i].name);
    fputs("\n", stderr);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    const struct {
        const char *name;
        const char **dst;
    } tab[] = {
        { "--dir", &o->dir },
        { "--index", &o->index },
        { "--ca", &o->ca },
        { "--rsigner", &o->rsigner },
        { "--rkey", &o->rkey },
        { "--mode-file", &o->mode_file },
        { "--openssl", &o->openssl },
        { "--faketime", &o->faketime },
        { "--alt-addr", &o->alt_addr },
        { "--replay-file", &o->replay_file },
        { "--port", &o->port },
        { "--port-file", &o->port_file },
        { "--pid-file", &o->pid_file },
        { "--log", &o->log },
        { "--ndays", &o->ndays },
        { "--nmin", &o->nmin },
        { "--lifetime", &o->lifetime },
        { "--timeout", &o->timeout },
    };
    const size_t ntab = sizeof(tab) / sizeof(tab[0]);
    int i;

    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        size_t n = strcspn(arg, "="), k;

        for (k = 0; k < ntab; k++)
            if (strlen(tab[k].name) == n && strncmp(arg, tab[k].name, n) == 0)
                break;
        if (k == ntab) {
            complain("unknown option", arg);
            return 0;
        }
        if (arg[n] == '=') {
            *tab[k].dst = arg + n + 1;
        } else if (i + 1 < argc) {
            *tab[k].dst = argv[++i];
        } else {
            complain("missing value for", arg);
            return 0;
        }
    }
    return 1;
}

/* An explicit path, else DIR/name, else an error. */
static char *pick_path(const char *given, const char *dir, const char *name,
                       const char *opt)
{
    char *p = NULL;

    if (given != NULL)
        p = strdup(given);
    else if (dir != NULL)
        p = path_join(dir, name);
    if (p == NULL && opt != NULL)
        complain("need --dir or", opt);
    return p;
}

static int parse_number(const char *s, const char *opt, long min, long max,
                        long *out)
{
    if (s == NULL)
        return 1;
    if (parse_long(s, min, max, out))
        return 1;
    complain("bad number for", opt);
    return 0;
}

static int build_config(const struct opts *o, struct config *cf)
{
    long v;

    cf->index = pick_path(o->index, o->dir, "index.txt", "--index");
    cf->ca = pick_path(o->ca, o->dir, "int.pem", "--ca");
    cf->rsigner = pick_path(o->rsigner, o->dir, "ocsp.pem", "--rsigner");
    cf->rkey = pick_path(o->rkey, o->dir, "ocsp.key", "--rkey");
    cf->mode_file = pick_path(o->mode_file, o->dir, "responder.mode", NULL);
    cf->replay_file =
        pick_path(o->replay_file, o->dir, "responder.replay.der", NULL);
    if (!cf->index || !cf->ca || !cf->rsigner || !cf->rkey)
        return 0;
    cf->openssl = o->openssl ? o->openssl : "openssl";
    cf->faketime = o->faketime ? o->faketime : "faketime";
    cf->dir = o->dir;
    cf->addr[L_MAIN].s_addr = htonl(INADDR_LOOPBACK);
    cf->addr[L_ALT].s_addr = 0;
    if (o->alt_addr != NULL
        && (inet_pton(AF_INET, o->alt_addr, &cf->addr[L_ALT]) != 1
            || (ntohl(cf->addr[L_ALT].s_addr) >> 24) != 127
            || cf->addr[L_ALT].s_addr == cf->addr[L_MAIN].s_addr)) {
        complain("--alt-addr must be a loopback address other than 127.0.0.1",
                 o->alt_addr);
        return 0;
    }
    cf->port_file = o->port_file;
    cf->pid_file = o->pid_file;
    cf->log_file = o->log;
    cf->port = 0;
    cf->lifetime_s = 300;
    cf->timeout_s = 10;
    if (o->ndays != NULL && o->nmin != NULL) {
        complain("--ndays and --nmin are exclusive", NULL);
        return 0;
    }
    cf->validity_opt = o->nmin ? "-nmin" : "-ndays";
    cf->validity = o->nmin ? o->nmin : o->ndays ? o->ndays : "1";
    return parse_number(o->port, "--port", 0, 65535, &cf->port)
           && parse_number(o->lifetime, "--lifetime", 1, 86400, &cf->lifetime_s)
           && parse_number(o->timeout, "--timeout", 1, 3600, &cf->timeout_s)
           && parse_number(cf->validity, cf->validity_opt, 1, 10000000, &v);
}

/* ---- main ------------------------------------------------------------- */

static int start(struct server *s)
{
    const struct config *cf = &s->cfg;

    if (!install_signals() || !setup_tmp(s))
        return 0;
    if (cf->log_file != NULL) {
        s->logfd =
            open(cf->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (s->logfd < 0) {
            complain_errno("cannot open", cf->log_file);
            return 0;
        }
    }
    if (!open_listeners(s))
        return 0;
    if (cf->pid_file != NULL && !write_file_atomic(cf->pid_file, getpid()))
        return 0;
    if (cf->port_file != NULL && !write_file_atomic(cf->port_file, cf->port))
        return 0;
    s->end_ms = now_ms() + cf->lifetime_s * 1000;
    fprintf(stderr, "ocsp_responder: listening on 127.0.0.1:%ld%s for %ld s\n",
            cf->port, s->lfd[L_ALT] >= 0 ? " (and --alt-addr)" : "",
            cf->lifetime_s);
    return 1;
}

int main(int argc, char **argv)
{
    static struct server s;
    struct opts o;
    size_t i;
    int ok = 0;

    if (argc == 2
        && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage();
        return 0;
    }
    memset(&o, 0, sizeof(o));
    for (i = 0; i < NLISTEN; i++)
        s.lfd[i] = s.hold[i] = -1;
    s.logfd = -1;
    for (i = 0; i < MAX_CONNS; i++)
        s.conns[i].fd = -1;
    if (!parse_args(argc, argv, &o) || !build_config(&o, &s.cfg)) {
        usage();
        cleanup(&s);
        return 2;
    }
    if (start(&s))
        ok = serve(&s);
    cleanup(&s);
    return ok ? 0 : 1;
}
