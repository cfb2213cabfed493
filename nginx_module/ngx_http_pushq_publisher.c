
/*
 * pushq nginx module: pushq_publisher (SPEC "Publish").
 *
 * POST or PUT ?channel=<ch>: a form body's field "content", or else the
 * raw body, is stored as one message; the workers with subscribers on the
 * channel are woken through their eventfds.
 *
 * With pushq_redis the message goes to Redis instead (the publish script
 * gives the id, logs it and PUBLISHes it to every server, whose mirror
 * wakes the subscribers): the request waits for the reply, then answers
 * 200 with the id, or 503 when Redis cannot be reached or refused; it is
 * never stored locally instead.
 */


#include "ngx_http_pushq_module.h"


static void ngx_http_pushq_publisher_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_pushq_publish(ngx_http_request_t *r);
static ngx_int_t ngx_http_pushq_read_body(ngx_http_request_t *r,
    u_char **body, size_t *len);
static ngx_uint_t ngx_http_pushq_content_type_is(ngx_http_request_t *r,
    const char *type);
static ngx_int_t ngx_http_pushq_publish_redis(ngx_http_request_t *r,
    ngx_http_pushq_loc_conf_t *plcf, pushq_args_t *args, u_char *msg,
    size_t len, unsigned flags);
static void ngx_http_pushq_publish_redis_reply(ngx_http_pushq_redis_op_t *op,
    struct redisReply *reply, const char *err);
static void ngx_http_pushq_publish_redis_timeout(ngx_event_t *ev);
static void ngx_http_pushq_publish_redis_cleanup(void *data);
static ngx_int_t ngx_http_pushq_publish_redis_refuse(ngx_http_request_t *r,
    const char *why);
static void ngx_http_pushq_publish_redis_finish(ngx_http_request_t *r,
    ngx_int_t rc);


/* a Redis publish stops waiting for the reply after this long (ms) */

#define NGX_HTTP_PUSHQ_REDIS_PUBLISH_TIMEOUT  5000


/* a publish waiting for Redis (the request's module ctx) */

typedef struct {
    ngx_http_request_t           *request;
    ngx_http_pushq_redis_op_t    *op;        /* NULL: replied or gave up */
    ngx_event_t                   timeout;
    u_char                       *chan;
    size_t                        chan_len;
    uint32_t                      subscribers;
} ngx_http_pushq_pub_redis_t;


ngx_int_t
ngx_http_pushq_publisher_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (!(r->method & (NGX_HTTP_POST|NGX_HTTP_PUT))) {
        if (ngx_http_pushq_add_header(r, "Allow", "POST, PUT") != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_pushq_error(r, PUSHQ_EMETHOD,
                                    "method: a publisher takes POST or PUT");
    }

    if (ngx_http_pushq_worker.store == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_pushq_publisher_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_pushq_publisher_body(ngx_http_request_t *r)
{
    ngx_http_finalize_request(r, ngx_http_pushq_publish(r));
}


static ngx_int_t
ngx_http_pushq_publish(ngx_http_request_t *r)
{
    u_char                     *body, *msg, *p, buf[256];
    size_t                      len, msg_len, n;
    unsigned                    flags;
    ngx_int_t                   rc;
    const char                 *why;
    pushq_args_t                args;
    pushq_status_t              st;
    pushq_publish_result_t      res;
    ngx_http_pushq_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_pushq_module);

    why = NULL;

    if (ngx_http_pushq_parse_args(r, &args, &why) != NGX_OK) {
        return ngx_http_pushq_error(r, PUSHQ_EBADARG, why);
    }

    rc = ngx_http_pushq_get_channel(r, plcf, &args, &why);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_pushq_error(r, PUSHQ_EBADARG, why);
    }

    if (ngx_http_pushq_read_body(r, &body, &len) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    flags = 0;
    msg = body;
    msg_len = len;

    if (ngx_http_pushq_content_type_is(r,
                                       "application/x-www-form-urlencoded"))
    {
        /* the seed's form: the message is the field "content" */

        msg = ngx_pnalloc(r->pool, len + 1);
        if (msg == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        st = pushq_form_get((const char *) body, len, "content", 7,
                            (char *) msg, len + 1, &msg_len, &why);
        if (st != PUSHQ_OK) {
            return ngx_http_pushq_error(r, st, why);
        }

    } else if (ngx_http_pushq_content_type_is(r, "application/octet-stream"))
    {
        flags |= PUSHQ_MSG_BINARY;
    }

    if (msg_len > plcf->max_message_size) {
        return ngx_http_pushq_error(r, PUSHQ_ETOOBIG,
                                    "message: larger than "
                                    "pushq_max_message_size");
    }

    if (!(flags & PUSHQ_MSG_BINARY) && !pushq_utf8_valid(msg, msg_len)) {
        flags |= PUSHQ_MSG_BINARY;
    }

    if (plcf->redis) {
        return ngx_http_pushq_publish_redis(r, plcf, &args, msg, msg_len,
                                            flags);
    }

    ngx_memzero(&res, sizeof(pushq_publish_result_t));

    st = pushq_store_publish(ngx_http_pushq_worker.store, args.channel,
                             args.channel_len, msg, msg_len, flags,
                             &plcf->limits, pushq_now_ms(), &res, &why);
    if (st != PUSHQ_OK) {
        return ngx_http_pushq_error(r, st, why);
    }

    ngx_http_pushq_wake(res.wakers, res.channel_key);

    n = pushq_json_published((char *) buf, sizeof(buf), &res, args.channel,
                             args.channel_len);

    p = ngx_pnalloc(r->pool, n);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (n > sizeof(buf)) {
        n = pushq_json_published((char *) p, n, &res, args.channel,
                                 args.channel_len);
    } else {
        ngx_memcpy(p, buf, n);
    }

    return ngx_http_pushq_send_json(r, NGX_HTTP_OK, p, n);
}


/* the whole body in one piece: nginx keeps large bodies in a temp file */

static ngx_int_t
ngx_http_pushq_read_body(ngx_http_request_t *r, u_char **body, size_t *len)
{
    u_char       *p;
    off_t         size;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    *body = (u_char *) "";
    *len = 0;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && !cl->buf->in_file) {
        if (cl->buf->last > cl->buf->pos) {
            *body = cl->buf->pos;
            *len = cl->buf->last - cl->buf->pos;
        }

        return NGX_OK;
    }

    size = 0;

    for ( /* void */ ; cl; cl = cl->next) {
        b = cl->buf;
        size += b->in_file ? b->file_last - b->file_pos : b->last - b->pos;
    }

    p = ngx_pnalloc(r->pool, (size_t) size + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *body = p;
    *len = (size_t) size;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (!b->in_file) {
            /* a chunked body may end in an empty buffer with no memory */
            if (b->last > b->pos) {
                p = ngx_cpymem(p, b->pos, b->last - b->pos);
            }

            continue;
        }

        if (b->file_last == b->file_pos) {
            continue;
        }

        n = ngx_read_file(b->file, p, (size_t) (b->file_last - b->file_pos),
                          b->file_pos);

        if (n != b->file_last - b->file_pos) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "pushq: cannot read the request body from \"%V\"",
                          &b->file->name);
            return NGX_ERROR;
        }

        p += n;
    }

    return NGX_OK;
}


