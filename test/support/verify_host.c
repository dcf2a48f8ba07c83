/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An mTLS server that does not know ocspstaple and sets its own certificate
 * verification procedure (SSL_CTX_set_cert_verify_callback), as some
 * applications do: it runs X509_verify_cert() and then refuses a client
 * whose subject CN is DENY_CN (its own rule), printing "APP VERIFY <CN>
 * ok|denied" for each chain, and its own session ticket callbacks (app data
 * "app" in each ticket, "APP TICKET <data>" printed when one is decrypted).
 * Requires a client certificate, trusting
 * CA_FILE. Serves handshakes one at a time ("ACCEPT 127.0.0.1:N" first)
 * until SIGTERM; each accepted client gets "VERIFY <n>\n", n the verify
 * result. Test code only (it/client_ocsp_appverify_*).
 *
 * usage: verify_host CERT KEY CHAIN CA_FILE DENY_CN
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls_host.h"

static const char *deny_cn;

static int app_verify(X509_STORE_CTX *x, void *arg)
{
    char cn[256] = "?";
    X509 *leaf = X509_STORE_CTX_get0_cert(x);
    int ok;

    (void)arg;
    if (leaf != NULL)
        X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName,
                                  cn, sizeof(cn));
    ok = X509_verify_cert(x);
    if (ok > 0 && strcmp(cn, deny_cn) == 0) {
        X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
        ok = 0;
    }
    printf("APP VERIFY %s %s\n", cn, ok > 0 ? "ok" : "denied");
    fflush(stdout);
    return ok;
}

static int app_gen(SSL *s, void *arg)
{
    (void)arg;
    return SSL_SESSION_set1_ticket_appdata(SSL_get_session(s), "app", 3);
}

static SSL_TICKET_RETURN app_dec(SSL *s, SSL_SESSION *ss,
                                 const unsigned char *keyname,
                                 size_t keyname_len, SSL_TICKET_STATUS status,
                                 void *arg)
{
    void *data = NULL;
    size_t len = 0;

    (void)s;
    (void)keyname;
    (void)keyname_len;
    (void)arg;
    if (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW)
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    if (SSL_SESSION_get0_ticket_appdata(ss, &data, &len) && len == 3) {
        printf("APP TICKET %.3s\n", (const char *)data);
        fflush(stdout);
    }
    return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE
                                        : SSL_TICKET_RETURN_USE_RENEW;
}

int main(int argc, char **argv)
{
    SSL_CTX *ctx;
    int lfd;

    if (argc != 6) {
        fprintf(stderr, "usage: verify_host CERT KEY CHAIN CA_FILE DENY_CN\n");
        return 2;
    }
    deny_cn = argv[5];
    signal(SIGPIPE, SIG_IGN);
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL
        || SSL_CTX_use_certificate_file(ctx, argv[1], SSL_FILETYPE_PEM) != 1
        || SSL_CTX_use_PrivateKey_file(ctx, argv[2], SSL_FILETYPE_PEM) != 1
        || !th_add_chain(ctx, argv[3])
        || SSL_CTX_load_verify_locations(ctx, argv[4], NULL) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    SSL_CTX_set_cert_verify_callback(ctx, app_verify, NULL);
    SSL_CTX_set_session_ticket_cb(ctx, app_gen, app_dec, NULL);
    /* without one, libssl resumes no session of a verified client */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"vh", 2);
    lfd = th_listen_loopback();
    if (lfd < 0)
        return 1;
    for (;;) {
        struct timeval tv = { 5, 0 };
        int fd = accept(lfd, NULL, NULL);
        SSL *ssl;

        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        ssl = SSL_new(ctx);
        if (ssl != NULL && SSL_set_fd(ssl, fd) && SSL_accept(ssl) == 1) {
            char line[32];
            int n = snprintf(line, sizeof(line), "VERIFY %ld\n",
                             SSL_get_verify_result(ssl));

            SSL_write(ssl, line, n);
            SSL_shutdown(ssl);
        }
        SSL_free(ssl);
        ERR_clear_error();
        close(fd);
    }
}
