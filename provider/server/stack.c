/* SPDX-License-Identifier: Apache-2.0 */
/* The pages of a thread's stack below its frame, given back (stack.h). */
#include "server/stack.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

__attribute__((noinline)) size_t stp_stack_release(void)
{
    pthread_attr_t attr;
    void *base = NULL;
    size_t size = 0;
    volatile char here = 0;
    long pagesz = sysconf(_SC_PAGESIZE);
    uintptr_t page = pagesz > 0 ? (uintptr_t)pagesz : 4096, lo, hi;
    int ok;

    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return 0;
    ok = pthread_attr_getstack(&attr, &base, &size) == 0;
    pthread_attr_destroy(&attr);
    /* the lowest usable address (above the guard), and the caller's frame */
    lo = ((uintptr_t)base + page - 1) & ~(page - 1);
    hi = ((uintptr_t)&here - STP_STACK_MARGIN) & ~(page - 1);
    if (!ok || base == NULL || (uintptr_t)&here < STP_STACK_MARGIN || hi <= lo
        || (uintptr_t)&here >= (uintptr_t)base + size)
        return 0;
    if (madvise((void *)lo, hi - lo, MADV_DONTNEED) != 0)
        return 0;
    return hi - lo;
}
