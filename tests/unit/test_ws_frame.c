/*
 * test_ws_frame.c -- server frames (RFC 6455 5.2): headers with minimal
 * lengths, close frames with code and a reason cut at a UTF-8 boundary;
 * and round trips through the parser's feed_frame.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pushq.h"

/* Ensure headers use the shortest length form, FIN set, no mask
 * (RFC 6455 5.2; 5.7's "Hello" example 0x81 0x05). */
static void test_ws_frame_header_minimal_lengths(void **state)
{
    unsigned char h[10];
    (void) state;

    assert_int_equal(pushq_ws_frame_header(h, PUSHQ_WS_OP_TEXT, 5), 2);
    assert_memory_equal(h, "\x81\x05", 2);
    assert_int_equal(pushq_ws_frame_header(h, PUSHQ_WS_OP_BINARY, 125), 2);
    assert_memory_equal(h, "\x82\x7d", 2);
    assert_int_equal(pushq_ws_frame_header(h, PUSHQ_WS_OP_BINARY, 126), 4);
    assert_memory_equal(h, "\x82\x7e\x00\x7e", 4);
    /* RFC 6455 5.7: 256 bytes binary -> 0x82 0x7E 0x0100 */
    assert_int_equal(pushq_ws_frame_header(h, PUSHQ_WS_OP_BINARY, 256), 4);
    assert_memory_equal(h, "\x82\x7e\x01\x00", 4);
    assert_int_equal(pushq_ws_frame_header(h, PUSHQ_WS_OP_TEXT, 65535), 4);
    assert_memory_equal(h, "\x81\x7e\xff\xff", 4);
    /* RFC 6455 5.7: 64 KiB -> 0x82 0x7F 0x0000000000010000 */
    assert_int_equal(pushq_ws_frame_header(h, PUSHQ_WS_OP_BINARY, 65536), 10);
    assert_memory_equal(h, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    assert_int_equal(pushq_ws_frame_header(h, PUSHQ_WS_OP_PING, 0), 2);
    assert_memory_equal(h, "\x89\x00", 2);
}

/* Ensure close frames carry the code big-endian and the reason; code 0
 * gives an empty close (RFC 6455 5.5.1). */
static void test_ws_frame_close_code_and_reason(void **state)
{
    unsigned char f[127];
    (void) state;

    assert_int_equal(pushq_ws_close_frame(f, 1000, NULL), 4);
    assert_memory_equal(f, "\x88\x02\x03\xe8", 4);
    assert_int_equal(pushq_ws_close_frame(f, 1002, "bad"), 7);
    assert_memory_equal(f, "\x88\x05\x03\xea" "bad", 7);
    assert_int_equal(pushq_ws_close_frame(f, 0, "ignored"), 2);
    assert_memory_equal(f, "\x88\x00", 2);
}

/* Ensure a long reason is cut to 123 bytes, at a UTF-8 boundary, so the
 * frame is <= 127 bytes and passes the close rules (RFC 6455 5.5). */
static void test_ws_frame_close_reason_cut_at_utf8_boundary(void **state)
{
    unsigned char f[127];
    char          r[300];
    (void) state;

    memset(r, 'a', 200);
    r[200] = '\0';
    assert_int_equal(pushq_ws_close_frame(f, 1008, r), 127);
    assert_int_equal(f[1], 125);

    /* 122 ASCII bytes then a 2-byte character: it does not fit whole */
    memset(r, 'a', 122);
    memcpy(r + 122, "\xce\xba", 3);
    assert_int_equal(pushq_ws_close_frame(f, 1008, r), 4 + 122);

    /* the frame passes the parser's close rules */
    pushq_ws_parser_t *p = pushq_ws_parser_create(100);
    pushq_ws_event_t   ev;
    assert_non_null(p);
    pushq_ws_parser_feed_frame(p, f[0], f + 2, f[1], &ev);
    assert_int_equal(ev.type, PUSHQ_WS_CLOSE);
    assert_int_equal(ev.close_code, 1008);
    assert_int_equal(ev.len, 122);
    pushq_ws_parser_destroy(p);
}

/* Ensure every close text the core sends (its reasons) gives a frame the
 * parser accepts, with the close code of the status (RFC 6455 7.4.1). */
static void test_ws_frame_error_reasons_fit_close_frames(void **state)
{
    static const unsigned char bad[][3] = {
        {0xC1, 0, 0}, {0x83, 0, 0}, {0x80, 0, 0},
    };
    (void) state;
    for (size_t i = 0; i < 3; i++) {
        pushq_ws_parser_t *p = pushq_ws_parser_create(100);
        pushq_ws_event_t   ev;
        unsigned char      f[127];
        assert_non_null(p);
        pushq_ws_parser_feed_frame(p, bad[i][0], "", 0, &ev);
        assert_int_equal(ev.type, PUSHQ_WS_ERROR);
        size_t n = pushq_ws_close_frame(f, ev.close_code, ev.reason);
        assert_int_equal(n, 4 + strlen(ev.reason));
        pushq_ws_parser_destroy(p);

        p = pushq_ws_parser_create(100);
        pushq_ws_parser_feed_frame(p, f[0], f + 2, f[1], &ev);
        assert_int_equal(ev.type, PUSHQ_WS_CLOSE);
        assert_int_equal(ev.close_code, 1002);
        pushq_ws_parser_destroy(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws_frame_header_minimal_lengths),
        cmocka_unit_test(test_ws_frame_close_code_and_reason),
        cmocka_unit_test(test_ws_frame_close_reason_cut_at_utf8_boundary),
        cmocka_unit_test(test_ws_frame_error_reasons_fit_close_frames),
    };
    return cmocka_run_group_tests_name("ws_frame", tests, NULL, NULL);
}
