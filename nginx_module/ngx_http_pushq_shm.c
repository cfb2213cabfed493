
/*
 * pushq nginx module: one store for all workers, and waking them.
 *
 *  - The store lives in the shared zone "pushq" (pushq_shm_size), mapped by
 *    the master before fork at the same address in every worker, and reused
 *    as it is across reloads.
 *  - Every worker of a cycle has an eventfd, made in init_module (before
 *    fork), so every worker holds all of them: a publish writes to the
 *    eventfds of the workers whose waker bit the store reports.
 *  - Every worker registers as an owner of the store (its waker is
 *    ngx_worker) and keeps its subscribers in a local registry grouped by
 *    channel.  A wake-up starts a dispatch pass that checks them and
 *    notifies the ready ones, in slices (ngx_http_pushq_slice).
 *  - The eventfd's connection is marked idle: on graceful shutdown (reload,
 *    QUIT) nginx calls its handler with c->close set, and there every held
 *    long-poll is answered and every WebSocket closed with 1001.
 */


#include "ngx_http_pushq_module.h"

#include <sys/eventfd.h>


ngx_http_pushq_worker_t  ngx_http_pushq_worker;


static void ngx_http_pushq_close_eventfds(void *data);
static void ngx_http_pushq_efd_handler(ngx_event_t *ev);
static void ngx_http_pushq_sweep_handler(ngx_event_t *ev);
static void ngx_http_pushq_woken(ngx_uint_t now);
static void ngx_http_pushq_slice_handler(ngx_event_t *ev);
static void ngx_http_pushq_slice(void);
static void ngx_http_pushq_pass_begin(void);
static ngx_uint_t ngx_http_pushq_visit(ngx_http_pushq_group_t *g,
    ngx_uint_t *notified, ngx_uint_t *visited);
static void ngx_http_pushq_stop_passes(void);
static void ngx_http_pushq_shutdown(void);
static void ngx_http_pushq_free_group(ngx_http_pushq_group_t *g);
static void ngx_http_pushq_free_all_groups(void);
static void ngx_http_pushq_close_own_eventfd(void);


/*
 * The zone's first bytes hold nginx's slab pool header, written by
 * ngx_init_zone_pool() before this init runs; the slab allocator is not
 * used: the store formats everything after the header (16-byte aligned,
 * as pushq_store_init requires) and allocates inside it by itself.
 */

ngx_int_t
ngx_http_pushq_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    int               created;
    u_char           *start;
    size_t            size;
    const char       *why;
    pushq_store_t    *store;
    pushq_status_t    st;
    ngx_slab_pool_t  *shpool;

    if (data) {
        /* the old cycle's zone, reused on reload: same name, size, tag */
        shm_zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        /* Windows only: the zone was made by another process */
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    start = ngx_align_ptr(shm_zone->shm.addr + sizeof(ngx_slab_pool_t), 64);
    size = shm_zone->shm.addr + shm_zone->shm.size - start;

    why = NULL;
    st = pushq_store_init(start, size, &store, &created, &why);

    if (st != PUSHQ_OK) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "pushq: cannot make the store in zone \"%V\" "
                      "of %uz bytes (pushq_shm_size): %s",
                      &shm_zone->shm.name, shm_zone->shm.size,
                      why ? why : "error");
        return NGX_ERROR;
    }

    shpool->data = store;
    shpool->log_nomem = 0;
    shm_zone->data = store;

    ngx_log_error(NGX_LOG_INFO, shm_zone->shm.log, 0,
                  "pushq: store of %uz bytes in zone \"%V\" %s",
                  size, &shm_zone->shm.name,
                  created ? "created" : "attached");

    return NGX_OK;
}


