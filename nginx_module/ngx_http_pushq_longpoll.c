
/*
 * pushq nginx module: pushq_subscriber, and its long-poll transport
 * (SPEC "Long-poll subscribe").
 *
 * A long-poll with nothing to answer is held without blocking the worker:
 * r->main->count++ keeps the request, a timer answers the timeout,
 * ngx_http_test_reading notices the client's disconnect at once (the
 * request is finalized with 499 and its cleanup closes the subscriber
 * without consuming anything), and a wake-up answers it.
 *
 * The disconnect may have been reported before ngx_http_test_reading is
 * installed (a client that resets right after its request: the event
 * already came while the request was read, and edge-triggered epoll does
 * not report it again).  So the handler looks at the read event's flags
 * before it opens anything, posts the read event once the hold is armed,
 * and every fetch for a name (which consumes) is preceded by a check of
 * the socket.
 *
 * Redis mode (pushq_redis), a name or last_id given: Redis holds the
 * channel and the name's cursor, so every answer comes from a `take`
 * (pushq_redis_cmd_take: reads after the cursor and moves a named cursor
 * atomically, whatever server the request is on).  When a take finds
 * nothing the request waits on a "doorbell": an anonymous local subscriber
 * opened with pushq_sub_open_at() after the cursor, which the mirror
 * (worker 0's subscription) makes ready when the channel gets a message;
 * a notify then sends the next take.  At most one take is in flight per
 * request.  While the link is down the request keeps waiting: it takes
 * again when kicked (the link came back) or every second, and never
 * answers a name from the local store.  A take that already moved the
 * name's cursor when the client vanished is lost to that name (HTTP has
 * no acknowledgement; the same holds for a take whose reply was lost with
 * the connection).
 */


#include "ngx_http_pushq_module.h"


/* payload bytes one answer carries at most ("batch" may ask for more) */
#define NGX_HTTP_PUSHQ_LP_MAX_BYTES  (1024 * 1024)

/* Redis mode: a take again after this while the link is down */
#define NGX_HTTP_PUSHQ_LP_RETRY      1000
/* Redis mode: how long a take may still answer after the timeout */
#define NGX_HTTP_PUSHQ_LP_GRACE      5000

/* pushq_sub_open_at's "after": the local newest id instead */


typedef struct {
    ngx_http_pushq_sub_t        base;
    ngx_event_t                 timer;
    pushq_args_t                args;
    ngx_array_t                 msgs;        /* of pushq_json_msg_t */
    uint64_t                    lost;        /* reported by the store, not
                                                yet answered */
    unsigned                    reset:1;
    unsigned                    nomem:1;

    /* Redis mode with a name or last_id (see the top of this file) */
    ngx_http_pushq_loc_conf_t   *conf;       /* NULL: the local store */
    ngx_http_pushq_redis_link_t *link;       /* NULL: none in this worker */
    ngx_http_pushq_redis_op_t   *op;         /* the take in flight */
    ngx_event_t                 retry;       /* link down: take again */
    uint64_t                    cursor;      /* after the last take */
    unsigned                    taken:1;     /* a take was answered */
    unsigned                    timedout:1;  /* the timeout came during a
                                                take */
    unsigned                    final:1;     /* answer the next take's
                                                reply, even with nothing */
    unsigned                    spins:2;     /* empty takes in a row with
                                                the doorbell ready */
} ngx_http_pushq_lp_t;


static void ngx_http_pushq_lp_notify(ngx_http_pushq_sub_t *s);
static void ngx_http_pushq_lp_shutdown(ngx_http_pushq_sub_t *s);
static void ngx_http_pushq_lp_timeout(ngx_event_t *ev);
static void ngx_http_pushq_lp_cleanup(void *data);
static ngx_int_t ngx_http_pushq_lp_answer(ngx_http_pushq_lp_t *lp,
    ngx_uint_t final);
static ngx_uint_t ngx_http_pushq_lp_gone(ngx_http_request_t *r,
    ngx_uint_t peek);
static ngx_int_t ngx_http_pushq_lp_send(ngx_http_pushq_lp_t *lp);
static ngx_int_t ngx_http_pushq_lp_redis(ngx_http_pushq_lp_t *lp,
    ngx_http_pushq_loc_conf_t *plcf, ngx_msec_t timeout);
