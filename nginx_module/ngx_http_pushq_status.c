
/*
 * pushq nginx module: pushq_status (SPEC "Status").
 *
 * GET: the store's counters as JSON, one channel's with ?channel=<ch>,
 * Prometheus text with ?format=prometheus.  The store is shared, so the
 * numbers cover every worker.
 */


#include "ngx_http_pushq_module.h"


ngx_int_t
ngx_http_pushq_status_handler(ngx_http_request_t *r)
{
    u_char                 *p;
    size_t                  n, need;
    uint64_t                now;
    ngx_int_t               rc;
    ngx_str_t               value;
    ngx_uint_t              one, prom;
    const char             *why;
    pushq_args_t            args;
    pushq_status_t          st;
    pushq_stats_t           stats;
    pushq_channel_stats_t   cstats;

    static ngx_str_t  prom_type =
        ngx_string("text/plain; version=0.0.4; charset=utf-8");
    static ngx_str_t  json_type = ngx_string("application/json");

    if (r->method != NGX_HTTP_GET) {
        if (ngx_http_pushq_add_header(r, "Allow", "GET") != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_pushq_error(r, PUSHQ_EMETHOD,
                                    "method: status takes GET");
    }

    if (ngx_http_pushq_worker.store == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    why = NULL;

    if (ngx_http_pushq_parse_args(r, &args, &why) != NGX_OK) {
        return ngx_http_pushq_error(r, PUSHQ_EBADARG, why);
    }

    one = (ngx_http_arg(r, (u_char *) "channel", 7, &value) == NGX_OK);
    prom = (args.format == PUSHQ_FORMAT_PROMETHEUS);
    now = pushq_now_ms();

    if (one) {
        /* names past client_ttl are forgotten by a sweep: count them out */
        (void) pushq_store_sweep(ngx_http_pushq_worker.store, now);

        st = pushq_store_channel_stats(ngx_http_pushq_worker.store,
                                       args.channel, args.channel_len, now,
                                       &cstats);
        if (st != PUSHQ_OK) {
            return ngx_http_pushq_error(r, st,
                                        "channel: no such channel");
        }

    } else {
        pushq_store_stats(ngx_http_pushq_worker.store, now, &stats);
    }

    for (n = 1024; /* void */ ; /* void */) {
        p = ngx_pnalloc(r->pool, n);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (one && prom) {
            need = pushq_prometheus_channel_stats((char *) p, n,
                                                  args.channel,
                                                  args.channel_len, &cstats);
        } else if (one) {
            need = pushq_json_channel_stats((char *) p, n, args.channel,
                                            args.channel_len, &cstats);
        } else if (prom) {
            need = pushq_prometheus_stats((char *) p, n, &stats);
        } else {
            need = pushq_json_stats((char *) p, n, &stats);
        }

        if (need <= n) {
            break;
        }

        n = need;
    }

    r->headers_out.status = NGX_HTTP_OK;

    return ngx_http_pushq_send_text(r, prom ? &prom_type : &json_type, p,
                                    need);
}
