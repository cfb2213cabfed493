/*
 * ws_parser.cpp -- client frames, RFC 6455 5.
 *
 * Each check below cites the rule it enforces.  Every failure is a row of
 * status.cpp's table: protocol errors close with 1002, invalid UTF-8 with
 * 1007, a message over max_message_size with 1009 (detected from the
 * frame header, before any of its payload is buffered).
 */

#include "ws_parser.hpp"

#include <cstring>
#include <new>

#include "ws_frame.hpp"

namespace pushq {

namespace {

/* Keep at most this much reassembly memory between messages. */
constexpr size_t keep_capacity_ = 4096;

/* Reserve at most this much ahead of the data actually received, so that
 * a header announcing a huge frame (within max_message_size) does not
 * allocate before the peer has sent anything. */
constexpr uint64_t reserve_ahead_ = 64u * 1024;

} // namespace

void ws_parser::fail_with(fail f, pushq_ws_event_t *ev) noexcept
{
    const fail_info &r = info(f);

    final_ = pushq_ws_event_t{};
    final_.type = PUSHQ_WS_ERROR;
    final_.status = r.status;
    final_.close_code = pushq_status_close_code(r.status);
    final_.reason = r.text;
    finished_ = true;
    *ev = final_;
}

void ws_parser::need_more(pushq_ws_event_t *ev) noexcept
{
    *ev = pushq_ws_event_t{};
    ev->type = PUSHQ_WS_NEED_MORE;
    ev->status = PUSHQ_OK;
}

void ws_parser::start_call() noexcept
{
    /* The message returned by the previous call is no longer needed. */
    if (msg_handed_) {
        msg_handed_ = false;
        if (msg_.capacity() > keep_capacity_) {
            std::vector<unsigned char>().swap(msg_);
        } else {
            msg_.clear();
        }
    }
}

bool ws_parser::check_first_byte(unsigned b0, pushq_ws_event_t *ev) noexcept
{
    fin_ = (b0 & 0x80) != 0;
    opcode_ = b0 & 0x0F;

    /* 5.2: RSV1-3 MUST be 0 unless an extension defines them; pushq
     * negotiates none (Autobahn 3.x). */
    if ((b0 & 0x70) != 0) {
        fail_with(fail::ws_rsv, ev);
        return false;
    }

    switch (opcode_) {
    case PUSHQ_WS_OP_CONT:
        /* 5.4: a continuation frame only continues a fragmented message
         * (Autobahn 5.9-5.12) */
        if (!in_message_) {
            fail_with(fail::ws_cont_without_start, ev);
            return false;
        }
        break;

    case PUSHQ_WS_OP_TEXT:
    case PUSHQ_WS_OP_BINARY:
        /* 5.4: the fragments of one message are not interleaved with
         * another message (Autobahn 5.17-5.20) */
        if (in_message_) {
            fail_with(fail::ws_data_inside_fragmented, ev);
            return false;
        }
        break;

    case PUSHQ_WS_OP_CLOSE:
    case PUSHQ_WS_OP_PING:
    case PUSHQ_WS_OP_PONG:
        /* 5.5: control frames MUST NOT be fragmented (Autobahn 5.1-5.2) */
        if (!fin_) {
            fail_with(fail::ws_control_fragmented, ev);
            return false;
        }
        break;

    default:
        /* 5.2: opcodes 3-7 and B-F are reserved (Autobahn 4.x) */
        fail_with(fail::ws_opcode, ev);
        return false;
    }
    return true;
}

bool ws_parser::check_length(uint64_t len, pushq_ws_event_t *ev) noexcept
{
    if (is_control()) {
        /* 5.5: control payloads are at most 125 bytes (Autobahn 2.5) */
        if (len > 125) {
            fail_with(fail::ws_control_too_long, ev);
            return false;
        }
        /* 5.5.1: a close body starts with a 2-byte code, so 1 byte is
         * malformed (Autobahn 7.3.2) */
        if (opcode_ == PUSHQ_WS_OP_CLOSE && len == 1) {
            fail_with(fail::ws_close_one_byte, ev);
            return false;
        }
        return true;
    }

    /* 10.4: a message (all its fragments together) over
     * max_message_size is refused from its header, before its payload
     * is buffered (1009, Autobahn 9.x with a small limit) */
    uint64_t have = opcode_ == PUSHQ_WS_OP_CONT ? msg_.size() : 0;
    if (len > max_ || have > max_ - len) {
        fail_with(fail::ws_too_big, ev);
        return false;
    }
    return true;
}

bool ws_parser::take_payload(const unsigned char *p, size_t n, bool masked,
                             pushq_ws_event_t *ev)
{
    unsigned char *dst;

    if (is_control()) {
        /* n <= 125 - ctrl_len_: check_length() bounded the frame */
        dst = ctrl_ + ctrl_len_;
        ctrl_len_ += n;
    } else {
        size_t old = msg_.size();
        if (msg_.capacity() - old < n) {
            uint64_t want = old + remaining_;
            uint64_t cap = old + n + reserve_ahead_;
            msg_.reserve(static_cast<size_t>(want < cap ? want : cap));
        }
        msg_.resize(old + n);
        dst = msg_.data() + old;
    }

    if (masked) {
        /* 5.3: octet i of the payload is XORed with mask octet i mod 4.
         * Eight octets at a time with the mask rotated to the current
         * position; memcpy keeps the loads and stores aligned-safe. */
        unsigned char m8[8];
        for (unsigned k = 0; k < 8; k++) {
            m8[k] = mask_[(mask_pos_ + k) & 3];
        }
        uint64_t m;
        std::memcpy(&m, m8, 8);
        size_t i = 0;
        for (; n - i >= 8; i += 8) {
            uint64_t w;
            std::memcpy(&w, p + i, 8);
            w ^= m;
            std::memcpy(dst + i, &w, 8);
        }
        for (; i < n; i++) {
            dst[i] = static_cast<unsigned char>(p[i] ^ m8[i & 7]);
        }
        mask_pos_ = static_cast<unsigned>((mask_pos_ + n) & 3);
    } else if (n != 0) {
        std::memcpy(dst, p, n);
    }

    /* 8.1: text is UTF-8; fail at the first invalid byte, even within a
     * fragment, so a bad message is refused as early as it can be
     * (Autobahn 6.x "fail fast") */
    if (!is_control() && msg_opcode_ == PUSHQ_WS_OP_TEXT
        && !utf8_.write(dst, n))
    {
        fail_with(fail::ws_text_utf8, ev);
        return false;
    }
    return true;
}

/* The frame's payload is complete.  True when it produced an event. */
bool ws_parser::end_frame(pushq_ws_event_t *ev) noexcept
{
    in_payload_ = false;
    hdr_len_ = 0;
    hdr_need_ = 2;

    if (is_control()) {
        *ev = pushq_ws_event_t{};
        ev->status = PUSHQ_OK;
        ev->data = ctrl_;
        ev->len = ctrl_len_;

        if (opcode_ == PUSHQ_WS_OP_PING) {
            ev->type = PUSHQ_WS_PING;   /* 5.5.2: answer with a pong */
            return true;
        }
        if (opcode_ == PUSHQ_WS_OP_PONG) {
            ev->type = PUSHQ_WS_PONG;   /* 5.5.3: may be unsolicited */
            return true;
        }

        /* close, 5.5.1 */
        ev->type = PUSHQ_WS_CLOSE;
        if (ctrl_len_ >= 2) {
            uint16_t code = static_cast<uint16_t>(ctrl_[0] << 8 | ctrl_[1]);

            /* 7.4: only codes that may be sent in a frame
             * (Autobahn 7.7.x valid, 7.9.x invalid) */
            if (!close_code_valid(code)) {
                fail_with(fail::ws_close_code, ev);
                return true;
            }
            /* 5.5.1: the reason is UTF-8 (Autobahn 7.5.1) */
            if (!pushq_utf8_valid(ctrl_ + 2, ctrl_len_ - 2)) {
                fail_with(fail::ws_close_reason_utf8, ev);
                return true;
            }
            ev->close_code = code;
            ev->data = ctrl_ + 2;
            ev->len = ctrl_len_ - 2;
        } else {
            ev->close_code = 0;         /* none sent; echo 1000 */
            ev->len = 0;
        }
        final_ = *ev;
        finished_ = true;
        return true;
    }

    if (!fin_) {
        return false;                   /* 5.4: more fragments follow */
    }

    /* 8.1: the whole text must end on a character boundary
     * (Autobahn 6.3.x / 6.4.x: a message cut inside a character) */
    if (msg_opcode_ == PUSHQ_WS_OP_TEXT && !utf8_.finish()) {
        fail_with(fail::ws_text_utf8, ev);
        return true;
    }

    in_message_ = false;
    msg_handed_ = true;
    *ev = pushq_ws_event_t{};
    ev->type = msg_opcode_ == PUSHQ_WS_OP_TEXT ? PUSHQ_WS_TEXT
                                               : PUSHQ_WS_BINARY;
    ev->status = PUSHQ_OK;
    ev->data = msg_.empty() ? ctrl_ : msg_.data();  /* never NULL */
    ev->len = msg_.size();
    return true;
}

size_t ws_parser::feed(const unsigned char *p, size_t n,
                       pushq_ws_event_t *ev)
{
    size_t i = 0;

    if (finished_) {
        *ev = final_;
        return 0;
    }
    start_call();

    while (i < n) {
        if (in_payload_) {
            uint64_t left = n - i;
            size_t   take = static_cast<size_t>(
                remaining_ < left ? remaining_ : left);

            if (!take_payload(p + i, take, true, ev)) {
                return i + take;
            }
            i += take;
            remaining_ -= take;
            if (remaining_ == 0 && end_frame(ev)) {
                return i;
            }
            continue;
        }

        /* the header, one byte at a time (5.2) */
        hdr_[hdr_len_++] = p[i++];

        if (hdr_len_ == 1) {
            if (!check_first_byte(hdr_[0], ev)) {
                return i;
            }
            continue;
        }

        if (hdr_len_ == 2) {
            unsigned len7 = hdr_[1] & 0x7F;

            /* 5.1: a server MUST close on an unmasked client frame */
            if ((hdr_[1] & 0x80) == 0) {
                fail_with(fail::ws_unmasked, ev);
                return i;
            }
            hdr_need_ = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
            if (len7 < 126) {
                remaining_ = len7;
                if (!check_length(len7, ev)) {
                    return i;
                }
            } else if (is_control()) {
                /* 5.5: control frames use the 7-bit length only */
                fail_with(fail::ws_control_too_long, ev);
                return i;
            }
            continue;
        }

        if (hdr_len_ == hdr_need_ - 4 && hdr_need_ > 6) {
            uint64_t len = 0;
            for (size_t k = 2; k < hdr_len_; k++) {
                len = len << 8 | hdr_[k];
            }
            if (hdr_need_ == 8) {
                /* 5.2: "the minimal number of bytes MUST be used":
                 * 126 means 126-65535 */
                if (len < 126) {
                    fail_with(fail::ws_length_not_minimal, ev);
                    return i;
                }
            } else {
                /* 5.2: the most significant bit MUST be 0 */
                if ((len >> 63) != 0) {
                    fail_with(fail::ws_length_top_bit, ev);
                    return i;
                }
                /* 5.2: 127 means more than 65535 */
                if (len <= 0xFFFF) {
                    fail_with(fail::ws_length_not_minimal, ev);
                    return i;
                }
            }
            remaining_ = len;
            if (!check_length(len, ev)) {
                return i;
            }
            continue;
        }

        if (hdr_len_ == hdr_need_) {
            std::memcpy(mask_, hdr_ + hdr_len_ - 4, 4);
            mask_pos_ = 0;
            if (is_control()) {
                ctrl_len_ = 0;
            } else if (opcode_ != PUSHQ_WS_OP_CONT) {
                /* the first frame of a message */
                in_message_ = true;
                msg_opcode_ = opcode_;
                msg_.clear();
                utf8_.reset();
            }
            in_payload_ = true;
            if (remaining_ == 0 && end_frame(ev)) {
                return i;
            }
        }
    }

    need_more(ev);
    return i;
}

void ws_parser::feed_frame(unsigned first_byte, const unsigned char *p,
                           size_t n, pushq_ws_event_t *ev)
{
    if (finished_) {
        *ev = final_;
        return;
    }
    start_call();

    /* The host checked masking (CivetWeb 1.15 does not: see README). */
    if (!check_first_byte(first_byte & 0xFF, ev) || !check_length(n, ev)) {
        return;
    }
    if (is_control()) {
        ctrl_len_ = 0;
    } else if (opcode_ != PUSHQ_WS_OP_CONT) {
        in_message_ = true;
        msg_opcode_ = opcode_;
        msg_.clear();
        utf8_.reset();
    }
    remaining_ = n;
    if (!take_payload(p, n, false, ev)) {
        return;
    }
    remaining_ = 0;
    if (!end_frame(ev)) {
        need_more(ev);
    }
}

} // namespace pushq

