/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Transport pieces that need no server (provider/fetch.h): the RFC 5019 GET
 * URL, the GET/POST threshold, lazy loading of libcurl, and refusal of
 * schemes other than http and https. Exchanges with a real responder are
 * integration tests.
 */
#include "engine/fetch.h"

#include <openssl/crypto.h>

#include "stp_test.h"

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
    STP_TEST_MAIN_END();
}