ngx_int_t
ngx_http_pushq_create_eventfds(ngx_cycle_t *cycle,
    ngx_http_pushq_main_conf_t *pmcf)
{
    ngx_uint_t           i, n;
    ngx_core_conf_t     *ccf;
    ngx_pool_cleanup_t  *cln;

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    n = ccf->master ? (ngx_uint_t) ccf->worker_processes : 1;
    if (n == 0) {
        n = 1;
    }

    pmcf->efd = ngx_pcalloc(cycle->pool, n * sizeof(ngx_fd_t));
    if (pmcf->efd == NULL) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cycle->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_pushq_close_eventfds;
    cln->data = pmcf;

    for (i = 0; i < n; i++) {
        pmcf->efd[i] = eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC);

        if (pmcf->efd[i] == -1) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                          "pushq: eventfd() failed");
            return NGX_ERROR;
        }

        pmcf->nefd = i + 1;
    }

    return ngx_http_pushq_changes_create(cycle, pmcf, n);
}


/* when the cycle's pool is destroyed (in the master, right after reload) */

static void
ngx_http_pushq_close_eventfds(void *data)
{
    ngx_http_pushq_main_conf_t  *pmcf = data;

    ngx_uint_t  i;

    for (i = 0; i < pmcf->nefd; i++) {
        if (pmcf->efd[i] != -1) {
            /* a worker's own entry is -1 once it closed it at exit */
            (void) close(pmcf->efd[i]);
        }
    }

    pmcf->nefd = 0;
}


ngx_int_t
ngx_http_pushq_worker_start(ngx_cycle_t *cycle,
    ngx_http_pushq_main_conf_t *pmcf)
{
    uint32_t                  reaped;
    const char               *why;
    pushq_status_t            st;
    ngx_connection_t         *c;
    ngx_http_pushq_worker_t  *w;

    w = &ngx_http_pushq_worker;

    ngx_memzero(w, sizeof(ngx_http_pushq_worker_t));

    w->store = pmcf->shm_zone->data;
    w->efd = pmcf->efd;
    w->nefd = pmcf->nefd;
    w->changes = pmcf->changes;

    pushq_store_recoveries(w->store, &w->recovered, NULL);

    if (w->changes) {
        w->keys = ngx_alloc(ngx_http_pushq_changes_room(w->nefd)
                            * sizeof(uint64_t), cycle->log);
        if (w->keys == NULL) {
            return NGX_ERROR;
        }
    }

    ngx_rbtree_init(&w->groups, &w->sentinel, ngx_rbtree_insert_value);

    if ((ngx_uint_t) ngx_worker >= w->nefd) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "pushq: worker %i has no eventfd (%ui made)",
                      ngx_worker, w->nefd);
        return NGX_ERROR;
    }

    /* a worker that crashed left its subscribers behind: release them */

    reaped = pushq_store_owner_reap(w->store, pushq_now_ms());
    if (reaped) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "pushq: released the subscribers of %uD exited "
                      "worker(s)", reaped);
    }

    why = NULL;
    st = pushq_store_owner_register(w->store, (int32_t) ngx_pid,
                                    (uint32_t) (ngx_worker
                                                % PUSHQ_MAX_WAKERS),
                                    &w->owner, &why);
    if (st != PUSHQ_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "pushq: cannot register worker %i in the store: %s",
                      ngx_worker, why ? why : "error");
        return NGX_ERROR;
    }

    w->registered = 1;

    /* uses one worker_connections slot */

    c = ngx_get_connection(w->efd[ngx_worker], cycle->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->log = cycle->log;
    c->read->log = cycle->log;
    c->write->log = cycle->log;
    c->read->handler = ngx_http_pushq_efd_handler;

    w->slice.handler = ngx_http_pushq_slice_handler;
    w->slice.log = cycle->log;
    w->slice.data = c;

    /*
     * channel: neither the shutdown timer nor the "open socket left" check
     * treats it as a client; idle: on graceful shutdown
     * ngx_close_idle_connections() calls its handler with c->close set
     */

    c->read->channel = 1;
    c->write->channel = 1;
    c->idle = 1;

    /* epoll, edge-triggered: the handler drains the counter */

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_close_connection(c);
        return NGX_ERROR;
    }

    w->efd_conn = c;

    /* cancelable: the sweep never keeps an exiting worker alive */

    /* ev->data is read as a connection by the debug log of timers */

    w->sweep.handler = ngx_http_pushq_sweep_handler;
    w->sweep.log = cycle->log;
    w->sweep.data = c;
    w->sweep.cancelable = 1;

    ngx_add_timer(&w->sweep, 1000);

    return NGX_OK;
}


