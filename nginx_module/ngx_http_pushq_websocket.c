
/*
 * pushq nginx module: pushq_subscriber's WebSocket transport (SPEC
 * "WebSocket subscribe", RFC 6455), served by the module itself.
 *
 * After the 101 the request is held (r->main->count++) until the first
 * run of the read handler, which frees it on plain HTTP/1.1 when nothing
 * else holds it (ngx_http_pushq_ws_detach): the connection's events then
 * reach ngx_http_pushq_ws_read_event/_write_event directly.  Otherwise
 * (TLS, limit_conn, ...) they reach ngx_http_pushq_ws_read/_write through
 * ngx_http_request_handler.  Frames are read with c->recv into the core's
 * parser and written with c->send (both are the TLS variants on TLS
 * listeners) from a queue of frames owned by the module, not by r->pool:
 * a connection lives long.  A broadcast is encoded once per worker and
 * the frame shared (reference counted) by every subscriber of the channel.
 *
 * Re-entrancy: the inner functions only queue frames and set flags; every
 * entry point (event handlers, timers, wake-up, shutdown) ends with
 * ngx_http_pushq_ws_step(), the only place that finalizes the request.
 *
 * Redis mode (pushq_redis): a text or binary message from the client is
 * published through Redis (its own message comes back through the mirror,
 * like everyone else's); a publish Redis does not store closes with 1013.
 * Anonymous subscribers read the local mirror as usual.  With a name,
 * every delivery is a `take` (pushq_redis_cmd_take), which moves the
 * name's cursor in Redis atomically: exactly once across servers and
 * across connections sharing the name.  The connection keeps its own
 * cursor and passes it, so a name whose key expired between deliveries
 * goes on from there.  One take is in flight at a time; after a take that
 * brought messages it takes again while Redis holds more, else it waits on
 * a "doorbell" (an anonymous local subscriber opened after the cursor with
 * pushq_sub_open_at) that the mirror rings.  With last_id only, it takes
 * until caught up, then becomes a local subscriber after the last id
 * delivered.  While the link is down it takes again when kicked or every
 * second.  A take in flight when the connection closes may have moved the
 * name's cursor: those messages are lost to the name (as for a long-poll
 * whose client vanished).
 */


#include "ngx_http_pushq_module.h"

#if (NGX_LINUX)
#include <sys/ioctl.h>
#include <linux/sockios.h>
#endif


#define NGX_HTTP_PUSHQ_WS_FORMATS       2
#define NGX_HTTP_PUSHQ_WS_FETCH         64
#define NGX_HTTP_PUSHQ_WS_READS         16
#define NGX_HTTP_PUSHQ_WS_IOV           64      /* frames per writev() */
#define NGX_HTTP_PUSHQ_WS_CLOSE_TIMEOUT 5000    /* ms for a close to go out */
#define NGX_HTTP_PUSHQ_WS_CHECK_EVERY   65536   /* bytes written between two
                                                   looks at the socket's
                                                   unsent bytes */
#define NGX_HTTP_PUSHQ_WS_RETRY         1000    /* ms: Redis down, take
                                                   again */
#define NGX_HTTP_PUSHQ_WS_PUBS          256     /* publishes in flight to
                                                   Redis before reading
                                                   pauses */


typedef struct ngx_http_pushq_out_s  ngx_http_pushq_out_t;

struct ngx_http_pushq_out_s {
    ngx_http_pushq_out_t        *next;
    ngx_http_pushq_frame_t      *frame;
    size_t                       sent;      /* bytes of frame sent */
};


typedef struct {
    ngx_http_pushq_sub_t         base;
    ngx_http_pushq_loc_conf_t   *conf;
    ngx_connection_t            *c;
    pushq_args_t                 args;
    pushq_ws_parser_t           *parser;

    ngx_http_pushq_out_t        *out;       /* frames to send, in order */
    ngx_http_pushq_out_t       **last;
    size_t                       backlog;   /* unsent bytes in out */
    size_t                       kunsent;   /* the socket's unsent bytes at
                                               the last look */
    size_t                       written;   /* bytes written since then */

    ngx_event_t                  timer;     /* ping, then close timeout */

    ngx_uint_t                   format;    /* 0 raw frames, 1 JSON */
    uint64_t                     lost;      /* not yet reported (JSON) */
    unsigned                     reset:1;   /* not yet reported (JSON) */

    /* during a fetch: the first message's entry and a copy of it, to
     * rebuild its JSON with "lost"/"reset" once the fetch reports them */
    ngx_http_pushq_out_t        *first;
    u_char                      *first_data;
    size_t                       first_len;
    ngx_uint_t                   first_binary;

    unsigned                     started:1;
    unsigned                     awaiting_pong:1;
    unsigned                     closing:1;     /* close frame queued */
    unsigned                     close_received:1;
    unsigned                     error:1;       /* drop the connection */
    unsigned                     nomem:1;
    unsigned                     finished:1;
    unsigned                     detached:1;    /* the request is freed */
    unsigned                     linger:1;      /* lingering_close not off */

    /* detached: the connection's read handler before the first run, and
     * the core module's lingering close times */
    ngx_event_handler_pt         http_handler;
    ngx_msec_t                   linger_timeout;
    ngx_msec_t                   linger_time;
    ngx_msec_t                   linger_until;

    /* Redis mode (link set when the location has pushq_redis) */
    ngx_http_pushq_redis_link_t *link;
    ngx_http_pushq_redis_op_t   *op;        /* the take in flight */
    ngx_queue_t                  pubs;      /* publishes in flight */
    ngx_uint_t                   npubs;
    ngx_event_t                  retry;     /* link down: take again */
    uint64_t                     cursor;    /* after the last take */
    unsigned                     redis:1;   /* pushq_redis here */
    unsigned                     rtake:1;   /* deliveries are takes */
    unsigned                     taken:1;   /* a take was answered */
    unsigned                     rmore:1;   /* Redis holds more */
    unsigned                     rkick:1;   /* notified: take */
    unsigned                     rshutdown:1;   /* 1001 after the take */
    unsigned                     rspins:2;
    unsigned                     read_paused:1;
    unsigned                     accepting:1;   /* the first take before
                                                   the 101 */
} ngx_http_pushq_ws_t;


/* a publish in flight to Redis */

typedef struct {
    ngx_queue_t                  queue;     /* in ws->pubs */
    ngx_http_pushq_ws_t         *ws;
    ngx_http_pushq_redis_op_t   *op;
} ngx_http_pushq_ws_pub_t;


static void ngx_http_pushq_ws_read(ngx_http_request_t *r);
static void ngx_http_pushq_ws_write(ngx_http_request_t *r);
static void ngx_http_pushq_ws_input(ngx_http_pushq_ws_t *ws, u_char *data,
    size_t len);
static void ngx_http_pushq_ws_publish(ngx_http_pushq_ws_t *ws,
    pushq_ws_event_t *ev);
static void ngx_http_pushq_ws_deliver(ngx_http_pushq_ws_t *ws);
static void ngx_http_pushq_ws_send(ngx_http_pushq_ws_t *ws);
static void ngx_http_pushq_ws_step(ngx_http_pushq_ws_t *ws);
static void ngx_http_pushq_ws_close(ngx_http_pushq_ws_t *ws, uint16_t code,
    const char *reason);
static void ngx_http_pushq_ws_control(ngx_http_pushq_ws_t *ws,
    unsigned opcode, const u_char *data, size_t len);
static ngx_http_pushq_out_t *ngx_http_pushq_ws_queue(
    ngx_http_pushq_ws_t *ws, ngx_http_pushq_frame_t *f);
static void ngx_http_pushq_ws_timer(ngx_event_t *ev);
static void ngx_http_pushq_ws_notify(ngx_http_pushq_sub_t *s);
static void ngx_http_pushq_ws_shutdown(ngx_http_pushq_sub_t *s);
static void ngx_http_pushq_ws_cleanup(void *data);
static void ngx_http_pushq_ws_release(ngx_http_pushq_ws_t *ws);
static void ngx_http_pushq_ws_start(ngx_event_t *rev);
static void ngx_http_pushq_ws_read_event(ngx_event_t *rev);
static void ngx_http_pushq_ws_write_event(ngx_event_t *wev);
static void ngx_http_pushq_ws_linger(ngx_event_t *rev);
static void ngx_http_pushq_ws_do_read(ngx_http_pushq_ws_t *ws);
static ngx_http_pushq_frame_t *ngx_http_pushq_ws_json_frame(
    ngx_http_pushq_ws_t *ws, pushq_json_msg_t *jm);
