/*
 * test_redis_cmd.c -- the commands of pushq_redis.h as argv: keys with the
 * channel's hash tag, the script arguments, the limits, refusals.
 * (No server here: tests/redis/core runs them against a real one.)
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "pushq_redis.h"

/* argv[i] as a NUL-terminated copy */
static const char *arg(const pushq_redis_cmd_t *c, int i)
{
    static char buf[8][1200];
    static int k;
    char *b = buf[k++ & 7];
    size_t n = c->argvlen[i] < 1199 ? c->argvlen[i] : 1199;
    memcpy(b, c->argv[i], n);
    b[n] = '\0';
    return b;
}

static int is_hex40(const pushq_redis_cmd_t *c, int i)
{
    if (c->argvlen[i] != 40) return 0;
    for (int k = 0; k < 40; k++) {
        char ch = c->argv[i][k];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return 0;
    }
    return 1;
}

static void lim_default(pushq_limits_t *l)
{
    pushq_limits_default(l);
    l->buffer = 50;
    l->buffer_bytes = 4096;
    l->message_ttl_ms = 10000;
    l->client_ttl_ms = 2000;
    l->max_message_size = 100;
}

static void test_redis_cmd_script_load(void **state)
{
    (void) state;
    pushq_redis_cmd_t c;
    for (unsigned i = 0; i < PUSHQ_REDIS_SCRIPTS; i++) {
        pushq_redis_cmd_script_load(&c, i);
        assert_int_equal(c.argc, 3);
        assert_string_equal(arg(&c, 0), "SCRIPT");
        assert_string_equal(arg(&c, 1), "LOAD");
        assert_true(c.argvlen[2] > 100);
        assert_non_null(strstr(arg(&c, 2), "redis.call"));
    }
    pushq_redis_cmd_script_load(&c, PUSHQ_REDIS_SCRIPTS);
    assert_int_equal(c.argc, 0);
}

static void test_redis_cmd_auth_select_subscribe(void **state)
{
    (void) state;
    pushq_redis_url_t u;
    assert_int_equal(pushq_redis_url_parse("redis://h", 9, &u, NULL),
                     PUSHQ_OK);
    pushq_redis_cmd_t c;
    assert_int_equal(pushq_redis_cmd_auth(&c, &u), 0);
    assert_int_equal(pushq_redis_cmd_select(&c, &u), 0);
    const char *s = "redis://:pw@h/7";
    assert_int_equal(pushq_redis_url_parse(s, strlen(s), &u, NULL), PUSHQ_OK);
    assert_int_equal(pushq_redis_cmd_auth(&c, &u), 1);
    assert_int_equal(c.argc, 2);
    assert_string_equal(arg(&c, 0), "AUTH");
    assert_string_equal(arg(&c, 1), "pw");
    assert_int_equal(pushq_redis_cmd_select(&c, &u), 1);
    assert_int_equal(c.argc, 2);
    assert_string_equal(arg(&c, 0), "SELECT");
    assert_string_equal(arg(&c, 1), "7");
    pushq_redis_cmd_subscribe(&c);
    assert_int_equal(c.argc, 2);
    assert_string_equal(arg(&c, 0), "PSUBSCRIBE");
    assert_string_equal(arg(&c, 1), "pushq:m:*");
}

static void test_redis_cmd_publish(void **state)
{
    (void) state;
    pushq_limits_t l;
    lim_default(&l);
    pushq_redis_cmd_t c;
    static const char msg[] = { 'h', 0, 'i' };
    assert_int_equal(pushq_redis_cmd_publish(&c, "room:1", 6, msg, 3,
                     PUSHQ_MSG_BINARY, &l, NULL), PUSHQ_OK);
    assert_int_equal(c.argc, 12);
    assert_string_equal(arg(&c, 0), "EVALSHA");
    assert_true(is_hex40(&c, 1));
    assert_string_equal(arg(&c, 2), "2");
    assert_string_equal(arg(&c, 3), "pushq:{room:1}:seq");
    assert_string_equal(arg(&c, 4), "pushq:{room:1}:log");
    assert_string_equal(arg(&c, 5), "room:1");
    /* the payload is referenced where it is, all of its bytes */
    assert_ptr_equal(c.argv[6], msg);
    assert_int_equal(c.argvlen[6], 3);
    assert_string_equal(arg(&c, 7), "1");
    assert_string_equal(arg(&c, 8), "50");
    assert_string_equal(arg(&c, 9), "4096");
    assert_string_equal(arg(&c, 10), "10000");
    assert_string_equal(arg(&c, 11), "12000");   /* message + client ttl */

    /* the take script has another sha */
    char sha_pub[41];
    memcpy(sha_pub, c.argv[1], 40);
    sha_pub[40] = '\0';
    pushq_redis_take_t t;
    memset(&t, 0, sizeof(t));
    t.chan = "room:1";
    t.chan_len = 6;
    t.max_msgs = 1;
    assert_int_equal(pushq_redis_cmd_take(&c, &t, &l, NULL), PUSHQ_OK);
    assert_string_not_equal(arg(&c, 1), sha_pub);

    /* buffer 0 is taken as 1; message_ttl 0 (no age limit): no expiry;
     * an empty message is fine */
    l.buffer = 0;
    l.message_ttl_ms = 0;
    assert_int_equal(pushq_redis_cmd_publish(&c, "c", 1, NULL, 0, 0, &l,
                                             NULL), PUSHQ_OK);
    assert_int_equal(c.argvlen[6], 0);
    assert_non_null(c.argv[6]);
    assert_string_equal(arg(&c, 7), "0");
    assert_string_equal(arg(&c, 8), "1");
    assert_string_equal(arg(&c, 11), "0");
}

