/*
 * test_args.c -- query arguments (SPEC.md "Concepts", "Long-poll
 * subscribe"): pushq_args_parse and pushq_name_decode.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pushq.h"

typedef struct {
    pushq_args_t a;
    const char  *why;
} fixture_t;

static int setup(void **state)
{
    static fixture_t f;
    memset(&f, 0, sizeof(f));
    *state = &f;
    return 0;
}

static pushq_status_t parse(fixture_t *f, const char *q)
{
    f->why = NULL;
    return pushq_args_parse(q, strlen(q), &f->a, &f->why);
}

static void assert_bytes(const char *p, size_t n, const char *want)
{
    assert_int_equal(n, strlen(want));
    assert_memory_equal(p, want, n);
}

/* Ensure an empty query gives the defaults: channel "default", nothing
 * else asked (SPEC.md "Channel": absent means default). */
static void test_args_empty_query_defaults(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, ""), PUSHQ_OK);
    assert_bytes(f->a.channel, f->a.channel_len, "default");
    assert_int_equal(f->a.name_len, 0);
    assert_int_equal(f->a.has_last_id, 0);
    assert_int_equal(f->a.has_timeout, 0);
    assert_int_equal(f->a.batch, 0);
    assert_int_equal(f->a.format, PUSHQ_FORMAT_DEFAULT);
    assert_int_equal(pushq_args_parse(NULL, 0, &f->a, NULL), PUSHQ_OK);
}

/* Ensure every argument is read (the seed's GET /get_msg/?name=<me>). */
static void test_args_all_arguments_parsed(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "channel=room.1&name=alice_2&last_id=17&"
                              "timeout=1.5&batch=10&format=json&x=y"),
                     PUSHQ_OK);
    assert_bytes(f->a.channel, f->a.channel_len, "room.1");
    assert_bytes(f->a.name, f->a.name_len, "alice_2");
    assert_int_equal(f->a.has_last_id, 1);
    assert_int_equal(f->a.last_id, 17);
    assert_int_equal(f->a.has_timeout, 1);
    assert_int_equal(f->a.timeout_ms, 1500);
    assert_int_equal(f->a.batch, 10);
    assert_int_equal(f->a.format, PUSHQ_FORMAT_JSON);
    assert_int_equal(parse(f, "format=PROMETHEUS"), PUSHQ_OK);
    assert_int_equal(f->a.format, PUSHQ_FORMAT_PROMETHEUS);
}

/* Ensure percent-decoding and '+' apply to names and values, and to
 * argument names (WHATWG urlencoded parsing). */
static void test_args_percent_and_plus_decoded(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "chan%6eel=a%3Ab%2dc&%6Eame=%41"), PUSHQ_OK);
    assert_bytes(f->a.channel, f->a.channel_len, "a:b-c");
    assert_bytes(f->a.name, f->a.name_len, "A");
    /* '+' is a space: not in the alphabet */
    assert_int_equal(parse(f, "channel=a+b"), PUSHQ_EBADARG);
    assert_string_equal(f->why,
                        "channel: must be 1-64 bytes of [A-Za-z0-9_.:-]");
    /* a bad %-escape stays a literal '%', which no name allows */
    assert_int_equal(parse(f, "name=a%zz"), PUSHQ_EBADARG);
    assert_string_equal(f->why, "name: must be 1-64 bytes of [A-Za-z0-9_.:-]");
    assert_int_equal(parse(f, "name=a%4"), PUSHQ_EBADARG);
    assert_int_equal(parse(f, "timeout=%31%2E%35"), PUSHQ_OK);
    assert_int_equal(f->a.timeout_ms, 1500);
}

/* Ensure a repeated argument: the first wins, as nginx's $arg_x. */
static void test_args_repeated_first_wins(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "channel=a&channel=b&batch=2&batch=9999"),
                     PUSHQ_OK);
    assert_bytes(f->a.channel, f->a.channel_len, "a");
    assert_int_equal(f->a.batch, 2);
}

/* Ensure empty fields and empty values count as absent (channel empty =
 * default, SPEC.md "Channel"). */
static void test_args_empty_fields_absent(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "&&channel=&name=&last_id=&timeout=&batch=&"
                              "format=&=x&name"), PUSHQ_OK);
    assert_bytes(f->a.channel, f->a.channel_len, "default");
    assert_int_equal(f->a.name_len, 0);
    assert_int_equal(f->a.has_last_id, 0);
    assert_int_equal(f->a.has_timeout, 0);
    assert_int_equal(f->a.batch, 0);
}

/* Ensure names: 64 bytes pass, 65 fail (also when percent-encoded), and
 * every byte outside [A-Za-z0-9_.:-] fails (SPEC.md "Channel"). */
