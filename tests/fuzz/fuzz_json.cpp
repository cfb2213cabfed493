/*
 * fuzz_json.cpp -- libFuzzer target for the JSON writers.  Input: byte 0
 * flags, the rest the message bytes.  Oracle: the size asked with cap 0
 * equals the size written; every answer is valid UTF-8 without raw
 * control characters; a text message's "msg" parses back to the input
 * when the input is valid UTF-8; a smaller buffer is never overrun.
 */

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "pushq.h"

namespace {

int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

void put_utf8(std::string &o, uint32_t cp)
{
    if (cp < 0x80) {
        o += static_cast<char>(cp);
    } else if (cp < 0x800) {
        o += static_cast<char>(0xC0 | cp >> 6);
        o += static_cast<char>(0x80 | (cp & 63));
    } else {
        o += static_cast<char>(0xE0 | cp >> 12);
        o += static_cast<char>(0x80 | (cp >> 6 & 63));
        o += static_cast<char>(0x80 | (cp & 63));
    }
}

/* Decodes the JSON string at s[i] ('"'); aborts on invalid JSON. */
std::string unstring(const std::string &s, size_t i)
{
    std::string o;
    if (s.at(i++) != '"') std::abort();
    for (;;) {
        unsigned char c = static_cast<unsigned char>(s.at(i++));
        if (c == '"') return o;
        if (c < 0x20) std::abort();
        if (c != '\\') { o += static_cast<char>(c); continue; }
        c = static_cast<unsigned char>(s.at(i++));
        switch (c) {
        case '"': o += '"'; break;
        case '\\': o += '\\'; break;
        case 'b': o += '\b'; break;
        case 'f': o += '\f'; break;
        case 'n': o += '\n'; break;
        case 'r': o += '\r'; break;
        case 't': o += '\t'; break;
        case 'u': {
            uint32_t cp = 0;
            for (int k = 0; k < 4; k++) {
                int h = hexval(s.at(i++));
                if (h < 0) std::abort();
                cp = cp << 4 | static_cast<uint32_t>(h);
            }
            put_utf8(o, cp);
            break;
        }
        default:
            std::abort();
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned          flags = data[0];
    std::vector<char> body(data + 1, data + size);

    pushq_json_msg_t m;
    std::memset(&m, 0, sizeof(m));
    m.id = size * 7919u;
    m.channel = "ch";
    m.channel_len = 2;
    m.data = body.data();
    m.len = body.size();
    m.binary = flags & 1;
    m.lost = flags & 2 ? size : 0;
    m.reset = (flags & 4) != 0;

    size_t need = pushq_json_message(nullptr, 0, &m);
    std::vector<char> out(need);
    if (pushq_json_message(out.data(), out.size(), &m) != need) std::abort();
    std::string s(out.data(), need);
    if (!pushq_utf8_valid(s.data(), s.size())) std::abort();
    std::string back = unstring(s, s.find("\"msg\": ") + 7);
    if (!m.binary && pushq_utf8_valid(body.data(), body.size())
        && back != std::string(body.data(), body.size()))
    {
        std::abort();
    }

    /* a buffer one byte short: nothing written past it */
    if (need > 0) {
        std::vector<char> small(need - 1);
        if (pushq_json_message(small.data(), small.size(), &m) != need) {
            std::abort();
        }
    }

    /* the batch form with the same message twice */
    pushq_json_msg_t two[2] = {m, m};
    two[1].id++;
    need = pushq_json_batch(nullptr, 0, two, 2);
    out.assign(need, 0);
    if (pushq_json_batch(out.data(), out.size(), two, 2) != need) std::abort();
    if (!pushq_utf8_valid(out.data(), need)) std::abort();

    /* the error answer with the input as the why (NUL-terminated) */
    std::string why(body.data(), body.size());
    need = pushq_json_error(nullptr, 0, why.c_str());
    out.assign(need, 0);
    if (pushq_json_error(out.data(), out.size(), why.c_str()) != need) {
        std::abort();
    }
    return 0;
}
