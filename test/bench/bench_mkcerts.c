/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_mkcerts DIR N PORT HANG_PORT HANG_EVERY: the scale benchmark's PKI,
 * made with the OpenSSL API (an `openssl x509 -req` per leaf costs about
 * 50 ms, 8 minutes for 10,000 leaves; this takes about a second).
 *
 *   DIR/root.pem, root.key      EC P-256 root CA
 *   DIR/int.pem, int.key        EC P-256 intermediate; it signs the leaves
 *                               and, directly, the OCSP responses
 *   DIR/trusted.pem             root and intermediate (nginx's
 *                               ssl_trusted_certificate)
 *   DIR/leaf.key                ONE EC P-256 key shared by every leaf (the
 *                               benchmark measures certificates, not keys)
 *   DIR/certs/h<i>.chain.pem    leaf i (1..N) then the intermediate
 *   DIR/index.txt               `openssl ca` database: every leaf valid
 *
 * Leaf i: subject CN=h<i>.bench.test, subjectAltName DNS:h<i>.bench.test,
 * serverAuth, serial 0x10000 + i, valid from one hour ago for 10 days, AIA
 * OCSP URL http://127.0.0.1:PORT/, or http://127.0.0.1:HANG_PORT/ when i is
 * a multiple of HANG_EVERY (0: none), the "hanging" certificates.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define SERIAL_BASE 0x10000L
#define LEAF_DAYS   10
#define CA_DAYS     30
#define MAX_N       1000000L

static const char *g_dir;

static void die(const char *what)
{
    fprintf(stderr, "bench_mkcerts: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");

    if (k == NULL)
        die("EC key generation failed");
    return k;
}

static void path(char *buf, size_t len, const char *name)
{
    if ((size_t)snprintf(buf, len, "%s/%s", g_dir, name) >= len)
        die("path too long");
}

static FILE *open_out(const char *name)
{
    char p[4096];
    FILE *f;

    path(p, sizeof(p), name);
    f = fopen(p, "w");
    if (f == NULL) {
        fprintf(stderr, "bench_mkcerts: %s: %s\n", p, strerror(errno));
        exit(1);
    }
    return f;
}

static void close_out(FILE *f, const char *name)
{
    if (ferror(f) || fclose(f) != 0) {
        fprintf(stderr, "bench_mkcerts: writing %s failed\n", name);
        exit(1);
    }
}

static void write_key(const char *name, EVP_PKEY *k)
{
    FILE *f = open_out(name);

    if (!PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL))
        die("PEM_write_PrivateKey failed");
    close_out(f, name);
}

static void write_certs(const char *name, X509 *a, X509 *b)
{
    FILE *f = open_out(name);

    if (!PEM_write_X509(f, a) || (b != NULL && !PEM_write_X509(f, b)))
        die("PEM_write_X509 failed");
    close_out(f, name);
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *e;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (e == NULL || !X509_add_ext(x, e, -1)) {
        fprintf(stderr, "bench_mkcerts: extension %s = %s\n", OBJ_nid2sn(nid),
                value);
        die("adding an extension failed");
    }
    X509_EXTENSION_free(e);
}

/* An unsigned certificate for KEY named [O=ORG,] CN=CN, issued by ISSUER
 * (NULL: self-issued). */
static X509 *make_cert(EVP_PKEY *key, const char *org, const char *cn,
                       long serial, int days, X509 *issuer)
{
    X509 *x = X509_new();
    X509_NAME *n;

    if (x == NULL || !X509_set_version(x, 2)
        || !ASN1_INTEGER_set(X509_get_serialNumber(x), serial)
        || X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL
        || X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) == NULL
        || !X509_set_pubkey(x, key))
        die("building a certificate failed");
    n = X509_get_subject_name(x);
    if ((org != NULL
         && !X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
                                        (const unsigned char *)org, -1, -1, 0))
        || !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                       (const unsigned char *)cn, -1, -1, 0))
        die("building a subject failed");
    if (!X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x)))
        die("setting the issuer failed");
    return x;
}

static void sign(X509 *x, EVP_PKEY *k)
{
    if (!X509_sign(x, k, EVP_sha256()))
        die("X509_sign failed");
}

