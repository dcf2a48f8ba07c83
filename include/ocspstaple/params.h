/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Names of every ocspstaple policy key (the keys of the provider's openssl.cnf
 * section) and of every metric. Shared by the library, the CLI and the tests,
 * so that a key is spelled in exactly one place.
 */
#ifndef OCSPSTAPLE_PARAMS_H
#define OCSPSTAPLE_PARAMS_H

/* Stapling behaviour (NATS mode, Ferron/APISIX "enabled"). */
#define OCSPSTAPLE_KEY_MODE             "mode"
#define OCSPSTAPLE_KEY_STAPLE_ALL       "staple_all"
#define OCSPSTAPLE_KEY_REVOKED_ACTION   "revoked_action"
#define OCSPSTAPLE_KEY_MUST_STAPLE_WAIT "must_staple_wait"

/* Responder and verification (NATS url, APISIX responder/skip_verify/ttl). */
#define OCSPSTAPLE_KEY_RESPONDER_URL "responder_url"
#define OCSPSTAPLE_KEY_SKIP_VERIFY   "skip_verify"
#define OCSPSTAPLE_KEY_CACHE_TTL     "cache_ttl"
#define OCSPSTAPLE_KEY_CA_FILE       "ca_file"
#define OCSPSTAPLE_KEY_CLOCK_SKEW    "clock_skew"

/* Fetching (NATS timeout). */
#define OCSPSTAPLE_KEY_TIMEOUT              "timeout"
#define OCSPSTAPLE_KEY_CONNECT_TIMEOUT      "connect_timeout"
#define OCSPSTAPLE_KEY_MAX_RESPONSE         "max_response_size"
#define OCSPSTAPLE_KEY_FETCH                "fetch"
#define OCSPSTAPLE_KEY_FETCH_CONCURRENCY    "fetch_concurrency"
#define OCSPSTAPLE_KEY_FETCH_PER_HOST       "fetch_per_host"
#define OCSPSTAPLE_KEY_FETCH_PER_HOST_TOTAL "fetch_per_host_total"

/* Shared cache (NATS store_dir). */
#define OCSPSTAPLE_KEY_STORE_DIR   "store_dir"
#define OCSPSTAPLE_KEY_STORE_GROUP "store_group"

/* Refresh schedule (Ferron). */
#define OCSPSTAPLE_KEY_REFRESH_MARGIN "refresh_margin"
#define OCSPSTAPLE_KEY_REFRESH_JITTER "refresh_jitter"
#define OCSPSTAPLE_KEY_REFRESH_MIN    "refresh_min"
#define OCSPSTAPLE_KEY_REFRESH_MAX    "refresh_max"
#define OCSPSTAPLE_KEY_RETRY_BASE     "retry_base"
#define OCSPSTAPLE_KEY_RETRY_MAX      "retry_max"

/* Client-certificate checking (APISIX ssl_ocsp, ssl_ocsp_responder; NATS
 * ocsp_peer; Apache SSLOCSPDefaultResponder). */
#define OCSPSTAPLE_KEY_CLIENT_OCSP              "client_ocsp"
#define OCSPSTAPLE_KEY_CLIENT_RESPONDER         "client_ocsp_responder"
#define OCSPSTAPLE_KEY_CLIENT_DEFAULT_RESPONDER "client_ocsp_default_responder"
#define OCSPSTAPLE_KEY_CLIENT_FAIL              "client_ocsp_fail"
#define OCSPSTAPLE_KEY_CLIENT_TIMEOUT           "client_ocsp_timeout"
#define OCSPSTAPLE_KEY_CLIENT_UNKNOWN           "client_ocsp_unknown"
#define OCSPSTAPLE_KEY_CLIENT_NO_URL            "client_ocsp_no_url"
#define OCSPSTAPLE_KEY_CLIENT_NONCE             "client_ocsp_nonce"

/* Observability (Ferron). */
#define OCSPSTAPLE_KEY_LOG_LEVEL    "log_level"
#define OCSPSTAPLE_KEY_LOG_FILE     "log_file"
#define OCSPSTAPLE_KEY_LOG_SYSLOG   "log_syslog"
#define OCSPSTAPLE_KEY_METRICS_FILE "metrics_file"

/* The fleet tier on Redis (engine/fleet.h). */
#define OCSPSTAPLE_KEY_FLEET_URL       "fleet_url"
#define OCSPSTAPLE_KEY_FLEET_AUTH_FILE "fleet_auth_file"
#define OCSPSTAPLE_KEY_FLEET_PREFIX    "fleet_prefix"
#define OCSPSTAPLE_KEY_FLEET_TIMEOUT   "fleet_timeout"
#define OCSPSTAPLE_KEY_FLEET_HOST      "fleet_host"

/* Which programs the module acts in (a system-wide openssl.cnf is read by all).
 */
#define OCSPSTAPLE_KEY_PROGRAMS      "programs"
#define OCSPSTAPLE_KEY_SKIP_PROGRAMS "skip_programs"

/*
 * Per-certificate overrides: "certs = <section>" names a section whose values
 * name one section per certificate; OpenSSL hands them to the provider as
 * dotted names, e.g. "certs.www.match". Inside such a section: "match" plus any
 * of the overridable keys (mode, staple_all, responder_url, skip_verify,
 * cache_ttl, timeout).
 */
#define OCSPSTAPLE_KEY_CERTS "certs"
#define OCSPSTAPLE_KEY_MATCH "match"

/* Metric names, exposed as provider parameters "metric.<name>". */
#define OCSPSTAPLE_METRIC_PREFIX "metric."

#endif
