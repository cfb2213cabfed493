/*
 * fuzz_ws_parser.cpp -- libFuzzer target for the WebSocket frame parser.
 *
 * Input: byte 0 picks the max_message_size and the chunking; the rest is
 * a client byte stream.  Oracle: the events must be the same whether the
 * stream is fed at once, one byte at a time or in input-chosen chunks
 * (RFC 6455 parsing must not depend on TCP segmentation); every event
 * obeys the pushq.h contract (TEXT is valid UTF-8, sizes within
 * max_message_size, close codes valid, reasons <= 123 bytes); and they
 * must equal those of a reference parser written independently below,
 * straight from RFC 6455 (whole buffer, no state machine).  The same bytes
 * are also read as whole frames for pushq_ws_parser_feed_frame.
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

/* Reads the input as frames: b0, a length byte, that many bytes, and
 * hands them to feed_frame.  The events must equal those of feed() on
 * the same frames encoded as a masked client stream. */
void run_frames(const uint8_t *data, size_t size, uint64_t max)
{
    pushq_ws_parser_t   *p = pushq_ws_parser_create(max);
    std::vector<ev_rec>  got;
    std::vector<uint8_t> stream;
    size_t               pos = 0;
    static const uint8_t mask[4] = {0xA5, 0x01, 0x7E, 0xFF};

    if (p == nullptr) std::abort();
    while (size - pos >= 2) {
        unsigned b0 = data[pos];
        size_t   len = data[pos + 1];
        pos += 2;
        if (len > size - pos) len = size - pos;
        std::vector<uint8_t> buf(data + pos, data + pos + len);
        pos += len;

        stream.push_back(static_cast<uint8_t>(b0));
        if (len <= 125) {
            stream.push_back(static_cast<uint8_t>(0x80 | len));
        } else {
            stream.push_back(0x80 | 126);
            stream.push_back(0);
            stream.push_back(static_cast<uint8_t>(len));
        }
        stream.insert(stream.end(), mask, mask + 4);
        for (size_t i = 0; i < len; i++) {
            stream.push_back(buf[i] ^ mask[i & 3]);
        }

        pushq_ws_event_t ev;
        pushq_ws_parser_feed_frame(p, b0, buf.data(), len, &ev);
        if (ev.type == PUSHQ_WS_NEED_MORE) continue;
        check_event(ev, max);
        got.push_back({ev.type, std::string(
            reinterpret_cast<const char *>(ev.data), ev.len), ev.close_code});
        if (ev.type == PUSHQ_WS_CLOSE || ev.type == PUSHQ_WS_ERROR) break;
    }
    pushq_ws_parser_destroy(p);

    std::vector<ev_rec> want = run(stream.data(), stream.size(), max,
                                   nullptr, 0);
    if (!(got == want)) std::abort();
}

/* ---- the reference ------------------------------------------------------ */

/* Could p[0..n) begin a valid UTF-8 text (RFC 3629)?  Decodes by the
 * definition; a sequence cut by the end passes when some continuation
 * would make it valid. */
bool ref_utf8_prefix(const unsigned char *p, size_t n, bool whole)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t   k;
        uint32_t cp;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xE0) == 0xC0) { k = 1; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { k = 2; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { k = 3; cp = c & 0x07; }
        else return false;
        size_t have = n - i - 1 < k ? n - i - 1 : k;
        if (have < k && whole) return false;
        /* complete a cut sequence with the smallest and largest
         * continuation, which bound every completion */
        for (int variant = 0; variant < 2; variant++) {
            uint32_t v = cp;
            bool     bad = false;
            for (size_t j = 1; j <= k; j++) {
                unsigned b = j <= have ? p[i + j] : (variant ? 0xBF : 0x80);
                if ((b & 0xC0) != 0x80) { bad = true; break; }
                v = v << 6 | (b & 0x3F);
            }
            static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
            if (!bad && v >= min[k] && !(v >= 0xD800 && v <= 0xDFFF)
                && v <= 0x10FFFF)
            {
                goto ok;
            }
            if (have == k) break;
        }
        /* a cut sequence whose bounds both fail may still have a valid
         * completion in between (e.g. E0 A0..BF vs ED 80..9F): try all */
        if (have < k) {
            for (unsigned b1 = 0x80; b1 <= 0xBF; b1++) {
                uint32_t v = cp;
                bool     bad = false;
                for (size_t j = 1; j <= k; j++) {
                    unsigned b = j <= have ? p[i + j] : (j == have + 1 ? b1
                                                                  : 0x80);
                    if ((b & 0xC0) != 0x80) { bad = true; break; }
                    v = v << 6 | (b & 0x3F);
                }
                static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
                if (!bad && v >= min[k] && !(v >= 0xD800 && v <= 0xDFFF)
                    && v <= 0x10FFFF)
                {
                    goto ok;
                }
            }
        }
        return false;
    ok:
        i += 1 + have;
    }
    return true;
}

