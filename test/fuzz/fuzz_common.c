/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the fuzz targets (see fuzz.h): decoding the fixed PKI,
 * a per-process scratch directory, aborting on a broken invariant.
 */
#include "fuzz.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "engine/log.h"

static struct fz_pki pki;
static int pki_ready;
static char scratch[4096];

void fz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
    abort();
}

static X509 *cert(const char *pem)
{
    BIO *in = BIO_new_mem_buf(pem, -1);
    X509 *x = in != NULL ? PEM_read_bio_X509(in, NULL, NULL, NULL) : NULL;

    BIO_free(in);
    if (x == NULL)
        fz_fail(__FILE__, __LINE__, "fuzz_pki.c: certificate");
    return x;
}

static EVP_PKEY *key(const char *pem)
{
    BIO *in = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k =
        in != NULL ? PEM_read_bio_PrivateKey(in, NULL, NULL, NULL) : NULL;

    BIO_free(in);
    if (k == NULL)
        fz_fail(__FILE__, __LINE__, "fuzz_pki.c: private key");
    return k;
}

const struct fz_pki *fz_setup(void)
{
    if (pki_ready)
        return &pki;
    /* The host's openssl.cnf might load providers, even ours. */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
    /* Every level, so that formatting runs on fuzzed strings; nowhere. */
    stp_log_configure(STP_LOG_LEVEL_DEBUG, "/dev/null");
    pki.root = cert(fz_pem_root);
    pki.issuer = cert(fz_pem_int);
    pki.responder = cert(fz_pem_ocsp);
    pki.noeku = cert(fz_pem_noeku);
    pki.rogue = cert(fz_pem_rogue);
    pki.rogue_responder = cert(fz_pem_rogue_ocsp);
    pki.leaf = cert(fz_pem_ecdsa);
    pki.revoked = cert(fz_pem_revoked);
    pki.unknown = cert(fz_pem_unknown);
    pki.muststaple = cert(fz_pem_muststaple);
    pki.issuer_key = key(fz_pem_int_key);
    pki.responder_key = key(fz_pem_ocsp_key);
    pki.noeku_key = key(fz_pem_noeku_key);
    pki.rogue_responder_key = key(fz_pem_rogue_ocsp_key);
    pki.now = (time_t)fz_now;
    ERR_clear_error();
    pki_ready = 1;
    return &pki;
}

static void remove_scratch(void)
{
    struct dirent *de;
    DIR *d;

    if (scratch[0] == '\0')
        return;
    d = opendir(scratch);
    if (d != NULL) {
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                unlinkat(dirfd(d), de->d_name, 0);
        }
        closedir(d);
    }
    rmdir(scratch);
    scratch[0] = '\0';
}

static int usable_dir(const char *dir)
{
    struct stat sb;

    return dir != NULL && dir[0] == '/' && stat(dir, &sb) == 0
           && S_ISDIR(sb.st_mode) && access(dir, W_OK | X_OK) == 0;
}

const char *fz_scratch_dir(void)
{
    const char *base = getenv("TMPDIR");

    if (scratch[0] != '\0')
        return scratch;
    if (!usable_dir(base))
        base = usable_dir("/dev/shm") ? "/dev/shm" : "/tmp";
    snprintf(scratch, sizeof(scratch), "%s/stp-fuzz-%ld-XXXXXX", base,
             (long)getpid());
    if (mkdtemp(scratch) == NULL) {
        scratch[0] = '\0';
        fz_fail(__FILE__, __LINE__, "cannot create a scratch directory");
    }
    atexit(remove_scratch);
    return scratch;
}
