/*
 * status.cpp -- GET <status_uri>[?channel=<ch>][&format=prometheus].
 * The store's counters; in CivetWeb one store serves every thread, so the
 * sums SPEC.md asks for are the store's own numbers.
 */

#include <cstring>

#include "plugin.hpp"

namespace pushq::civetweb {

namespace {

int status(plugin *p, mg_connection *conn, const mg_request_info *ri)
{
    const char *q = ri->query_string;
    const char *why = nullptr;
    pushq_args_t args{};
    pushq_status_t st = pushq_args_parse(q, q ? std::strlen(q) : 0, &args,
                                         &why);
    if (st != PUSHQ_OK) {
        return send_error(conn, st, why);
    }
    const bool prom = args.format == PUSHQ_FORMAT_PROMETHEUS;
    const char *ctype = prom ? "text/plain; version=0.0.4; charset=utf-8"
                             : "application/json";
    const uint64_t now = pushq_now_ms();
    /* Expired names and messages go first, so the numbers are exact
     * rather than as of the last maintenance sweep (up to 1 s old). */
    pushq_store_sweep(p->store_, now);

    std::string_view raw;
    if (query_arg_raw(q, "channel", raw) && !raw.empty()) {
        pushq_channel_stats_t cs{};
        st = pushq_store_channel_stats(p->store_, args.channel,
                                       args.channel_len, now, &cs);
        if (st != PUSHQ_OK) {
            return send_error(conn, st, "channel: no such channel");
        }
        std::string body = json_build([&](char *b, size_t cap) {
            return prom ? pushq_prometheus_channel_stats(
                              b, cap, args.channel, args.channel_len, &cs)
                        : pushq_json_channel_stats(b, cap, args.channel,
                                                   args.channel_len, &cs);
        }, 1024);
        send_answer(conn, 200, ctype, body);
        return 200;
    }

    pushq_stats_t s{};
    pushq_store_stats(p->store_, now, &s);
    std::string body = json_build([&](char *b, size_t cap) {
        return prom ? pushq_prometheus_stats(b, cap, &s)
                    : pushq_json_stats(b, cap, &s);
    }, 2048);
    send_answer(conn, 200, ctype, body);
    return 200;
}

}  // namespace

int handle_status(mg_connection *conn, void *cbdata)
{
    auto *g = static_cast<gate *>(cbdata);
    plugin *p = gate_enter(g);
    if (p == nullptr) {
        return send_error(conn, PUSHQ_ENOMEM,
                          "server: pushq is being detached; try again later");
    }
    int rc = 500;
    try {
        const mg_request_info *ri = mg_get_request_info(conn);
        if (std::strcmp(ri->request_method, "GET") != 0) {
            rc = send_error(conn, PUSHQ_EMETHOD,
                            "method: the status location accepts GET", "GET");
        } else {
            rc = status(p, conn, ri);
        }
    } catch (...) {
        rc = 500;
    }
    gate_leave(g);
    return rc;
}

}  // namespace pushq::civetweb
