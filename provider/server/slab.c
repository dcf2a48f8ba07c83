/* SPDX-License-Identifier: Apache-2.0 */
/* Objects of one size in pages of their own (see slab.h). */
#include "server/slab.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define STP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STP_ASAN 1
#endif
#endif
#ifdef STP_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define CHUNK (256u * 1024u) /* 64 pages: 1056 records of 248 bytes */

static size_t rounded(size_t n)
{
    size_t a = sizeof(void *);

    n = n < a ? a : n;
    return (n + a - 1) / a * a;
}

void *stp_slab_alloc(struct stp_slab *s)
{
    size_t size = rounded(s->size);
    void *p = NULL;

    if (size > CHUNK)
        return NULL;
    pthread_mutex_lock(&s->lock);
    if (s->free != NULL) {
        p = s->free;
        UNPOISON(p, size);
        s->free = *(void **)p;
    } else {
        if (s->left < size) {
            void *c = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

            if (c != MAP_FAILED) {
                s->next = c;
                s->left = CHUNK;
                POISON(c, CHUNK);
            }
        }
        if (s->left >= size) {
            p = s->next;
            s->next += size;
            s->left -= size;
            UNPOISON(p, size);
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (p != NULL)
        memset(p, 0, size);
    return p;
}

void stp_slab_free(struct stp_slab *s, void *p)
{
    size_t size = rounded(s->size);

    if (p == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    *(void **)p = s->free;
    s->free = p;
    POISON(p, size);
    pthread_mutex_unlock(&s->lock);
}

void stp_slab_after_fork(struct stp_slab *s)
{
    pthread_mutex_init(&s->lock, NULL);
}