static void ngx_http_pushq_ws_fetched(ngx_http_pushq_ws_t *ws,
    uint64_t lost, int reset);
static ngx_uint_t ngx_http_pushq_ws_too_slow(ngx_http_pushq_ws_t *ws);
static void ngx_http_pushq_ws_rdeliver(ngx_http_pushq_ws_t *ws);
static void ngx_http_pushq_ws_rpublish(ngx_http_pushq_ws_t *ws,
    pushq_ws_event_t *ev);
static void ngx_http_pushq_ws_retry(ngx_event_t *ev);
static ngx_int_t ngx_http_pushq_ws_accept(ngx_http_pushq_ws_t *ws);


static const ngx_http_pushq_sub_fn_t  ngx_http_pushq_ws_fn = {
    ngx_http_pushq_ws_notify,
    ngx_http_pushq_ws_shutdown
};


/* worker-local: the read buffer, a JSON scratch buffer, free out entries */

static u_char                 ngx_http_pushq_ws_buf[16384];
static u_char                *ngx_http_pushq_ws_scratch;
static size_t                 ngx_http_pushq_ws_scratch_size;
static ngx_http_pushq_out_t  *ngx_http_pushq_ws_free;


static ngx_str_t *
ngx_http_pushq_ws_header(ngx_http_request_t *r, const char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i].value;
        }
    }
}


