/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fleet tier: a Redis server that every host of a fleet shares, behind
 * each host's store directory (fleet_url, docs/policy.md). It holds, per
 * certificate (<id>, the store's name for it):
 *   <prefix>resp:<id>   the DER response last fetched by any host, with a
 *                       TTL of its nextUpdate minus the time it was written
 *   <prefix>lease:<id>  a token while one host fetches (SET NX PX): the
 *                       others wait for its response instead of asking too
 *   <prefix>meta:<id>   a hash: host, pid, at (who fetched it, and when)
 * This module moves bytes and keeps connections; it trusts none of the
 * bytes (update.c verifies every response read here exactly like a stored
 * file: Redis is a trust boundary).
 *
 * Failure semantics: every command is bounded by fleet_timeout (connect,
 * send, receive). A failure to connect, to authenticate or to talk marks
 * the fleet down: that is logged once, every operation then fails at once
 * (the caller behaves as without a fleet) until a reconnection is tried,
 * after 1 s, then 2, 4, ... at most 30 s; the first success is logged
 * once. Credentials are read once, from fleet_auth_file, and never logged.
 *
 * Processes and threads: no connection is made before the first operation,
 * and only refreshers (and the CLI) call these. Connections are pooled:
 * each operation takes one (or makes one) and gives it back, so threads
 * never share one at the same time. In a child after fork()
 * stp_fleet_after_fork() closes the parent's connections without a byte
 * sent: a connection never serves two processes.
 */
#ifndef STP_ENGINE_FLEET_H
#define STP_ENGINE_FLEET_H

#include <stddef.h>
#include <time.h>

#include "engine/err.h"
#include "engine/policy.h"

struct stp_fleet;

#define STP_FLEET_TOKEN_LEN 33 /* 32 hex digits and the terminator */

/* Who published a response (the <prefix>meta:<id> hash). */
struct stp_fleet_meta {
    char host[65]; /* "" when unknown */
    long pid;
    time_t at; /* 0 when unknown */
};

/*
 * A fleet for <p>'s fleet_* keys (p->fleet_url must be set): reads
 * fleet_auth_file now (refused, with the file named, when it cannot be
 * read, is empty, or is accessible to others or writable by its group) so
 * that a server may read it before it drops privileges. Connects to
 * nothing. Returns NULL with <err> (STP_E_FLEET) on any problem. Any thread.
 */
struct stp_fleet *stp_fleet_new(const struct stp_policy *p,
                                struct stp_err *err);

/* Closes the idle connections and frees <f>; every operation on it must
 * have returned. NULL is fine. */
void stp_fleet_free(struct stp_fleet *f);

/* Retires <f> (a new policy has another fleet): its idle connections are
 * closed now, the ones in use when they are given back; <f> itself stays
 * valid for the operations still running on it (it is never freed). */
void stp_fleet_retire(struct stp_fleet *f);

/* Whether <a> and <b> set the same fleet (fleet_* keys). */
int stp_fleet_same_conf(const struct stp_policy *a, const struct stp_policy *b);

/* The fleet_url, for messages (it carries no credentials). */
const char *stp_fleet_url(const struct stp_fleet *f);

/* This host's name in the fleet (fleet_host, else the host name). */
const char *stp_fleet_host(const struct stp_fleet *f);

/*
 * The response published for <id>, at most <max> bytes: 1 with a new DER
 * in *der (OPENSSL_free()) and, if <meta> is not NULL, who published it;
 * 0 when there is none (or it is larger than <max>: refused, logged);
 * -1 when the fleet cannot be asked now (down, or a command failed).
 */
int stp_fleet_get(struct stp_fleet *f, const char *id, size_t max,
                  unsigned char **der, size_t *len,
                  struct stp_fleet_meta *meta);

/*
 * Tries to take <id>'s lease for <ttl_ms>: 1 when it is ours (its token in
 * <token>), 0 when another host holds it, -1 when the fleet cannot be asked.
 */
int stp_fleet_lease(struct stp_fleet *f, const char *id, long ttl_ms,
                    char token[STP_FLEET_TOKEN_LEN]);

/* Releases <id>'s lease if it still holds <token> (compare and delete, in
 * one server-side step). Best effort. */
void stp_fleet_release(struct stp_fleet *f, const char *id,
                       const char token[STP_FLEET_TOKEN_LEN]);

/*
 * Publishes <der> as <id>'s response for <ttl_ms> (at least 1), with this
 * host, this process and <now> as its meta. Returns 1 when stored, -1 when
 * not (the fleet is down, or a command failed).
 */
int stp_fleet_publish(struct stp_fleet *f, const char *id,
                      const unsigned char *der, size_t len, long long ttl_ms,
                      time_t now);

/*
 * For `ocspstaple status --fleet`: <id>'s meta and the time its response
 * has left in ms (*ttl_ms: -2 when there is none). Returns 1, or -1 when
 * the fleet cannot be asked (<err> says why: unreachable, AUTH, ...).
 */
int stp_fleet_describe(struct stp_fleet *f, const char *id,
                       struct stp_fleet_meta *meta, long long *ttl_ms,
                       struct stp_err *err);

/*
 * Asks the server for a PING (connecting and authenticating as the hosts
 * do): 1 when it answers; -1 with <err> (STP_E_FLEET; detail 1 when the
 * server itself refused: AUTH, ACL or SELECT; 0 when it could not be
 * reached or talked to). For `ocspstaple check`.
 */
int stp_fleet_ping(struct stp_fleet *f, struct stp_err *err);

/*
 * In a child after fork(): closes every connection of <f> without a byte
 * sent and forgets it (one another thread of the parent was using is
 * abandoned, not freed). Only the forking thread runs in the child.
 */
void stp_fleet_after_fork(struct stp_fleet *f);

#endif