static void test_args_name_length_and_alphabet(void **state)
{
    fixture_t *f = *state;
    char       q[300], out[PUSHQ_NAME_MAX];
    size_t     n;
    const char *why;
    (void) f;

    memset(q, 'a', 64);
    assert_int_equal(pushq_name_decode(PUSHQ_ARG_CHANNEL, q, 64, out, &n,
                                       NULL), PUSHQ_OK);
    assert_int_equal(n, 64);
    assert_int_equal(pushq_name_decode(PUSHQ_ARG_CHANNEL, q, 65, out, &n,
                                       &why), PUSHQ_EBADARG);
    for (int i = 0; i < 65; i++) {
        memcpy(q + 3 * i, "%61", 3);
    }
    assert_int_equal(pushq_name_decode(PUSHQ_ARG_NAME, q, 192, out, &n,
                                       NULL), PUSHQ_OK);
    assert_int_equal(n, 64);
    assert_int_equal(pushq_name_decode(PUSHQ_ARG_NAME, q, 195, out, &n,
                                       &why), PUSHQ_EBADARG);
    assert_string_equal(why, "name: must be 1-64 bytes of [A-Za-z0-9_.:-]");

    for (int c = 0; c < 256; c++) {
        char enc[4];
        int  ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                  || (c >= '0' && c <= '9') || c == '_' || c == '.'
                  || c == ':' || c == '-';
        static const char hexd[] = "0123456789ABCDEF";
        enc[0] = '%';
        enc[1] = hexd[c >> 4];
        enc[2] = hexd[c & 15];
        assert_int_equal(pushq_name_decode(PUSHQ_ARG_CHANNEL, enc, 3, out,
                                           &n, NULL) == PUSHQ_OK, ok);
    }
    assert_int_equal(pushq_name_decode(PUSHQ_ARG_CHANNEL, "", 0, out, &n,
                                       NULL), PUSHQ_OK);
    assert_bytes(out, n, "default");
    assert_int_equal(pushq_name_decode(PUSHQ_ARG_NAME, "", 0, out, &n, NULL),
                     PUSHQ_OK);
    assert_int_equal(n, 0);
}

/* Ensure last_id: non-negative 64-bit integers only. */
static void test_args_last_id_rules(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "last_id=0"), PUSHQ_OK);
    assert_int_equal(f->a.has_last_id, 1);
    assert_int_equal(f->a.last_id, 0);
    assert_int_equal(parse(f, "last_id=18446744073709551615"), PUSHQ_OK);
    assert_true(f->a.last_id == UINT64_MAX);
    static const char *bad[] = {"last_id=-1", "last_id=1.0", "last_id=x",
                                "last_id=18446744073709551616",
                                "last_id=+1", "last_id=1%00"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(f, bad[i]), PUSHQ_EBADARG);
        assert_string_equal(f->why, "last_id: must be a non-negative integer");
    }
}

/* Ensure timeout: seconds with decimals, 0 allowed (SPEC.md: "seconds,
 * decimals allowed, else 400"). */
static void test_args_timeout_rules(void **state)
{
    fixture_t *f = *state;
    static const struct { const char *q; uint64_t ms; } ok[] = {
        {"timeout=0", 0}, {"timeout=30", 30000}, {"timeout=0.25", 250},
        {"timeout=.5", 500}, {"timeout=2.", 2000}, {"timeout=1.2345", 1234},
        {"timeout=99999999999999999999", UINT64_MAX},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(parse(f, ok[i].q), PUSHQ_OK);
        assert_int_equal(f->a.has_timeout, 1);
        assert_true(f->a.timeout_ms == ok[i].ms);
    }
    static const char *bad[] = {"timeout=-1", "timeout=.", "timeout=1s",
                                "timeout=1.2.3", "timeout=abc",
                                "timeout=1e3", "timeout=+1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(f, bad[i]), PUSHQ_EBADARG);
        assert_string_equal(f->why,
            "timeout: must be a non-negative number of seconds");
    }
}

/* Ensure batch: 1 to 1000 (SPEC.md "batch=k (1-1000, else 400)"). */
static void test_args_batch_rules(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "batch=1"), PUSHQ_OK);
    assert_int_equal(f->a.batch, 1);
    assert_int_equal(parse(f, "batch=1000"), PUSHQ_OK);
    assert_int_equal(f->a.batch, 1000);
    static const char *bad[] = {"batch=0", "batch=1001", "batch=-1",
                                "batch=x", "batch=1.5",
                                "batch=99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(f, bad[i]), PUSHQ_EBADARG);
        assert_string_equal(f->why, "batch: must be an integer from 1 to 1000");
    }
}

/* Ensure format: json or prometheus only. */
static void test_args_format_rules(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "format=xml"), PUSHQ_EBADARG);
    assert_string_equal(f->why, "format: must be json or prometheus");
    assert_int_equal(parse(f, "format=jsonx"), PUSHQ_EBADARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup(name, setup)
        T(test_args_empty_query_defaults),
        T(test_args_all_arguments_parsed),
        T(test_args_percent_and_plus_decoded),
        T(test_args_repeated_first_wins),
        T(test_args_empty_fields_absent),
        T(test_args_name_length_and_alphabet),
        T(test_args_last_id_rules),
        T(test_args_timeout_rules),
        T(test_args_batch_rules),
        T(test_args_format_rules),
#undef T
    };
    return cmocka_run_group_tests_name("args", tests, NULL, NULL);
}
