/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Client-certificate OCSP (client_ocsp = leaf | chain): the status of the
 * certificates of a client chain that OpenSSL has just verified, decided
 * inside that verification (hook.c's verification procedure calls
 * stp_client_check() once X509_verify_cert() accepted the chain), so that a
 * server refuses a revoked client exactly as it refuses any other bad
 * chain, with the code it already has.
 *
 * Each checked certificate has a record in the cache (cache.h, a client
 * record), fetched, verified, stored in store_dir and refreshed by the
 * refresher like a staple, so that a client seen before is decided from
 * memory with no I/O, a process that starts reads the answer another
 * process (or its previous life) stored, and every process on the host
 * shares one request per refresh. A certificate met for the first time
 * reads its stored answer (one file) and, if there is none, waits at most
 * client_ocsp_timeout for the refresher's first fetch; the fetch goes on
 * after that, so the next handshake is decided from memory. A client
 * record unused for CLIENT_IDLE_S is forgotten by the refresher.
 *
 * Decisions: "good" admits; "revoked" refuses (X509_V_ERR_CERT_REVOKED);
 * "unknown" refuses (X509_V_ERR_OCSP_CERT_UNKNOWN) unless
 * client_ocsp_unknown = allow; no answer in time refuses
 * (X509_V_ERR_OCSP_VERIFY_FAILED) under client_ocsp_fail = closed, and
 * admits under open unless an answer ever said "revoked"; a certificate
 * that names no responder (and no client_ocsp_default_responder applies) is
 * skipped, or refused (X509_V_ERR_OCSP_VERIFY_NEEDED) under
 * client_ocsp_no_url = refuse. A refusal is reported as OpenSSL reports
 * any verification error: the chain's error, error depth and current
 * certificate are set and the verify callback is called with ok = 0; its
 * answer decides (nginx's callback, which admits everything and reads the
 * verify result after the handshake, then sees the error there). Each
 * change of a certificate's decision is one log line; nothing is logged
 * per handshake.
 */
#ifndef STP_SERVER_CLIENT_H
#define STP_SERVER_CLIENT_H

#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

struct stp_rec;

/* A client record not used by any handshake for this long is forgotten. */
#define CLIENT_IDLE_S (24 * 3600)

/*
 * Checks the verified chain of <x> (a server SSL's peer chain, verified
 * without error) as the policy says. Returns 1 to admit, 0 to refuse (the
 * error is set in <x>). Runs on the handshake's thread; waits at most
 * client_ocsp_timeout per certificate met for the first time.
 */
int stp_client_check(X509_STORE_CTX *x);

/*
 * Whether a session of a client certificate (its ticket decrypted) on <s>
 * may be resumed: 1 if client_ocsp is off, the session has no client
 * certificate,
 * or that certificate's current decision (from memory, no wait) admits it;
 * 0 otherwise, and for a certificate this process holds no record of (it
 * then makes a full handshake, where its chain is verified and checked).
 * Only the client's own certificate is judged (a session keeps no chain).
 */
int stp_client_may_resume(SSL *s, SSL_SESSION *ss);

/* The refresher's pass, for client record <rec> at <now>: 1 if it has
 * not been used for CLIENT_IDLE_S (the caller then forgets it). */
int stp_client_idle(const struct stp_rec *rec, time_t now);

#endif
