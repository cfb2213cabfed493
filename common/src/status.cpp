/*
 * status.cpp -- status codes, their HTTP statuses and close codes, the
 * failure table, and the monotonic clock.
 */

#include "status.hpp"

#include <time.h>

namespace pushq {

namespace {

/* Indexed by `fail`; the static_assert below keeps it in step. */
constexpr fail_info table_[] = {
    /* request arguments, SPEC.md "Concepts" and "Long-poll subscribe" */
    {PUSHQ_EBADARG, "channel: must be 1-64 bytes of [A-Za-z0-9_.:-]"},
    {PUSHQ_EBADARG, "name: must be 1-64 bytes of [A-Za-z0-9_.:-]"},
    {PUSHQ_EBADARG, "last_id: must be a non-negative integer"},
    {PUSHQ_EBADARG, "timeout: must be a non-negative number of seconds"},
    {PUSHQ_EBADARG, "batch: must be an integer from 1 to 1000"},
    {PUSHQ_EBADARG, "format: must be json or prometheus"},
    {PUSHQ_EBADARG, "form: field missing"},
    {PUSHQ_EBADARG, "content: form field missing"},
    {PUSHQ_ETOOBIG, "form: field larger than the buffer given"},

    /* configuration values (nginx syntax) */
    {PUSHQ_EBADARG, "size: must be a number of bytes with an optional k, m "
                    "or g suffix"},
    {PUSHQ_EBADARG, "time: must be numbers with units ms, s, m, h, d, w "
                    "(plain = seconds)"},

    /* opening handshake, RFC 6455 4.2.1 */
    {PUSHQ_EMETHOD, "method: a WebSocket handshake must be GET"},
    {PUSHQ_EBADARG, "HTTP version: a WebSocket handshake needs HTTP/1.1 "
                    "or later"},
    {PUSHQ_EBADARG, "Upgrade: must contain the token websocket"},
    {PUSHQ_EBADARG, "Connection: must contain the token upgrade"},
    {PUSHQ_EBADARG, "Sec-WebSocket-Key: must be base64 of 16 bytes"},
    {PUSHQ_EUPGRADE, "Sec-WebSocket-Version: must be 13"},

    /* frames */
    {PUSHQ_EPROTO, "frame: reserved bits RSV1-3 must be 0 (RFC 6455 5.2)"},
    {PUSHQ_EPROTO, "frame: reserved opcode (RFC 6455 5.2)"},
    {PUSHQ_EPROTO, "frame: client frames must be masked (RFC 6455 5.1)"},
    {PUSHQ_EPROTO, "frame: control frame payload over 125 bytes "
                   "(RFC 6455 5.5)"},
    {PUSHQ_EPROTO, "frame: control frame must not be fragmented "
                   "(RFC 6455 5.5)"},
    {PUSHQ_EPROTO, "frame: continuation without a message to continue "
                   "(RFC 6455 5.4)"},
    {PUSHQ_EPROTO, "frame: new data frame inside a fragmented message "
                   "(RFC 6455 5.4)"},
    {PUSHQ_EPROTO, "frame: payload length not minimally encoded "
                   "(RFC 6455 5.2)"},
    {PUSHQ_EPROTO, "frame: 64-bit payload length with the top bit set "
                   "(RFC 6455 5.2)"},
    {PUSHQ_EPROTO, "close: 1-byte payload (RFC 6455 5.5.1)"},
    {PUSHQ_EPROTO, "close: invalid status code (RFC 6455 7.4)"},
    {PUSHQ_EUTF8, "close: reason is not valid UTF-8 (RFC 6455 5.5.1)"},
    {PUSHQ_EUTF8, "text: message is not valid UTF-8 (RFC 6455 8.1)"},
    {PUSHQ_ETOOBIG, "message: larger than max_message_size"},
    {PUSHQ_ENOMEM, "message: server out of memory, try again later"},

    {PUSHQ_EINTERNAL, "internal error"},
};

static_assert(sizeof(table_) / sizeof(table_[0])
              == static_cast<unsigned>(fail::count_),
              "one row per pushq::fail");

consteval bool reasons_fit()
{
    for (const fail_info &r : table_) {
        size_t n = 0;
        while (r.text[n] != '\0') {
            n++;
        }
        if (n > 123) {
            return false;
        }
    }
    return true;
}

static_assert(reasons_fit(), "every text fits a close frame (123 bytes)");

} // namespace

const fail_info &info(fail f) noexcept
{
    unsigned i = static_cast<unsigned>(f);
    if (i >= static_cast<unsigned>(fail::count_)) {
        i = static_cast<unsigned>(fail::internal);
    }
    return table_[i];
}

pushq_status_t report(fail f, const char **why) noexcept
{
    const fail_info &r = info(f);
    if (why != nullptr) {
        *why = r.text;
    }
    return r.status;
}

} // namespace pushq

extern "C" {

PUSHQ_API int pushq_status_http(pushq_status_t st)
{
    switch (st) {
    case PUSHQ_OK:        return 200;
    case PUSHQ_EBADARG:   return 400;
    case PUSHQ_EMETHOD:   return 405;
    case PUSHQ_ETOOBIG:   return 413;
    case PUSHQ_EUPGRADE:  return 426;
    case PUSHQ_ENOMEM:    return 503;
    case PUSHQ_ENOTFOUND: return 404;
    /* WebSocket-only statuses never reach an HTTP answer as such: a frame
     * error is a 400 if it ever had to be answered over HTTP. */
    case PUSHQ_EPROTO:    return 400;
    case PUSHQ_EUTF8:     return 400;
    case PUSHQ_EPOLICY:   return 403;
    case PUSHQ_EINTERNAL: return 500;
    }
    return 500;
}

PUSHQ_API uint16_t pushq_status_close_code(pushq_status_t st)
{
    switch (st) {
    case PUSHQ_OK:        return 1000;  /* normal closure                */
    case PUSHQ_EPROTO:    return 1002;  /* protocol error                */
    case PUSHQ_EBADARG:   return 1002;  /* bad data from the peer        */
    case PUSHQ_EMETHOD:   return 1002;
    case PUSHQ_EUPGRADE:  return 1002;
    case PUSHQ_EUTF8:     return 1007;  /* inconsistent data (UTF-8)     */
    case PUSHQ_EPOLICY:   return 1008;  /* policy violation              */
    case PUSHQ_ETOOBIG:   return 1009;  /* message too big               */
    case PUSHQ_ENOTFOUND: return 1008;
    case PUSHQ_ENOMEM:    return 1013;  /* try again later               */
    case PUSHQ_EINTERNAL: return 1011;  /* internal error                */
    }
    return 1011;
}

PUSHQ_API uint64_t pushq_now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        return 0;
    }
    return static_cast<uint64_t>(ts.tv_sec) * 1000u
           + static_cast<uint64_t>(ts.tv_nsec) / 1000000u;
}

} // extern "C"
