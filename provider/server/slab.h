/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Objects of one size in pages of their own.
 *
 * A server's master makes the certificate records before it forks, and
 * every worker then writes to each of them (reference counts, schedules,
 * flags): each write copies the whole page the record is on. Among the
 * server's own objects of the heap that was a page per certificate per
 * worker (issue #9, test/unit/test_cow.c); in a slab the copies are the
 * records' own bytes, sixteen records a page.
 *
 * Memory comes in chunks mapped at first need and never unmapped: a freed
 * object goes to a free list and is given out again (the number of records
 * a process ever holds at once bounds it). Under AddressSanitizer a free
 * object is poisoned, so a use after free is still caught. Any thread.
 */
#ifndef STP_SLAB_H
#define STP_SLAB_H

#include <pthread.h>
#include <stddef.h>

struct stp_slab {
    size_t size; /* of an object, rounded up to a pointer's alignment */
    pthread_mutex_t lock;
    void *free;  /* free objects, linked through their first bytes */
    char *next;  /* the unused rest of the current chunk */
    size_t left; /* its bytes */
};

#define STP_SLAB_INIT(objsize)                              \
    {                                                       \
        (objsize), PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0 \
    }

/* A zeroed object, or NULL when no memory can be mapped. */
void *stp_slab_alloc(struct stp_slab *s);

/* Gives <p> (from stp_slab_alloc(<s>), or NULL) back. */
void stp_slab_free(struct stp_slab *s, void *p);

/* In a fork child: the lock, which another thread may have held. */
void stp_slab_after_fork(struct stp_slab *s);

#endif
