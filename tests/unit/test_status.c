#define _POSIX_C_SOURCE 200809L
/*
 * test_status.c -- the status table (pushq_status_http,
 * pushq_status_close_code) and the monotonic clock.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>

#include "pushq.h"

/* Ensure each status maps to the HTTP status SPEC.md "Errors" gives. */
static void test_status_http_matches_spec(void **state)
{
    (void) state;
    assert_int_equal(pushq_status_http(PUSHQ_OK), 200);
    assert_int_equal(pushq_status_http(PUSHQ_EBADARG), 400);
    assert_int_equal(pushq_status_http(PUSHQ_EMETHOD), 405);
    assert_int_equal(pushq_status_http(PUSHQ_ETOOBIG), 413);
    assert_int_equal(pushq_status_http(PUSHQ_EUPGRADE), 426);
    assert_int_equal(pushq_status_http(PUSHQ_ENOMEM), 503);
    assert_int_equal(pushq_status_http(PUSHQ_ENOTFOUND), 404);
    assert_int_equal(pushq_status_http(PUSHQ_EINTERNAL), 500);
    assert_int_equal(pushq_status_http((pushq_status_t) 999), 500);
}

/* Ensure each status maps to the close code RFC 6455 7.4.1 gives for it
 * (1002 protocol, 1007 data, 1008 policy, 1009 too big, 1011 internal,
 * 1013 try again later). */
static void test_status_close_code_matches_rfc(void **state)
{
    (void) state;
    assert_int_equal(pushq_status_close_code(PUSHQ_OK), 1000);
    assert_int_equal(pushq_status_close_code(PUSHQ_EPROTO), 1002);
    assert_int_equal(pushq_status_close_code(PUSHQ_EUTF8), 1007);
    assert_int_equal(pushq_status_close_code(PUSHQ_EPOLICY), 1008);
    assert_int_equal(pushq_status_close_code(PUSHQ_ETOOBIG), 1009);
    assert_int_equal(pushq_status_close_code(PUSHQ_EINTERNAL), 1011);
    assert_int_equal(pushq_status_close_code(PUSHQ_ENOMEM), 1013);
    assert_int_equal(pushq_status_close_code((pushq_status_t) 999), 1011);
}

/* Ensure pushq_now_ms reads CLOCK_MONOTONIC in milliseconds. */
static void test_status_now_ms_is_monotonic_clock(void **state)
{
    struct timespec ts;
    (void) state;

    uint64_t a = pushq_now_ms();
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t mid = (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
    uint64_t b = pushq_now_ms();
    assert_true(a <= mid);
    assert_true(mid <= b);
    assert_true(b - a < 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_http_matches_spec),
        cmocka_unit_test(test_status_close_code_matches_rfc),
        cmocka_unit_test(test_status_now_ms_is_monotonic_clock),
    };
    return cmocka_run_group_tests_name("status", tests, NULL, NULL);
}
