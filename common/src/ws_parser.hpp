/*
 * ws_parser.hpp -- the incremental parser of client-to-server WebSocket
 * frames (RFC 6455 5), no I/O: bytes and state in; "need more", a message,
 * a control frame or an error (close code + reason) out.  The shape is
 * uWebSockets' WebSocketProtocol.h; the checks, one per rule, follow
 * Beast's parse_fh; text is validated as it arrives (utf8_checker).
 *
 * The same rules run on whole frames handed over by a server that parses
 * frames itself (CivetWeb): feed_frame().
 */

#ifndef PUSHQ_WS_PARSER_HPP
#define PUSHQ_WS_PARSER_HPP

#include <cstddef>
#include <cstdint>
#include <vector>

#include "pushq.h"
#include "status.hpp"
#include "utf8.hpp"

namespace pushq {

class ws_parser {
public:
    explicit ws_parser(uint64_t max_message_size) noexcept
        : max_(max_message_size) {}

    /* See pushq_ws_parser_feed / pushq_ws_parser_feed_frame. */
    size_t feed(const unsigned char *p, size_t n, pushq_ws_event_t *ev);
    void feed_frame(unsigned first_byte, const unsigned char *p, size_t n,
                    pushq_ws_event_t *ev);

    /* Makes the parser fail for good with f (used by the C edge when an
     * exception escaped). */
    void fail_with(fail f, pushq_ws_event_t *ev) noexcept;

private:
    bool check_first_byte(unsigned b0, pushq_ws_event_t *ev) noexcept;
    bool check_length(uint64_t len, pushq_ws_event_t *ev) noexcept;
    bool take_payload(const unsigned char *p, size_t n, bool masked,
                      pushq_ws_event_t *ev);
    bool end_frame(pushq_ws_event_t *ev) noexcept;
    void start_call() noexcept;
    void need_more(pushq_ws_event_t *ev) noexcept;

    bool is_control() const noexcept { return (opcode_ & 0x8) != 0; }

    uint64_t       max_;                /* max_message_size, bytes       */

    /* the frame being read */
    bool           in_payload_ = false; /* false: reading its header     */
    unsigned char  hdr_[14];            /* 2 + 8 (length) + 4 (mask)     */
    size_t         hdr_len_ = 0;
    size_t         hdr_need_ = 2;
    bool           fin_ = false;
    unsigned       opcode_ = 0;
    uint64_t       remaining_ = 0;      /* payload bytes still to read   */
    unsigned char  mask_[4] = {0, 0, 0, 0};
    unsigned       mask_pos_ = 0;

    /* the data message being reassembled (5.4) */
    bool           in_message_ = false; /* first fragment seen, not FIN  */
    unsigned       msg_opcode_ = 0;     /* TEXT or BINARY                */
    std::vector<unsigned char> msg_;
    bool           msg_handed_ = false; /* returned: drop at next call   */
    utf8_checker   utf8_;

    /* the control frame being read: separate, so that it may arrive
     * between the fragments of a message (5.4, 5.5) */
    unsigned char  ctrl_[125];
    size_t         ctrl_len_ = 0;

    /* after CLOSE or ERROR every call answers the same */
    bool           finished_ = false;
    pushq_ws_event_t final_{};
};

} // namespace pushq

#endif