ngx_int_t
ngx_http_pushq_websocket_handler(ngx_http_request_t *r,
    ngx_http_pushq_loc_conf_t *plcf, pushq_args_t *args)
{
    char                      accept[28];
    u_char                   *p;
    ngx_int_t                 rc;
    ngx_str_t                *key, *version, *conn;
    const char               *why;
    pushq_status_t            st;
    pushq_sub_spec_t          spec;
    ngx_http_cleanup_t       *cln;
    ngx_http_pushq_ws_t      *ws;
    pushq_ws_handshake_t      hs;
    ngx_http_pushq_worker_t  *w;

    w = &ngx_http_pushq_worker;

#if (NGX_HTTP_V2)
    if (r->stream) {
        return ngx_http_pushq_error(r, PUSHQ_EBADARG,
                                    "Upgrade: WebSocket needs HTTP/1.1");
    }
#endif

    /* RFC 6455 4.2.1: the opening handshake */

    ngx_memzero(&hs, sizeof(pushq_ws_handshake_t));

    hs.method = (const char *) r->method_name.data;
    hs.method_len = r->method_name.len;
    hs.http_major = (int) r->http_major;
    hs.http_minor = (int) r->http_minor;

    if (r->headers_in.upgrade) {
        hs.upgrade = (const char *) r->headers_in.upgrade->value.data;
        hs.upgrade_len = r->headers_in.upgrade->value.len;
    }

    /* nginx 1.22 does not keep r->headers_in.connection: look it up */

    conn = ngx_http_pushq_ws_header(r, "Connection");
    if (conn) {
        hs.connection = (const char *) conn->data;
        hs.connection_len = conn->len;
    }

    key = ngx_http_pushq_ws_header(r, "Sec-WebSocket-Key");
    if (key) {
        hs.key = (const char *) key->data;
        hs.key_len = key->len;
    }

    version = ngx_http_pushq_ws_header(r, "Sec-WebSocket-Version");
    if (version) {
        hs.version = (const char *) version->data;
        hs.version_len = version->len;
    }

    why = NULL;
    st = pushq_ws_handshake_check(&hs, accept, &why);
    if (st != PUSHQ_OK) {
        return ngx_http_pushq_error(r, st, why);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    /*
     * Not from r->pool: once the 101 is out the request is freed and the
     * connection kept (ngx_http_pushq_ws_detach); freed by the request's
     * cleanup or, once detached, when the connection closes.
     */

    ws = ngx_alloc(sizeof(ngx_http_pushq_ws_t), r->connection->log);
    if (ws == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(ws, sizeof(ngx_http_pushq_ws_t));

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        ngx_free(ws);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_pushq_ws_cleanup;
    cln->data = ws;

    ws->base.fn = &ngx_http_pushq_ws_fn;
    ws->base.request = r;
    ws->c = r->connection;
    ws->conf = plcf;
    ws->args = *args;
    ws->last = &ws->out;
    ws->written = NGX_HTTP_PUSHQ_WS_CHECK_EVERY;    /* look at the first */
    ws->format = (args->format == PUSHQ_FORMAT_JSON) ? 1 : 0;
    ngx_queue_init(&ws->pubs);

    if (plcf->redis) {
        ws->redis = 1;
        ws->link = ngx_http_pushq_redis_link(plcf->redis);
        ws->rtake = (args->name_len || args->has_last_id) ? 1 : 0;
        ws->base.redis = ws->rtake;    /* ngx_http_pushq_redis_kick() */

        ws->retry.handler = ngx_http_pushq_ws_retry;
        ws->retry.data = ws;
        ws->retry.log = r->connection->log;
    }

    ws->parser = pushq_ws_parser_create(plcf->max_message_size);
    if (ws->parser == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&spec, sizeof(pushq_sub_spec_t));
    spec.chan = ws->args.channel;
    spec.chan_len = ws->args.channel_len;
    spec.name = ws->args.name_len ? ws->args.name : NULL;
    spec.name_len = ws->args.name_len;
    spec.has_last_id = ws->args.has_last_id;
    spec.last_id = ws->args.last_id;
    spec.kind = PUSHQ_SUB_WEBSOCKET;
    spec.owner = w->owner;

    if (ws->rtake) {
        /* Redis holds the name and the cursor: locally only a doorbell,
         * anonymous, after the local newest id (registered from the
         * start, so that a kick finds it) */
        spec.name = NULL;
        spec.name_len = 0;
        spec.has_last_id = 0;
    }

    st = pushq_sub_open(w->store, &spec, &plcf->limits, pushq_now_ms(),
                        &ws->base.sub, &why);
    if (st != PUSHQ_OK) {
        return ngx_http_pushq_error(r, st, why);
    }

    ws->base.open = 1;

    /* the 101 */

    p = ngx_pnalloc(r->pool, sizeof(accept) + 1);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(p, accept, sizeof(accept));
    p[sizeof(accept)] = '\0';

    if (ngx_http_pushq_add_header(r, "Upgrade", "websocket") != NGX_OK
        || ngx_http_pushq_add_header(r, "Sec-WebSocket-Accept",
                                     (const char *) p)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ws->rtake) {
        /*
         * The first take goes before the 101, so that a new name begins
         * when the connection is accepted (whatever is published once the
         * client saw the 101 is for it); the 101 goes out with the take's
         * reply (ngx_http_pushq_ws_taken).  Link down: the 101 at once,
         * the take when the link is back.
         */

        ws->accepting = 1;
        ngx_http_pushq_ws_rdeliver(ws);

        if (ws->op) {
            r->main->count++;

            r->read_event_handler = ngx_http_test_reading;
            r->write_event_handler = ngx_http_request_empty_handler;

            return NGX_DONE;
        }

        ws->accepting = 0;
    }

    rc = ngx_http_pushq_ws_accept(ws);

    if (rc != NGX_OK) {
        return rc;
    }

    r->main->count++;

    return NGX_DONE;
}


/*
 * Sends the 101 and sets the connection up for frames.  NGX_OK, or the rc
 * to finalize the request with.
 */

static ngx_int_t
ngx_http_pushq_ws_accept(ngx_http_pushq_ws_t *ws)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = ws->base.request;

    r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;
    ngx_str_set(&r->headers_out.status_line, "101 Switching Protocols");
    r->headers_out.content_length_n = -1;

    /* what follows on the connection is frames, never another request */
    r->keepalive = 0;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    /* below postpone_output the header would wait in r->out */

    if (ngx_http_send_special(r, NGX_HTTP_FLUSH) == NGX_ERROR) {
        return NGX_ERROR;
    }

    (void) ngx_tcp_nodelay(r->connection);

    /* (a take's doorbell may be registered already) */

    if (ws->base.group == NULL
        && ngx_http_pushq_register(&ws->base) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_set_ctx(r, ws, ngx_http_pushq_module);

    r->read_event_handler = ngx_http_pushq_ws_read;
    r->write_event_handler = ngx_http_pushq_ws_write;

    ws->timer.handler = ngx_http_pushq_ws_timer;
    ws->timer.data = ws;
    ws->timer.log = r->connection->log;

    if (ws->conf->websocket_ping) {
        ngx_add_timer(&ws->timer, ws->conf->websocket_ping);
    }

    /*
     * The first run of the read handler takes the bytes the client sent
     * with the handshake (already in r->header_in) and what is ready for
     * a resuming client; it runs from the event loop, where finalizing is
     * safe.  On plain HTTP/1.1 it runs through ngx_http_pushq_ws_start,
     * which frees the request first when it can.
     */

    if (r->connection->ssl == NULL && r == r->main) {
        ws->http_handler = r->connection->read->handler;
        r->connection->read->handler = ngx_http_pushq_ws_start;
    }

    ngx_post_event(r->connection->read, &ngx_posted_events);

    return NGX_OK;
}


/* the first run: the bytes the client sent with the handshake */

static void
ngx_http_pushq_ws_first(ngx_http_pushq_ws_t *ws, ngx_buf_t *b)
{
    ws->started = 1;

    if (b && b->pos && b->pos < b->last) {
        ngx_http_pushq_ws_input(ws, b->pos, (size_t) (b->last - b->pos));
        b->pos = b->last;
    }

    if (ngx_http_pushq_worker.exiting) {
        ngx_http_pushq_ws_close(ws, 1001, "server shutting down");
    }

    ngx_http_pushq_ws_deliver(ws);
}


/*
 * Frees the upgraded request: its pool (request_pool_size and more), the
 * header buffers (client_header_buffer_size, large_client_header_buffers)
 * and its access log line (written now, with the 101), keeping only the
 * connection, whose events then come to ngx_http_pushq_ws_read_event and
 * _write_event.  Only when nothing else holds the request: no other
 * cleanup (limit_conn's counter lives in a pool cleanup, for one), no
 * body, no pending output, no timer.
 */

static ngx_int_t
ngx_http_pushq_ws_detach(ngx_http_pushq_ws_t *ws, ngx_http_request_t *r)
{
    ngx_buf_t                 *b;
    ngx_chain_t               *cl;
    ngx_connection_t          *c;
    ngx_http_cleanup_t        *cln;
    ngx_http_connection_t     *hc;
    ngx_http_core_loc_conf_t  *clcf;

    c = ws->c;

    if (r != r->main || r->main->count != 1 || r->blocked || r->out
        || r->postponed || r->posted_requests || r->request_body
        || r->discard_body || r->reading_body || r->pool->cleanup
        || c->buffered || c->ssl || c->close || c->error
        || c->read->timer_set || c->write->timer_set
        || c->data != r || ws->finished || ws->error || ws->nomem)
    {
        return NGX_DECLINED;
    }

    for (cln = r->cleanup; cln; cln = cln->next) {
        if (cln->handler != ngx_http_pushq_ws_cleanup || cln->data != ws) {
            return NGX_DECLINED;
        }
    }

    ngx_http_pushq_ws_first(ws, r->header_in);

    if (ws->error || ws->nomem) {
        /* request mode finalizes it */
        return NGX_DECLINED;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    ws->linger = (clcf->lingering_close != NGX_HTTP_LINGERING_OFF);
    ws->linger_timeout = clcf->lingering_timeout;
    ws->linger_time = clcf->lingering_time;

    for (cln = r->cleanup; cln; cln = cln->next) {
        cln->handler = NULL;
    }

    hc = r->http_connection;

    ngx_http_free_request(r, 0);

    /* what ngx_http_free_request() set for the request's close */
    c->destroyed = 0;
    c->log->action = NULL;

    /* the header buffers: the request line and headers are gone now */

    for (cl = hc->busy; cl; cl = cl->next) {
        (void) ngx_pfree(c->pool, cl->buf->start);
    }

    for (cl = hc->free; cl; cl = cl->next) {
        (void) ngx_pfree(c->pool, cl->buf->start);
    }

    hc->busy = NULL;
    hc->nbusy = 0;
    hc->free = NULL;

    b = c->buffer;

    if (b && b->start && ngx_pfree(c->pool, b->start) == NGX_OK) {
        b->start = NULL;
        b->pos = NULL;
        b->last = NULL;
        b->end = NULL;
    }

    ws->base.request = NULL;
    ws->detached = 1;

    c->data = ws;
    c->read->handler = ngx_http_pushq_ws_read_event;
    c->write->handler = ngx_http_pushq_ws_write_event;

    return NGX_OK;
}


static void
ngx_http_pushq_ws_start(ngx_event_t *rev)
{
    ngx_connection_t     *c;
    ngx_http_request_t   *r;
    ngx_http_pushq_ws_t  *ws;

    c = rev->data;
    r = ((ngx_http_request_t *) c->data)->main;   /* set up on a main one */
    ws = ngx_http_get_module_ctx(r, ngx_http_pushq_module);

    rev->handler = ws->http_handler;

    if (ws->started || ngx_http_pushq_ws_detach(ws, r) != NGX_OK) {
        /* request mode: ngx_http_request_handler */
        rev->handler(rev);
        return;
    }

    /* detached */

    ngx_http_pushq_ws_do_read(ws);
}


static void
ngx_http_pushq_ws_read_event(ngx_event_t *rev)
{
    ngx_connection_t     *c;
    ngx_http_pushq_ws_t  *ws;

    c = rev->data;
    ws = c->data;

    if (c->close) {
        /* worker_shutdown_timeout */
        ws->error = 1;
        ngx_http_pushq_ws_step(ws);
        return;
    }

    ngx_http_pushq_ws_do_read(ws);
}


static void
ngx_http_pushq_ws_write_event(ngx_event_t *wev)
{
    ngx_connection_t     *c;
    ngx_http_pushq_ws_t  *ws;

    c = wev->data;
    ws = c->data;

    if (c->close) {
        ws->error = 1;
        ngx_http_pushq_ws_step(ws);
        return;
    }

    ngx_http_pushq_ws_send(ws);
    ngx_http_pushq_ws_deliver(ws);
    ngx_http_pushq_ws_step(ws);
}


/* detached: the end of the connection, and of ws */

static void
ngx_http_pushq_ws_close_connection(ngx_http_pushq_ws_t *ws)
{
    ngx_connection_t  *c;

    c = ws->c;

    ngx_http_pushq_ws_release(ws);
    ngx_free(ws);

    ngx_http_close_connection(c);
}


/*
 * Detached: our close frame is out and the peer's not yet read; as
 * nginx's lingering close, read and drop what the client still sends
 * (its close frame) for lingering_timeout at a time, lingering_time in
 * all, so that closing does not reset the connection under our frame.
 */

static void
ngx_http_pushq_ws_set_linger(ngx_http_pushq_ws_t *ws)
{
    ngx_connection_t  *c;

    c = ws->c;

    if (!ws->linger
        || ngx_shutdown_socket(c->fd, NGX_WRITE_SHUTDOWN) == -1)
    {
        ngx_http_pushq_ws_close_connection(ws);
        return;
    }

    ws->linger_until = ngx_current_msec + ws->linger_time;

    c->read->handler = ngx_http_pushq_ws_linger;
    c->write->handler = ngx_http_empty_handler;

    ngx_http_pushq_ws_linger(c->read);
}


static void
ngx_http_pushq_ws_linger(ngx_event_t *rev)
{
    ssize_t               n;
    ngx_msec_t            t;
    ngx_connection_t     *c;
    ngx_http_pushq_ws_t  *ws;

    c = rev->data;
    ws = c->data;

    if (rev->timedout || c->close
        || (ngx_msec_int_t) (ws->linger_until - ngx_current_msec) <= 0)
    {
        ngx_http_pushq_ws_close_connection(ws);
        return;
    }

    do {
        n = c->recv(c, ngx_http_pushq_ws_buf, sizeof(ngx_http_pushq_ws_buf));

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR || n == 0) {
            ngx_http_pushq_ws_close_connection(ws);
            return;
        }

    } while (rev->ready);

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_pushq_ws_close_connection(ws);
        return;
    }

    t = ws->linger_until - ngx_current_msec;

    if (t > ws->linger_timeout) {
        t = ws->linger_timeout;
    }

    ngx_add_timer(rev, t);
}


static void
ngx_http_pushq_ws_read(ngx_http_request_t *r)
{
    ngx_http_pushq_ws_t  *ws;

    ws = ngx_http_get_module_ctx(r, ngx_http_pushq_module);

    if (!ws->started) {
        ngx_http_pushq_ws_first(ws, r->header_in);
    }

    ngx_http_pushq_ws_do_read(ws);
}


static void
ngx_http_pushq_ws_do_read(ngx_http_pushq_ws_t *ws)
{
    ssize_t            n;
    ngx_uint_t         i;
    ngx_connection_t  *c;

    c = ws->c;

    for (i = 0; i < NGX_HTTP_PUSHQ_WS_READS; i++) {

        if (ws->error || (ws->closing && ws->close_received)) {
            break;
        }

        if (ws->npubs >= NGX_HTTP_PUSHQ_WS_PUBS) {
            /* Redis is behind: read again once replies come */
            ws->read_paused = 1;
            break;
        }

        n = c->recv(c, ngx_http_pushq_ws_buf, sizeof(ngx_http_pushq_ws_buf));

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
                ws->error = 1;
            }

            break;
        }

        if (n == 0 || n == NGX_ERROR) {
            /* the peer is gone (after our close frame: as expected) */
            ws->error = 1;
            break;
        }

        ws->awaiting_pong = 0;

        ngx_http_pushq_ws_input(ws, ngx_http_pushq_ws_buf, (size_t) n);
    }

    if (i == NGX_HTTP_PUSHQ_WS_READS) {
        /* let the other connections run */
        ngx_post_event(c->read, &ngx_posted_events);
    }

    ngx_http_pushq_ws_step(ws);
}


