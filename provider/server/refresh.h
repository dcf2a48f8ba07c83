/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The refresher: per serving process, a dispatcher thread and
 * fetch_concurrency worker threads (pool.h), all started together on first
 * need, the first SSL_new (never in a constructor, in provider init, in
 * ocspstaple_attach(), or in a parent before it forks its workers; a fork
 * child starts its own right after the fork). At exit, OpenSSL's cleanup
 * waits (bounded) for their current steps and stops them. It keeps every
 * tracked certificate's staple fresh: it reads what the store holds before
 * any request, takes what another process stored, fetches when a response
 * is due (through the store lock, so one process per host fetches a
 * certificate), backs off after failures (per certificate, and per
 * responder host after faults in a row), and drops a staple at its
 * nextUpdate.
 */
#ifndef STP_REFRESH_H
#define STP_REFRESH_H

struct stp_rec;

/* Starts the thread if certificates are tracked and it is not running.
 * Cheap when running (one atomic load). Any thread. */
void stp_refresh_ensure(void);

/*
 * Resolves, once per process, what the refresher will need, while the
 * server may still run as root outside its chroot (HAProxy's packaged
 * configuration chroots to /var/lib/haproxy and drops to user haproxy
 * before it serves): the policy, the store directory's handle (openat()
 * relative to it keeps working in a jail) and libcurl. Called before a
 * fork in a process that holds a server context with a certificate (the
 * master or daemon parent: HAProxy chroots and drops privileges after its
 * fork), never in a process that only makes client contexts. Opens nothing
 * when passive.
 */
void stp_refresh_prepare(void);

/* The policy changed (stp_runtime_recheck()): the next fork prepares again
 * (its store, its syslog socket). */
void stp_refresh_policy_changed(void);

/* 1 if the refresher runs in this process: it serves TLS itself. */
int stp_refresh_running(void);

/*
 * In a fork child of a prepared process: starts the thread now, before the
 * server lowers its limits (HAProxy sets RLIMIT_NPROC to 0 once it runs as
 * user haproxy, and no thread can be created after that). It sleeps until
 * certificates are tracked.
 */
void stp_refresh_start_after_fork(void);

/* Wakes the thread to look at new certificates now. Any thread. */
void stp_refresh_wake(void);

/* Starts the thread if it is not running, tracked certificates or not
 * (the walk queued contexts for it to discover). Any thread. */
void stp_refresh_start(void);

/*
 * Reads <rec>'s stored response and publishes it if it verifies, unless it
 * was read already: one file and one verification, in the calling thread. The
 * refresher reads every record's before it sends any request; a handshake that
 * selects a certificate not read yet reads that one (its only cost, bounded),
 * so that a warm store staples from the first handshake at any number of
 * certificates.
 */
void stp_refresh_load_stored(struct stp_rec *rec);

/* Reads the stored response of every record not read yet, in the calling
 * thread (a master before it forks its workers: they inherit them). */
void stp_refresh_load_all(void);

/* The function the refresher calls at each pass, before anything else, to
 * track the certificates of the contexts the hook queued for it (hook.c
 * registers it: the refresher does not depend on the hook). It returns the
 * number of contexts it left for a later pass (too young: they may still
 * be configured by their thread): the next pass comes within a second. */
void stp_refresh_set_discover(int (*fn)(void));

/*
 * pthread_atfork prepare and parent handlers: a fork waits (at most 2 s)
 * for the refresher to finish the certificate it works on, so that the
 * child does not inherit OpenSSL or our locks in the middle of a step.
 */
void stp_refresh_before_fork(void);
void stp_refresh_after_fork_parent(void);

/* In a fork child: no thread runs any more; reinitialise the locks. */
void stp_refresh_after_fork(void);

#endif
