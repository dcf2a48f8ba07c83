/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pages of a thread's stack below its current frame, given back.
 *
 * A fetch worker's request, verification and store write touch some tens
 * of KiB of its stack, and a thread keeps every page of it it ever touched
 * for its whole life: a server's process, whose workers all run during its
 * start-up and then wait for the next refresh, holds 16 of them (issue #9:
 * 24 KiB each in an nginx worker after a cold start). A worker that has
 * been idle for a while after work calls this; its next record touches the
 * pages again, zero-filled (madvise(MADV_DONTNEED) on the private anonymous
 * mapping glibc makes a thread's stack in, as glibc itself does when a
 * thread exits). The pages within STP_STACK_MARGIN below the caller's frame
 * stay, for this call's own frames. Not for a process's main thread (its
 * stack is the kernel's, and grows).
 */
#ifndef STP_STACK_H
#define STP_STACK_H

#include <stddef.h>

#define STP_STACK_MARGIN (4 * 1024)

/* Returns the bytes of address range given back (resident or not), 0 when
 * nothing was (the bounds unknown, nothing below the margin). */
size_t stp_stack_release(void);

#endif
