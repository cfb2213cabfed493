/*
 * fuzz_ws_parser.cpp -- libFuzzer target for the WebSocket frame parser.
 *
 * Input: byte 0 picks the max_message_size and the chunking; the rest is
 * a client byte stream.  Oracle: the events must be the same whether the
 * stream is fed at once, one byte at a time or in input-chosen chunks
 * (RFC 6455 parsing must not depend on TCP segmentation); every event
 * obeys the pushq.h contract (TEXT is valid UTF-8, sizes within
 * max_message_size, close codes valid, reasons <= 123 bytes).  The same
 * bytes are also read as whole frames for pushq_ws_parser_feed_frame.
 */

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "pushq.h"

namespace {

struct ev_rec {
    int         type;
    std::string data;
    uint16_t    code;
    bool operator==(const ev_rec &o) const
    {
        return type == o.type && data == o.data && code == o.code;
    }
};

void check_event(const pushq_ws_event_t &ev, uint64_t max)
{
    switch (ev.type) {
    case PUSHQ_WS_TEXT:
        if (!pushq_utf8_valid(ev.data, ev.len)) std::abort();
        [[fallthrough]];
    case PUSHQ_WS_BINARY:
        if (ev.len > max || ev.data == nullptr) std::abort();
        break;
    case PUSHQ_WS_PING:
    case PUSHQ_WS_PONG:
        if (ev.len > 125) std::abort();
        break;
    case PUSHQ_WS_CLOSE:
        if (ev.len > 123) std::abort();
        if (ev.close_code == 0 && ev.len != 0) std::abort();
        break;
    case PUSHQ_WS_ERROR:
        if (ev.reason == nullptr || std::strlen(ev.reason) > 123) std::abort();
        if (ev.close_code != 1002 && ev.close_code != 1007
            && ev.close_code != 1009 && ev.close_code != 1013
            && ev.close_code != 1011)
        {
            std::abort();
        }
        break;
    default:
        std::abort();
    }
}

/* Feeds data in chunks given by sizes (cycled); 0 = all at once. */
std::vector<ev_rec> run(const uint8_t *data, size_t size, uint64_t max,
                        const uint8_t *sizes, size_t nsizes)
{
    std::vector<ev_rec> out;
    pushq_ws_parser_t  *p = pushq_ws_parser_create(max);
    size_t              pos = 0, k = 0;

    if (p == nullptr) std::abort();
    while (pos < size) {
        size_t chunk = size - pos;
        if (nsizes != 0) {
            size_t c = sizes[k++ % nsizes] % 16 + 1;
            chunk = c < chunk ? c : chunk;
        }
        /* a private copy of exactly the chunk: ASan sees any overread */
        std::vector<uint8_t> buf(data + pos, data + pos + chunk);
        size_t off = 0;
        bool   done = false;
        while (!done) {
            pushq_ws_event_t ev;
            size_t used = pushq_ws_parser_feed(p, buf.data() + off,
                                               chunk - off, &ev);
            if (used > chunk - off) std::abort();
            off += used;
            if (ev.type == PUSHQ_WS_NEED_MORE) {
                if (off != chunk) std::abort();
                break;
            }
            check_event(ev, max);
            out.push_back({ev.type, std::string(
                reinterpret_cast<const char *>(ev.data), ev.len),
                ev.close_code});
            if (ev.type == PUSHQ_WS_CLOSE || ev.type == PUSHQ_WS_ERROR) {
                done = true;
                pos = size;
            } else if (off == chunk) {
                break;
            }
        }
        if (!done) pos += chunk;
    }
    pushq_ws_parser_destroy(p);
    return out;
}

/* Reads the input as frames: b0, a length byte, that many bytes. */
void run_frames(const uint8_t *data, size_t size, uint64_t max)
{
    pushq_ws_parser_t *p = pushq_ws_parser_create(max);
    size_t             pos = 0;

    if (p == nullptr) std::abort();
    while (size - pos >= 2) {
        unsigned b0 = data[pos];
        size_t   len = data[pos + 1];
        pos += 2;
        if (len > size - pos) len = size - pos;
        std::vector<uint8_t> buf(data + pos, data + pos + len);
        pos += len;
        pushq_ws_event_t ev;
        pushq_ws_parser_feed_frame(p, b0, buf.data(), len, &ev);
        if (ev.type == PUSHQ_WS_NEED_MORE) continue;
        check_event(ev, max);
        if (ev.type == PUSHQ_WS_CLOSE || ev.type == PUSHQ_WS_ERROR) break;
    }
    pushq_ws_parser_destroy(p);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t maxes[] = {0, 1, 5, 125, 126, 1000, 65536, 1 << 20};

    if (size < 1) return 0;
    uint64_t max = maxes[data[0] & 7];
    const uint8_t *stream = data + 1;
    size_t         n = size - 1;

    std::vector<ev_rec> whole = run(stream, n, max, nullptr, 0);
    static const uint8_t one[] = {0};
    std::vector<ev_rec> bytes = run(stream, n, max, one, 1);
    std::vector<ev_rec> chunks = run(stream, n, max, stream, n);
    if (!(whole == bytes) || !(whole == chunks)) std::abort();

    run_frames(stream, n, max);
    return 0;
}
