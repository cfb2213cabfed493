
/*
 * pushq nginx module: pushq_publisher (SPEC "Publish").
 *
 * POST or PUT ?channel=<ch>: a form body's field "content", or else the
 * raw body, is stored as one message; the workers with subscribers on the
 * channel are woken through their eventfds.
 */


#include "ngx_http_pushq_module.h"


static void ngx_http_pushq_publisher_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_pushq_publish(ngx_http_request_t *r);
static ngx_int_t ngx_http_pushq_read_body(ngx_http_request_t *r,
    u_char **body, size_t *len);
static ngx_uint_t ngx_http_pushq_content_type_is(ngx_http_request_t *r,
    const char *type);


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

    ngx_memzero(&res, sizeof(pushq_publish_result_t));

    st = pushq_store_publish(ngx_http_pushq_worker.store, args.channel,
                             args.channel_len, msg, msg_len, flags,
                             &plcf->limits, pushq_now_ms(), &res, &why);
    if (st != PUSHQ_OK) {
        return ngx_http_pushq_error(r, st, why);
    }

    ngx_http_pushq_wake(res.wakers);

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