/* Content-Type is type, parameters (";charset=...") aside */

static ngx_uint_t
ngx_http_pushq_content_type_is(ngx_http_request_t *r, const char *type)
{
    size_t            len;
    ngx_str_t        *v;
    ngx_table_elt_t  *h;

    h = r->headers_in.content_type;

    if (h == NULL) {
        return 0;
    }

    v = &h->value;
    len = ngx_strlen(type);

    if (v->len < len || ngx_strncasecmp(v->data, (u_char *) type, len) != 0) {
        return 0;
    }

    return v->len == len || v->data[len] == ';' || v->data[len] == ' '
           || v->data[len] == '\t';
}


/*
 * pushq_redis: the publish script runs in Redis; the request is held
 * (r->main->count++, NGX_DONE) until its reply or the timeout.  When the
 * request goes away first, its pool cleanup cancels the op: the link then
 * frees it without calling back.
 */

static ngx_int_t
ngx_http_pushq_publish_redis(ngx_http_request_t *r,
    ngx_http_pushq_loc_conf_t *plcf, pushq_args_t *args, u_char *msg,
    size_t len, unsigned flags)
{
    const char                   *why;
    pushq_status_t                st;
    pushq_redis_cmd_t             cmd;
    ngx_pool_cleanup_t           *cln;
    pushq_channel_stats_t         cs;
    ngx_http_pushq_redis_op_t    *op;
    ngx_http_pushq_redis_link_t  *link;
    ngx_http_pushq_pub_redis_t   *ctx;

    why = NULL;

    st = pushq_redis_cmd_publish(&cmd, args->channel, args->channel_len, msg,
                                 len, flags, &plcf->limits, &why);
    if (st != PUSHQ_OK) {
        return ngx_http_pushq_error(r, st, why);
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_pushq_pub_redis_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* args lives on the caller's stack */

    ctx->chan = ngx_pnalloc(r->pool, args->channel_len);
    if (ctx->chan == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(ctx->chan, args->channel, args->channel_len);
    ctx->chan_len = args->channel_len;
    ctx->request = r;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    op = ngx_http_pushq_redis_op(ngx_http_pushq_publish_redis_reply, r);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    link = ngx_http_pushq_redis_link(plcf->redis);

    /* down: op freed, why is the link's last error */

    if (ngx_http_pushq_redis_send(link, &cmd, op, &why) != NGX_OK) {
        return ngx_http_pushq_publish_redis_refuse(r, why);
    }

    ctx->op = op;

    /*
     * SPEC: the subscribers waiting now, counted before the message can
     * reach them (this server's mirror may get it before this reply)
     */

    ngx_memzero(&cs, sizeof(pushq_channel_stats_t));

    (void) pushq_store_channel_stats(ngx_http_pushq_worker.store,
                                     args->channel, args->channel_len,
                                     pushq_now_ms(), &cs);

    ctx->subscribers = (uint32_t) ngx_min(cs.subscribers, 0xffffffff);

    cln->handler = ngx_http_pushq_publish_redis_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_pushq_module);

    /*
     * not cancelable: an exiting worker waits for the answer.  ev->data is
     * read as a connection by the debug log of timers.
     */

    ctx->timeout.handler = ngx_http_pushq_publish_redis_timeout;
    ctx->timeout.data = r->connection;
    ctx->timeout.log = r->connection->log;

    ngx_add_timer(&ctx->timeout, NGX_HTTP_PUSHQ_REDIS_PUBLISH_TIMEOUT);

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_pushq_publish_redis_reply(ngx_http_pushq_redis_op_t *op,
    struct redisReply *reply, const char *err)
{
    ngx_http_request_t  *r = op->data;

    u_char                      *p, buf[256], errbuf[200];
    size_t                       n;
    uint64_t                     id;
    const char                  *why;
    pushq_status_t               st;
    pushq_publish_result_t       res;
    ngx_http_pushq_pub_redis_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_pushq_module);

    /* the link frees the op when this returns */

    ctx->op = NULL;

    if (ctx->timeout.timer_set) {
        ngx_del_timer(&ctx->timeout);
    }

    if (reply == NULL) {
        ngx_http_pushq_publish_redis_finish(r,
            ngx_http_pushq_publish_redis_refuse(r,
                err ? err : "redis: connection lost"));
        return;
    }

    id = 0;
    why = NULL;
    errbuf[0] = '\0';

    st = pushq_redis_reply_publish(reply, &id, (char *) errbuf,
                                   sizeof(errbuf), &why);

    if (st != PUSHQ_OK) {
        ngx_http_pushq_publish_redis_finish(r,
            ngx_http_pushq_publish_redis_refuse(r, why));
        return;
    }

    ngx_memzero(&res, sizeof(pushq_publish_result_t));
    res.id = id;
    res.subscribers = ctx->subscribers;

    n = pushq_json_published((char *) buf, sizeof(buf), &res,
                             (const char *) ctx->chan, ctx->chan_len);

    p = ngx_pnalloc(r->pool, n);
    if (p == NULL) {
        ngx_http_pushq_publish_redis_finish(r,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (n > sizeof(buf)) {
        n = pushq_json_published((char *) p, n, &res,
                                 (const char *) ctx->chan, ctx->chan_len);
    } else {
        ngx_memcpy(p, buf, n);
    }

    ngx_http_pushq_publish_redis_finish(r,
        ngx_http_pushq_send_json(r, NGX_HTTP_OK, p, n));
}


static void
ngx_http_pushq_publish_redis_timeout(ngx_event_t *ev)
{
    ngx_http_request_t          *r;
    ngx_http_pushq_pub_redis_t  *ctx;

    ctx = (ngx_http_pushq_pub_redis_t *)
              ((u_char *) ev - offsetof(ngx_http_pushq_pub_redis_t, timeout));
    r = ctx->request;

    if (ctx->op) {
        /* a late reply is dropped */
        ctx->op->cancelled = 1;
        ctx->op = NULL;
    }

    ngx_http_pushq_publish_redis_finish(r,
        ngx_http_pushq_publish_redis_refuse(r,
            "redis: no reply within 5 s (the message may have been "
            "published)"));
}


static void
ngx_http_pushq_publish_redis_cleanup(void *data)
{
    ngx_http_pushq_pub_redis_t  *ctx = data;

    if (ctx->op) {
        ctx->op->cancelled = 1;
        ctx->op = NULL;
    }

    if (ctx->timeout.timer_set) {
        ngx_del_timer(&ctx->timeout);
    }
}


/*
 * 503 {"status": false, "error": "redis: ..."}: Redis is down or refused.
 * Logged at info: the link logs the outage itself, once.
 */

static ngx_int_t
ngx_http_pushq_publish_redis_refuse(ngx_http_request_t *r, const char *why)
{
    u_char  *p, text[256], buf[512];
    size_t   n;

    if (why == NULL) {
        why = "redis: error";
    }

    if (ngx_strncmp(why, "redis", 5) != 0) {
        p = ngx_snprintf(text, sizeof(text) - 1, "redis: %s", why);
        *p = '\0';
        why = (const char *) text;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "pushq: publish refused with 503: %s", why);

    n = pushq_json_error((char *) buf, sizeof(buf), why);

    p = ngx_pnalloc(r->pool, n);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (n > sizeof(buf)) {
        n = pushq_json_error((char *) p, n, why);

    } else {
        ngx_memcpy(p, buf, n);
    }

    return ngx_http_pushq_send_json(r, NGX_HTTP_SERVICE_UNAVAILABLE, p, n);
}


/* outside ngx_http_request_handler: run what finalizing posted */

static void
ngx_http_pushq_publish_redis_finish(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_connection_t  *c;

    c = r->connection;

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}
