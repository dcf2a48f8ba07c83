/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Transport pieces (engine/fetch.h): the RFC 5019 GET URL, the GET/POST
 * threshold, lazy loading of libcurl, refusal of schemes other than http
 * and https, and the redirect restriction with each way of setting it (the
 * libcurl 7.85 _STR options, the older bitmask ones, neither: fail closed),
 * against a loopback server that redirects to ftp:, which libcurl would
 * otherwise follow. Exchanges with a real responder are integration tests.
 */
#include "engine/fetch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "stp_test.h"

struct redirector {
    int http_fd, ftp_fd; /* listeners on 127.0.0.1 */
    int http_port, ftp_port;
    atomic_int http_conns, ftp_conns;
    atomic_int stop;
};

static int listen_any_port(int *port)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0
        || listen(fd, 8) != 0
        || getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

/* Answers every HTTP request with a redirect to ftp://127.0.0.1:<ftp>/;
 * counts connections on both listeners. Bounded by .stop and a 5 s poll. */
static void *redirect_loop(void *arg)
{
    struct redirector *r = arg;
    char buf[4096], reply[256];

    snprintf(reply, sizeof(reply),
             "HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1:%d/x\r\n"
             "Content-Length: 0\r\nConnection: close\r\n\r\n",
             r->ftp_port);
    while (!atomic_load(&r->stop)) {
        struct pollfd p[2] = { { r->http_fd, POLLIN, 0 },
                               { r->ftp_fd, POLLIN, 0 } };
        int fd;

        if (poll(p, 2, 100) <= 0)
            continue;
        if (p[1].revents & POLLIN) {
            fd = accept(r->ftp_fd, NULL, NULL);
            atomic_fetch_add(&r->ftp_conns, 1);
            if (fd >= 0)
                close(fd);
        }
        if (p[0].revents & POLLIN) {
            fd = accept(r->http_fd, NULL, NULL);
            atomic_fetch_add(&r->http_conns, 1);
            if (fd < 0)
                continue;
            if (read(fd, buf, sizeof(buf)) > 0
                && write(fd, reply, strlen(reply)) < 0)
                perror("redirector: write");
            close(fd);
        }
    }
    return NULL;
}

static void test_redirects(void)
{
    static const struct {
        enum stp_fetch_protocols how;
        enum stp_code want;
        int http_conns;
    } rows[] = {
        { STP_FETCH_PROTOCOLS_AUTO, STP_E_BAD_URL, 1 },
        { STP_FETCH_PROTOCOLS_LEGACY, STP_E_BAD_URL, 1 },
        { STP_FETCH_PROTOCOLS_NONE, STP_E_INTERNAL, 0 },
    };
    struct redirector r;
    struct stp_fetch_opts fo = { 3000, 1000, 65536 };
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    pthread_t t;
    char url[64];
    size_t i;

    memset(&r, 0, sizeof(r));
    r.http_fd = listen_any_port(&r.http_port);
    r.ftp_fd = listen_any_port(&r.ftp_port);
    ASSERT_TRUE(r.http_fd >= 0 && r.ftp_fd >= 0);
    ASSERT_EQ(pthread_create(&t, NULL, redirect_loop, &r), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", r.http_port);
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        unsigned char *body = NULL;
        size_t len = 0;
        struct stp_err err;

        atomic_store(&r.http_conns, 0);
        atomic_store(&r.ftp_conns, 0);
        stp_fetch_force_protocols(rows[i].how);
        ASSERT_EQ(stp_fetch(url, req, &fo, &body, &len, &err), 0);
        fprintf(stderr, "# protocols %d: %s\n", (int)rows[i].how, err.msg);
        ASSERT_EQ(err.code, rows[i].want);
        ASSERT_NULL(body);
        ASSERT_EQ(atomic_load(&r.http_conns), rows[i].http_conns);
        /* the redirect to ftp: is never followed */
        ASSERT_EQ(atomic_load(&r.ftp_conns), 0);
    }
    stp_fetch_force_protocols(STP_FETCH_PROTOCOLS_AUTO);
    atomic_store(&r.stop, 1);
    pthread_join(t, NULL);
    close(r.http_fd);
    close(r.ftp_fd);
    OCSP_REQUEST_free(req);
}

static void test_get_url(void)
{
    /* bytes whose base64 is "+/+/" and "AA==": every escaped character */
    static const unsigned char plus_slash[] = { 0xfb, 0xff, 0xbf };
    static const unsigned char pad[] = { 0x00 };
    unsigned char big[300];
    char *u;

    u = stp_fetch_get_url("http://127.0.0.1:8/", plus_slash, 3);
    ASSERT_STREQ(u, "http://127.0.0.1:8/%2B%2F%2B%2F");
    OPENSSL_free(u);
    u = stp_fetch_get_url("http://127.0.0.1:8/ocsp", pad, 1);
    ASSERT_STREQ(u, "http://127.0.0.1:8/ocsp/AA%3D%3D");
    OPENSSL_free(u);
    memset(big, 0xfb, sizeof(big));
    /* 180 bytes -> 240 base64 chars, all escaped -> over 255: POST */
    ASSERT_NULL(stp_fetch_get_url("http://127.0.0.1:8/", big, 180));
    ASSERT_NULL(stp_fetch_get_url("http://127.0.0.1:8/", big, sizeof(big)));
    /* 120 plain bytes -> 160 chars: GET */
    memset(big, 0, sizeof(big));
    u = stp_fetch_get_url("http://127.0.0.1:8/", big, 120);
    ASSERT_NOT_NULL(u);
    OPENSSL_free(u);
}

static void test_schemes(void)
{
    struct stp_fetch_opts fo = { 2000, 1000, 65536 };
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    unsigned char *body = NULL;
    size_t len = 0;
    struct stp_err err;

    ASSERT_EQ(stp_fetch_loaded(), 0);
    ASSERT_EQ(stp_fetch("file:///etc/passwd", req, &fo, &body, &len, &err), 0);
    ASSERT_EQ(err.code, STP_E_BAD_URL);
    ASSERT_NULL(body);
    ASSERT_EQ(stp_fetch_loaded(), 1);
    ASSERT_EQ(stp_fetch("gopher://127.0.0.1/", req, &fo, &body, &len, &err), 0);
    ASSERT_EQ(err.code, STP_E_BAD_URL);
    OCSP_REQUEST_free(req);
}

int main(void)
{
    test_get_url();
    test_schemes();
    test_redirects();
    STP_TEST_MAIN_END();
}