static void
ngx_http_pushq_ws_write(ngx_http_request_t *r)
{
    ngx_http_pushq_ws_t  *ws;

    ws = ngx_http_get_module_ctx(r, ngx_http_pushq_module);

    /* the socket took data: maybe more is ready now */

    ngx_http_pushq_ws_send(ws);
    ngx_http_pushq_ws_deliver(ws);
    ngx_http_pushq_ws_step(ws);
}


static void
ngx_http_pushq_ws_input(ngx_http_pushq_ws_t *ws, u_char *data, size_t len)
{
    size_t            used;
    pushq_ws_event_t  ev;

    while (!ws->closing && !ws->error) {

        used = pushq_ws_parser_feed(ws->parser, data, len, &ev);
        data += used;
        len -= used;

        switch (ev.type) {

        case PUSHQ_WS_NEED_MORE:
            if (len == 0) {
                return;
            }
            break;

        case PUSHQ_WS_TEXT:
        case PUSHQ_WS_BINARY:
            ngx_http_pushq_ws_publish(ws, &ev);
            break;

        case PUSHQ_WS_PING:
            /* RFC 6455 5.5.2: a pong with the ping's application data */
            ngx_http_pushq_ws_control(ws, PUSHQ_WS_OP_PONG, ev.data, ev.len);
            break;

        case PUSHQ_WS_PONG:
            ws->awaiting_pong = 0;
            break;

        case PUSHQ_WS_CLOSE:
            /* RFC 6455 5.5.1: echo the peer's code */
            ws->close_received = 1;
            ngx_http_pushq_ws_close(ws, ev.close_code ? ev.close_code : 1000,
                                    NULL);
            return;

        case PUSHQ_WS_ERROR:
            ngx_log_error(NGX_LOG_INFO, ws->c->log,
                          0, "pushq: websocket client error, closing with "
                          "%d: %s", (int) ev.close_code,
                          ev.reason ? ev.reason : "");
            ngx_http_pushq_ws_close(ws, ev.close_code, ev.reason);
            return;
        }
    }
}


/* a text or binary message from the client goes to the channel */

static void
ngx_http_pushq_ws_publish(ngx_http_pushq_ws_t *ws, pushq_ws_event_t *ev)
{
    ngx_uint_t               level;
    const char              *why;
    pushq_status_t           st;
    pushq_publish_result_t   res;

    if (!ws->conf->websocket_publish) {
        ngx_log_error(NGX_LOG_INFO, ws->c->log, 0,
                      "pushq: websocket client published on a location "
                      "with \"pushq_websocket_publish off\", closing");
        ngx_http_pushq_ws_close(ws, 1008, "publishing is off here");
        return;
    }

    if (ws->redis) {
        ngx_http_pushq_ws_rpublish(ws, ev);
        return;
    }

    why = NULL;
    ngx_memzero(&res, sizeof(pushq_publish_result_t));

    st = pushq_store_publish(ngx_http_pushq_worker.store, ws->args.channel,
                             ws->args.channel_len, ev->data, ev->len,
                             ev->type == PUSHQ_WS_BINARY ? PUSHQ_MSG_BINARY
                                                         : 0,
                             &ws->conf->limits, pushq_now_ms(), &res, &why);
    if (st != PUSHQ_OK) {
        level = (st == PUSHQ_ENOMEM) ? NGX_LOG_WARN : NGX_LOG_INFO;

        ngx_log_error(level, ws->c->log, 0,
                      "pushq: websocket publish refused: %s%s",
                      why ? why : "error",
                      st == PUSHQ_ENOMEM ? " (raise pushq_shm_size)" : "");
        ngx_http_pushq_ws_close(ws, pushq_status_close_code(st), why);
        return;
    }

    /* our own worker too: the sender receives its message as well */

    ngx_http_pushq_wake(res.wakers, res.channel_key);
}


/* the worker exits: the free list and the scratch buffer go (see
 * ngx_http_pushq_worker_stop) */

void
ngx_http_pushq_ws_exit(void)
{
    ngx_http_pushq_out_t  *o;

    while (ngx_http_pushq_ws_free) {
        o = ngx_http_pushq_ws_free;
        ngx_http_pushq_ws_free = o->next;
        ngx_free(o);
    }

    if (ngx_http_pushq_ws_scratch) {
        ngx_free(ngx_http_pushq_ws_scratch);
        ngx_http_pushq_ws_scratch = NULL;
        ngx_http_pushq_ws_scratch_size = 0;
    }
}


static ngx_http_pushq_out_t *
ngx_http_pushq_ws_out_alloc(ngx_log_t *log)
{
    ngx_http_pushq_out_t  *o;

    o = ngx_http_pushq_ws_free;

    if (o) {
        ngx_http_pushq_ws_free = o->next;

    } else {
        o = ngx_alloc(sizeof(ngx_http_pushq_out_t), log);
        if (o == NULL) {
            return NULL;
        }
    }

    o->next = NULL;
    o->frame = NULL;
    o->sent = 0;

    return o;
}


static void
ngx_http_pushq_ws_out_free(ngx_http_pushq_out_t *o)
{
    if (o->frame) {
        ngx_http_pushq_frame_release(o->frame);
        o->frame = NULL;
    }

    o->next = ngx_http_pushq_ws_free;
    ngx_http_pushq_ws_free = o;
}


/* appends f, taking over the caller's reference */

static ngx_http_pushq_out_t *
ngx_http_pushq_ws_queue(ngx_http_pushq_ws_t *ws, ngx_http_pushq_frame_t *f)
{
    ngx_http_pushq_out_t  *o;

    o = ngx_http_pushq_ws_out_alloc(ws->c->log);
    if (o == NULL) {
        ngx_http_pushq_frame_release(f);
        ws->nomem = 1;
        return NULL;
    }

    o->frame = f;
    *ws->last = o;
    ws->last = &o->next;
    ws->backlog += f->len;

    return o;
}


static void
ngx_http_pushq_ws_control(ngx_http_pushq_ws_t *ws, unsigned opcode,
    const u_char *data, size_t len)
{
    size_t                   n;
    u_char                   hdr[10];
    ngx_http_pushq_frame_t  *f;

    /* control payloads are at most 125 bytes (RFC 6455 5.5) */

    n = pushq_ws_frame_header(hdr, opcode, len);

    f = ngx_http_pushq_frame_alloc(n + len,
                                   ws->c->log);
    if (f == NULL) {
        ws->nomem = 1;
        return;
    }

    ngx_memcpy(f->data, hdr, n);

    if (len) {
        ngx_memcpy(f->data + n, data, len);
    }

    ngx_http_pushq_ws_queue(ws, f);
}


/* no subscriber any more: nothing more is fetched for this connection */

