/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bootstrap every route goes through once per process: the provider's
 * init, the preload constructor and ocspstaple_attach(). It takes the
 * process identity, registers the ex_data hooks and the fork handlers, and
 * records the route. It is the only place that knows every server module;
 * nothing below the entry points calls up into it.
 */
#ifndef STP_ENTRY_BOOT_H
#define STP_ENTRY_BOOT_H

#include "server/runtime.h"

enum stp_boot_result {
    STP_BOOT_FAILED = 0, /* the hooks could not be registered */
    STP_BOOT_REGISTERED, /* this call registered them for its route */
    STP_BOOT_ALREADY     /* another route had: the caller stands down */
};

/* Never creates a thread or opens a file. Any thread. */
enum stp_boot_result stp_boot(enum stp_route route);

#endif
