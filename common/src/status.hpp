/*
 * status.hpp -- the one table that maps every failure the protocol core can
 * report to its pushq_status_t (hence its HTTP status and WebSocket close
 * code) and to the static English text given to the user (the `why` of the
 * C ABI, the "error" of a JSON answer, the reason of a close frame).
 *
 * Every text names the argument (or the protocol element) and the rule, and
 * is at most 123 bytes so that it always fits a close frame (RFC 6455 5.5:
 * control payload <= 125 bytes, 2 of them the code).
 */

#ifndef PUSHQ_STATUS_HPP
#define PUSHQ_STATUS_HPP

#include "pushq.h"

namespace pushq {

enum class fail : unsigned {
    /* request arguments (400) */
    channel_invalid,
    name_invalid,
    last_id_invalid,
    timeout_invalid,
    batch_invalid,
    format_invalid,
    form_field_missing,
    form_content_missing,
    form_too_big,

    /* configuration values */
    size_invalid,
    time_invalid,

    /* opening handshake, RFC 6455 4.2.1 */
    hs_method,
    hs_http_version,
    hs_upgrade,
    hs_connection,
    hs_key,
    hs_version,

    /* frames, RFC 6455 5.x */
    ws_rsv,
    ws_opcode,
    ws_unmasked,
    ws_control_too_long,
    ws_control_fragmented,
    ws_cont_without_start,
    ws_data_inside_fragmented,
    ws_length_not_minimal,
    ws_length_top_bit,
    ws_close_one_byte,
    ws_close_code,
    ws_close_reason_utf8,
    ws_text_utf8,
    ws_too_big,
    ws_no_memory,

    internal,
    count_
};

struct fail_info {
    pushq_status_t  status;
    const char     *text;       /* static, <= 123 bytes */
};

/* The row of the table for f. */
const fail_info &info(fail f) noexcept;

inline pushq_status_t status_of(fail f) noexcept { return info(f).status; }
inline const char *text_of(fail f) noexcept { return info(f).text; }

/* Sets *why (when why is not NULL) and returns the status of f. */
pushq_status_t report(fail f, const char **why) noexcept;

} // namespace pushq

#endif