static void
ngx_http_pushq_ws_unsubscribe(ngx_http_pushq_ws_t *ws)
{
    if (ws->op) {
        /* its reply must not reach us (it may outlive ws) */
        ws->op->cancelled = 1;
        ws->op = NULL;
    }

    if (ws->retry.timer_set) {
        ngx_del_timer(&ws->retry);
    }

    ngx_http_pushq_unregister(&ws->base);

    if (ws->base.open) {
        ws->base.open = 0;
        pushq_sub_close(ngx_http_pushq_worker.store, &ws->base.sub,
                        pushq_now_ms());
    }
}


/*
 * Queues a close frame (code 0: none) and stops the subscription; the
 * connection is closed once the frame is out (and the client's close has
 * come, or lingering close drains it), or after a timeout.
 */

static void
ngx_http_pushq_ws_close(ngx_http_pushq_ws_t *ws, uint16_t code,
    const char *reason)
{
    ngx_http_pushq_frame_t  *f;

    if (ws->closing) {
        return;
    }

    ws->closing = 1;

    ngx_http_pushq_ws_unsubscribe(ws);

    f = ngx_http_pushq_frame_alloc(127, ws->c->log);
    if (f == NULL) {
        ws->error = 1;
        return;
    }

    f->len = pushq_ws_close_frame(f->data, code, reason);
    ngx_http_pushq_ws_queue(ws, f);

    if (ws->timer.timer_set) {
        ngx_del_timer(&ws->timer);
    }

    ngx_add_timer(&ws->timer, NGX_HTTP_PUSHQ_WS_CLOSE_TIMEOUT);
}


/* called by pushq_sub_fetch with the store locked: copy, no store calls */

static void
ngx_http_pushq_ws_collect(void *ctx, const pushq_msg_t *m)
{
    ngx_http_pushq_ws_t *ws = ctx;

    size_t                   n;
    u_char                   hdr[10];
    uint64_t                 life;
    ngx_uint_t               binary;
    pushq_json_msg_t         jm;
    ngx_http_pushq_out_t    *o;
    ngx_http_pushq_group_t  *g;
    ngx_http_pushq_frame_t  *f;

    if (ws->nomem) {
        return;
    }

    /* a take's messages come from Redis, whose ids may belong to another
     * life of the channel than the frames cached for the group */
    g = ws->rtake ? NULL : ws->base.group;
    binary = (m->flags & PUSHQ_MSG_BINARY) ? 1 : 0;

    if (ws->format && ws->first_data == NULL) {
        /* kept until the fetch reports lost/reset */
        ws->first_data = ngx_alloc(m->len ? m->len : 1,
                                   ws->c->log);
        if (ws->first_data == NULL) {
            ws->nomem = 1;
            return;
        }

        ngx_memcpy(ws->first_data, m->data, m->len);
        ws->first_len = m->len;
        ws->first_binary = binary;
    }

    f = NULL;

    life = pushq_sub_life(&ws->base.sub);

    if (g && g->frame[ws->format] && g->frame[ws->format]->id == m->id
        && g->frame[ws->format]->life == life)
    {
        /* the broadcast was already encoded for another subscriber */
        f = g->frame[ws->format];
        f->refs++;

    } else if (ws->format == 0) {
        n = pushq_ws_frame_header(hdr, binary ? PUSHQ_WS_OP_BINARY
                                              : PUSHQ_WS_OP_TEXT, m->len);

        f = ngx_http_pushq_frame_alloc(n + m->len,
                                       ws->c->log);
        if (f == NULL) {
            ws->nomem = 1;
            return;
        }

        ngx_memcpy(f->data, hdr, n);
        ngx_memcpy(f->data + n, m->data, m->len);

    } else {
        ngx_memzero(&jm, sizeof(pushq_json_msg_t));
        jm.id = m->id;
        jm.channel = ws->args.channel;
        jm.channel_len = ws->args.channel_len;
        jm.data = m->data;
        jm.len = m->len;
        jm.binary = (int) binary;

        f = ngx_http_pushq_ws_json_frame(ws, &jm);
        if (f == NULL) {
            ws->nomem = 1;
            return;
        }
    }

    f->id = m->id;
    f->life = life;

    if (g && g->frame[ws->format] != f) {
        if (g->frame[ws->format]) {
            ngx_http_pushq_frame_release(g->frame[ws->format]);
        }

        g->frame[ws->format] = f;
        f->refs++;
    }

    o = ngx_http_pushq_ws_queue(ws, f);

    if (ws->first == NULL) {
        ws->first = o;
    }
}


/* a text frame holding the message's JSON */

static ngx_http_pushq_frame_t *
ngx_http_pushq_ws_json_frame(ngx_http_pushq_ws_t *ws, pushq_json_msg_t *jm)
{
    u_char                  *p, hdr[10];
    size_t                   n, h;
    ngx_log_t               *log;
    ngx_http_pushq_frame_t  *f;

    log = ws->c->log;

    for ( ;; ) {
        n = pushq_json_message((char *) ngx_http_pushq_ws_scratch,
                               ngx_http_pushq_ws_scratch_size, jm);

        if (ngx_http_pushq_ws_scratch && n <= ngx_http_pushq_ws_scratch_size)
        {
            break;
        }

        p = ngx_alloc(n + 1024, log);
        if (p == NULL) {
            return NULL;
        }

        if (ngx_http_pushq_ws_scratch) {
            ngx_free(ngx_http_pushq_ws_scratch);
        }

        ngx_http_pushq_ws_scratch = p;
        ngx_http_pushq_ws_scratch_size = n + 1024;
    }

    h = pushq_ws_frame_header(hdr, PUSHQ_WS_OP_TEXT, n);

    f = ngx_http_pushq_frame_alloc(h + n, log);
    if (f == NULL) {
        return NULL;
    }

    ngx_memcpy(f->data, hdr, h);
    ngx_memcpy(f->data + h, ngx_http_pushq_ws_scratch, n);

    return f;
}


/*
 * The data not yet sent to the client: our queue plus what the kernel
 * holds unsent in the socket (autotuning may give a socket megabytes of
 * send buffer, which would hide a reader that stopped reading).
 *
 * Asking the kernel (ioctl SIOCOUTQNSD) is a system call, so it is not
 * asked on every delivery: the socket's unsent bytes can only have grown
 * by what was written since the last look, so kunsent + written is an
 * upper bound.  The kernel is asked only when that bound could matter
 * (it passes "limit"), when our own queue is not empty (the socket was
 * full), after NGX_HTTP_PUSHQ_WS_CHECK_EVERY bytes, and always on TLS
 * (the records are larger than the frames); a decision to drop
 * a reader is therefore always taken on the kernel's own figure.
 */

static size_t
ngx_http_pushq_ws_unsent(ngx_http_pushq_ws_t *ws, size_t limit)
{
#if (NGX_LINUX) && defined(SIOCOUTQNSD)

    int     n;
    size_t  bound;

    bound = ws->backlog + ws->kunsent + ws->written;

    /* TLS: the socket holds records, larger than what was written */

    if (bound <= limit && ws->out == NULL
        && ws->written < NGX_HTTP_PUSHQ_WS_CHECK_EVERY
        && ws->c->ssl == NULL)
    {
        return bound;
    }

    ws->written = 0;

    /* set first: valgrind does not know this ioctl writes it */
    n = 0;

    if (ioctl(ws->c->fd, SIOCOUTQNSD, &n) == 0
        && n > 0)
    {
        ws->kunsent = (size_t) n;
        return ws->backlog + (size_t) n;
    }

    ws->kunsent = 0;

#endif

    return ws->backlog;
}


/*
 * Fetches what is ready while the backlog allows, sending as it goes; a
 * reader whose unsent data passes pushq_websocket_max_backlog is dropped.
 */