/* openssl ca's index time format: YYMMDDHHMMSSZ. */
static void index_time(const ASN1_TIME *t, char *out, size_t len)
{
    struct tm tm;

    if (!ASN1_TIME_to_tm(t, &tm)
        || (size_t)snprintf(out, len, "%02d%02d%02d%02d%02d%02dZ",
                            tm.tm_year % 100, tm.tm_mon + 1, tm.tm_mday,
                            tm.tm_hour, tm.tm_min, tm.tm_sec)
               >= len)
        die("formatting a time failed");
}

static long parse_num(const char *s, long lo, long hi, const char *what)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "bench_mkcerts: bad %s '%s'\n", what, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    EVP_PKEY *root_key, *int_key, *leaf_key;
    X509 *root, *inter;
    FILE *idx;
    char dir[4096], url[128], hang_url[128], name[64], file[96], exp[32];
    long n, port, hang_port, hang_every, i;

    if (argc != 6) {
        fprintf(stderr, "usage: bench_mkcerts DIR N PORT HANG_PORT "
                        "HANG_EVERY\n");
        return 2;
    }
    g_dir = argv[1];
    n = parse_num(argv[2], 1, MAX_N, "N");
    port = parse_num(argv[3], 1, 65535, "PORT");
    hang_port = parse_num(argv[4], 1, 65535, "HANG_PORT");
    hang_every = parse_num(argv[5], 0, MAX_N, "HANG_EVERY");
    snprintf(url, sizeof(url), "OCSP;URI:http://127.0.0.1:%ld/", port);
    snprintf(hang_url, sizeof(hang_url), "OCSP;URI:http://127.0.0.1:%ld/",
             hang_port);
    path(dir, sizeof(dir), "certs");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "bench_mkcerts: mkdir %s: %s\n", dir, strerror(errno));
        return 1;
    }

    root_key = new_key();
    root = make_cert(root_key, "ocspstaple bench", "STP Bench Root CA", 1,
                     CA_DAYS, NULL);
    add_ext(root, root, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(root, root, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(root, root, NID_subject_key_identifier, "hash");
    sign(root, root_key);

    int_key = new_key();
    inter = make_cert(int_key, "ocspstaple bench", "STP Bench Intermediate CA",
                      2, CA_DAYS, root);
    add_ext(inter, root, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    add_ext(inter, root, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(inter, root, NID_subject_key_identifier, "hash");
    add_ext(inter, root, NID_authority_key_identifier, "keyid");
    sign(inter, root_key);

    leaf_key = new_key();
    write_key("root.key", root_key);
    write_key("int.key", int_key);
    write_key("leaf.key", leaf_key);
    write_certs("root.pem", root, NULL);
    write_certs("int.pem", inter, NULL);
    write_certs("trusted.pem", root, inter);

    idx = open_out("index.txt");
    for (i = 1; i <= n; i++) {
        X509 *leaf;
        char san[80];

        snprintf(name, sizeof(name), "h%ld.bench.test", i);
        snprintf(san, sizeof(san), "DNS:%s", name);
        leaf =
            make_cert(leaf_key, NULL, name, SERIAL_BASE + i, LEAF_DAYS, inter);
        add_ext(leaf, inter, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(leaf, inter, NID_key_usage, "critical,digitalSignature");
        add_ext(leaf, inter, NID_ext_key_usage, "serverAuth");
        add_ext(leaf, inter, NID_subject_alt_name, san);
        add_ext(leaf, inter, NID_authority_key_identifier, "keyid");
        add_ext(leaf, inter, NID_info_access,
                hang_every > 0 && i % hang_every == 0 ? hang_url : url);
        sign(leaf, int_key);
        snprintf(file, sizeof(file), "certs/h%ld.chain.pem", i);
        write_certs(file, leaf, inter);
        index_time(X509_get0_notAfter(leaf), exp, sizeof(exp));
        /* status, expiry, revocation (none), serial (hex), file, subject */
        fprintf(idx, "V\t%s\t\t%lX\tunknown\t/CN=%s\n", exp, SERIAL_BASE + i,
                name);
        X509_free(leaf);
    }
    close_out(idx, "index.txt");

    X509_free(inter);
    X509_free(root);
    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(int_key);
    EVP_PKEY_free(root_key);
    return 0;
}
