/*
 * publish.cpp -- POST/PUT <publisher_uri>?channel=<ch>.
 *
 * A form body (application/x-www-form-urlencoded, the seed's chat) carries
 * the message in the field "content"; any other body is the message.  The
 * body is read only up to what max_message_size allows (a form's encoded
 * size may be three times its decoded size), so a huge body is refused
 * with 413 without being buffered.
 */

#include <strings.h>

#include <cstring>

#include "plugin.hpp"

namespace pushq::civetweb {

namespace {

constexpr uint64_t form_overhead = 4096;   /* other fields, "content=" */

/* Framing that is not one unambiguous reading: several Content-Length
 * headers, or one that is not plain digits.  nullptr when fine. */
const char *framing_problem(const mg_request_info *ri)
{
    const char *first = nullptr;
    for (int i = 0; i < ri->num_headers; i++) {
        const mg_header &h = ri->http_headers[i];
        if (h.name == nullptr || strcasecmp(h.name, "Content-Length") != 0) {
            continue;
        }
        const char *v = h.value != nullptr ? h.value : "";
        if (*v == '\0' || std::strspn(v, "0123456789") != std::strlen(v)) {
            return "Content-Length: must be a decimal number";
        }
        if (first != nullptr) {
            return "Content-Length: given more than once";
        }
        first = v;
    }
    return nullptr;
}

int publish(plugin *p, mg_connection *conn, const mg_request_info *ri)
{
    const char *why = nullptr;
    /* Every argument is checked as for a subscriber (a bad name, last_id,
     * timeout or batch: 400 naming it), as the nginx module does, though
     * a publish uses only the channel. */
    const char *q = ri->query_string;
    pushq_args_t args{};
    pushq_status_t st = pushq_args_parse(q, q ? std::strlen(q) : 0, &args,
                                         &why);
    if (st != PUSHQ_OK) {
        return send_error(conn, st, why);
    }
    char chan[PUSHQ_NAME_MAX];
    size_t chan_len = 0;
    st = p->resolve_name(PUSHQ_ARG_CHANNEL, p->opt_.channel,
                                        ri->query_string, chan, &chan_len,
                                        &why);
    if (st != PUSHQ_OK) {
        return send_error(conn, st, why);
    }

    if (const char *bad = framing_problem(ri)) {
        /* CivetWeb 1.15 reads these one way (the first Content-Length,
         * strtoll's "+5"); another reader may read them another: refuse,
         * and read nothing more on this connection. */
        mg_disable_connection_keep_alive(conn);
        return send_error(conn, PUSHQ_EBADARG, bad);
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
            /* A malformed chunked body (bad chunk size) or a client that
             * broke off: answer (the write fails harmlessly if it is
             * gone) and close. */
            mg_disable_connection_keep_alive(conn);
            return send_error(conn, PUSHQ_EBADARG,
                              "body: malformed chunked encoding or cut "
                              "off; nothing was published");
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
    if (ri->content_length >= 0
        && body.size() < static_cast<uint64_t>(ri->content_length)) {
        /* mg_read returns 0 also when the body stalls past
         * request_timeout_ms or the client half-closes: a short body is
         * never published. */
        mg_cry(conn, "pushq: publish body incomplete (%zu of %lld bytes); "
               "nothing published", body.size(),
               static_cast<long long>(ri->content_length));
        mg_disable_connection_keep_alive(conn);
        return send_error(conn, PUSHQ_EBADARG,
                          "body: shorter than Content-Length (stalled or "
                          "cut off); nothing was published");
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
