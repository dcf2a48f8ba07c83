/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP transport for OCSP (see fetch.h). libcurl's easy interface, loaded at
 * run time; one easy handle per exchange (refreshes are rare, so reuse buys
 * nothing and a handle never outlives its thread).
 */
#include "engine/fetch.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

/* RFC 5019 5: GET for requests under 255 bytes once encoded */
#define GET_LIMIT 255

struct curl_api {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
    CURLcode (*easy_perform)(CURL *h);
    CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *h);
    const char *(*easy_strerror)(CURLcode code);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
};

static struct curl_api api;
static int api_ok;
static char api_error[256];
static pthread_once_t api_once = PTHREAD_ONCE_INIT;

static int load_sym(void *lib, const char *name, void *slot)
{
    void *sym = dlsym(lib, name);

    if (sym == NULL)
        return 0;
    memcpy(slot, &sym, sizeof(sym));
    return 1;
}

static void load_curl(void)
{
    static const char *const names[] = { "libcurl.so.4",
                                         "libcurl-gnutls.so.4" };
    void *lib = NULL;
    size_t i;

    for (i = 0; lib == NULL && i < sizeof(names) / sizeof(names[0]); i++)
        lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (lib == NULL) {
        snprintf(api_error, sizeof(api_error), "cannot load libcurl: %s",
                 dlerror());
        return;
    }
    if (!load_sym(lib, "curl_global_init", &api.global_init)
        || !load_sym(lib, "curl_easy_init", &api.easy_init)
        || !load_sym(lib, "curl_easy_setopt", &api.easy_setopt)
        || !load_sym(lib, "curl_easy_perform", &api.easy_perform)
        || !load_sym(lib, "curl_easy_getinfo", &api.easy_getinfo)
        || !load_sym(lib, "curl_easy_cleanup", &api.easy_cleanup)
        || !load_sym(lib, "curl_easy_strerror", &api.easy_strerror)
        || !load_sym(lib, "curl_slist_append", &api.slist_append)
        || !load_sym(lib, "curl_slist_free_all", &api.slist_free_all)) {
        snprintf(api_error, sizeof(api_error), "libcurl lacks a symbol");
        return;
    }
    if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(api_error, sizeof(api_error), "curl_global_init failed");
        return;
    }
    api_ok = 1;
}

int stp_fetch_loaded(void)
{
    return api_ok;
}

int stp_fetch_preload(struct stp_err *err)
{
    pthread_once(&api_once, load_curl);
    if (!api_ok)
        return stp_err_set(err, STP_E_INTERNAL, 0, "%s", api_error);
    return 1;
}

char *stp_fetch_get_url(const char *url, const unsigned char *der, size_t len)
{
    size_t b64cap = 4 * ((len + 2) / 3) + 1, ulen = strlen(url), i, o = 0;
    unsigned char *b64;
    char *enc, *out;
    int n;

    if (len > GET_LIMIT)
        return NULL;
    b64 = OPENSSL_malloc(b64cap);
    enc = OPENSSL_malloc(3 * b64cap + 1);
    if (b64 == NULL || enc == NULL)
        goto fail;
    n = EVP_EncodeBlock(b64, der, (int)len);
    for (i = 0; i < (size_t)n; i++) {
        unsigned char c = b64[i];

        if (c == '+' || c == '/' || c == '=')
            o += (size_t)sprintf(enc + o, "%%%02X", c);
        else
            enc[o++] = (char)c;
    }
    enc[o] = '\0';
    if (o >= GET_LIMIT)
        goto fail;
    out = OPENSSL_malloc(ulen + o + 2);
    if (out == NULL)
        goto fail;
    sprintf(out, "%s%s%s", url, ulen > 0 && url[ulen - 1] == '/' ? "" : "/",
            enc);
    OPENSSL_free(b64);
    OPENSSL_free(enc);
    return out;
fail:
    OPENSSL_free(b64);
    OPENSSL_free(enc);
    return NULL;
}

struct body {
    unsigned char *data;
    size_t len;
    size_t max;
    int too_large;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct body *b = arg;
    size_t n = size * nmemb;
    unsigned char *grown;

    if (n > b->max - b->len) {
        b->too_large = 1;
        return 0; /* aborts the transfer */
    }
    grown = OPENSSL_realloc(b->data, b->len + n + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + b->len, ptr, n);
    b->data = grown;
    b->len += n;
    return n;
}

static enum stp_code code_of_curl(CURLcode rc, const struct body *b)
{
    if (b->too_large || rc == CURLE_FILESIZE_EXCEEDED)
        return STP_E_TOO_LARGE;
    switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return STP_E_BAD_URL;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return STP_E_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return STP_E_TIMEOUT;
    default:
        return STP_E_TRANSPORT;
    }
}

/* CURLOPT_PROTOCOLS and CURLOPT_REDIR_PROTOCOLS (bitmasks), deprecated by
 * 7.85's _STR options but the only ones older libcurls know; by number, so
 * that building against a new curl.h raises no deprecation. */
#define OPT_PROTOCOLS_MASK       ((CURLoption)(CURLOPTTYPE_LONG + 181))
#define OPT_REDIR_PROTOCOLS_MASK ((CURLoption)(CURLOPTTYPE_LONG + 182))

static enum stp_fetch_protocols forced; /* test seam (fetch.h) */

void stp_fetch_force_protocols(enum stp_fetch_protocols how)
{
    forced = how;
}

