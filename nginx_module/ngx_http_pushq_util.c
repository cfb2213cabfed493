
/*
 * pushq nginx module: answers, errors and request arguments shared by the
 * handlers.
 */


#include "ngx_http_pushq_module.h"


ngx_int_t
ngx_http_pushq_add_header(ngx_http_request_t *r, const char *key,
    const char *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value.data = (u_char *) value;
    h->value.len = ngx_strlen(value);

    return NGX_OK;
}


ngx_int_t
ngx_http_pushq_send_text(ngx_http_request_t *r, ngx_str_t *type,
    u_char *body, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = len;

    /* SPEC: every answer is "Cache-Control: no-store" */

    if (ngx_http_pushq_add_header(r, "Cache-Control", "no-store")
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (len == 0) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body;
    b->last = body + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_pushq_send_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *body, size_t len)
{
    static ngx_str_t  type = ngx_string("application/json");

    r->headers_out.status = status;

    return ngx_http_pushq_send_text(r, &type, body, len);
}


/*
 * SPEC "Errors": {"status": false, "error": why} with the status of st.
 * The caller has added Allow for 405.  Every refusal is logged at info
 * (a client's mistake) or warn (memory exhausted), never at error level.
 */

ngx_int_t
ngx_http_pushq_error(ngx_http_request_t *r, pushq_status_t st,
    const char *why)
{
    u_char      *p, buf[512];
    size_t       n;
    ngx_int_t    rc;
    ngx_uint_t   status, level;

    if (why == NULL) {
        why = "internal error";
    }

    status = (ngx_uint_t) pushq_status_http(st);

    switch (st) {
    case PUSHQ_EINTERNAL:
        level = NGX_LOG_ERR;
        break;
    case PUSHQ_ENOMEM:
        level = NGX_LOG_WARN;
        break;
    default:
        level = NGX_LOG_INFO;
        break;
    }

    ngx_log_error(level, r->connection->log, 0,
                  "pushq: request refused with %ui: %s%s", status, why,
                  st == PUSHQ_ENOMEM ? " (raise pushq_shm_size)" : "");

    if (r->request_body == NULL) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (st == PUSHQ_EUPGRADE) {
        if (ngx_http_pushq_add_header(r, "Sec-WebSocket-Version", "13")
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    n = pushq_json_error((char *) buf, sizeof(buf), why);
    p = buf;

    if (n > sizeof(buf)) {
        p = ngx_pnalloc(r->pool, n);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        n = pushq_json_error((char *) p, n, why);

    } else {
        p = ngx_pnalloc(r->pool, n);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(p, buf, n);
    }

    return ngx_http_pushq_send_json(r, status, p, n);
}


ngx_int_t
ngx_http_pushq_parse_args(ngx_http_request_t *r, pushq_args_t *args,
    const char **why)
{
    pushq_status_t  st;

    ngx_memzero(args, sizeof(pushq_args_t));

    st = pushq_args_parse((const char *) r->args.data, r->args.len, args,
                          why);

    return (st == PUSHQ_OK) ? NGX_OK : NGX_DECLINED;
}


/* pushq_channel, when set, replaces the channel argument */

ngx_int_t
ngx_http_pushq_get_channel(ngx_http_request_t *r,
    ngx_http_pushq_loc_conf_t *plcf, pushq_args_t *args, const char **why)
{
    ngx_str_t  value;

    if (plcf->channel == NULL) {
        return NGX_OK;
    }

    if (ngx_http_complex_value(r, plcf->channel, &value) != NGX_OK) {
        return NGX_ERROR;
    }

    if (pushq_name_decode(PUSHQ_ARG_CHANNEL, (const char *) value.data,
                          value.len, args->channel, &args->channel_len, why)
        != PUSHQ_OK)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* pushq_client, when set, replaces the name argument */

ngx_int_t
ngx_http_pushq_get_client(ngx_http_request_t *r,
    ngx_http_pushq_loc_conf_t *plcf, pushq_args_t *args, const char **why)
{
    ngx_str_t  value;

    if (plcf->client == NULL) {
        return NGX_OK;
    }

    if (ngx_http_complex_value(r, plcf->client, &value) != NGX_OK) {
        return NGX_ERROR;
    }

    if (pushq_name_decode(PUSHQ_ARG_NAME, (const char *) value.data,
                          value.len, args->name, &args->name_len, why)
        != PUSHQ_OK)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}
