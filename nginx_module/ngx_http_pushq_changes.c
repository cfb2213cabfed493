
/*
 * pushq nginx module: which channels changed, told from worker to worker.
 *
 * A wake-up (the eventfd) says only "look"; a worker that then visited all
 * its subscribers would pay for every one of them on every publish, which
 * with a channel per visitor (tens of thousands of channels of one
 * subscriber each) is most of its time.  So a publish also says which
 * channel: the publishing worker puts the channel's key (pushq_publish_
 * result_t.channel_key) in a list for each worker it wakes, and a dispatch
 * pass visits only the subscribers of the channels listed.
 *
 * One list per (sender, receiver) pair of the cycle's workers: a ring with
 * one writer and one reader, so no lock (a worker that dies anywhere
 * leaves nothing locked).  Made in shared memory by the master with the
 * eventfds (init_module), so the workers of one cycle share the same ones
 * and an old cycle's workers never take a new cycle's keys.  A ring that
 * is full, or a wake-up that names no channel (key 0: Redis catch-up,
 * a restarted channel), sets the ring's "all" flag: the receiver's next
 * pass visits everyone (as it does after a store recovery: see
 * ngx_http_pushq_pass_begin).  With more than NGX_HTTP_PUSHQ_CHANGES_WORKERS
 * workers there are no lists (n^2 rings) and every pass visits everyone.
 *
 * Order: the sender writes the key, then moves its tail (release), then
 * rings the eventfd; the receiver takes the keys at the start of a pass
 * (after the eventfd was read), so every key written before a wake-up is
 * taken by a pass that starts after it.
 */


#include "ngx_http_pushq_module.h"


#define NGX_HTTP_PUSHQ_CHANGES_RING  256    /* keys per (sender, receiver) */


typedef struct {
    ngx_atomic_t                 head;     /* the receiver's: next to take */
    ngx_atomic_t                 tail;     /* the sender's: next to write */
    ngx_atomic_t                 all;      /* set by the sender, cleared by
                                              the receiver */
    ngx_atomic_t                 pad;
    uint64_t                     keys[NGX_HTTP_PUSHQ_CHANGES_RING];
} ngx_http_pushq_ring_t;


static void ngx_http_pushq_changes_free(void *data);


/* in the master, before fork: n x n rings, or none (NULL) */

ngx_int_t
ngx_http_pushq_changes_create(ngx_cycle_t *cycle,
    ngx_http_pushq_main_conf_t *pmcf, ngx_uint_t n)
{
    ngx_shm_t           *shm;
    ngx_pool_cleanup_t  *cln;

    pmcf->changes = NULL;

    if (n > NGX_HTTP_PUSHQ_CHANGES_WORKERS) {
        return NGX_OK;
    }

    cln = ngx_pool_cleanup_add(cycle->pool, sizeof(ngx_shm_t));
    if (cln == NULL) {
        return NGX_ERROR;
    }

    shm = cln->data;
    ngx_memzero(shm, sizeof(ngx_shm_t));
    shm->size = n * n * sizeof(ngx_http_pushq_ring_t);
    shm->log = cycle->log;
    ngx_str_set(&shm->name, "pushq_changes");

    /* anonymous shared mapping, zeroed */

    if (ngx_shm_alloc(shm) != NGX_OK) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_pushq_changes_free;
    pmcf->changes = shm->addr;

    return NGX_OK;
}


/* when the cycle's pool is destroyed */

static void
ngx_http_pushq_changes_free(void *data)
{
    ngx_shm_t  *shm = data;

    ngx_shm_free(shm);
}


/* worker `from` tells worker `to` that channel `key` changed (0: all) */

void
ngx_http_pushq_changes_put(ngx_uint_t from, ngx_uint_t to, uint64_t key)
{
    ngx_atomic_uint_t        head, tail;
    ngx_http_pushq_ring_t   *ring;
    ngx_http_pushq_worker_t *w;

    w = &ngx_http_pushq_worker;

    if (w->changes == NULL) {
        return;
    }

    ring = (ngx_http_pushq_ring_t *) w->changes + to * w->nefd + from;

    if (key == 0) {
        ring->all = 1;
        return;
    }

    tail = ring->tail;
    head = ring->head;
    ngx_memory_barrier();

    if (tail != head
        && ring->keys[(tail - 1) % NGX_HTTP_PUSHQ_CHANGES_RING] == key)
    {
        /*
         * The same channel, not taken yet: the pass that takes it starts
         * after this publish, or has just started and visits it later.
         */
        return;
    }

    if (tail - head >= NGX_HTTP_PUSHQ_CHANGES_RING) {
        ring->all = 1;
        return;
    }

    ring->keys[tail % NGX_HTTP_PUSHQ_CHANGES_RING] = key;
    ngx_memory_barrier();
    ring->tail = tail + 1;
}


/*
 * Worker `me` takes what every worker told it, into keys[] (room for
 * ngx_http_pushq_changes_room() keys).  Returns 1 when the next pass must
 * visit everyone (a ring overflowed, a wake-up without a channel, or no
 * lists at all), else 0 with *n keys (duplicates possible).
 */

ngx_uint_t
ngx_http_pushq_changes_take(ngx_uint_t me, uint64_t *keys, ngx_uint_t *n)
{
    ngx_uint_t               i, all;
    ngx_atomic_uint_t        head, tail;
    ngx_http_pushq_ring_t   *ring;
    ngx_http_pushq_worker_t *w;

    w = &ngx_http_pushq_worker;
    *n = 0;

    if (w->changes == NULL) {
        return 1;
    }

    all = 0;

    for (i = 0; i < w->nefd; i++) {
        ring = (ngx_http_pushq_ring_t *) w->changes + me * w->nefd + i;

        /* cleared first: a flag set from now on is seen by the next pass */

        if (ring->all && ngx_atomic_cmp_set(&ring->all, 1, 0)) {
            all = 1;
        }

        head = ring->head;
        tail = ring->tail;
        ngx_memory_barrier();

        while (head != tail) {
            keys[(*n)++] = ring->keys[head % NGX_HTTP_PUSHQ_CHANGES_RING];
            head++;
        }

        ngx_memory_barrier();
        ring->head = head;
    }

    return all;
}


ngx_uint_t
ngx_http_pushq_changes_room(ngx_uint_t nworkers)
{
    return nworkers * NGX_HTTP_PUSHQ_CHANGES_RING;
}