static ngx_int_t ngx_http_pushq_lp_take(ngx_http_pushq_lp_t *lp);
static ngx_int_t ngx_http_pushq_lp_hold(ngx_http_request_t *r);
static void ngx_http_pushq_lp_finish(ngx_http_pushq_lp_t *lp, ngx_int_t rc);


static const ngx_http_pushq_sub_fn_t  ngx_http_pushq_lp_fn = {
    ngx_http_pushq_lp_notify,
    ngx_http_pushq_lp_shutdown
};


ngx_int_t
ngx_http_pushq_subscriber_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_uint_t                  ws;
    const char                 *why;
    pushq_args_t                args;
    ngx_table_elt_t            *h;
    ngx_http_pushq_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_pushq_module);

    if (r->method != NGX_HTTP_GET) {
        if (ngx_http_pushq_add_header(r, "Allow", "GET") != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_pushq_error(r, PUSHQ_EMETHOD,
                                    "method: a subscriber takes GET");
    }

    if (ngx_http_pushq_worker.store == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = r->headers_in.upgrade;
    ws = (h != NULL
          && pushq_ws_is_upgrade((const char *) h->value.data, h->value.len));

    if (ws && !(plcf->subscriber & NGX_HTTP_PUSHQ_WEBSOCKET)) {
        return ngx_http_pushq_error(r, PUSHQ_EBADARG,
                                    "Upgrade: this location serves "
                                    "long-poll only");
    }

    if (!ws && !(plcf->subscriber & NGX_HTTP_PUSHQ_LONGPOLL)) {
        return ngx_http_pushq_error(r, PUSHQ_EUPGRADE,
                                    "Upgrade: this location serves "
                                    "WebSocket only");
    }

    why = NULL;

    if (ngx_http_pushq_parse_args(r, &args, &why) != NGX_OK) {
        return ngx_http_pushq_error(r, PUSHQ_EBADARG, why);
    }

    rc = ngx_http_pushq_get_channel(r, plcf, &args, &why);

    if (rc == NGX_OK) {
        rc = ngx_http_pushq_get_client(r, plcf, &args, &why);
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_pushq_error(r, PUSHQ_EBADARG, why);
    }

    if (ws) {
        return ngx_http_pushq_websocket_handler(r, plcf, &args);
    }

    return ngx_http_pushq_longpoll_handler(r, plcf, &args);
}


ngx_int_t
ngx_http_pushq_longpoll_handler(ngx_http_request_t *r,
    ngx_http_pushq_loc_conf_t *plcf, pushq_args_t *args)
{
    ngx_int_t                 rc;
    ngx_msec_t                timeout;
    const char               *why;
    pushq_status_t            st;
    pushq_sub_spec_t          spec;
    ngx_http_cleanup_t       *cln;
    ngx_http_pushq_lp_t      *lp;
    ngx_http_pushq_worker_t  *w;

    w = &ngx_http_pushq_worker;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    /* the client went before we looked: open nothing */

    if (ngx_http_pushq_lp_gone(r, 0)) {
        return NGX_HTTP_CLIENT_CLOSED_REQUEST;
    }

    lp = ngx_pcalloc(r->pool, sizeof(ngx_http_pushq_lp_t));
    if (lp == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_array_init(&lp->msgs, r->pool, args->batch ? 4 : 1,
                       sizeof(pushq_json_msg_t))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    lp->base.fn = &ngx_http_pushq_lp_fn;
    lp->base.request = r;
    lp->args = *args;

    timeout = plcf->longpoll_timeout;

    if (args->has_timeout && args->timeout_ms < timeout) {
        timeout = (ngx_msec_t) args->timeout_ms;
    }

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_pushq_lp_cleanup;
    cln->data = lp;

    ngx_memzero(&spec, sizeof(pushq_sub_spec_t));
    spec.chan = lp->args.channel;
    spec.chan_len = lp->args.channel_len;
    spec.name = lp->args.name_len ? lp->args.name : NULL;
    spec.name_len = lp->args.name_len;
    spec.has_last_id = lp->args.has_last_id;
    spec.last_id = lp->args.last_id;
    spec.kind = PUSHQ_SUB_LONGPOLL;
    spec.owner = w->owner;

    if (plcf->redis && (lp->args.name_len || lp->args.has_last_id)) {
        /* the answers come from Redis (see the top of this file) */
        return ngx_http_pushq_lp_redis(lp, plcf, timeout);
    }

    why = NULL;
    st = pushq_sub_open(w->store, &spec, &plcf->limits, pushq_now_ms(),
                        &lp->base.sub, &why);
    if (st != PUSHQ_OK) {
        return ngx_http_pushq_error(r, st, why);
    }

    lp->base.open = 1;

    if (pushq_sub_ready(w->store, &lp->base.sub)) {
        rc = ngx_http_pushq_lp_answer(lp, 0);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    if (timeout == 0 || w->exiting) {
        return ngx_http_pushq_lp_answer(lp, 1);
    }

    if (ngx_http_pushq_register(&lp->base) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* ev->log is required: Debian's build has NGX_DEBUG */

    lp->timer.handler = ngx_http_pushq_lp_timeout;
    lp->timer.data = lp;
    lp->timer.log = r->connection->log;

    ngx_add_timer(&lp->timer, timeout);

    /* a publish may have come between the check above and register */

    if (pushq_sub_ready(w->store, &lp->base.sub)) {
        rc = ngx_http_pushq_lp_answer(lp, 0);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    return ngx_http_pushq_lp_hold(r);
}


/*
 * Keeps the request open (r->main->count++) while it waits; returns
 * NGX_DONE for the content handler.  Data or a disconnect already reported
 * on the connection comes again with no new event: let
 * ngx_http_test_reading look at it now, from the posted events (the
 * request is held; if it is answered first, closing the connection deletes
 * the posted event, and keep-alive installs its own handler).
 */

static ngx_int_t
ngx_http_pushq_lp_hold(ngx_http_request_t *r)
{
    ngx_event_t  *rev;

    r->main->count++;

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    rev = r->connection->read;

    if (r == r->main
#if (NGX_HTTP_V2)
        && r->stream == NULL
#endif
        && (rev->ready || rev->pending_eof || rev->eof || rev->error))
    {
        ngx_post_event(rev, &ngx_posted_events);
    }

    return NGX_DONE;
}


/*
 * Whether the client is known to have gone: a reset, a FIN (as nginx's
 * ngx_http_test_reading with EPOLLRDHUP: a half-close is a disconnect) or
 * an error.  Without peek only the event's flags are looked at (no system
 * call); with peek a reset or FIN not yet reported by the event loop is
 * seen too (one recv(MSG_PEEK) that does not block; pipelined data is not
 * consumed and means alive).  When gone, the connection is marked as
 * ngx_http_test_reading marks it, and the caller finalizes with 499.
 */

static ngx_uint_t
ngx_http_pushq_lp_gone(ngx_http_request_t *r, ngx_uint_t peek)
{
    u_char             buf[1];
    ssize_t            n;
    ngx_err_t          err;
    ngx_event_t       *rev;
    ngx_connection_t  *c;

    c = r->connection;
    rev = c->read;
    err = 0;

#if (NGX_HTTP_V2)
    if (r->stream) {
        /* the stream's connection is not a socket; nginx watches it */
        return c->error ? 1 : 0;
    }
#endif

    if (c->error || rev->eof || rev->error || rev->pending_eof) {
        goto gone;
    }

    if (!peek || c->fd == (ngx_socket_t) -1) {
        return 0;
    }

    n = recv(c->fd, (void *) buf, 1, MSG_PEEK);

    if (n > 0) {
        return 0;
    }

    if (n == -1) {
        err = ngx_socket_errno;

        if (err == NGX_EAGAIN || err == NGX_EINTR) {
            return 0;
        }
    }

gone:

    rev->eof = 1;
    c->error = 1;

    if (err) {
        rev->error = 1;
    }

#if (NGX_HTTP_SSL)
    if (c->ssl) {
        c->ssl->no_send_shutdown = 1;
    }
#endif

    ngx_log_error(NGX_LOG_INFO, c->log, err,
                  "client prematurely closed connection");

    return 1;
}


/* called by pushq_sub_fetch with the store locked: copy and return */

static void
ngx_http_pushq_lp_collect(void *ctx, const pushq_msg_t *m)
{
    ngx_http_pushq_lp_t *lp = ctx;

    u_char            *p;
    pushq_json_msg_t  *jm;

    jm = ngx_array_push(&lp->msgs);
    p = ngx_pnalloc(lp->base.request->pool, m->len ? m->len : 1);

    if (jm == NULL || p == NULL) {
        lp->nomem = 1;
        return;
    }

    ngx_memcpy(p, m->data, m->len);

    ngx_memzero(jm, sizeof(pushq_json_msg_t));
    jm->id = m->id;
    jm->channel = lp->args.channel;
    jm->channel_len = lp->args.channel_len;
    jm->data = p;
    jm->len = m->len;
    jm->binary = (m->flags & PUSHQ_MSG_BINARY) ? 1 : 0;
}


static void
ngx_http_pushq_lp_done(ngx_http_pushq_lp_t *lp)
{
    if (lp->timer.timer_set) {
        ngx_del_timer(&lp->timer);
    }

    if (lp->retry.timer_set) {
        ngx_del_timer(&lp->retry);
    }

    if (lp->op) {
        /* the link will not call us: its reply may outlive the request */
        lp->op->cancelled = 1;
        lp->op = NULL;
    }

    ngx_http_pushq_unregister(&lp->base);

    if (lp->base.open) {
        lp->base.open = 0;
        pushq_sub_close(ngx_http_pushq_worker.store, &lp->base.sub,
                        pushq_now_ms());
    }
}


/*
 * Fetches what is ready and answers it.  Returns NGX_DECLINED when nothing
 * came and final is not set (the poll goes on); else the answer's rc, or
 * NGX_HTTP_CLIENT_CLOSED_REQUEST with nothing fetched (so nothing consumed)
 * when the client is gone.
 */

static ngx_int_t
ngx_http_pushq_lp_answer(ngx_http_pushq_lp_t *lp, ngx_uint_t final)
{
    size_t               max;
    pushq_status_t       st;
    ngx_http_request_t  *r;
    pushq_fetch_info_t   info;

    r = lp->base.request;

    /*
     * A fetch for a name consumes the name's messages: not for a client
     * that is gone (peek: one system call).  An anonymous subscriber's
     * fetch moves only its own cursor, which ends with the request.
     */

    if (ngx_http_pushq_lp_gone(r, lp->args.name_len != 0)) {
        ngx_http_pushq_lp_done(lp);
        return NGX_HTTP_CLIENT_CLOSED_REQUEST;
    }

    ngx_memzero(&info, sizeof(pushq_fetch_info_t));

    max = lp->args.batch ? lp->args.batch : 1;
    lp->msgs.nelts = 0;

    st = pushq_sub_fetch(ngx_http_pushq_worker.store, &lp->base.sub, max,
                         NGX_HTTP_PUSHQ_LP_MAX_BYTES, pushq_now_ms(),
                         ngx_http_pushq_lp_collect, lp, &info);

    if (st != PUSHQ_OK || lp->nomem) {
        ngx_http_pushq_lp_done(lp);
        return ngx_http_pushq_error(r, lp->nomem ? PUSHQ_EINTERNAL : st,
                                    lp->nomem ? "out of worker memory"
                                              : "the store failed");
    }

    lp->lost += info.lost;
    lp->reset |= info.reset ? 1 : 0;

    if (lp->msgs.nelts == 0 && !final) {
        return NGX_DECLINED;
    }

    ngx_http_pushq_lp_done(lp);

    return ngx_http_pushq_lp_send(lp);
}


/* answers what lp->msgs holds (or the timeout answer), with lost/reset */

static ngx_int_t
ngx_http_pushq_lp_send(ngx_http_pushq_lp_t *lp)
{
    u_char              *p;
    size_t               n, max;
    pushq_json_msg_t    *jm;
    ngx_http_request_t  *r;

    r = lp->base.request;
    jm = lp->msgs.elts;

    if (lp->msgs.nelts) {
        jm[0].lost = lp->lost;
        jm[0].reset = lp->reset;
    }

    for (n = 256; /* void */ ; /* void */) {
        p = ngx_pnalloc(r->pool, n);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (lp->msgs.nelts == 0) {
            max = pushq_json_timeout((char *) p, n, lp->args.batch != 0,
                                     lp->lost, lp->reset);

        } else if (lp->args.batch) {
            max = pushq_json_batch((char *) p, n, jm, lp->msgs.nelts);

        } else {
            max = pushq_json_message((char *) p, n, &jm[0]);
        }

        if (max <= n) {
            break;
        }

        n = max;
    }

    return ngx_http_pushq_send_json(r, NGX_HTTP_OK, p, max);
}


static void
ngx_http_pushq_lp_finish(ngx_http_pushq_lp_t *lp, ngx_int_t rc)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = lp->base.request;
    c = r->connection;

    /* outside ngx_http_request_handler: run what finalizing posted */

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_pushq_lp_notify(ngx_http_pushq_sub_t *s)
{
    ngx_int_t             rc;
    ngx_http_pushq_lp_t  *lp = (ngx_http_pushq_lp_t *) s;

    if (lp->conf) {
        /* the doorbell rang, or the link is back: take (again) */

        lp->spins = 0;

        rc = ngx_http_pushq_lp_take(lp);

        if (rc != NGX_DECLINED) {
            ngx_http_pushq_lp_finish(lp, rc);
        }

        return;
    }

    rc = ngx_http_pushq_lp_answer(lp, 0);

    if (rc != NGX_DECLINED) {
        ngx_http_pushq_lp_finish(lp, rc);
    }
}


/* the worker exits (reload): answer now, with a message if one is ready */

static void
ngx_http_pushq_lp_shutdown(ngx_http_pushq_sub_t *s)
{
    ngx_http_pushq_lp_t  *lp = (ngx_http_pushq_lp_t *) s;

    if (lp->conf) {
        if (lp->op) {
            /* what the take in flight brings is answered, then we end */
            lp->final = 1;
            return;
        }

        ngx_http_pushq_lp_done(lp);
        ngx_http_pushq_lp_finish(lp, ngx_http_pushq_lp_send(lp));
        return;
    }

    ngx_http_pushq_lp_finish(lp, ngx_http_pushq_lp_answer(lp, 1));
}


static void
ngx_http_pushq_lp_timeout(ngx_event_t *ev)
{
    ngx_http_pushq_lp_t  *lp = ev->data;

    if (lp->conf) {
        if (lp->op && !lp->timedout) {
            /* the take in flight may bring messages: they are answered */
            lp->timedout = 1;
            lp->final = 1;
            ngx_add_timer(&lp->timer, NGX_HTTP_PUSHQ_LP_GRACE);
            return;
        }

        if (lp->op) {
            ngx_log_error(NGX_LOG_WARN, lp->base.request->connection->log,
                          0, "pushq: redis did not answer a take in %M "
                          "after the long-poll timeout, answering without "
                          "it", (ngx_msec_t) NGX_HTTP_PUSHQ_LP_GRACE);
        }

        ngx_http_pushq_lp_done(lp);
        ngx_http_pushq_lp_finish(lp, ngx_http_pushq_lp_send(lp));
        return;
    }

    ngx_http_pushq_lp_finish(lp, ngx_http_pushq_lp_answer(lp, 1));
}


static void
ngx_http_pushq_lp_cleanup(void *data)
{
    ngx_http_pushq_lp_t  *lp = data;

    ngx_http_pushq_lp_done(lp);
}


/* --- Redis mode -------------------------------------------------------- */


static void ngx_http_pushq_lp_taken(ngx_http_pushq_redis_op_t *op,
    struct redisReply *reply, const char *err);
static void ngx_http_pushq_lp_retry(ngx_event_t *ev);


/* the doorbell: see ngx_http_pushq_doorbell() */

static ngx_int_t
ngx_http_pushq_lp_doorbell(ngx_http_pushq_lp_t *lp, uint64_t after)
{
    return ngx_http_pushq_doorbell(&lp->base, PUSHQ_SUB_LONGPOLL,
                                   lp->args.channel, lp->args.channel_len,
                                   &lp->conf->limits, after,
                                   lp->base.request->connection->log);
}


static ngx_int_t
ngx_http_pushq_lp_redis(ngx_http_pushq_lp_t *lp,
    ngx_http_pushq_loc_conf_t *plcf, ngx_msec_t timeout)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = lp->base.request;

    lp->conf = plcf;
    lp->link = ngx_http_pushq_redis_link(plcf->redis);
    lp->base.redis = 1;     /* ngx_http_pushq_redis_kick() notifies us */

    lp->timer.handler = ngx_http_pushq_lp_timeout;
    lp->timer.data = lp;
    lp->timer.log = r->connection->log;

    lp->retry.handler = ngx_http_pushq_lp_retry;
    lp->retry.data = lp;
    lp->retry.log = r->connection->log;

    /* the doorbell is opened once a take finds nothing (or cannot be
     * sent): a poll answered at once costs the store nothing */

    if (timeout == 0 || ngx_http_pushq_worker.exiting) {
        lp->final = 1;

    } else {
        ngx_add_timer(&lp->timer, timeout);
    }

    rc = ngx_http_pushq_lp_take(lp);

    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_http_pushq_lp_hold(r);
}


/*
 * The link is down (or Redis answered an error): wait, and take again when
 * kicked or after NGX_HTTP_PUSHQ_LP_RETRY.  Returns NGX_DECLINED (waiting,
 * as ngx_http_pushq_lp_answer) or the rc of the answer given now (a final
 * one: nothing), which may be NGX_OK.
 */

static ngx_int_t
ngx_http_pushq_lp_down(ngx_http_pushq_lp_t *lp)
{
    if (lp->final || ngx_http_pushq_worker.exiting) {
        ngx_http_pushq_lp_done(lp);
        return ngx_http_pushq_lp_send(lp);
    }

    if (!lp->base.open) {
        /* registered, so that a kick finds us (the store full: the retry
         * timer does) */
        (void) ngx_http_pushq_lp_doorbell(lp, NGX_HTTP_PUSHQ_NEWEST);
    }

    if (!lp->retry.timer_set) {
        ngx_add_timer(&lp->retry, NGX_HTTP_PUSHQ_LP_RETRY);
    }

    return NGX_DECLINED;
}


/*
 * Sends a take unless one is in flight.  Returns NGX_DECLINED when the
 * request goes on waiting, else the rc to finalize it with (an answer sent
 * gives NGX_OK: it too must finalize the request).
 */

static ngx_int_t
ngx_http_pushq_lp_take(ngx_http_pushq_lp_t *lp)
{
    const char                 *why;
    pushq_status_t              st;
    pushq_redis_cmd_t           cmd;
    pushq_redis_take_t          t;
    ngx_http_request_t         *r;
    ngx_http_pushq_redis_op_t  *op;

    r = lp->base.request;

    if (lp->op) {
        return NGX_DECLINED;
    }

    /* a take for a name moves its cursor: not for a client that is gone */

    if (ngx_http_pushq_lp_gone(r, lp->args.name_len != 0)) {
        ngx_http_pushq_lp_done(lp);
        return NGX_HTTP_CLIENT_CLOSED_REQUEST;
    }

    if (lp->retry.timer_set) {
        ngx_del_timer(&lp->retry);
    }

    ngx_memzero(&t, sizeof(pushq_redis_take_t));
    t.chan = lp->args.channel;
    t.chan_len = lp->args.channel_len;

    if (lp->args.name_len) {
        t.name = lp->args.name;
        t.name_len = lp->args.name_len;

        /* last_id moves the name once; then the name's cursor rules */
        if (!lp->taken && lp->args.has_last_id) {
            t.has_last_id = 1;
            t.last_id = lp->args.last_id;
        }

        if (lp->taken) {
            t.has_cursor = 1;
            t.cursor = lp->cursor;
        }

    } else {
        t.has_last_id = 1;
        t.last_id = lp->taken ? lp->cursor : lp->args.last_id;
    }

    t.max_msgs = lp->args.batch ? lp->args.batch : 1;
    t.max_bytes = NGX_HTTP_PUSHQ_LP_MAX_BYTES;

    why = NULL;
    st = pushq_redis_cmd_take(&cmd, &t, &lp->conf->limits, &why);

    if (st != PUSHQ_OK) {
        ngx_http_pushq_lp_done(lp);
        return ngx_http_pushq_error(r, st, why);
    }

    if (lp->link == NULL) {
        /* this worker has no link (yet) */
        return ngx_http_pushq_lp_down(lp);
    }

    op = ngx_http_pushq_redis_op(ngx_http_pushq_lp_taken, lp);
    if (op == NULL) {
        ngx_http_pushq_lp_done(lp);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_pushq_redis_send(lp->link, &cmd, op, &why) != NGX_OK) {
        /* the link is down (it logs that once) and freed op */
        return ngx_http_pushq_lp_down(lp);
    }

    lp->op = op;

    return NGX_DECLINED;
}


static void
ngx_http_pushq_lp_taken(ngx_http_pushq_redis_op_t *op,
    struct redisReply *reply, const char *err)
{
    ngx_http_pushq_lp_t *lp = op->data;

    char                      errbuf[128];
    ngx_int_t                 rc;
    const char               *why;
    pushq_status_t            st;
    ngx_http_request_t       *r;
    pushq_redis_take_info_t   info;

    r = lp->base.request;
    lp->op = NULL;          /* the link frees op */

    if (reply == NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "pushq: redis take failed: %s, waiting",
                      err ? err : "connection lost");
        rc = ngx_http_pushq_lp_down(lp);
        goto done;
    }

    ngx_memzero(&info, sizeof(pushq_redis_take_info_t));
    lp->msgs.nelts = 0;
    errbuf[0] = '\0';
    why = NULL;

    st = pushq_redis_reply_take(reply, ngx_http_pushq_lp_collect, lp, &info,
                                errbuf, sizeof(errbuf), &why);

    if (lp->nomem) {
        ngx_http_pushq_lp_done(lp);
        rc = ngx_http_pushq_error(r, PUSHQ_EINTERNAL, "out of worker memory");
        goto done;
    }

    if (st != PUSHQ_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "pushq: redis take refused: %s, waiting",
                      why ? why : "error");
        lp->msgs.nelts = 0;
        rc = ngx_http_pushq_lp_down(lp);
        goto done;
    }

    lp->taken = 1;
    lp->cursor = info.last_id;
    lp->lost += info.lost;
    lp->reset |= info.reset ? 1 : 0;

    if (lp->msgs.nelts || lp->final || ngx_http_pushq_worker.exiting) {
        ngx_http_pushq_lp_done(lp);
        rc = ngx_http_pushq_lp_send(lp);
        goto done;
    }

    /* nothing after the cursor: wait for the mirror's next message */

    if (ngx_http_pushq_lp_doorbell(lp, lp->cursor) != NGX_OK) {
        /* the store is full: try again later */
        rc = ngx_http_pushq_lp_down(lp);
        goto done;
    }

    rc = NGX_DECLINED;

    if (pushq_sub_ready(ngx_http_pushq_worker.store, &lp->base.sub)) {

        if (lp->spins == 0) {
            /* it came between Redis's answer and now: take it */
            lp->spins = 1;
            rc = ngx_http_pushq_lp_take(lp);

        } else if (ngx_http_pushq_lp_doorbell(lp, NGX_HTTP_PUSHQ_NEWEST)
                   != NGX_OK)
        {
            /*
             * Redis had nothing twice while the mirror has more after the
             * cursor: the mirror holds another life of the channel; ring
             * on its next message only
             */
            rc = ngx_http_pushq_lp_down(lp);
        }

    } else {
        lp->spins = 0;
    }

done:

    if (rc != NGX_DECLINED) {
        ngx_http_pushq_lp_finish(lp, rc);
    }
}


static void
ngx_http_pushq_lp_retry(ngx_event_t *ev)
{
    ngx_int_t             rc;
    ngx_http_pushq_lp_t  *lp = ev->data;

    rc = ngx_http_pushq_lp_take(lp);

    if (rc != NGX_DECLINED) {
        ngx_http_pushq_lp_finish(lp, rc);
    }
}
