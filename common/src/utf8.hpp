/*
 * utf8.hpp -- an incremental UTF-8 validator (RFC 3629), usable on a stream
 * cut anywhere, e.g. a text message arriving in fragments (RFC 6455 8.1).
 *
 * It fails at the first byte that cannot begin or continue a valid
 * sequence: F5-FF and C0-C1 lead bytes, overlongs (E0 80-9F, F0 80-8F),
 * surrogates (ED A0-BF) and code points above U+10FFFF (F4 90-BF) are
 * refused as soon as the offending byte is seen, not at the end.  Modelled
 * on Beast's detail/utf8_checker, without its unaligned loads.
 */

#ifndef PUSHQ_UTF8_HPP
#define PUSHQ_UTF8_HPP

#include <cstddef>
#include <cstdint>

namespace pushq {

class utf8_checker {
public:
    /* Checks the next n bytes.  False once any byte so far is invalid
     * (and from then on, until reset()). */
    bool write(const unsigned char *p, size_t n) noexcept;

    /* True when everything written is valid and no sequence is left
     * incomplete: call at the end of the message. */
    bool finish() const noexcept { return !failed_ && need_ == 0; }

    /* True while nothing invalid was seen (a sequence may be incomplete). */
    bool ok() const noexcept { return !failed_; }

    void reset() noexcept { need_ = 0; lo_ = 0x80; hi_ = 0xBF;
                            failed_ = false; }

    /* Bytes still expected to complete the current sequence (0-3). */
    unsigned pending() const noexcept { return need_; }

private:
    unsigned       need_ = 0;       /* continuation bytes still expected */
    unsigned char  lo_ = 0x80;      /* range allowed for the next one:    */
    unsigned char  hi_ = 0xBF;      /* narrower after E0, ED, F0, F4      */
    bool           failed_ = false;
};

/* Length of the longest prefix of p[0..n) that is whole, valid UTF-8. */
size_t utf8_valid_prefix(const unsigned char *p, size_t n) noexcept;

} // namespace pushq

#endif