static void
ngx_http_pushq_ws_deliver(ngx_http_pushq_ws_t *ws)
{
    size_t                   max, unsent;
    pushq_status_t           st;
    pushq_fetch_info_t       info;
    ngx_http_pushq_worker_t *w;

    if (ws->rtake) {
        ngx_http_pushq_ws_rdeliver(ws);
        return;
    }

    w = &ngx_http_pushq_worker;

    while (!ws->closing && !ws->error && ws->base.open
           && pushq_sub_ready(w->store, &ws->base.sub))
    {
        ngx_memzero(&info, sizeof(pushq_fetch_info_t));

        /* the kernel is asked when the bound passes half the limit */
        max = ws->conf->websocket_max_backlog;
        unsent = ngx_http_pushq_ws_unsent(ws, max / 2);
        max = (unsent < max) ? max - unsent : 1;

        ws->first = NULL;
        ws->first_data = NULL;

        st = pushq_sub_fetch(w->store, &ws->base.sub,
                             NGX_HTTP_PUSHQ_WS_FETCH, max, pushq_now_ms(),
                             ngx_http_pushq_ws_collect, ws, &info);

        if (st == PUSHQ_OK) {
            ngx_http_pushq_ws_fetched(ws, info.lost, info.reset);

        } else {
            ngx_http_pushq_ws_fetched(ws, 0, 0);
        }

        if (st != PUSHQ_OK || ws->nomem) {
            ngx_log_error(NGX_LOG_ERR, ws->c->log, 0,
                          "pushq: websocket fetch failed (%d)", (int) st);
            ngx_http_pushq_ws_close(ws, 1011, "internal error");
            return;
        }

        ngx_http_pushq_ws_send(ws);

        if (ngx_http_pushq_ws_too_slow(ws)) {
            return;
        }

        if (info.count == 0 || ws->out) {
            /* the socket is full: the write handler goes on */
            return;
        }
    }
}


/*
 * After a fetch or a take (JSON format): lost/reset go on the first
 * message, in this subscriber's own copy of its frame.
 */

static void
ngx_http_pushq_ws_fetched(ngx_http_pushq_ws_t *ws, uint64_t lost, int reset)
{
    pushq_json_msg_t         jm;
    ngx_http_pushq_frame_t  *f;

    if (!ws->nomem && ws->format) {
        ws->lost += lost;
        ws->reset |= reset ? 1 : 0;

        if (ws->first && (ws->lost || ws->reset)) {
            /* this subscriber's own copy of the first message */
            ngx_memzero(&jm, sizeof(pushq_json_msg_t));
            jm.id = ws->first->frame->id;
            jm.channel = ws->args.channel;
            jm.channel_len = ws->args.channel_len;
            jm.data = ws->first_data;
            jm.len = ws->first_len;
            jm.binary = (int) ws->first_binary;
            jm.lost = ws->lost;
            jm.reset = ws->reset;

            f = ngx_http_pushq_ws_json_frame(ws, &jm);

            if (f == NULL) {
                ws->nomem = 1;

            } else {
                f->id = jm.id;
                ws->backlog -= ws->first->frame->len;
                ngx_http_pushq_frame_release(ws->first->frame);
                ws->first->frame = f;
                ws->backlog += f->len;
                ws->lost = 0;
                ws->reset = 0;
            }
        }
    }

    if (ws->first_data) {
        ngx_free(ws->first_data);
        ws->first_data = NULL;
    }

    ws->first = NULL;
}


/*
 * A reader whose unsent data passes pushq_websocket_max_backlog is
 * dropped: returns 1 when it was (the close is queued).
 */

static ngx_uint_t
ngx_http_pushq_ws_too_slow(ngx_http_pushq_ws_t *ws)
{
    size_t                 unsent;
    ngx_http_pushq_out_t  *o, *next;

    unsent = ngx_http_pushq_ws_unsent(ws, ws->conf->websocket_max_backlog);

    if (unsent <= ws->conf->websocket_max_backlog) {
        return 0;
    }

    pushq_store_count_dropped_slow(ngx_http_pushq_worker.store);

    ngx_log_error(NGX_LOG_INFO, ws->c->log, 0,
                  "pushq: websocket subscriber too slow, %uz bytes "
                  "unsent (pushq_websocket_max_backlog %uz), "
                  "closing", unsent,
                  ws->conf->websocket_max_backlog);

    /* drop what was not begun; a frame begun must be finished */

    o = ws->out;

    if (o && o->sent == 0) {
        o = NULL;
        next = ws->out;
        ws->out = NULL;
        ws->last = &ws->out;

    } else if (o) {
        next = o->next;
        o->next = NULL;
        ws->last = &o->next;

    } else {
        next = NULL;
    }

    while (next) {
        o = next;
        next = o->next;
        ws->backlog -= o->frame->len - o->sent;
        ngx_http_pushq_ws_out_free(o);
    }

    ngx_http_pushq_ws_close(ws, 1008,
                            "too slow: unsent data over "
                            "pushq_websocket_max_backlog");

    return 1;
}


/* n bytes went out: drop the frames they finish */

static void
ngx_http_pushq_ws_sent(ngx_http_pushq_ws_t *ws, size_t n)
{
    size_t                 left;
    ngx_http_pushq_out_t  *o;

    ws->backlog -= n;
    ws->written += n;

    while (ws->out) {
        o = ws->out;
        left = o->frame->len - o->sent;

        if (n < left) {
            o->sent += n;
            return;
        }

        n -= left;
        ws->out = o->next;

        if (ws->out == NULL) {
            ws->last = &ws->out;
        }

        ngx_http_pushq_ws_out_free(o);
    }
}


/*
 * Plain TCP: up to NGX_HTTP_PUSHQ_WS_IOV queued frames per writev(), the
 * iovecs on the stack pointing into the shared frames.  writev() itself:
 * nginx's send_chain would only rebuild the same iovecs from a chain.
 */

static void
ngx_http_pushq_ws_writev(ngx_http_pushq_ws_t *ws)
{
    size_t                 size;
    ssize_t                n;
    ngx_err_t              err;
    ngx_uint_t             niov;
    struct iovec           iov[NGX_HTTP_PUSHQ_WS_IOV];
    ngx_connection_t      *c;
    ngx_http_pushq_out_t  *o;

    c = ws->c;

    while (ws->out) {

        niov = 0;
        size = 0;

        for (o = ws->out; o && niov < NGX_HTTP_PUSHQ_WS_IOV; o = o->next) {
            iov[niov].iov_base = o->frame->data + o->sent;
            iov[niov].iov_len = o->frame->len - o->sent;
            size += iov[niov].iov_len;
            niov++;
        }

        n = writev(c->fd, iov, (int) niov);

        if (n == -1) {
            err = ngx_errno;

            if (err == NGX_EINTR) {
                continue;
            }

            if (err == NGX_EAGAIN) {
                /* the socket is full: the write event goes on */
                c->write->ready = 0;
                return;
            }

            c->write->error = 1;
            ngx_connection_error(c, err, "writev() failed");
            ws->error = 1;
            return;
        }

        c->sent += n;

        ngx_http_pushq_ws_sent(ws, (size_t) n);

        if ((size_t) n < size) {
            /* the socket took less: full, the write event goes on */
            c->write->ready = 0;
            return;
        }
    }
}


static void
ngx_http_pushq_ws_send(ngx_http_pushq_ws_t *ws)
{
    ssize_t                  n;
    ngx_int_t                rc;
    ngx_connection_t        *c;
    ngx_http_request_t      *r;
    ngx_http_pushq_out_t    *o;
    ngx_http_pushq_frame_t  *f;

    r = ws->base.request;
    c = ws->c;

    if (ws->error || ws->accepting) {
        /* accepting: no frame before the 101 */
        return;
    }

    if (!ws->detached && (r->out || c->buffered)) {
        /* the 101's header is still in nginx's write filter */

        rc = ngx_http_output_filter(r, NULL);

        if (rc == NGX_ERROR) {
            ws->error = 1;
            return;
        }

        if (r->out || c->buffered) {
            if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
                ws->error = 1;
            }

            return;
        }
    }

    if (c->ssl == NULL) {
        ngx_http_pushq_ws_writev(ws);

    } else {
        /*
         * TLS: one frame per c->send() (SSL_write); nginx's send_chain for
         * TLS copies into its own buffer, which would hide what was sent
         */

        while (ws->out) {
            o = ws->out;
            f = o->frame;

            n = c->send(c, f->data + o->sent, f->len - o->sent);

            if (n == NGX_ERROR) {
                ws->error = 1;
                return;
            }

            if (n == NGX_AGAIN) {
                break;
            }

            ngx_http_pushq_ws_sent(ws, (size_t) n);
        }

        if (ws->error) {
            return;
        }
    }

    if (ws->out) {
        if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
            ws->error = 1;
        }
    }
}


/* sends, and finalizes the request when the connection is done */

