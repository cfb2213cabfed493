/*
 * ws_frame.hpp -- server-to-client frame encoding (RFC 6455 5.2): FIN set,
 * no mask, minimal length encoding.  The header and the payload make the
 * whole frame, so one encoding of a broadcast is shared, read-only, by
 * every subscriber.
 */

#ifndef PUSHQ_WS_FRAME_HPP
#define PUSHQ_WS_FRAME_HPP

#include <cstdint>

namespace pushq {

/* RFC 6455 7.4: may a peer send this code in a close frame? */
bool close_code_valid(uint16_t code) noexcept;

} // namespace pushq

#endif
