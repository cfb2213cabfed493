/*
 * test_ws_handshake.c -- the opening handshake (RFC 6455 4.2.1, 4.2.2):
 * every check with its status, and the RFC's Sec-WebSocket-Accept
 * example.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pushq.h"

typedef struct {
    pushq_ws_handshake_t h;
    char                 accept[29];
    const char          *why;
} fixture_t;

static void set(const char **p, size_t *n, const char *v)
{
    *p = v;
    *n = v == NULL ? 0 : strlen(v);
}

/* A valid handshake: RFC 6455 1.2's example request. */
static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL) return -1;
    set(&f->h.method, &f->h.method_len, "GET");
    f->h.http_major = 1;
    f->h.http_minor = 1;
    set(&f->h.upgrade, &f->h.upgrade_len, "websocket");
    set(&f->h.connection, &f->h.connection_len, "Upgrade");
    set(&f->h.key, &f->h.key_len, "dGhlIHNhbXBsZSBub25jZQ==");
    set(&f->h.version, &f->h.version_len, "13");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static pushq_status_t check(fixture_t *f)
{
    f->why = NULL;
    memset(f->accept, 0, sizeof(f->accept));
    return pushq_ws_handshake_check(&f->h, f->accept, &f->why);
}

/* Ensure RFC 6455 1.3's example: key dGhlIHNhbXBsZSBub25jZQ== gives
 * s3pPLMBiTxaQ9kYGzzhZRbK+xOo=. */
static void test_ws_handshake_rfc_example_accept(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(check(f), PUSHQ_OK);
    assert_string_equal(f->accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/* Ensure header tokens are matched case-insensitively inside comma
 * lists, with whitespace (RFC 6455 4.2.1 items 3-4; Firefox sends
 * "keep-alive, Upgrade"). */
static void test_ws_handshake_token_lists_accepted(void **state)
{
    fixture_t *f = *state;
    set(&f->h.upgrade, &f->h.upgrade_len, "h2c, WebSocket");
    set(&f->h.connection, &f->h.connection_len, "keep-alive,\tUPGRADE ");
    set(&f->h.version, &f->h.version_len, " 13 ");
    f->h.http_major = 2;
    f->h.http_minor = 0;
    assert_int_equal(check(f), PUSHQ_OK);
    assert_string_equal(f->accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/* Ensure a method other than GET is 405 (RFC 6455 4.2.1 item 1). */
static void test_ws_handshake_not_get_405(void **state)
{
    fixture_t *f = *state;
    static const char *m[] = {"POST", "get", "GETX", "", NULL};
    for (size_t i = 0; i < 5; i++) {
        set(&f->h.method, &f->h.method_len, m[i]);
        assert_int_equal(check(f), PUSHQ_EMETHOD);
        assert_int_equal(pushq_status_http(PUSHQ_EMETHOD), 405);
    }
}

/* Ensure HTTP/1.0 is 400 (RFC 6455 4.2.1 item 1: HTTP/1.1 or higher). */
static void test_ws_handshake_http10_400(void **state)
{
    fixture_t *f = *state;
    f->h.http_minor = 0;
    assert_int_equal(check(f), PUSHQ_EBADARG);
    assert_non_null(f->why);
}

/* Ensure a missing or wrong Upgrade / Connection is 400 (RFC 6455 4.2.1
 * items 3 and 4). */
static void test_ws_handshake_upgrade_connection_400(void **state)
{
    fixture_t *f = *state;
    static const char *bad_up[] = {NULL, "", "websockets", "web socket",
                                   "h2c"};
    for (size_t i = 0; i < 5; i++) {
        set(&f->h.upgrade, &f->h.upgrade_len, bad_up[i]);
        assert_int_equal(check(f), PUSHQ_EBADARG);
        assert_string_equal(f->why,
                            "Upgrade: must contain the token websocket");
    }
    set(&f->h.upgrade, &f->h.upgrade_len, "websocket");
    static const char *bad_conn[] = {NULL, "keep-alive", "upgrades",
                                     "close, upgrad"};
    for (size_t i = 0; i < 4; i++) {
        set(&f->h.connection, &f->h.connection_len, bad_conn[i]);
        assert_int_equal(check(f), PUSHQ_EBADARG);
        assert_string_equal(f->why,
                            "Connection: must contain the token upgrade");
    }
}

/* Ensure a version other than 13 is 426 (RFC 6455 4.2.1 item 6, 4.4). */
static void test_ws_handshake_version_426(void **state)
{
    fixture_t *f = *state;
    static const char *bad[] = {NULL, "", "8", "12", "14", "130", "13,8"};
    for (size_t i = 0; i < 7; i++) {
        set(&f->h.version, &f->h.version_len, bad[i]);
        assert_int_equal(check(f), PUSHQ_EUPGRADE);
        assert_int_equal(pushq_status_http(PUSHQ_EUPGRADE), 426);
        assert_string_equal(f->why, "Sec-WebSocket-Version: must be 13");
    }
}

/* Ensure a key that is not base64 of 16 bytes is 400 (RFC 6455 4.2.1
 * item 5). */
static void test_ws_handshake_bad_key_400(void **state)
{
    fixture_t *f = *state;
    static const char *bad[] = {
        NULL, "", "dGhlIHNhbXBsZSBub25jZQ=",  "dGhlIHNhbXBsZSBub25jZQ===",
        "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZR==",
        "dGhlIHNhbXBsZSBub25j*Q==", "dGhlIHNhbXBsZSBub25jZXg=",
        "ZGhsSUhOaGJYQnNaU0J1YjI1alpRPT0=",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        set(&f->h.key, &f->h.key_len, bad[i]);
        assert_int_equal(check(f), PUSHQ_EBADARG);
        assert_string_equal(f->why,
                            "Sec-WebSocket-Key: must be base64 of 16 bytes");
    }
    /* surrounding whitespace is not part of the key */
    set(&f->h.key, &f->h.key_len, " dGhlIHNhbXBsZSBub25jZQ== ");
    assert_int_equal(check(f), PUSHQ_OK);
    assert_string_equal(f->accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/* Ensure pushq_ws_is_upgrade finds the websocket token only. */
static void test_ws_handshake_is_upgrade_token(void **state)
{
    (void) state;
    assert_true(pushq_ws_is_upgrade("websocket", 9));
    assert_true(pushq_ws_is_upgrade("foo, WebSocket ", 15));
    assert_false(pushq_ws_is_upgrade("websockets", 10));
    assert_false(pushq_ws_is_upgrade("", 0));
    assert_false(pushq_ws_is_upgrade(NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_ws_handshake_rfc_example_accept),
        T(test_ws_handshake_token_lists_accepted),
        T(test_ws_handshake_not_get_405),
        T(test_ws_handshake_http10_400),
        T(test_ws_handshake_upgrade_connection_400),
        T(test_ws_handshake_version_426),
        T(test_ws_handshake_bad_key_400),
        T(test_ws_handshake_is_upgrade_token),
#undef T
    };
    return cmocka_run_group_tests_name("ws_handshake", tests, NULL, NULL);
}