static void
ngx_http_pushq_ws_step(ngx_http_pushq_ws_t *ws)
{
    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    if (ws->finished) {
        return;
    }

    if (ws->nomem && !ws->closing) {
        ngx_http_pushq_ws_close(ws, 1011, "out of worker memory");
    }

    ngx_http_pushq_ws_send(ws);

    if (!ws->error && !(ws->closing && ws->out == NULL)) {
        return;
    }

    ws->finished = 1;

    if (ws->detached) {
        if (ws->error || ws->close_received) {
            ngx_http_pushq_ws_close_connection(ws);

        } else {
            ngx_http_pushq_ws_release(ws);
            ngx_http_pushq_ws_set_linger(ws);
        }

        return;
    }

    r = ws->base.request;
    c = r->connection;

    r->keepalive = 0;

    if (ws->error) {
        rc = NGX_ERROR;

    } else {
        /* our close frame is out: lingering close reads the client's */
        r->lingering_close = ws->close_received ? 0 : 1;
        rc = NGX_OK;
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* a ping every websocket_ping; one unanswered ping drops the peer */

static void
ngx_http_pushq_ws_timer(ngx_event_t *ev)
{
    ngx_http_pushq_ws_t  *ws = ev->data;

    if (ws->closing) {
        /* the close frame did not go out in time: plain close */
        ws->error = 1;
        ngx_http_pushq_ws_step(ws);
        return;
    }

    if (ws->awaiting_pong) {
        ngx_log_error(NGX_LOG_INFO, ws->c->log, 0,
                      "pushq: websocket peer did not answer a ping in %M, "
                      "closing", ws->conf->websocket_ping);
        ws->error = 1;
        ngx_http_pushq_ws_step(ws);
        return;
    }

    ngx_http_pushq_ws_control(ws, PUSHQ_WS_OP_PING, NULL, 0);
    ws->awaiting_pong = 1;

    ngx_add_timer(ev, ws->conf->websocket_ping);

    ngx_http_pushq_ws_step(ws);
}


static void
ngx_http_pushq_ws_notify(ngx_http_pushq_sub_t *s)
{
    ngx_http_pushq_ws_t  *ws = (ngx_http_pushq_ws_t *) s;

    if (!ws->started) {
        /* the first read handler run delivers */
        return;
    }

    if (ws->rtake) {
        /* the doorbell rang, or the link is back */
        ws->rkick = 1;
        ws->rspins = 0;
    }

    ngx_http_pushq_ws_deliver(ws);
    ngx_http_pushq_ws_step(ws);
}


/* the worker exits (reload): send what is ready, then 1001 */

static void
ngx_http_pushq_ws_shutdown(ngx_http_pushq_sub_t *s)
{
    ngx_http_pushq_ws_t  *ws = (ngx_http_pushq_ws_t *) s;

    if (ws->rtake) {
        if (ws->op) {
            /* what the take in flight brings is sent, then the 1001 */
            ws->rshutdown = 1;
            return;
        }

    } else if (ws->started) {
        ngx_http_pushq_ws_deliver(ws);
    }

    ngx_http_pushq_ws_close(ws, 1001, "server shutting down");
    ngx_http_pushq_ws_step(ws);
}


/* the request is freed (request mode only) */

static void
ngx_http_pushq_ws_cleanup(void *data)
{
    ngx_http_pushq_ws_t  *ws = data;

    ngx_http_pushq_ws_release(ws);
    ngx_free(ws);
}


static void
ngx_http_pushq_ws_release(ngx_http_pushq_ws_t *ws)
{
    ngx_queue_t              *q;
    ngx_http_pushq_out_t     *o;
    ngx_http_pushq_ws_pub_t  *pub;

    ws->finished = 1;

    if (ws->timer.timer_set) {
        ngx_del_timer(&ws->timer);
    }

    ngx_http_pushq_ws_unsubscribe(ws);

    /* publishes in flight: Redis does them, their replies are not ours */

    while (!ngx_queue_empty(&ws->pubs)) {
        q = ngx_queue_head(&ws->pubs);
        ngx_queue_remove(q);
        pub = ngx_queue_data(q, ngx_http_pushq_ws_pub_t, queue);
        pub->op->cancelled = 1;
        ngx_free(pub);
    }

    ws->npubs = 0;

    if (ws->parser) {
        pushq_ws_parser_destroy(ws->parser);
        ws->parser = NULL;
    }

    while (ws->out) {
        o = ws->out;
        ws->out = o->next;
        ngx_http_pushq_ws_out_free(o);
    }

    ws->last = &ws->out;
    ws->backlog = 0;
}


/* --- Redis mode -------------------------------------------------------- */


static void ngx_http_pushq_ws_taken(ngx_http_pushq_redis_op_t *op,
    struct redisReply *reply, const char *err);
static void ngx_http_pushq_ws_accepted(ngx_http_pushq_ws_t *ws);


/* the doorbell: see ngx_http_pushq_doorbell() */

static ngx_int_t
ngx_http_pushq_ws_doorbell(ngx_http_pushq_ws_t *ws, uint64_t after)
{
    return ngx_http_pushq_doorbell(&ws->base, PUSHQ_SUB_WEBSOCKET,
                                   ws->args.channel, ws->args.channel_len,
                                   &ws->conf->limits, after, ws->c->log);
}


/* the link is down, or Redis refused: take again when kicked or soon */

static void
ngx_http_pushq_ws_down(ngx_http_pushq_ws_t *ws)
{
    if (ws->rshutdown) {
        ngx_http_pushq_ws_close(ws, 1001, "server shutting down");
        return;
    }

    if (!ws->retry.timer_set && !ws->closing) {
        ngx_add_timer(&ws->retry, NGX_HTTP_PUSHQ_WS_RETRY);
    }
}


/*
 * Sends a take when one is wanted (first, Redis holds more, notified, or
 * the doorbell is ready) and none is in flight.
 */

static void
ngx_http_pushq_ws_rdeliver(ngx_http_pushq_ws_t *ws)
{
    size_t                      max, unsent;
    const char                 *why;
    pushq_status_t              st;
    pushq_redis_cmd_t           cmd;
    pushq_redis_take_t          t;
    ngx_http_pushq_redis_op_t  *op;

    if (ws->op || ws->closing || ws->error || ws->nomem
        || !(ws->started || ws->accepting))
    {
        return;
    }

    if (!(ws->rkick || ws->rmore || !ws->taken
          || (ws->base.open
              && pushq_sub_ready(ngx_http_pushq_worker.store,
                                 &ws->base.sub))))
    {
        return;
    }

    if (ws->out) {
        ngx_http_pushq_ws_send(ws);

        if (ws->out || ws->error) {
            /* the socket is full: the write handler comes back here */
            return;
        }
    }

    max = ws->conf->websocket_max_backlog;
    unsent = ngx_http_pushq_ws_unsent(ws, max / 2);
    max = (unsent < max) ? max - unsent : 1;

    ngx_memzero(&t, sizeof(pushq_redis_take_t));
    t.chan = ws->args.channel;
    t.chan_len = ws->args.channel_len;

    if (ws->args.name_len) {
        t.name = ws->args.name;
        t.name_len = ws->args.name_len;

        /* last_id moves the name once; then the name's cursor rules, and
         * ours if the name's key expired meanwhile */
        if (!ws->taken && ws->args.has_last_id) {
            t.has_last_id = 1;
            t.last_id = ws->args.last_id;
        }

        if (ws->taken) {
            t.has_cursor = 1;
            t.cursor = ws->cursor;
        }

    } else {
        t.has_last_id = 1;
        t.last_id = ws->taken ? ws->cursor : ws->args.last_id;
    }

    t.max_msgs = NGX_HTTP_PUSHQ_WS_FETCH;
    t.max_bytes = max;

    why = NULL;
    st = pushq_redis_cmd_take(&cmd, &t, &ws->conf->limits, &why);

    if (st != PUSHQ_OK) {
        ngx_log_error(NGX_LOG_ERR, ws->c->log, 0,
                      "pushq: redis take not built: %s", why ? why : "");
        ngx_http_pushq_ws_close(ws, 1011, "internal error");
        return;
    }

    if (ws->retry.timer_set) {
        ngx_del_timer(&ws->retry);
    }

    ws->rkick = 0;

    if (ws->link == NULL) {
        ngx_http_pushq_ws_down(ws);
        return;
    }

    op = ngx_http_pushq_redis_op(ngx_http_pushq_ws_taken, ws);
    if (op == NULL) {
        ws->nomem = 1;
        return;
    }

    if (ngx_http_pushq_redis_send(ws->link, &cmd, op, &why) != NGX_OK) {
        /* the link is down (it logs that once) and freed op */
        ngx_http_pushq_ws_down(ws);
        return;
    }

    ws->op = op;
    ws->rmore = 0;
}


static void
ngx_http_pushq_ws_taken(ngx_http_pushq_redis_op_t *op,
    struct redisReply *reply, const char *err)
{
    ngx_http_pushq_ws_t *ws = op->data;

    char                      errbuf[128];
    const char               *why;
    pushq_status_t            st;
    pushq_redis_take_info_t   info;

    ws->op = NULL;          /* the link frees op */

    if (reply == NULL) {
        ngx_log_error(NGX_LOG_INFO, ws->c->log, 0,
                      "pushq: redis take failed: %s, waiting",
                      err ? err : "connection lost");
        ngx_http_pushq_ws_down(ws);
        goto done;
    }

    ngx_memzero(&info, sizeof(pushq_redis_take_info_t));
    errbuf[0] = '\0';
    why = NULL;

    ws->first = NULL;
    ws->first_data = NULL;

    st = pushq_redis_reply_take(reply, ngx_http_pushq_ws_collect, ws, &info,
                                errbuf, sizeof(errbuf), &why);

    ngx_http_pushq_ws_fetched(ws, st == PUSHQ_OK ? info.lost : 0,
                              st == PUSHQ_OK ? info.reset : 0);

    if (ws->nomem) {
        goto done;
    }

    if (st != PUSHQ_OK) {
        ngx_log_error(NGX_LOG_WARN, ws->c->log, 0,
                      "pushq: redis take refused: %s, waiting",
                      why ? why : "error");
        ngx_http_pushq_ws_down(ws);
        goto done;
    }

    ws->taken = 1;
    ws->cursor = info.last_id;

    if (ws->accepting) {
        /* the rest from the first run, after the 101 */
        if (info.count && info.newest_id > info.last_id) {
            ws->rmore = 1;

        } else {
            (void) ngx_http_pushq_ws_doorbell(ws, ws->cursor);
        }

        goto done;
    }

    ngx_http_pushq_ws_send(ws);

    if (ws->error || ngx_http_pushq_ws_too_slow(ws)) {
        goto done;
    }

    if (ws->rshutdown) {
        ngx_http_pushq_ws_close(ws, 1001, "server shutting down");
        goto done;
    }

    if (info.count && info.newest_id > info.last_id) {
        /* Redis holds more: take again once the socket takes this */
        ws->rmore = 1;
        ws->rspins = 0;
        ngx_http_pushq_ws_rdeliver(ws);
        goto done;
    }

    /* caught up */

    if (ngx_http_pushq_ws_doorbell(ws, ws->cursor) != NGX_OK) {
        ngx_http_pushq_ws_close(ws, 1011, "internal error");
        goto done;
    }

    if (ws->args.name_len == 0) {
        /* last_id only: from here on a local subscriber after it */
        ws->rtake = 0;
        ws->base.redis = 0;
        ngx_http_pushq_ws_deliver(ws);
        goto done;
    }

    if (!pushq_sub_ready(ngx_http_pushq_worker.store, &ws->base.sub)) {
        ws->rspins = 0;
        goto done;
    }

    if (info.count || ws->rspins == 0) {
        /* it came between Redis's answer and now: take it */
        ws->rspins = info.count ? 0 : 1;
        ngx_http_pushq_ws_rdeliver(ws);
        goto done;
    }

    /*
     * Redis had nothing twice while the mirror has more after the cursor:
     * the mirror holds another life of the channel; ring on its next
     * message only
     */

    if (ngx_http_pushq_ws_doorbell(ws, NGX_HTTP_PUSHQ_NEWEST) != NGX_OK) {
        ngx_http_pushq_ws_close(ws, 1011, "internal error");
    }

done:

    if (ws->accepting) {
        ngx_http_pushq_ws_accepted(ws);
        return;
    }

    ngx_http_pushq_ws_step(ws);
}


/* the first take answered (or failed): the 101 now */

static void
ngx_http_pushq_ws_accepted(ngx_http_pushq_ws_t *ws)
{
    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ws->base.request;
    c = r->connection;

    ws->accepting = 0;

    rc = ngx_http_pushq_ws_accept(ws);

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        ngx_http_run_posted_requests(c);
    }
}


static void
ngx_http_pushq_ws_retry(ngx_event_t *ev)
{
    ngx_http_pushq_ws_t  *ws = ev->data;

    ws->rkick = 1;

    ngx_http_pushq_ws_rdeliver(ws);
    ngx_http_pushq_ws_step(ws);
}


static void
ngx_http_pushq_ws_published(ngx_http_pushq_redis_op_t *op,
    struct redisReply *reply, const char *err)
{
    ngx_http_pushq_ws_pub_t *pub = op->data;

    char                  errbuf[128];
    uint64_t              id;
    const char           *why;
    pushq_status_t        st;
    ngx_http_pushq_ws_t  *ws;

    ws = pub->ws;

    ngx_queue_remove(&pub->queue);
    ngx_free(pub);
    ws->npubs--;

    errbuf[0] = '\0';
    why = NULL;

    if (reply == NULL) {
        st = PUSHQ_ENOMEM;
        why = err ? err : "redis: connection lost";

    } else {
        st = pushq_redis_reply_publish(reply, &id, errbuf, sizeof(errbuf),
                                       &why);
    }

    if (st != PUSHQ_OK && !ws->closing) {
        ngx_log_error(NGX_LOG_WARN, ws->c->log, 0,
                      "pushq: websocket publish refused: %s",
                      why ? why : "error");

        /* SPEC: a publish that cannot be stored closes with 1013 */
        ngx_http_pushq_ws_close(ws, 1013, why);
    }

    if (ws->read_paused && ws->npubs < NGX_HTTP_PUSHQ_WS_PUBS / 2) {
        ws->read_paused = 0;
        ngx_post_event(ws->c->read, &ngx_posted_events);
    }

    ngx_http_pushq_ws_step(ws);
}


/* a text or binary message from the client goes to Redis */

static void
ngx_http_pushq_ws_rpublish(ngx_http_pushq_ws_t *ws, pushq_ws_event_t *ev)
{
    const char                 *why;
    pushq_status_t              st;
    pushq_redis_cmd_t           cmd;
    ngx_http_pushq_ws_pub_t    *pub;
    ngx_http_pushq_redis_op_t  *op;

    why = NULL;

    st = pushq_redis_cmd_publish(&cmd, ws->args.channel, ws->args.channel_len,
                                 ev->data, ev->len,
                                 ev->type == PUSHQ_WS_BINARY ? PUSHQ_MSG_BINARY
                                                             : 0,
                                 &ws->conf->limits, &why);
    if (st != PUSHQ_OK) {
        ngx_log_error(NGX_LOG_INFO, ws->c->log, 0,
                      "pushq: websocket publish refused: %s",
                      why ? why : "error");
        ngx_http_pushq_ws_close(ws, pushq_status_close_code(st), why);
        return;
    }

    why = "redis: not connected";

    if (ws->link == NULL) {
        goto refused;
    }

    pub = ngx_alloc(sizeof(ngx_http_pushq_ws_pub_t), ws->c->log);
    if (pub == NULL) {
        ws->nomem = 1;
        return;
    }

    op = ngx_http_pushq_redis_op(ngx_http_pushq_ws_published, pub);
    if (op == NULL) {
        ngx_free(pub);
        ws->nomem = 1;
        return;
    }

    if (ngx_http_pushq_redis_send(ws->link, &cmd, op, &why) != NGX_OK) {
        /* the link freed op, and logs the outage once */
        ngx_free(pub);
        goto refused;
    }

    pub->ws = ws;
    pub->op = op;
    ngx_queue_insert_tail(&ws->pubs, &pub->queue);
    ws->npubs++;

    return;

refused:

    /* SPEC: a publish that cannot be stored closes with 1013 */

    ngx_log_error(NGX_LOG_INFO, ws->c->log, 0,
                  "pushq: websocket publish refused: %s, closing",
                  why ? why : "redis: not connected");
    ngx_http_pushq_ws_close(ws, 1013, why ? why : "redis: not connected");
}