void
ngx_http_pushq_worker_stop(ngx_cycle_t *cycle)
{
    ngx_http_pushq_worker_t  *w;

    w = &ngx_http_pushq_worker;

    if (!w->registered) {
        return;
    }

    if (w->sweep.timer_set) {
        ngx_del_timer(&w->sweep);
    }

    /* closes, in the store, whatever subscriber this worker still has */

    pushq_store_owner_release(w->store, w->owner, pushq_now_ms());
    w->registered = 0;

    ngx_http_pushq_close_own_eventfd();

    /*
     * Free what only this module's statics point to: nginx unloads the
     * module (dlclose) when it destroys the cycle's pool at exit, after
     * which valgrind would rightly see it as lost.  Nothing runs after
     * this hook, so the subscribers' links to their groups do not matter.
     */

    ngx_http_pushq_stop_passes();
    ngx_http_pushq_free_all_groups();
    ngx_http_pushq_ws_exit();

    if (w->keys) {
        ngx_free(w->keys);
        w->keys = NULL;
    }
}


/*
 * The fd number may be reused once closed: it is taken out of the array
 * so that a later wake-up (a publish while the worker exits) never writes
 * into another descriptor.
 */

static void
ngx_http_pushq_close_own_eventfd(void)
{
    ngx_http_pushq_worker_t  *w;

    w = &ngx_http_pushq_worker;

    if (w->efd_conn == NULL) {
        return;
    }

    ngx_close_connection(w->efd_conn);
    w->efd_conn = NULL;

    if ((ngx_uint_t) ngx_worker < w->nefd) {
        w->efd[ngx_worker] = (ngx_fd_t) -1;
    }
}


/*
 * wakers: bit i set wakes every worker whose ngx_worker % 64 == i, and
 * tells it that channel_key changed (0: look at every subscriber)
 */

void
ngx_http_pushq_wake(uint64_t wakers, uint64_t channel_key)
{
    uint64_t                  one;
    ngx_uint_t                i;
    ngx_http_pushq_worker_t  *w;

    w = &ngx_http_pushq_worker;
    one = 1;

    for (i = 0; i < w->nefd && wakers; i++) {

        if (!(wakers & ((uint64_t) 1 << (i % PUSHQ_MAX_WAKERS)))
            || w->efd[i] == (ngx_fd_t) -1)
        {
            continue;
        }

        ngx_http_pushq_changes_put(ngx_worker, i, channel_key);

        if (i == (ngx_uint_t) ngx_worker) {
            /* this worker: a posted event, no write() and read() */
            ngx_http_pushq_woken(0);
            continue;
        }

        if (write(w->efd[i], &one, sizeof(uint64_t)) == -1
            && ngx_errno != NGX_EAGAIN)
        {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                          "pushq: write() to the eventfd of worker %ui "
                          "failed", i);
        }
    }
}


static void
ngx_http_pushq_efd_handler(ngx_event_t *ev)
{
    uint64_t           value;
    ngx_connection_t  *c;

    c = ev->data;

    if (c->close) {
        ngx_http_pushq_shutdown();
        return;
    }

    /* an eventfd read returns and resets the counter: wake-ups coalesce */

    while (read(c->fd, &value, sizeof(uint64_t)) == sizeof(uint64_t)) {
        /* void */
    }

    ngx_http_pushq_woken(1);
}


static void
ngx_http_pushq_sweep_handler(ngx_event_t *ev)
{
    ngx_http_pushq_worker_t  *w = &ngx_http_pushq_worker;

    (void) pushq_store_sweep(w->store, pushq_now_ms());

    if (!ngx_exiting && !ngx_terminate && !ngx_quit) {
        ngx_add_timer(ev, 1000);
    }
}


