/*
 * fuzz_ws_handshake.cpp -- libFuzzer target for the opening handshake.
 * Input: lines "method\nupgrade\nconnection\nkey\nversion" (a missing line
 * = absent header), byte 0 picks the HTTP version.  Oracle: on success the
 * accept value is 28 base64 characters and equals a recomputation;
 * failures carry a why; statuses are one of the documented ones.
 */

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "pushq.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    std::vector<char> in(data + 1, data + size);   /* exact-size copy */
    const char *field[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
    size_t      len[5] = {0, 0, 0, 0, 0};
    size_t      start = 0, k = 0;

    for (size_t i = 0; i <= in.size() && k < 5; i++) {
        if (i == in.size() || in[i] == '\n') {
            field[k] = in.data() + start;
            len[k] = i - start;
            k++;
            start = i + 1;
        }
    }

    pushq_ws_handshake_t h;
    std::memset(&h, 0, sizeof(h));
    h.method = field[0];      h.method_len = len[0];
    h.upgrade = field[1];     h.upgrade_len = len[1];
    h.connection = field[2];  h.connection_len = len[2];
    h.key = field[3];         h.key_len = len[3];
    h.version = field[4];     h.version_len = len[4];
    h.http_major = data[0] >> 4;
    h.http_minor = data[0] & 15;

    char           accept[28];
    const char    *why = nullptr;
    pushq_status_t st = pushq_ws_handshake_check(&h, accept, &why);

    if (st == PUSHQ_OK) {
        for (char c : accept) {
            bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                      || (c >= '0' && c <= '9') || c == '+' || c == '/'
                      || c == '=';
            if (!ok) std::abort();
        }
        if (accept[27] != '=' || accept[26] == '=') std::abort();
        char again[28];
        if (pushq_ws_handshake_check(&h, again, nullptr) != PUSHQ_OK
            || std::memcmp(accept, again, 28) != 0)
        {
            std::abort();
        }
        if (!pushq_ws_is_upgrade(h.upgrade, h.upgrade_len)) std::abort();
    } else {
        if (why == nullptr) std::abort();
        if (st != PUSHQ_EBADARG && st != PUSHQ_EMETHOD
            && st != PUSHQ_EUPGRADE)
        {
            std::abort();
        }
    }
    return 0;
}
