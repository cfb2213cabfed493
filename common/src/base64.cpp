/*
 * base64.cpp -- RFC 4648 base64.
 */

#include "base64.hpp"

#include <cstdint>

#include "pushq.h"

namespace pushq {

namespace {

constexpr char alphabet_[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0-63 for an alphabet character, -1 otherwise. */
int value_of(unsigned char c) noexcept
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

} // namespace

size_t base64_encoded_len(size_t n) noexcept
{
    size_t groups = n / 3 + (n % 3 != 0);
    if (groups > SIZE_MAX / 4) {
        return SIZE_MAX;
    }
    return groups * 4;
}

void base64_encode(char *out, const unsigned char *in, size_t n) noexcept
{
    size_t i = 0;

    for (; n - i >= 3; i += 3) {
        uint32_t v = uint32_t(in[i]) << 16 | uint32_t(in[i + 1]) << 8
                     | in[i + 2];
        *out++ = alphabet_[v >> 18 & 63];
        *out++ = alphabet_[v >> 12 & 63];
        *out++ = alphabet_[v >> 6 & 63];
        *out++ = alphabet_[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = uint32_t(in[i]) << 16;
        *out++ = alphabet_[v >> 18 & 63];
        *out++ = alphabet_[v >> 12 & 63];
        *out++ = '=';
        *out++ = '=';
    } else if (n - i == 2) {
        uint32_t v = uint32_t(in[i]) << 16 | uint32_t(in[i + 1]) << 8;
        *out++ = alphabet_[v >> 18 & 63];
        *out++ = alphabet_[v >> 12 & 63];
        *out++ = alphabet_[v >> 6 & 63];
        *out++ = '=';
    }
}

long base64_decode(unsigned char *out, size_t cap, const char *in,
                   size_t n) noexcept
{
    size_t o = 0;

    if (n % 4 != 0) {
        return -1;
    }
    for (size_t i = 0; i < n; i += 4) {
        bool last = i + 4 == n;
        int  a = value_of(static_cast<unsigned char>(in[i]));
        int  b = value_of(static_cast<unsigned char>(in[i + 1]));
        int  c = value_of(static_cast<unsigned char>(in[i + 2]));
        int  d = value_of(static_cast<unsigned char>(in[i + 3]));

        if (a < 0 || b < 0) {
            return -1;
        }
        if (last && in[i + 2] == '=' && in[i + 3] == '=') {
            /* one byte; the 4 unused bits of b must be zero */
            if ((b & 15) != 0 || o + 1 > cap) {
                return -1;
            }
            out[o++] = static_cast<unsigned char>(a << 2 | b >> 4);
            break;
        }
        if (c < 0) {
            return -1;
        }
        if (last && in[i + 3] == '=') {
            /* two bytes; the 2 unused bits of c must be zero */
            if ((c & 3) != 0 || o + 2 > cap) {
                return -1;
            }
            out[o++] = static_cast<unsigned char>(a << 2 | b >> 4);
            out[o++] = static_cast<unsigned char>((b & 15) << 4 | c >> 2);
            break;
        }
        if (d < 0 || o + 3 > cap) {
            return -1;
        }
        out[o++] = static_cast<unsigned char>(a << 2 | b >> 4);
        out[o++] = static_cast<unsigned char>((b & 15) << 4 | c >> 2);
        out[o++] = static_cast<unsigned char>((c & 3) << 6 | d);
    }
    return static_cast<long>(o);
}

} // namespace pushq

extern "C" PUSHQ_API size_t pushq_base64_encode(char *out, size_t cap,
    const void *data, size_t len)
{
    size_t need = pushq::base64_encoded_len(len);

    if (need == SIZE_MAX || out == nullptr || cap < need
        || (data == nullptr && len != 0))
    {
        return 0;
    }
    pushq::base64_encode(out, static_cast<const unsigned char *>(data), len);
    return need;
}