static void test_redis_cmd_publish_refusals(void **state)
{
    (void) state;
    pushq_limits_t l;
    lim_default(&l);
    pushq_redis_cmd_t c;
    const char *why = NULL;
    char big[101];
    memset(big, 'x', sizeof(big));
    assert_int_equal(pushq_redis_cmd_publish(&c, "c", 1, big, 101, 0, &l,
                     &why), PUSHQ_ETOOBIG);
    assert_int_equal(c.argc, 0);
    assert_non_null(strstr(why, "max_message_size"));
    assert_int_equal(pushq_redis_cmd_publish(&c, "c", 1, big, 100, 0, &l,
                     &why), PUSHQ_OK);
    assert_int_equal(pushq_redis_cmd_publish(&c, "bad chan", 8, "x", 1, 0,
                     &l, &why), PUSHQ_EBADARG);
    assert_int_equal(c.argc, 0);
    assert_non_null(strstr(why, "channel"));
    assert_int_equal(pushq_redis_cmd_publish(&c, "", 0, "x", 1, 0, &l, &why),
                     PUSHQ_EBADARG);
    char long_chan[65];
    memset(long_chan, 'a', sizeof(long_chan));
    assert_int_equal(pushq_redis_cmd_publish(&c, long_chan, 65, "x", 1, 0,
                     &l, &why), PUSHQ_EBADARG);
    assert_int_equal(pushq_redis_cmd_publish(&c, long_chan, 64, "x", 1, 0,
                     &l, &why), PUSHQ_OK);
    assert_int_equal(pushq_redis_cmd_publish(&c, "c", 1, "x", 1, 0, NULL,
                     &why), PUSHQ_EBADARG);
}

static void test_redis_cmd_take(void **state)
{
    (void) state;
    pushq_limits_t l;
    lim_default(&l);
    pushq_redis_take_t t;
    memset(&t, 0, sizeof(t));
    t.chan = "ch";
    t.chan_len = 2;
    t.name = "bob";
    t.name_len = 3;
    t.has_last_id = 1;
    t.last_id = 18446744073709551615ULL;
    t.has_cursor = 1;
    t.cursor = 9;
    t.max_msgs = 25;
    t.max_bytes = 777;
    pushq_redis_cmd_t c;
    assert_int_equal(pushq_redis_cmd_take(&c, &t, &l, NULL), PUSHQ_OK);
    assert_int_equal(c.argc, 14);
    assert_string_equal(arg(&c, 0), "EVALSHA");
    assert_true(is_hex40(&c, 1));
    assert_string_equal(arg(&c, 2), "3");
    assert_string_equal(arg(&c, 3), "pushq:{ch}:seq");
    assert_string_equal(arg(&c, 4), "pushq:{ch}:log");
    assert_string_equal(arg(&c, 5), "pushq:{ch}:n:bob");
    assert_string_equal(arg(&c, 6), "1");
    assert_string_equal(arg(&c, 7), "18446744073709551615");
    assert_string_equal(arg(&c, 8), "1");
    assert_string_equal(arg(&c, 9), "9");
    assert_string_equal(arg(&c, 10), "25");
    assert_string_equal(arg(&c, 11), "777");
    assert_string_equal(arg(&c, 13), "2000");

    /* no name: two keys; client_ttl "forever": no expiry (-1) */
    t.name = NULL;
    t.name_len = 0;
    t.has_last_id = 0;
    t.has_cursor = 0;
    t.max_msgs = 0;                     /* taken as 1 */
    l.client_ttl_ms = UINT64_MAX;
    assert_int_equal(pushq_redis_cmd_take(&c, &t, &l, NULL), PUSHQ_OK);
    assert_int_equal(c.argc, 13);
    assert_string_equal(arg(&c, 2), "2");
    assert_string_equal(arg(&c, 4), "pushq:{ch}:log");
    assert_string_equal(arg(&c, 5), "0");
    assert_string_equal(arg(&c, 7), "0");
    assert_string_equal(arg(&c, 9), "1");
    assert_string_equal(arg(&c, 12), "-1");

    /* the longest names fit */
    char n64[64], c64[64];
    memset(n64, 'n', 64);
    memset(c64, 'c', 64);
    t.chan = c64;
    t.chan_len = 64;
    t.name = n64;
    t.name_len = 64;
    assert_int_equal(pushq_redis_cmd_take(&c, &t, &l, NULL), PUSHQ_OK);
    assert_int_equal(c.argvlen[5], 7 + 64 + 4 + 64);

    const char *why = NULL;
    t.name = "no way";
    t.name_len = 6;
    assert_int_equal(pushq_redis_cmd_take(&c, &t, &l, &why), PUSHQ_EBADARG);
    assert_non_null(strstr(why, "name"));
    assert_int_equal(c.argc, 0);
    t.name = NULL;
    t.chan = "x/y";
    t.chan_len = 3;
    assert_int_equal(pushq_redis_cmd_take(&c, &t, &l, &why), PUSHQ_EBADARG);
    assert_non_null(strstr(why, "channel"));
}

