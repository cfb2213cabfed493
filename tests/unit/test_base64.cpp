/*
 * test_base64.cpp -- RFC 4648 base64: pushq_base64_encode against the
 * RFC's test vectors, and the strict decoder used for Sec-WebSocket-Key.
 */

#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>
extern "C" {
#include <cmocka.h>
}

#include <cstring>

#include "base64.hpp"
#include "pushq.h"

/* Ensure the RFC 4648 section 10 test vectors encode exactly. */
static void test_base64_rfc4648_vectors_encoded(void **state)
{
    (void) state;
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba",
                               "foobar"};
    static const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==",
                                "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char   buf[16];
        size_t n = pushq_base64_encode(buf, sizeof(buf), in[i],
                                       std::strlen(in[i]));
        assert_int_equal(n, std::strlen(out[i]));
        assert_memory_equal(buf, out[i], n);
    }
}

/* Ensure a buffer that is too small gets nothing (0 written). */
static void test_base64_small_buffer_writes_nothing(void **state)
{
    (void) state;
    char buf[8];
    std::memset(buf, 'x', sizeof(buf));
    assert_int_equal(pushq_base64_encode(buf, 7, "foobar", 6), 0);
    assert_int_equal(buf[0], 'x');
    assert_int_equal(pushq_base64_encode(buf, 8, "foobar", 6), 8);
}

/* Ensure every byte value and length round-trips through the decoder. */
static void test_base64_all_bytes_round_trip(void **state)
{
    (void) state;
    unsigned char in[256], back[256];
    char          enc[400];
    for (size_t i = 0; i < 256; i++) {
        in[i] = (unsigned char) (255 - i);
    }
    for (size_t n = 0; n <= 256; n++) {
        size_t e = pushq_base64_encode(enc, sizeof(enc), in, n);
        assert_int_equal(e, 4 * ((n + 2) / 3));
        assert_int_equal(pushq::base64_decode(back, sizeof(back), enc, e),
                         (long) n);
        assert_memory_equal(back, in, n);
    }
}

/* Ensure the decoder refuses non-canonical input: bad characters, bad
 * padding, non-zero unused bits, wrong length, too small output. */
static void test_base64_decode_noncanonical_refused(void **state)
{
    (void) state;
    unsigned char out[16];
    static const char *bad[] = {"Zg=", "Zh==", "Zm9=", "Z===", "====",
                                "Zg==Zg==", "Zm 9", "Zm9v\n", "Zm-v",
                                "=Zm9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(pushq::base64_decode(out, sizeof(out), bad[i],
                                              std::strlen(bad[i])), -1);
    }
    assert_int_equal(pushq::base64_decode(out, 2, "Zm9v", 4), -1);
    assert_int_equal(pushq::base64_decode(out, 3, "Zm9v", 4), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_rfc4648_vectors_encoded),
        cmocka_unit_test(test_base64_small_buffer_writes_nothing),
        cmocka_unit_test(test_base64_all_bytes_round_trip),
        cmocka_unit_test(test_base64_decode_noncanonical_refused),
    };
    return cmocka_run_group_tests_name("base64", tests, NULL, NULL);
}