static ngx_http_pushq_group_t *
ngx_http_pushq_find_group(ngx_rbtree_key_t key)
{
    ngx_rbtree_node_t        *node, *sentinel;
    ngx_http_pushq_worker_t  *w;

    w = &ngx_http_pushq_worker;
    node = w->groups.root;
    sentinel = w->groups.sentinel;

    while (node != sentinel) {

        if (key < node->key) {
            node = node->left;
            continue;
        }

        if (key > node->key) {
            node = node->right;
            continue;
        }

        return (ngx_http_pushq_group_t *) node;
    }

    return NULL;
}


/*
 * Redis mode: (re)opens s's doorbell, an anonymous local subscriber that is
 * ready once the local mirror holds a message of the channel after `after`
 * (NGX_HTTP_PUSHQ_NEWEST: after the local newest id).  The new one is
 * opened before the old one is closed, so the channel record (the group
 * key) stays the same; only after a store recovery does s move to another
 * group.
 */

ngx_int_t
ngx_http_pushq_doorbell(ngx_http_pushq_sub_t *s, pushq_sub_kind_t kind,
    const char *chan, size_t chan_len, const pushq_limits_t *lim,
    uint64_t after, ngx_log_t *log)
{
    uint64_t                  now;
    const char               *why;
    pushq_sub_t               sub;
    pushq_status_t            st;
    pushq_sub_spec_t          spec;
    ngx_http_pushq_worker_t  *w;

    w = &ngx_http_pushq_worker;
    now = pushq_now_ms();

    ngx_memzero(&spec, sizeof(pushq_sub_spec_t));
    spec.chan = chan;
    spec.chan_len = chan_len;
    spec.kind = kind;
    spec.owner = w->owner;

    ngx_memzero(&sub, sizeof(pushq_sub_t));
    why = NULL;

    if (after == NGX_HTTP_PUSHQ_NEWEST) {
        st = pushq_sub_open(w->store, &spec, lim, now, &sub, &why);

    } else {
        st = pushq_sub_open_at(w->store, &spec, after, lim, now, &sub, &why);
    }

    if (st != PUSHQ_OK) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "pushq: cannot open a local subscriber: %s",
                      why ? why : "error");
        return NGX_ERROR;
    }

    if (s->open) {
        pushq_sub_close(w->store, &s->sub, now);
    }

    s->sub = sub;
    s->open = 1;

    if (s->group
        && s->group->node.key
           == (ngx_rbtree_key_t) pushq_sub_channel_key(&s->sub))
    {
        return NGX_OK;
    }

    ngx_http_pushq_unregister(s);

    return ngx_http_pushq_register(s);
}


ngx_int_t
ngx_http_pushq_register(ngx_http_pushq_sub_t *s)
{
    ngx_rbtree_key_t          key;
    ngx_http_pushq_group_t   *g;
    ngx_http_pushq_worker_t  *w;

    w = &ngx_http_pushq_worker;

    key = (ngx_rbtree_key_t) pushq_sub_channel_key(&s->sub);

    g = ngx_http_pushq_find_group(key);

    if (g == NULL) {
        /* the cycle's log: a detached WebSocket has no request */
        g = ngx_calloc(sizeof(ngx_http_pushq_group_t), ngx_cycle->log);
        if (g == NULL) {
            return NGX_ERROR;
        }

        g->node.key = key;
        ngx_queue_init(&g->subs);
        ngx_rbtree_insert(&w->groups, &g->node);
    }

    ngx_queue_insert_tail(&g->subs, &s->queue);
    g->nsubs++;
    s->group = g;

    /* a pass under way skips it: it was registered after the wake-up */
    s->pass = 0;

    return NGX_OK;
}


void
ngx_http_pushq_unregister(ngx_http_pushq_sub_t *s)
{
    ngx_http_pushq_group_t  *g;

    g = s->group;

    if (g == NULL) {
        return;
    }

    ngx_queue_remove(&s->queue);
    s->group = NULL;
    g->nsubs--;

    /* during a dispatch, empty groups are freed once it is over */

    if (g->nsubs == 0) {
        if (ngx_http_pushq_worker.dispatching) {
            ngx_http_pushq_worker.emptied = 1;

        } else {
            ngx_http_pushq_free_group(g);
        }
    }
}