/* The range read: its own script, the channel's two keys, after and
 * max_msgs (0 taken as 1); a bad channel gives no command. */
static void test_redis_cmd_range(void **state)
{
    (void) state;
    pushq_redis_cmd_t c;
    char shas[PUSHQ_REDIS_SCRIPTS][41];
    pushq_limits_t l;
    lim_default(&l);
    assert_int_equal(pushq_redis_cmd_publish(&c, "c", 1, "x", 1, 0, &l,
                                             NULL), PUSHQ_OK);
    snprintf(shas[0], 41, "%s", arg(&c, 1));
    pushq_redis_take_t t;
    memset(&t, 0, sizeof(t));
    t.chan = "c";
    t.chan_len = 1;
    t.max_msgs = 1;
    assert_int_equal(pushq_redis_cmd_take(&c, &t, &l, NULL), PUSHQ_OK);
    snprintf(shas[1], 41, "%s", arg(&c, 1));

    pushq_redis_cmd_range(&c, "room:1", 6, 18446744073709551615ULL, 500);
    assert_int_equal(c.argc, 7);
    assert_string_equal(arg(&c, 0), "EVALSHA");
    assert_true(is_hex40(&c, 1));
    snprintf(shas[2], 41, "%s", arg(&c, 1));
    assert_string_not_equal(shas[2], shas[0]);
    assert_string_not_equal(shas[2], shas[1]);
    assert_string_equal(arg(&c, 2), "2");
    assert_string_equal(arg(&c, 3), "pushq:{room:1}:seq");
    assert_string_equal(arg(&c, 4), "pushq:{room:1}:log");
    assert_string_equal(arg(&c, 5), "18446744073709551615");
    assert_string_equal(arg(&c, 6), "500");

    /* the script loaded as number 2 is the one named */
    pushq_redis_cmd_script_load(&c, 2);
    assert_int_equal(c.argc, 3);
    assert_non_null(strstr(arg(&c, 2), "XRANGE"));

    pushq_redis_cmd_range(&c, "ch", 2, 0, 0);
    assert_int_equal(c.argc, 7);
    assert_string_equal(arg(&c, 5), "0");
    assert_string_equal(arg(&c, 6), "1");

    pushq_redis_cmd_range(&c, "bad chan", 8, 1, 1);
    assert_int_equal(c.argc, 0);
    pushq_redis_cmd_range(&c, NULL, 0, 1, 1);
    assert_int_equal(c.argc, 0);
    char c65[65];
    memset(c65, 'c', sizeof(c65));
    pushq_redis_cmd_range(&c, c65, 65, 1, 1);
    assert_int_equal(c.argc, 0);
    pushq_redis_cmd_range(&c, c65, 64, 1, 1);
    assert_int_equal(c.argc, 7);
    pushq_redis_cmd_range(NULL, "c", 1, 1, 1);     /* no crash */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_cmd_range),
        cmocka_unit_test(test_redis_cmd_script_load),
        cmocka_unit_test(test_redis_cmd_auth_select_subscribe),
        cmocka_unit_test(test_redis_cmd_publish),
        cmocka_unit_test(test_redis_cmd_publish_refusals),
        cmocka_unit_test(test_redis_cmd_take),
    };
    return cmocka_run_group_tests_name("redis_cmd", tests, NULL, NULL);
}
