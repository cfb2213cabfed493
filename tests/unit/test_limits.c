/*
 * test_limits.c -- SPEC.md's defaults and the nginx size/time syntax.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pushq.h"

static pushq_status_t size_of(const char *s, uint64_t *v, const char **why)
{
    return pushq_parse_size(s, strlen(s), v, why);
}

static pushq_status_t time_of(const char *s, uint64_t *v, const char **why)
{
    return pushq_parse_time_ms(s, strlen(s), v, why);
}

/* Ensure the defaults are SPEC.md "Configuration"'s. */
static void test_limits_default_matches_spec(void **state)
{
    pushq_limits_t l;
    (void) state;
    memset(&l, 0xAB, sizeof(l));
    pushq_limits_default(&l);
    assert_int_equal(l.buffer, 1000);
    assert_int_equal(l.buffer_bytes, 16 * 1024 * 1024);
    assert_int_equal(l.message_ttl_ms, 3600 * 1000);
    assert_int_equal(l.client_ttl_ms, 300 * 1000);
    assert_int_equal(l.max_message_size, 64 * 1024);
}

/* Ensure sizes parse as nginx's ngx_parse_size does. */
static void test_limits_size_suffixes_parsed(void **state)
{
    uint64_t v;
    (void) state;
    assert_int_equal(size_of("0", &v, NULL), PUSHQ_OK);
    assert_int_equal(v, 0);
    assert_int_equal(size_of("123", &v, NULL), PUSHQ_OK);
    assert_int_equal(v, 123);
    assert_int_equal(size_of("64k", &v, NULL), PUSHQ_OK);
    assert_int_equal(v, 65536);
    assert_int_equal(size_of("64K", &v, NULL), PUSHQ_OK);
    assert_int_equal(v, 65536);
    assert_int_equal(size_of("16m", &v, NULL), PUSHQ_OK);
    assert_int_equal(v, 16 * 1024 * 1024);
    assert_int_equal(size_of("1G", &v, NULL), PUSHQ_OK);
    assert_int_equal(v, 1024 * 1024 * 1024);
}

/* Ensure bad sizes are refused with a why naming the rule. */
static void test_limits_size_bad_rejected(void **state)
{
    static const char *bad[] = {"", "k", "-1", "1.5k", "10x", "10kk", " 1",
                                "1 ", "18446744073709551616",
                                "18014398509481984k"};
    uint64_t    v = 77;
    const char *why;
    (void) state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        assert_int_equal(size_of(bad[i], &v, &why), PUSHQ_EBADARG);
        assert_non_null(why);
        assert_int_equal(v, 77);
    }
    assert_string_equal(why, "size: must be a number of bytes with an "
                             "optional k, m or g suffix");
}

/* Ensure times parse as nginx's ngx_parse_time does (plain = seconds). */
static void test_limits_time_units_parsed(void **state)
{
    static const struct { const char *s; uint64_t ms; } ok[] = {
        {"30", 30000}, {"30s", 30000}, {"500ms", 500}, {"5m", 300000},
        {"1h", 3600000}, {"1d", 86400000}, {"1w", 604800000},
        {"1h30m", 5400000}, {"1h 30m", 5400000}, {"0", 0}, {"1m 1", 61000},
    };
    uint64_t v;
    (void) state;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(time_of(ok[i].s, &v, NULL), PUSHQ_OK);
        assert_int_equal(v, ok[i].ms);
    }
}

/* Ensure bad times are refused. */
static void test_limits_time_bad_rejected(void **state)
{
    static const char *bad[] = {"", " ", "s", "1x", "1.5s", "-1", "1mss",
                                "ms", "99999999999999999999",
                                "18446744073709551w"};
    uint64_t    v;
    const char *why = NULL;
    (void) state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(time_of(bad[i], &v, &why), PUSHQ_EBADARG);
    }
    assert_non_null(why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_default_matches_spec),
        cmocka_unit_test(test_limits_size_suffixes_parsed),
        cmocka_unit_test(test_limits_size_bad_rejected),
        cmocka_unit_test(test_limits_time_units_parsed),
        cmocka_unit_test(test_limits_time_bad_rejected),
    };
    return cmocka_run_group_tests_name("limits", tests, NULL, NULL);
}
