/*
 * ws_frame.cpp -- pushq_ws_frame_header and pushq_ws_close_frame.
 */

#include "ws_frame.hpp"

#include <cstring>

#include "pushq.h"
#include "utf8.hpp"

namespace pushq {

bool close_code_valid(uint16_t code) noexcept
{
    /* RFC 6455 7.4.1 and the IANA registry (7.4.2): 1000-1003 and
     * 1007-1014 are defined; 1004 is reserved; 1005, 1006 and 1015 must
     * never be sent in a frame; the rest of 1000-2999 is reserved for the
     * protocol; 3000-4999 are for libraries and applications; below 1000
     * and from 5000 are not used (Autobahn 7.7.x / 7.9.x). */
    if (code >= 1000 && code <= 1003) return true;
    if (code >= 1007 && code <= 1014) return true;
    if (code >= 3000 && code <= 4999) return true;
    return false;
}

} // namespace pushq

extern "C" {

PUSHQ_API size_t pushq_ws_frame_header(unsigned char out[10],
    unsigned opcode, uint64_t len)
{
    out[0] = static_cast<unsigned char>(0x80 | (opcode & 0x0F));
    if (len <= 125) {
        out[1] = static_cast<unsigned char>(len);
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = static_cast<unsigned char>(len >> 8);
        out[3] = static_cast<unsigned char>(len);
        return 4;
    }
    out[1] = 127;
    /* 5.2: the most significant bit of a 64-bit length must be 0 */
    len &= 0x7FFFFFFFFFFFFFFFull;
    for (int i = 0; i < 8; i++) {
        out[2 + i] = static_cast<unsigned char>(len >> (56 - 8 * i));
    }
    return 10;
}

PUSHQ_API size_t pushq_ws_close_frame(unsigned char out[127], uint16_t code,
    const char *reason)
{
    out[0] = 0x80 | PUSHQ_WS_OP_CLOSE;
    if (code == 0) {
        out[1] = 0;                     /* 5.5.1: no body, no code */
        return 2;
    }

    size_t n = reason == nullptr ? 0 : std::strlen(reason);
    if (n > 123) {
        n = 123;                        /* 5.5: control payload <= 125 */
    }
    /* 5.5.1: the reason is UTF-8; cut at a character boundary */
    n = pushq::utf8_valid_prefix(
            reinterpret_cast<const unsigned char *>(reason), n);

    out[1] = static_cast<unsigned char>(2 + n);
    out[2] = static_cast<unsigned char>(code >> 8);
    out[3] = static_cast<unsigned char>(code);
    if (n != 0) {
        std::memcpy(out + 4, reason, n);
    }
    return 4 + n;
}

} // extern "C"
