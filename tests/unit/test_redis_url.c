/*
 * test_redis_url.c -- pushq_redis_url_parse: redis://[[user]:password@]
 * host[:port][/db], with a why naming the wrong part.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pushq_redis.h"

static pushq_status_t parse(const char *s, pushq_redis_url_t *u,
    const char **why)
{
    *why = NULL;
    return pushq_redis_url_parse(s, strlen(s), u, why);
}

static void test_redis_url_defaults(void **state)
{
    (void) state;
    pushq_redis_url_t u;
    const char *why;
    assert_int_equal(parse("redis://localhost", &u, &why), PUSHQ_OK);
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);
    assert_string_equal(u.password, "");
    assert_int_equal(u.db, 0);
    assert_int_equal(parse("redis://127.0.0.1/", &u, &why), PUSHQ_OK);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.db, 0);
}

static void test_redis_url_all_parts(void **state)
{
    (void) state;
    pushq_redis_url_t u;
    const char *why;
    assert_int_equal(parse("redis://:s3cret@redis.example:6380/2", &u, &why),
                     PUSHQ_OK);
    assert_string_equal(u.host, "redis.example");
    assert_int_equal(u.port, 6380);
    assert_string_equal(u.password, "s3cret");
    assert_int_equal(u.db, 2);

    /* a user name is accepted and ignored; the password may hold '@' and
     * ':' percent-encoded or, ':' and '@', as is (last '@' ends it) */
    assert_int_equal(parse("redis://bob:p%40ss:w@h:1/15", &u, &why),
                     PUSHQ_OK);
    assert_string_equal(u.password, "p@ss:w");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 1);
    assert_int_equal(u.db, 15);
    assert_int_equal(parse("redis://a:b@c@h", &u, &why), PUSHQ_OK);
    assert_string_equal(u.password, "b@c");
    assert_string_equal(u.host, "h");

    /* user without a password: no AUTH */
    assert_int_equal(parse("redis://bob@h", &u, &why), PUSHQ_OK);
    assert_string_equal(u.password, "");

    assert_int_equal(parse("redis://[::1]:7000", &u, &why), PUSHQ_OK);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
}

static void test_redis_url_rejections_name_the_part(void **state)
{
    (void) state;
    pushq_redis_url_t u;
    const char *why;
    assert_int_equal(parse("rediss://h", &u, &why), PUSHQ_EBADARG);
    assert_non_null(strstr(why, "TLS"));
    assert_int_equal(parse("http://h", &u, &why), PUSHQ_EBADARG);
    assert_non_null(strstr(why, "redis://"));
    assert_int_equal(parse("redis://", &u, &why), PUSHQ_EBADARG);
    assert_non_null(strstr(why, "host"));
    assert_int_equal(parse("redis://:pw@", &u, &why), PUSHQ_EBADARG);
    assert_non_null(strstr(why, "host"));
    assert_int_equal(parse("redis://h:0", &u, &why), PUSHQ_EBADARG);
    assert_non_null(strstr(why, "port"));
    assert_int_equal(parse("redis://h:65536", &u, &why), PUSHQ_EBADARG);
    assert_non_null(strstr(why, "port"));
    assert_int_equal(parse("redis://h:", &u, &why), PUSHQ_EBADARG);
    assert_non_null(strstr(why, "port"));
    assert_int_equal(parse("redis://h:12x", &u, &why), PUSHQ_EBADARG);
    assert_non_null(strstr(why, "port"));
    assert_int_equal(parse("redis://h/x", &u, &why), PUSHQ_EBADARG);
    assert_non_null(strstr(why, "db"));
    assert_int_equal(parse("redis://h/99999999999", &u, &why),
                     PUSHQ_EBADARG);
    assert_non_null(strstr(why, "db"));
    assert_int_equal(parse("redis://ho st", &u, &why), PUSHQ_EBADARG);
    assert_non_null(strstr(why, "host"));
    assert_int_equal(parse("redis://[::1", &u, &why), PUSHQ_EBADARG);
    assert_non_null(strstr(why, "host"));
    assert_int_equal(parse("redis://:p%4@h", &u, &why), PUSHQ_EBADARG);
    assert_non_null(strstr(why, "password"));
    assert_int_equal(parse("redis://:p%00@h", &u, &why), PUSHQ_EBADARG);
    assert_non_null(strstr(why, "password"));

    char longhost[300];
    memcpy(longhost, "redis://", 8);
    memset(longhost + 8, 'a', 260);
    longhost[268] = '\0';
    assert_int_equal(parse(longhost, &u, &why), PUSHQ_EBADARG);
    assert_non_null(strstr(why, "host"));
    assert_int_equal(pushq_redis_url_parse("redis://h", 9, NULL, &why),
                     PUSHQ_EBADARG);
}

/* Only len bytes are read: no NUL needed, trailing bytes ignored. */
static void test_redis_url_length_bounded(void **state)
{
    (void) state;
    pushq_redis_url_t u;
    const char *why = NULL;
    const char s[] = "redis://host:6390/3GARBAGE";
    assert_int_equal(pushq_redis_url_parse(s, 19, &u, &why), PUSHQ_OK);
    assert_string_equal(u.host, "host");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_url_defaults),
        cmocka_unit_test(test_redis_url_all_parts),
        cmocka_unit_test(test_redis_url_rejections_name_the_part),
        cmocka_unit_test(test_redis_url_length_bounded),
    };
    return cmocka_run_group_tests_name("redis_url", tests, NULL, NULL);
}
