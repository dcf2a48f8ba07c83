/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The hook into libssl: ex_data callbacks that see every SSL_CTX and SSL a
 * process creates, and the OCSP status callback (RFC 6066 8) that staples
 * the cached response of the certificate libssl selected.
 *
 * Contexts are recorded when they are created; nothing is installed then,
 * because the application is still configuring them (HAProxy reads the
 * status callback back and must not find ours). At the first SSL_new of a
 * process, and whenever contexts were added since, the hook examines the
 * recorded contexts: on every one that can serve (its method is not a
 * client-only method) it installs the status callback, and it registers the
 * certificates that carry a private key: those of the SSL's own context at
 * once, the others' in the refresher (the handshake pays a pointer write per
 * context, whatever their number). Through the provider alone, a
 * context created after that first SSL_new is examined only when an SSL is
 * created on it (it may still be being configured by another thread). A
 * certificate that a context only gets per connection (lighttpd) is
 * registered by the status callback itself and fetched in the background.
 * Under LD_PRELOAD the application's own status callback is captured and
 * chained (ours staples only when the application's staples nothing);
 * through the provider alone a context with the application's own callback
 * is left alone.
 *
 * With client_ocsp on, examination also installs a certificate
 * verification procedure (SSL_CTX_set_cert_verify_callback) on the
 * context: it runs the normal verification (X509_verify_cert(), with the
 * application's verify callback; under LD_PRELOAD the application's own
 * procedure, if it set one, in its place), and only on a chain that
 * verified without error, on a server SSL, the client-certificate check
 * (client.h), and a session ticket decrypt callback that refuses to resume
 * the session of a client certificate whose decision no longer admits it
 * (a full handshake then checks it). libssl offers no way to read either
 * back: through the provider alone, one that the application set before the
 * first handshake is replaced (no server we test sets one;
 * docs/client-ocsp.md).
 */
#ifndef STP_SERVER_HOOK_H
#define STP_SERVER_HOOK_H

#include <openssl/ssl.h>

#include "server/libssl.h"

/* The application's status callback type. */
typedef int (*stp_status_cb)(SSL *s, void *arg);

/* Registers the ex_data indexes. Returns 1, or 0 on failure. */
int stp_hook_register(void);

/* In a fork child: reinitialises the hook's locks, and holds the contexts
 * it inherited for its first walk (it is the only thread at that point). */
void stp_hook_after_fork(void);

/*
 * 1 if a server context made before the process served (one we hold)
 * carries a certificate: the process is about to serve, or to fork the
 * workers that will. Client contexts never do. Takes list_lock.
 */
int stp_hook_has_server_certs(void);

/* How many server contexts this process made so far: a master's reload
 * makes new ones (stp_runtime_recheck()). Any thread. */
unsigned long stp_hook_generation(void);

/*
 * Drops the references the hook holds on contexts created before the
 * process served (see hook.c, walk()): in the parent after a fork (a
 * master that forks its workers never serves itself) and in a passive
 * process. Takes list_lock; never call with it held.
 */
void stp_hook_release_held(void);

/*
 * In a process about to fork, holding server contexts it made (a master
 * before it forks its workers): examines them all now (installs the
 * callback, tracks their certificates) and drops our references, so that
 * the workers inherit the records, and the responses the caller then reads
 * from the store, instead of each worker writing to every context and
 * certificate (copy-on-write pages: memory) and verifying every stored
 * response again. Returns the new records. Does not count as a walk:
 * contexts made after it are held for the next fork, or the first SSL_new.
 */
int stp_hook_examine_held(void);

/*
 * LD_PRELOAD: the application switched <s> to <ctx> (SSL_set_SSL_CTX, in
 * its servername or client-hello callback). <ctx> is examined now if it was
 * not (the SSL holds a reference to it), and a certificate first met there
 * is fetched at once.
 */
void stp_hook_switched(SSL *s, SSL_CTX *ctx);

/*
 * Interposer support. An application sets its status callback on <ctx>:
 * records it; returns 1 if our callback is installed there (the call is
 * then consumed: ours stays and chains to <cb>), 0 to pass it to libssl.
 */
int stp_hook_capture_set(SSL_CTX *ctx, stp_status_cb cb);

/*
 * An application reads the status callback of <ctx> into *<out>: returns 1
 * and gives it the application's own (or NULL) when ours is installed
 * there, 0 to pass the call to libssl.
 */
int stp_hook_capture_get(SSL_CTX *ctx, stp_status_cb *out);

/*
 * Interposer support. An application sets its certificate verification
 * procedure on <ctx> (SSL_CTX_set_cert_verify_callback): records it; returns
 * 1 if ours is installed there (the call is then consumed: ours stays, and
 * runs <cb> with <arg> in place of X509_verify_cert()), 0 to pass it to
 * libssl.
 */
int stp_hook_capture_verify(SSL_CTX *ctx, stp_cert_verify_cb cb, void *arg);

/*
 * Likewise for its session ticket callbacks (SSL_CTX_set_session_ticket_cb):
 * records them; returns 1 if ours is installed (the call is consumed: the
 * application's generate callback and argument are set with our decrypt
 * callback, which calls the application's first), 0 to pass it to libssl.
 */
int stp_hook_capture_ticket(SSL_CTX *ctx,
                            SSL_CTX_generate_session_ticket_fn gen,
                            SSL_CTX_decrypt_session_ticket_fn dec, void *arg);

/*
 * Explicit route (ocspstaple_attach, after stp_boot()): examine <ctx> now,
 * install the callback (chaining to one the application already set) and
 * register its certificates. Returns 1, or 0 when the module is passive or
 * on failure.
 */
int stp_hook_attach(SSL_CTX *ctx);

#endif
