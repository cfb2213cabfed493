/*
 * test_utf8.cpp -- the incremental UTF-8 checker (RFC 3629; RFC 6455 8.1),
 * through pushq_utf8_valid and the streaming class, checked against a
 * straightforward reference decoder over every 1-, 2- and 3-byte input
 * and every 4-byte input with a valid lead byte.
 */

#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>
extern "C" {
#include <cmocka.h>
}

#include <cstring>

#include "pushq.h"
#include "utf8.hpp"

/* Reference: decode by the definition and refuse what RFC 3629 refuses. */
static bool ref_valid(const unsigned char *p, size_t n)
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
        if (n - i - 1 < k) return false;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (p[i + j] & 0x3F);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[k]) return false;                  /* overlong */
        if (cp >= 0xD800 && cp <= 0xDFFF) return false; /* surrogate */
        if (cp > 0x10FFFF) return false;
        i += k + 1;
    }
    return true;
}

/* A prefix is fine while the reference accepts some completion of it
 * (at most 3 more continuation bytes). */
static bool ref_prefix_ok(const unsigned char *p, size_t n, int extra = 3)
{
    unsigned char buf[16];
    std::memcpy(buf, p, n);
    if (ref_valid(buf, n)) return true;
    if (extra == 0) return false;
    /* these cover every range a continuation byte may be limited to */
    static const unsigned char cont[] = {0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF};
    for (unsigned char a : cont) {
        buf[n] = a;
        if (ref_prefix_ok(buf, n + 1, extra - 1)) return true;
    }
    return false;
}

/* Ensure every 1-, 2- and 3-byte string is judged as the reference does
 * (Autobahn 6.x covers these classes). */
static void test_utf8_all_short_strings_match_reference(void **state)
{
    (void) state;
    unsigned char b[3];
    for (unsigned x = 0; x < 256; x++) {
        b[0] = (unsigned char) x;
        assert_int_equal(pushq_utf8_valid(b, 1), ref_valid(b, 1));
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (unsigned char) y;
            assert_int_equal(pushq_utf8_valid(b, 2), ref_valid(b, 2));
            for (unsigned z = 0; z < 256; z++) {
                b[2] = (unsigned char) z;
                if (pushq_utf8_valid(b, 3) != (int) ref_valid(b, 3)) {
                    fail_msg("%02x %02x %02x", x, y, z);
                }
            }
        }
    }
}

/* Ensure 4-byte sequences (F0-F4 leads, any continuation) match, with
 * the U+10000 and U+10FFFF edges (RFC 3629 4). */
static void test_utf8_four_byte_sequences_match_reference(void **state)
{
    (void) state;
    unsigned char b[4];
    for (unsigned a = 0xF0; a <= 0xF7; a++) {
        for (unsigned x = 0x70; x <= 0xC0; x++) {
            for (unsigned y = 0x7F; y <= 0xC0; y += 0x41) {
                for (unsigned z = 0x7F; z <= 0xC0; z += 0x41) {
                    b[0] = (unsigned char) a;
                    b[1] = (unsigned char) x;
                    b[2] = (unsigned char) y;
                    b[3] = (unsigned char) z;
                    assert_int_equal(pushq_utf8_valid(b, 4), ref_valid(b, 4));
                }
            }
        }
    }
    assert_true(pushq_utf8_valid("\xf0\x90\x80\x80", 4));
    assert_true(pushq_utf8_valid("\xf4\x8f\xbf\xbf", 4));
    assert_false(pushq_utf8_valid("\xf4\x90\x80\x80", 4));
}

/* Ensure the streaming checker fails at the first byte that no valid
 * completion can follow, and not before (RFC 6455 8.1 "fail fast"). */
static void test_utf8_stream_fails_at_first_bad_byte(void **state)
{
    (void) state;
    /* every byte class edge for the third byte */
    static const unsigned char edges[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90,
                                          0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF,
                                          0xE0, 0xED, 0xF0, 0xF4, 0xF5, 0xFF};
    unsigned char b[3];
    for (unsigned x = 0; x < 256; x++) {
        for (unsigned y = 0; y < 256; y++) {
            for (unsigned char z : edges) {
                b[0] = (unsigned char) x;
                b[1] = (unsigned char) y;
                b[2] = z;
                pushq::utf8_checker u;
                for (size_t i = 0; i < 3; i++) {
                    bool ok = u.write(b + i, 1);
                    if (ok != ref_prefix_ok(b, i + 1)) {
                        fail_msg("%02x %02x %02x at %zu", x, y, z, i);
                    }
                    if (!ok) break;
                }
            }
        }
    }
}

/* Ensure a valid text cut anywhere, fed piece by piece, is valid, and
 * that finish() refuses a text that stops inside a character. */
static void test_utf8_stream_any_split_valid(void **state)
{
    (void) state;
    static const char t[] = "Hello-\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
                            "-\xf0\x9f\x98\x80-\xef\xbf\xbf-0123456789abcdef";
    size_t n = sizeof(t) - 1;
    const unsigned char *p = (const unsigned char *) t;

    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b++) {
            pushq::utf8_checker u;
            assert_true(u.write(p, a));
            assert_true(u.write(p + a, b - a));
            assert_int_equal(u.finish(), pushq_utf8_valid(p, b));
            assert_true(u.write(p + b, n - b));
            assert_true(u.finish());
        }
    }
    pushq::utf8_checker u;
    assert_true(u.write(p, 7));             /* cut inside kappa */
    assert_false(u.finish());
    assert_true(u.ok());
    u.reset();
    assert_true(u.finish());
}

/* Ensure the 8-byte ASCII fast path does not hide a bad byte at any
 * position of a long text. */
static void test_utf8_long_ascii_with_one_bad_byte_invalid(void **state)
{
    (void) state;
    unsigned char b[40];
    for (size_t pos = 0; pos < sizeof(b); pos++) {
        std::memset(b, 'a', sizeof(b));
        b[pos] = 0xFF;
        assert_false(pushq_utf8_valid(b, sizeof(b)));
        b[pos] = 0x7F;
        assert_true(pushq_utf8_valid(b, sizeof(b)));
    }
    assert_true(pushq_utf8_valid(NULL, 0));
}

/* Ensure utf8_valid_prefix stops before an incomplete or bad sequence
 * (used to cut close reasons, RFC 6455 5.5.1). */
static void test_utf8_valid_prefix_stops_at_boundary(void **state)
{
    (void) state;
    const unsigned char *p = (const unsigned char *) "ab\xce\xba\xe2\x82";
    assert_int_equal(pushq::utf8_valid_prefix(p, 6), 4);
    assert_int_equal(pushq::utf8_valid_prefix(p, 3), 2);
    assert_int_equal(pushq::utf8_valid_prefix(
        (const unsigned char *) "a\xffz", 3), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_all_short_strings_match_reference),
        cmocka_unit_test(test_utf8_four_byte_sequences_match_reference),
        cmocka_unit_test(test_utf8_stream_fails_at_first_bad_byte),
        cmocka_unit_test(test_utf8_stream_any_split_valid),
        cmocka_unit_test(test_utf8_long_ascii_with_one_bad_byte_invalid),
        cmocka_unit_test(test_utf8_valid_prefix_stops_at_boundary),
    };
    return cmocka_run_group_tests_name("utf8", tests, NULL, NULL);
}
