/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bootstrap (see boot.h).
 */
#include "entry/boot.h"

#include <pthread.h>

#include "engine/log.h"
#include "server/cache.h"
#include "server/hook.h"
#include "server/refresh.h"
#include "server/runtime.h"
#include "server/track.h"

static pthread_mutex_t boot_lock = PTHREAD_MUTEX_INITIALIZER;

/* The parent of a fork: a master that forks its workers does not serve
 * itself, so the references kept for its first walk are dropped. */
static void after_fork_parent(void)
{
    stp_refresh_after_fork_parent();
    stp_hook_release_held();
}

/* A process with server certificates about to fork: resolve what the
 * workers need while it is root and outside any chroot (refresh.h), and
 * track its certificates and read their stored responses once, here, for
 * all the workers it forks (hook.h). */
static void before_fork(void)
{
    if (stp_hook_has_server_certs()) {
        /* a reload: new contexts in a master that does not serve */
        if (!stp_refresh_running()
            && stp_runtime_recheck(stp_hook_generation())) {
            stp_refresh_policy_changed();
            stp_track_resolve_again();
        }
        stp_refresh_prepare();
        stp_hook_examine_held();
        stp_refresh_load_all();
        /* a master about to fork its workers: said once, here */
        stp_runtime_active();
        stp_runtime_report();
    }
    stp_refresh_before_fork();
}

/* Another thread may have held any of the locks when the process forked. */
static void after_fork_child(void)
{
    pthread_mutex_init(&boot_lock, NULL);
    stp_runtime_after_fork();
    stp_cache_after_fork();
    stp_hook_after_fork();
    stp_refresh_after_fork();
    stp_refresh_start_after_fork();
}

enum stp_boot_result stp_boot(enum stp_route route)
{
    enum stp_boot_result r;

    pthread_mutex_lock(&boot_lock);
    if (stp_runtime_route() != STP_ROUTE_NONE) {
        r = STP_BOOT_ALREADY;
    } else {
        stp_runtime_capture();
        stp_log_init();
        if (!stp_cache_init() || !stp_hook_register()) {
            r = STP_BOOT_FAILED;
        } else {
            pthread_atfork(before_fork, after_fork_parent, after_fork_child);
            stp_runtime_set_route(route);
            r = STP_BOOT_REGISTERED;
        }
    }
    pthread_mutex_unlock(&boot_lock);
    return r;
}
