/*
 * test_sha1.cpp -- SHA-1 through libcrypto, against FIPS 180 examples.
 */

#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>
extern "C" {
#include <cmocka.h>
}

#include <cstdio>
#include <cstring>
#include <string>

#include "sha1.hpp"

static std::string hex(const unsigned char *p, size_t n)
{
    std::string s;
    char        b[3];
    for (size_t i = 0; i < n; i++) {
        std::snprintf(b, sizeof(b), "%02x", p[i]);
        s += b;
    }
    return s;
}

/* Ensure the FIPS 180-2 appendix A examples ("abc", the 448-bit message,
 * the empty string) hash to the published digests. */
static void test_sha1_fips_examples_match(void **state)
{
    (void) state;
    unsigned char md[20];

    assert_true(pushq::sha1(md, "abc", 3));
    assert_string_equal(hex(md, 20).c_str(),
                        "a9993e364706816aba3e25717850c26c9cd0d89d");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_true(pushq::sha1(md, m, std::strlen(m)));
    assert_string_equal(hex(md, 20).c_str(),
                        "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    assert_true(pushq::sha1(md, "", 0));
    assert_string_equal(hex(md, 20).c_str(),
                        "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha1_fips_examples_match),
    };
    return cmocka_run_group_tests_name("sha1", tests, NULL, NULL);
}