static void
ngx_http_pushq_free_group(ngx_http_pushq_group_t *g)
{
    ngx_uint_t  i;

    for (i = 0; i < 2; i++) {
        if (g->frame[i]) {
            ngx_http_pushq_frame_release(g->frame[i]);
        }
    }

    ngx_rbtree_delete(&ngx_http_pushq_worker.groups, &g->node);
    ngx_free(g);
}


static void
ngx_http_pushq_free_empty_groups(void)
{
    ngx_rbtree_node_t        *node, *next;
    ngx_http_pushq_group_t   *g;
    ngx_http_pushq_worker_t  *w;

    w = &ngx_http_pushq_worker;

    if (!w->emptied) {
        return;
    }

    w->emptied = 0;

    if (w->groups.root == w->groups.sentinel) {
        return;
    }

    node = ngx_rbtree_min(w->groups.root, w->groups.sentinel);

    while (node) {
        next = ngx_rbtree_next(&w->groups, node);
        g = (ngx_http_pushq_group_t *) node;

        if (g->nsubs == 0) {
            ngx_http_pushq_free_group(g);
        }

        node = next;
    }
}


static void
ngx_http_pushq_free_all_groups(void)
{
    ngx_http_pushq_worker_t  *w;

    w = &ngx_http_pushq_worker;

    while (w->groups.root != w->groups.sentinel) {
        ngx_http_pushq_free_group((ngx_http_pushq_group_t *)
                                  ngx_rbtree_min(w->groups.root,
                                                 w->groups.sentinel));
    }
}


#define NGX_HTTP_PUSHQ_EACH_SHUTDOWN  1   /* shutdown every one */
#define NGX_HTTP_PUSHQ_EACH_REDIS     2   /* notify those of pushq_redis */

/*
 * Calls fn for the local subscribers that `what` selects.
 * Each group's subscribers are moved to a pending list and back one by
 * one before the call, so a call may remove any subscriber (itself or
 * another: ngx_queue_remove() works in either list).
 */

static void
ngx_http_pushq_each(ngx_uint_t what)
{
    ngx_queue_t               pending, *q;
    ngx_rbtree_node_t        *node;
    ngx_http_pushq_sub_t     *s;
    ngx_http_pushq_group_t   *g;
    ngx_http_pushq_worker_t  *w;

    w = &ngx_http_pushq_worker;

    if (w->groups.root == w->groups.sentinel) {
        return;
    }

    w->dispatching = 1;

    for (node = ngx_rbtree_min(w->groups.root, w->groups.sentinel);
         node;
         node = ngx_rbtree_next(&w->groups, node))
    {
        g = (ngx_http_pushq_group_t *) node;

        if (ngx_queue_empty(&g->subs)) {
            continue;
        }

        ngx_queue_init(&pending);
        ngx_queue_add(&pending, &g->subs);
        ngx_queue_init(&g->subs);

        while (!ngx_queue_empty(&pending)) {
            q = ngx_queue_head(&pending);
            ngx_queue_remove(q);
            ngx_queue_insert_tail(&g->subs, q);

            s = ngx_queue_data(q, ngx_http_pushq_sub_t, queue);

            switch (what) {

            case NGX_HTTP_PUSHQ_EACH_SHUTDOWN:
                s->fn->shutdown(s);
                break;

            default: /* NGX_HTTP_PUSHQ_EACH_REDIS */
                if (s->redis) {
                    s->fn->notify(s);
                }
                break;
            }
        }
    }

    w->dispatching = 0;

    ngx_http_pushq_free_empty_groups();
}