bool ref_close_code_ok(unsigned c)
{
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014)
           || (c >= 3000 && c <= 4999);
}

std::vector<ev_rec> reference(const uint8_t *d, size_t n, uint64_t max)
{
    std::vector<ev_rec>  out;
    std::string          msg;
    bool                 in_msg = false;
    unsigned             msg_op = 0;
    size_t               i = 0;

    auto err = [&](uint16_t code) { out.push_back({PUSHQ_WS_ERROR, "", code}); };

    while (i < n) {
        unsigned b0 = d[i++];
        bool     fin = b0 & 0x80;
        unsigned op = b0 & 15;
        bool     control = op & 8;

        if (b0 & 0x70) { err(1002); return out; }
        if (op == 0) { if (!in_msg) { err(1002); return out; } }
        else if (op == 1 || op == 2) { if (in_msg) { err(1002); return out; } }
        else if (op == 8 || op == 9 || op == 10) {
            if (!fin) { err(1002); return out; }
        } else { err(1002); return out; }

        if (i >= n) return out;
        unsigned b1 = d[i++];
        if (!(b1 & 0x80)) { err(1002); return out; }
        uint64_t len = b1 & 0x7F;
        if (len >= 126 && control) { err(1002); return out; }
        if (len == 126 || len == 127) {
            size_t k = len == 126 ? 2 : 8;
            if (n - i < k) return out;
            len = 0;
            for (size_t j = 0; j < k; j++) len = len << 8 | d[i + j];
            i += k;
            if (k == 2 && len < 126) { err(1002); return out; }
            if (k == 8 && (len >> 63)) { err(1002); return out; }
            if (k == 8 && len < 65536) { err(1002); return out; }
        }
        if (op == 8 && len == 1) { err(1002); return out; }
        if (!control) {
            uint64_t have = op == 0 ? msg.size() : 0;
            if (len > max || have + len > max) { err(1009); return out; }
        }
        if (n - i < 4) return out;
        const uint8_t *mask = d + i;
        i += 4;
        size_t avail = static_cast<size_t>(len < n - i ? len : n - i);
        std::string payload;
        for (size_t j = 0; j < avail; j++) {
            payload += static_cast<char>(d[i + j] ^ mask[j & 3]);
        }
        i += avail;
        if (!control) {
            if (op != 0) { in_msg = true; msg_op = op; msg.clear(); }
            msg += payload;
            if (msg_op == 1 && !ref_utf8_prefix(
                    reinterpret_cast<const unsigned char *>(msg.data()),
                    msg.size(), false))
            {
                err(1007);
                return out;
            }
        }
        if (avail < len) return out;

        if (op == 9 || op == 10) {
            out.push_back({op == 9 ? PUSHQ_WS_PING : PUSHQ_WS_PONG, payload,
                           0});
        } else if (op == 8) {
            if (payload.size() >= 2) {
                unsigned code = static_cast<unsigned char>(payload[0]) << 8
                                | static_cast<unsigned char>(payload[1]);
                if (!ref_close_code_ok(code)) { err(1002); return out; }
                if (!ref_utf8_prefix(reinterpret_cast<const unsigned char *>(
                        payload.data() + 2), payload.size() - 2, true))
                {
                    err(1007);
                    return out;
                }
                out.push_back({PUSHQ_WS_CLOSE, payload.substr(2),
                               static_cast<uint16_t>(code)});
            } else {
                out.push_back({PUSHQ_WS_CLOSE, "", 0});
            }
            return out;
        } else if (fin) {
            if (msg_op == 1 && !ref_utf8_prefix(
                    reinterpret_cast<const unsigned char *>(msg.data()),
                    msg.size(), true))
            {
                err(1007);
                return out;
            }
            out.push_back({msg_op == 1 ? PUSHQ_WS_TEXT : PUSHQ_WS_BINARY,
                           msg, 0});
            in_msg = false;
            msg.clear();
        }
    }
    return out;
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
    if (!(whole == reference(stream, n, max))) std::abort();

    run_frames(stream, n, max);
    return 0;
}