static CURLcode set_str(CURL *h, CURLoption opt, const char *v)
{
    if (forced != STP_FETCH_PROTOCOLS_AUTO)
        return CURLE_UNKNOWN_OPTION; /* as libcurl before 7.85 answers */
    return api.easy_setopt(h, opt, v);
}

static CURLcode set_mask(CURL *h, CURLoption opt, long v)
{
    if (forced == STP_FETCH_PROTOCOLS_NONE)
        return CURLE_UNKNOWN_OPTION;
    return api.easy_setopt(h, opt, v);
}

/*
 * Only http and https, also across redirects: with the _STR options, else
 * with the bitmask ones; if neither takes, the transfer must not happen (a
 * plain-http responder could redirect to file:, dict: or gopher:).
 */
static int restrict_protocols(CURL *h, struct stp_err *err)
{
    const long mask = CURLPROTO_HTTP | CURLPROTO_HTTPS;

    if (set_str(h, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK
        && set_str(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK)
        return 1;
    if (set_mask(h, OPT_PROTOCOLS_MASK, mask) == CURLE_OK
        && set_mask(h, OPT_REDIR_PROTOCOLS_MASK, mask) == CURLE_OK)
        return 1;
    return stp_err_set(err, STP_E_INTERNAL, 0,
                       "libcurl cannot restrict the protocols to http and "
                       "https: not fetching");
}

static int set_common(CURL *h, const struct stp_fetch_opts *o, struct body *b,
                      char *errbuf, struct stp_err *err)
{
    CURLcode rc = CURLE_OK;

    if (!restrict_protocols(h, err))
        return 0;
#define SET(opt, v)                          \
    do {                                     \
        if (rc == CURLE_OK)                  \
            rc = api.easy_setopt(h, opt, v); \
    } while (0)
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, 2L);
    SET(CURLOPT_TIMEOUT_MS, o->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_size);
    SET(CURLOPT_USERAGENT, "ocspstaple/" OCSPSTAPLE_VERSION);
    SET(CURLOPT_WRITEFUNCTION, on_data);
    SET(CURLOPT_WRITEDATA, b);
    SET(CURLOPT_ERRORBUFFER, errbuf);
#undef SET
    if (rc != CURLE_OK)
        return stp_err_set(err, STP_E_INTERNAL, rc, "libcurl option: %s",
                           api.easy_strerror(rc));
    return 1;
}

static int perform(CURL *h, const char *url, struct body *b, char *errbuf,
                   struct stp_err *err)
{
    CURLcode rc = api.easy_perform(h);
    long status = 0;

    if (rc != CURLE_OK)
        return stp_err_set(err, code_of_curl(rc, b), rc, "%s: %s", url,
                           b->too_large ? "response body over the size cap"
                           : errbuf[0] != '\0' ? errbuf
                                               : api.easy_strerror(rc));
    api.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200)
        return stp_err_set(err, STP_E_HTTP, status, "%s: HTTP status %ld", url,
                           status);
    return 1;
}

int stp_fetch(const char *url, OCSP_REQUEST *req,
              const struct stp_fetch_opts *opts, unsigned char **body,
              size_t *len, struct stp_err *err)
{
    struct body b = { NULL, 0, opts->max_size, 0 };
    struct curl_slist *hdrs = NULL;
    unsigned char *der = NULL;
    char errbuf[CURL_ERROR_SIZE] = "", *get_url = NULL;
    CURL *h = NULL;
    CURLcode rc;
    int derlen, ok = 0;

    *body = NULL;
    *len = 0;
    pthread_once(&api_once, load_curl);
    if (!api_ok)
        return stp_err_set(err, STP_E_INTERNAL, 0, "%s", api_error);
    derlen = i2d_OCSP_REQUEST(req, &der);
    h = api.easy_init();
    if (derlen <= 0 || h == NULL) {
        stp_err_set(err, STP_E_INTERNAL, 0, "cannot encode the request");
        goto end;
    }
    if (!set_common(h, opts, &b, errbuf, err))
        goto end;
    get_url = stp_fetch_get_url(url, der, (size_t)derlen);
    if (get_url != NULL) {
        rc = api.easy_setopt(h, CURLOPT_URL, get_url);
    } else {
        hdrs = api.slist_append(NULL, "Content-Type: application/ocsp-request");
        rc = hdrs == NULL ? CURLE_OUT_OF_MEMORY
                          : api.easy_setopt(h, CURLOPT_URL, url);
        if (rc == CURLE_OK)
            rc = api.easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        if (rc == CURLE_OK)
            rc = api.easy_setopt(h, CURLOPT_POSTFIELDS, der);
        if (rc == CURLE_OK)
            rc = api.easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)derlen);
    }
    if (rc != CURLE_OK) {
        stp_err_set(err,
                    rc == CURLE_URL_MALFORMAT ? STP_E_BAD_URL : STP_E_INTERNAL,
                    rc, "%s: libcurl: %s", url, api.easy_strerror(rc));
        goto end;
    }
    if (!perform(h, url, &b, errbuf, err))
        goto end;
    *body = b.data;
    *len = b.len;
    b.data = NULL;
    ok = 1;
end:
    OPENSSL_free(b.data);
    OPENSSL_free(get_url);
    OPENSSL_free(der);
    if (hdrs != NULL)
        api.slist_free_all(hdrs);
    if (h != NULL)
        api.easy_cleanup(h);
    return ok;
}