/*
 * Dispatch passes.  A wake-up starts a pass over every local subscriber
 * (or, when one is under way, asks for another after it); a pass notifies
 * the ready ones in slices of at most NGX_HTTP_PUSHQ_SLICE_NOTIFY
 * notifications, and between two slices the worker goes back to its
 * event loop (ngx_posted_next_events: epoll is polled without waiting).
 *
 * Why slices: a fan-out to thousands of subscribers would otherwise hold
 * the worker for milliseconds, during which no publish is read.  Between
 * slices the next publishes come in, so the subscribers later in the pass
 * fetch several messages at once and get them in one writev() (or, for a
 * long-poll, one answer with batch): under load the system calls per
 * delivery fall below one, and the publisher is answered without waiting
 * for the fan-out.
 *
 * Which subscribers: those of the channels that the other workers (and
 * this one) listed as changed since the last pass began
 * (ngx_http_pushq_changes.c), or all of them when a list overflowed or a
 * wake-up named no channel.
 *
 * Resuming needs no list of its own: a visited subscriber is marked with
 * the pass number and moved to its group's tail, so a group is done when
 * its head is marked, and the pass goes on from the group whose key it
 * was at (the next one if that group is gone), or from the next listed
 * channel.  A subscriber registered during a pass is not visited by it: it
 * checked the store itself when it started, after the wake-up; a later
 * wake-up sets `again`, and the next pass visits it.
 */

#define NGX_HTTP_PUSHQ_SLICE_NOTIFY  128   /* notifications per slice */
#define NGX_HTTP_PUSHQ_SLICE_VISIT   4096  /* subscribers looked at */


static void
ngx_http_pushq_woken(ngx_uint_t now)
{
    ngx_http_pushq_worker_t  *w;

    w = &ngx_http_pushq_worker;

    if (!w->registered || w->exiting) {
        return;
    }

    if (w->passing) {
        w->again = 1;
        return;
    }

    w->passing = 1;
    ngx_http_pushq_pass_begin();

    if (now) {
        ngx_http_pushq_slice();
        return;
    }

    ngx_post_event(&w->slice, &ngx_posted_events);
}


static void
ngx_http_pushq_slice_handler(ngx_event_t *ev)
{
    ngx_http_pushq_slice();
}


static void
ngx_http_pushq_pass_begin(void)
{
    uint64_t                  recovered;
    ngx_http_pushq_worker_t  *w;

    w = &ngx_http_pushq_worker;

    w->pass = (w->pass + 1) ? w->pass + 1 : 1;
    w->pass_key = 0;
    w->key_index = 0;
    w->pass_all = ngx_http_pushq_changes_take(ngx_worker, w->keys,
                                              &w->nkeys)
                  ? 1 : 0;

    /*
     * The store recovered from a dead lock holder since the last pass: a
     * subscriber whose record it could not keep is ready (its fetch says
     * so) under a channel key no publish names any more; everyone.
     */

    pushq_store_recoveries(w->store, &recovered, NULL);

    if (recovered != w->recovered) {
        w->recovered = recovered;
        w->pass_all = 1;
    }
}


/* the first group whose key is key or more */

static ngx_rbtree_node_t *
ngx_http_pushq_group_from(ngx_rbtree_key_t key)
{
    ngx_rbtree_node_t        *node, *sentinel, *found;
    ngx_http_pushq_worker_t  *w;

    w = &ngx_http_pushq_worker;
    node = w->groups.root;
    sentinel = w->groups.sentinel;
    found = NULL;

    while (node != sentinel) {

        if (node->key >= key) {
            found = node;
            node = node->left;

        } else {
            node = node->right;
        }
    }

    return found;
}


static void
ngx_http_pushq_slice(void)
{
    ngx_uint_t                notified, visited;
    ngx_rbtree_node_t        *node;
    ngx_http_pushq_group_t   *g;
    ngx_http_pushq_worker_t  *w;

    w = &ngx_http_pushq_worker;

    if (!w->passing || w->exiting) {
        return;
    }

    notified = 0;
    visited = 0;

    w->dispatching = 1;

    if (w->pass_all) {
        for (node = ngx_http_pushq_group_from(w->pass_key);
             node;
             node = ngx_rbtree_next(&w->groups, node))
        {
            w->pass_key = node->key;

            if (ngx_http_pushq_visit((ngx_http_pushq_group_t *) node,
                                     &notified, &visited))
            {
                goto suspend;
            }
        }

    } else {
        for ( /* void */ ; w->key_index < w->nkeys; w->key_index++) {
            g = ngx_http_pushq_find_group(
                               (ngx_rbtree_key_t) w->keys[w->key_index]);

            if (g && ngx_http_pushq_visit(g, &notified, &visited)) {
                goto suspend;
            }
        }
    }

    w->dispatching = 0;

    if (w->again) {
        /* woken during the pass: another one, after the next turn */
        w->again = 0;
        ngx_http_pushq_pass_begin();
        ngx_post_event(&w->slice, &ngx_posted_next_events);

    } else {
        w->passing = 0;
    }

    ngx_http_pushq_free_empty_groups();
    return;

suspend:

    /* the rest after the event loop's next turn */

    w->dispatching = 0;
    ngx_post_event(&w->slice, &ngx_posted_next_events);
    ngx_http_pushq_free_empty_groups();
}