struct pushq_ws_parser {
    explicit pushq_ws_parser(uint64_t max) noexcept : impl(max) {}
    pushq::ws_parser impl;
};

using namespace pushq;

extern "C" {

PUSHQ_API pushq_ws_parser_t *pushq_ws_parser_create(uint64_t max_message_size)
{
    return new (std::nothrow) pushq_ws_parser(max_message_size);
}

PUSHQ_API void pushq_ws_parser_destroy(pushq_ws_parser_t *p)
{
    delete p;
}

PUSHQ_API size_t pushq_ws_parser_feed(pushq_ws_parser_t *p, const void *buf,
    size_t len, pushq_ws_event_t *ev)
{
    if (p == nullptr || ev == nullptr) {
        return 0;
    }
    if (buf == nullptr) {
        len = 0;
    }
    try {
        return p->impl.feed(static_cast<const unsigned char *>(buf), len, ev);
    } catch (const std::bad_alloc &) {
        p->impl.fail_with(fail::ws_no_memory, ev);
    } catch (...) {
        p->impl.fail_with(fail::internal, ev);
    }
    return len;
}

PUSHQ_API void pushq_ws_parser_feed_frame(pushq_ws_parser_t *p,
    unsigned first_byte, const void *payload, size_t len,
    pushq_ws_event_t *ev)
{
    if (p == nullptr || ev == nullptr) {
        return;
    }
    if (payload == nullptr) {
        len = 0;
    }
    try {
        p->impl.feed_frame(first_byte,
                           static_cast<const unsigned char *>(payload), len,
                           ev);
    } catch (const std::bad_alloc &) {
        p->impl.fail_with(fail::ws_no_memory, ev);
    } catch (...) {
        p->impl.fail_with(fail::internal, ev);
    }
}

} // extern "C"
