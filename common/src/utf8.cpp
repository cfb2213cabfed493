/*
 * utf8.cpp -- incremental UTF-8 validation (RFC 3629 section 4 table).
 */

#include "utf8.hpp"

#include <cstring>

#include "pushq.h"

namespace pushq {

bool utf8_checker::write(const unsigned char *p, size_t n) noexcept
{
    size_t i = 0;

    if (failed_) {
        return false;
    }

    while (i < n) {
        if (need_ == 0) {
            /* Fast path: 8 ASCII bytes at once; memcpy avoids an
             * unaligned (undefined) load. */
            while (n - i >= 8) {
                uint64_t w;
                std::memcpy(&w, p + i, 8);
                if ((w & 0x8080808080808080ull) != 0) {
                    break;
                }
                i += 8;
            }
            if (i == n) {
                break;
            }

            unsigned char c = p[i++];

            if (c < 0x80) {
                continue;
            }
            /* RFC 3629 4: the lead byte fixes the length and, for E0, ED,
             * F0 and F4, a narrower range for the second byte (no overlong,
             * no surrogate, nothing above U+10FFFF). */
            lo_ = 0x80;
            hi_ = 0xBF;
            if (c >= 0xC2 && c <= 0xDF) {
                need_ = 1;
            } else if (c >= 0xE0 && c <= 0xEF) {
                need_ = 2;
                if (c == 0xE0) {
                    lo_ = 0xA0;             /* overlong below U+0800 */
                } else if (c == 0xED) {
                    hi_ = 0x9F;             /* surrogates D800-DFFF */
                }
            } else if (c >= 0xF0 && c <= 0xF4) {
                need_ = 3;
                if (c == 0xF0) {
                    lo_ = 0x90;             /* overlong below U+10000 */
                } else if (c == 0xF4) {
                    hi_ = 0x8F;             /* above U+10FFFF */
                }
            } else {
                /* 80-BF without a lead, C0-C1 (always overlong), F5-FF */
                failed_ = true;
                return false;
            }
            continue;
        }

        unsigned char c = p[i++];

        if (c < lo_ || c > hi_) {
            failed_ = true;
            return false;
        }
        lo_ = 0x80;
        hi_ = 0xBF;
        need_--;
    }
    return true;
}

size_t utf8_valid_prefix(const unsigned char *p, size_t n) noexcept
{
    utf8_checker u;
    size_t       good = 0;

    /* One byte at a time: the prefix ends after the last byte that
     * completed a sequence. */
    for (size_t i = 0; i < n; i++) {
        if (!u.write(p + i, 1)) {
            break;
        }
        if (u.pending() == 0) {
            good = i + 1;
        }
    }
    return good;
}

} // namespace pushq

extern "C" PUSHQ_API int pushq_utf8_valid(const void *data, size_t len)
{
    if (len == 0) {
        return 1;
    }
    if (data == nullptr) {
        return 0;
    }
    pushq::utf8_checker u;
    return u.write(static_cast<const unsigned char *>(data), len)
           && u.finish();
}