/*
 * Visits g's subscribers not yet visited by this pass; returns 1 when the
 * slice is used up before the group is done.
 */

static ngx_uint_t
ngx_http_pushq_visit(ngx_http_pushq_group_t *g, ngx_uint_t *notified,
    ngx_uint_t *visited)
{
    ngx_queue_t              *q;
    ngx_http_pushq_sub_t     *s;
    ngx_http_pushq_worker_t  *w;

    w = &ngx_http_pushq_worker;

    while (!ngx_queue_empty(&g->subs)) {
        q = ngx_queue_head(&g->subs);
        s = ngx_queue_data(q, ngx_http_pushq_sub_t, queue);

        if (s->pass == w->pass) {
            /* the rest of the group was visited */
            return 0;
        }

        if (*notified == NGX_HTTP_PUSHQ_SLICE_NOTIFY
            || *visited == NGX_HTTP_PUSHQ_SLICE_VISIT)
        {
            return 1;
        }

        /* first, so that notify() may remove any subscriber */
        ngx_queue_remove(q);
        ngx_queue_insert_tail(&g->subs, q);
        s->pass = w->pass;
        (*visited)++;

        if (pushq_sub_ready(w->store, &s->sub)) {
            (*notified)++;
            s->fn->notify(s);
        }
    }

    return 0;
}


/*
 * The Redis link came (back) up: subscribers in pushq_redis scopes that
 * wait for it (a take that failed while it was down) take again.  Not
 * while a dispatch runs (the link's events never run inside one) nor once
 * the worker is exiting.
 */

void
ngx_http_pushq_redis_kick(void)
{
    ngx_http_pushq_worker_t  *w;

    w = &ngx_http_pushq_worker;

    if (!w->registered || w->exiting || w->dispatching) {
        return;
    }

    ngx_http_pushq_each(NGX_HTTP_PUSHQ_EACH_REDIS);
}


/* graceful shutdown (reload, QUIT): answer and close everything held */

static void
ngx_http_pushq_shutdown(void)
{
    ngx_http_pushq_worker_t  *w;

    w = &ngx_http_pushq_worker;

    if (w->exiting) {
        return;
    }

    w->exiting = 1;

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "pushq: worker exiting, closing its subscribers");

    ngx_http_pushq_each(NGX_HTTP_PUSHQ_EACH_SHUTDOWN);
    ngx_http_pushq_stop_passes();

    ngx_http_pushq_close_own_eventfd();
}


/* no pass after the subscribers were closed (or freed) */

static void
ngx_http_pushq_stop_passes(void)
{
    ngx_http_pushq_worker_t  *w;

    w = &ngx_http_pushq_worker;

    w->passing = 0;
    w->again = 0;

    if (w->slice.posted) {
        ngx_delete_posted_event(&w->slice);
    }
}


ngx_http_pushq_frame_t *
ngx_http_pushq_frame_alloc(size_t len, ngx_log_t *log)
{
    ngx_http_pushq_frame_t  *f;

    f = ngx_alloc(offsetof(ngx_http_pushq_frame_t, data) + len, log);
    if (f == NULL) {
        return NULL;
    }

    f->refs = 1;
    f->id = 0;
    f->len = len;

    return f;
}


void
ngx_http_pushq_frame_release(ngx_http_pushq_frame_t *f)
{
    if (--f->refs == 0) {
        ngx_free(f);
    }
}
