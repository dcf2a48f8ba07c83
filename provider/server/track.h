/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Certificate tracking: finding the certificates a server context serves
 * (those that carry a private key), their issuer candidates (the chain,
 * extra chain certificates, the context's verify store, the policy's
 * ca_file), the policy's decision for each, and the record the table
 * (cache.h) keeps for it. No I/O.
 */
#ifndef STP_SERVER_TRACK_H
#define STP_SERVER_TRACK_H

#include <openssl/ssl.h>

#include "server/cache.h"

/*
 * The record of <leaf> (served by <ctx> with <chain>, may be NULL), with a
 * claim the caller keeps for as long as <ctx> uses it (stp_cache_release()):
 * the existing record, or a new one inserted into the table (*<is_new> set
 * to 1, one INFO line). Returns NULL on failure (logged). Any thread; only
 * after stp_runtime_active() returned 1.
 */
struct stp_rec *stp_track_cert(SSL_CTX *ctx, X509 *leaf, STACK_OF(X509) *chain,
                               int *is_new);

/* Receives each record stp_track_discover() claimed for its context. */
typedef void (*stp_track_claimed_fn)(void *arg, struct stp_rec *rec);

/*
 * Tracks every certificate with a key that <ctx> holds, without touching
 * the context's current certificate (a throwaway SSL carries a copy of the
 * context's slots), and hands each claim to <keep>. Returns the number of
 * new records. The caller must hold a reference to <ctx>.
 */
int stp_track_discover(SSL_CTX *ctx, stp_track_claimed_fn keep, void *arg);

/*
 * After stp_runtime_recheck() replaced the policy: every server
 * certificate's record takes its effective policy and decision from the new
 * one (a record outlives a reload: the new contexts claim it before the old
 * ones are freed). Only in a process where no refresher runs (a master):
 * nothing else reads the records then.
 */
void stp_track_resolve_again(void);

#endif
