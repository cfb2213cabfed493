/*
 * publish.cpp -- POST/PUT <publisher_uri>?channel=<ch>.
 *
 * A form body (application/x-www-form-urlencoded, the seed's chat) carries
 * the message in the field "content"; any other body is the message.  The
 * body is read only up to what max_message_size allows (a form's encoded
 * size may be three times its decoded size), so a huge body is refused
 * with 413 without being buffered.
 */

#include <cstring>

#include "plugin.hpp"

namespace pushq::civetweb {

namespace {

constexpr uint64_t form_overhead = 4096;   /* other fields, "content=" */

int publish(plugin *p, mg_connection *conn, const mg_request_info *ri)
{
    const char *why = nullptr;
    char chan[PUSHQ_NAME_MAX];
    size_t chan_len = 0;
    pushq_status_t st = p->resolve_name(PUSHQ_ARG_CHANNEL, p->opt_.channel,
                                        ri->query_string, chan, &chan_len,
                                        &why);
    if (st != PUSHQ_OK) {
        return send_error(conn, st, why);
    }

    const char *ct = mg_get_header(conn, "Content-Type");
    const bool form = media_type_is(ct, "application/x-www-form-urlencoded");
    const bool octet = media_type_is(ct, "application/octet-stream");
    const uint64_t max = p->opt_.limits.max_message_size;
    uint64_t limit = max;
    if (form) {
        limit = max > (UINT64_MAX - form_overhead) / 3
                    ? UINT64_MAX
                    : max * 3 + form_overhead;
    }
    const std::string too_big = "message: larger than max_message_size ("
                                + std::to_string(max) + " bytes)";

    if (ri->content_length > 0
        && static_cast<uint64_t>(ri->content_length) > limit) {
        /* Close rather than let CivetWeb read and discard the rest. */
        mg_disable_connection_keep_alive(conn);
        return send_error(conn, PUSHQ_ETOOBIG, too_big.c_str());
    }

    std::string body;
    if (ri->content_length > 0) {
        body.reserve(static_cast<size_t>(ri->content_length));
    }
    char buf[16384];
    for (;;) {
        int n = mg_read(conn, buf, sizeof(buf));
        if (n < 0) {
            return 400;     /* the client broke off; nothing to answer */
        }
        if (n == 0) {
            break;
        }
        if (body.size() + static_cast<size_t>(n) > limit) {
            mg_disable_connection_keep_alive(conn);
            return send_error(conn, PUSHQ_ETOOBIG, too_big.c_str());
        }
        body.append(buf, static_cast<size_t>(n));
    }

    std::string msg;
    if (form) {
        msg.resize(body.size());
        size_t len = 0;
        st = pushq_form_get(body.data(), body.size(), "content", 7,
                            msg.data(), msg.size(), &len, &why);
        if (st != PUSHQ_OK) {
            return send_error(conn, st, why);
        }
        msg.resize(len);
        if (len > max) {
            return send_error(conn, PUSHQ_ETOOBIG, too_big.c_str());
        }
    } else {
        msg = std::move(body);
    }

    unsigned flags = 0;
    if (octet || !pushq_utf8_valid(msg.data(), msg.size())) {
        flags |= PUSHQ_MSG_BINARY;
    }
    pushq_publish_result_t res{};
    st = p->publish(chan, chan_len, msg.data(), msg.size(), flags, &res, &why);
    if (st != PUSHQ_OK) {
        return send_error(conn, st, why);
    }
    std::string out = json_build([&](char *b, size_t cap) {
        return pushq_json_published(b, cap, &res, chan, chan_len);
    });
    send_answer(conn, 200, "application/json", out);
    return 200;
}

}  // namespace

int handle_publish(mg_connection *conn, void *cbdata)
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
        if (std::strcmp(ri->request_method, "POST") != 0
            && std::strcmp(ri->request_method, "PUT") != 0) {
            rc = send_error(conn, PUSHQ_EMETHOD,
                            "method: the publisher location accepts POST "
                            "and PUT",
                            "POST, PUT");
        } else {
            rc = publish(p, conn, ri);
        }
    } catch (const std::bad_alloc &) {
        rc = send_error(conn, PUSHQ_ENOMEM, "server: out of memory");
    } catch (...) {
        rc = 500;
    }
    gate_leave(g);
    return rc;
}

}  // namespace pushq::civetweb
