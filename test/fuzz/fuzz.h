/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the fuzz targets: the libFuzzer entry points (replay.c calls the
 * same two, so every build runs the committed corpus), the fixed PKI the
 * corpus was generated with (fuzz_pki.c, written by make_corpus.sh), and
 * small helpers. A broken invariant aborts, as libFuzzer expects.
 */
#ifndef OCSPSTAPLE_TEST_FUZZ_H
#define OCSPSTAPLE_TEST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Called once before any input. Each target defines it. */
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* One input; returns 0. Each target defines it. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_pki.c: the instant seeds are verified at, and PEM texts. */
extern const long long fz_now;
extern const char fz_pem_root[];
extern const char fz_pem_int[];
extern const char fz_pem_ocsp[];
extern const char fz_pem_noeku[];
extern const char fz_pem_rogue[];
extern const char fz_pem_rogue_ocsp[];
extern const char fz_pem_ecdsa[];
extern const char fz_pem_revoked[];
extern const char fz_pem_unknown[];
extern const char fz_pem_muststaple[];
extern const char fz_pem_int_key[];
extern const char fz_pem_ocsp_key[];
extern const char fz_pem_noeku_key[];
extern const char fz_pem_rogue_ocsp_key[];

/* The fixed PKI, decoded (mkpki.sh names in comments). */
struct fz_pki {
    X509 *root;            /* root: self-signed, issued int */
    X509 *issuer;          /* int: issuer of every leaf below */
    X509 *responder;       /* ocsp: delegated by int (OCSP-signing EKU) */
    X509 *noeku;           /* noeku: issued by int, no EKU */
    X509 *rogue;           /* rogue: unrelated self-signed CA */
    X509 *rogue_responder; /* rogue-ocsp: EKU, but issued by rogue */
    X509 *leaf;            /* ecdsa: the certificate the targets ask about */
    X509 *revoked;         /* revoked in the responder's index */
    X509 *unknown;         /* not in the responder's index */
    X509 *muststaple;      /* TLS feature status_request */
    EVP_PKEY *issuer_key;
    EVP_PKEY *responder_key;
    EVP_PKEY *noeku_key;
    EVP_PKEY *rogue_responder_key;
    time_t now; /* fz_now */
};

/*
 * Process setup shared by the targets, idempotent: OpenSSL without any
 * openssl.cnf, our log at debug level into /dev/null (OCSPSTAPLE_DEBUG still
 * wins), the PKI decoded.
 * Aborts if the PKI cannot be decoded. The PKI lives until exit.
 */
const struct fz_pki *fz_setup(void);

/*
 * A private directory for this process, created on first use under
 * $TMPDIR, else /dev/shm (tmpfs: the store fsyncs), else /tmp, and emptied
 * and removed at exit. Aborts if it cannot be created.
 */
const char *fz_scratch_dir(void);

/* Prints "<file>:<line>: invariant broken: <what>" and aborts. */
void fz_fail(const char *file, int line, const char *what)
    __attribute__((noreturn));

#define FZ_CHECK(cond)                          \
    do {                                        \
        if (!(cond))                            \
            fz_fail(__FILE__, __LINE__, #cond); \
    } while (0)

#endif
