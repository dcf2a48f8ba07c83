/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The per-process state shared by every route into the library: which
 * route registered the hooks (provider, LD_PRELOAD, or an application that
 * calls ocspstaple_attach()), the policy (parsed when the process starts and
 * again on a master's reload, see stp_runtime_recheck(); each immutable,
 * never freed), whether the module is active or passive and why, the store
 * directory and the extra trust anchors. Exactly one copy per process: the
 * provider module is a thin shim over this library, so a process that loads
 * both routes still has one table, one refresher, one policy.
 */
#ifndef STP_SERVER_RUNTIME_H
#define STP_SERVER_RUNTIME_H

#include <stddef.h>

#include <openssl/x509.h>

#include "engine/err.h"
#include "engine/policy.h"
#include "engine/fleet.h"
#include "engine/store.h"

enum stp_route {
    STP_ROUTE_NONE = 0,
    STP_ROUTE_PROVIDER, /* openssl.cnf loaded ocspstaple.so */
    STP_ROUTE_PRELOAD,  /* LD_PRELOAD=libocspstaple.so */
    STP_ROUTE_API       /* the application called ocspstaple_attach() */
};

/*
 * Takes the process identity (program name, $OCSPSTAPLE_CONF,
 * $OPENSSL_CONF) now: servers such as nginx rewrite argv[0] and clear the
 * environment of their workers later. Called by stp_boot() only.
 */
void stp_runtime_capture(void);

/* Records <route> as the one that registered the hooks, if none had:
 * returns 1, or 0 when a route already was set. */
int stp_runtime_set_route(enum stp_route route);

/* In a fork child: reinitialises the lock. */
void stp_runtime_after_fork(void);

/* The route that registered the hooks. */
enum stp_route stp_runtime_route(void);

/*
 * Provider route: the policy from the provider's section (<kv>), unless the
 * configuration file OpenSSL read holds the same section in full (which
 * also carries per-certificate sections and misspelt keys that the core
 * cannot list). Problems are logged; the module then stays passive.
 */
void stp_runtime_configure(const char *provider_name, const struct stp_kv *kv,
                           size_t n);

/*
 * Returns 1 if the hooks should act in this process: the policy is valid,
 * this program is allowed, the mode is not `never` everywhere. Loads the
 * policy on first use for the preload and API routes ($OCSPSTAPLE_CONF, else
 * OpenSSL's configuration file; defaults when it has no ocspstaple
 * section). Says once, in the log, why it is passive.
 */
int stp_runtime_active(void);

/*
 * Logs, once, the problems found in the policy (ERROR lines: unusable keys,
 * an invalid section, an unreadable ca_file), which wait until a process
 * acts as a TLS server: the hook calls this when a server context with a
 * certificate gets its first SSL, or a process holding such contexts forks.
 * A process that never serves TLS never prints them. Any thread.
 */
void stp_runtime_report(void);

/* 1 while stp_runtime_report() has something to say. Any thread. */
int stp_runtime_report_pending(void);

/*
 * Policy changes on a server's reload. openssl.cnf is read once per
 * process, but nginx (`-s reload`) and Apache (`graceful`, `restart`) keep
 * their master and only fork new workers. So a process that does not serve
 * (no refresher runs in it) and built new server contexts since it last
 * checked (<generation>: stp_hook_generation()) reads the file its policy
 * came from again when it is about to fork: if the ocspstaple section
 * changed and is valid, it replaces the policy (returns 1: the caller
 * resolves the records again), with one INFO line; an invalid or missing
 * one keeps the policy in force, said once. The old policy is never freed.
 */
int stp_runtime_recheck(unsigned long generation);

/* The policy; only after stp_runtime_active() returned 1. */
const struct stp_policy *stp_runtime_get0_policy(void);

/* The certificates of the policy's ca_file (may be NULL). */
STACK_OF(X509) *stp_runtime_get0_trust(void);

/*
 * The store directory, opened (and created) on first use; any thread.
 * Returns NULL with <err> set when it cannot be used (tried again on the
 * next call).
 */
struct stp_store *stp_runtime_get0_store(struct stp_err *err);

/*
 * The fleet tier of the policy in force (fleet_url), made on first use (its
 * fleet_auth_file read then: stp_refresh_prepare() does it before a server
 * drops privileges), or NULL when the policy sets none or it cannot be made
 * (said once per policy, ERR: this host then works alone). Connects to
 * nothing. Any thread.
 */
struct stp_fleet *stp_runtime_get0_fleet(void);

/* Short name of this program (for the allow-list and logs). */
const char *stp_runtime_program(void);

/*
 * 1 if this process's parent runs the same program (a worker of nginx,
 * Apache or HAProxy -W, by the parent's /proc comm, readable whatever its
 * user), with the parent's name in <comm>. Reads /proc once per call.
 */
int stp_runtime_parent_is_same_program(char *comm, size_t len);

#endif
