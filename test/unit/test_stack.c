/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stp_stack_release() (server/stack.h): a thread that went 512 KiB deep
 * into its stack holds those pages (mincore(2) says which are resident);
 * after the call, none of them below the margin under its frame, and the
 * thread goes as deep again with its values intact (the pages come back
 * zero-filled, as any stack page below the stack pointer may).
 */
#include "server/stack.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stp_test.h"

#define DEPTH 128 /* frames of 4 KiB and more */

static uintptr_t lo, top;
static size_t page;

/* Resident pages of the stack from its lowest usable page up to <hi>. */
static long resident_below(uintptr_t hi)
{
    unsigned char vec[4096];
    uintptr_t a = lo;
    long n = 0;

    hi &= ~(uintptr_t)(page - 1);
    while (a < hi) {
        size_t len = hi - a, i;

        if (len > sizeof(vec) * page)
            len = sizeof(vec) * page;
        if (mincore((void *)a, len, vec) != 0)
            return -1;
        for (i = 0; i < len / page; i++)
            n += vec[i] & 1;
        a += len;
    }
    return n;
}

/* Goes <n> frames deeper, each with a page of its own written, and
 * returns a sum of what it wrote, read back on the way up. */
__attribute__((noinline)) static long deep(int n)
{
    volatile unsigned char buf[4096];
    long sum;
    size_t i;

    for (i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)(n + i);
    sum = n > 0 ? deep(n - 1) : 0;
    for (i = 0; i < sizeof(buf); i += 512)
        sum += buf[i];
    return sum;
}

static void *thread(void *arg)
{
    pthread_attr_t attr;
    void *base;
    size_t size;
    volatile char here = 0;
    uintptr_t below; /* under this frame, past the release's margin */
    long expect, before, after, again;

    (void)arg;
    ASSERT_OK(pthread_getattr_np(pthread_self(), &attr) == 0);
    ASSERT_OK(pthread_attr_getstack(&attr, &base, &size) == 0);
    pthread_attr_destroy(&attr);
    lo = ((uintptr_t)base + page - 1) & ~(uintptr_t)(page - 1);
    top = (uintptr_t)base + size;
    below = (uintptr_t)&here - 2 * STP_STACK_MARGIN;

    expect = deep(DEPTH);
    before = resident_below(below);
    printf("before: %ld resident pages below the frame\n", before);
    ASSERT_TRUE(before >= DEPTH / 2); /* the stack keeps what it touched */
    ASSERT_TRUE(stp_stack_release() > (size_t)DEPTH * 4096);
    after = resident_below(below);
    printf("after: %ld\n", after);
    ASSERT_EQ(after, 0);
    /* as deep again: the same values, written and read back */
    again = deep(DEPTH);
    ASSERT_EQ(again, expect);
    ASSERT_TRUE(resident_below(below) >= DEPTH / 2);
    ASSERT_TRUE(stp_stack_release() > 0);
    ASSERT_EQ(resident_below(below), 0);
    ASSERT_TRUE((uintptr_t)&here < top);
    return NULL;
}

int main(void)
{
    pthread_t t;
    int made;

    page = (size_t)sysconf(_SC_PAGESIZE);
    /* the checks are the thread's until it is joined */
    made = pthread_create(&t, NULL, thread, NULL) == 0;
    ASSERT_OK(made && pthread_join(t, NULL) == 0);
    STP_TEST_MAIN_END();
}
