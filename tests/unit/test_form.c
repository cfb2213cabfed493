/*
 * test_form.c -- one field of an x-www-form-urlencoded body
 * (pushq_form_get; the seed's POST /send_msg/ with field "content").
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pushq.h"

static pushq_status_t get(const char *body, const char *field, char *out,
                          size_t cap, size_t *n, const char **why)
{
    return pushq_form_get(body, strlen(body), field, strlen(field), out, cap,
                          n, why);
}

/* Ensure the seed's form decodes: '+' is a space, %XX a byte. */
static void test_form_content_decoded(void **state)
{
    char   out[64];
    size_t n;
    (void) state;
    assert_int_equal(get("content=hello+world%21%0A%e2%82%AC", "content",
                         out, sizeof(out), &n, NULL), PUSHQ_OK);
    assert_int_equal(n, 16);
    assert_memory_equal(out, "hello world!\n\xe2\x82\xac", 16);
}

/* Ensure the field is found among others, by its decoded name; the first
 * occurrence wins. */
static void test_form_field_among_others_first_wins(void **state)
{
    char   out[64];
    size_t n;
    (void) state;
    assert_int_equal(get("a=1&conten%74=x&content=y", "content", out,
                         sizeof(out), &n, NULL), PUSHQ_OK);
    assert_int_equal(n, 1);
    assert_memory_equal(out, "x", 1);
}

/* Ensure an empty content is a message (SPEC.md "empty is allowed"), and
 * a bare name is an empty value. */
static void test_form_empty_value_ok(void **state)
{
    char   out[4];
    size_t n = 99;
    (void) state;
    assert_int_equal(get("content=", "content", out, sizeof(out), &n, NULL),
                     PUSHQ_OK);
    assert_int_equal(n, 0);
    n = 99;
    assert_int_equal(get("x=1&content", "content", out, sizeof(out), &n,
                         NULL), PUSHQ_OK);
    assert_int_equal(n, 0);
    assert_int_equal(get("content=", "content", NULL, 0, &n, NULL),
                     PUSHQ_OK);
}

/* Ensure a missing field is 400 "content: form field missing" (SPEC.md
 * "Publish": a form without it is 400). */
static void test_form_missing_field_badarg(void **state)
{
    char        out[16];
    size_t      n;
    const char *why = NULL;
    (void) state;
    assert_int_equal(get("contents=x&cont=y", "content", out, sizeof(out),
                         &n, &why), PUSHQ_EBADARG);
    assert_string_equal(why, "content: form field missing");
    assert_int_equal(get("", "content", out, sizeof(out), &n, &why),
                     PUSHQ_EBADARG);
    assert_int_equal(get("a=b", "other", out, sizeof(out), &n, &why),
                     PUSHQ_EBADARG);
    assert_int_equal(pushq_status_http(PUSHQ_EBADARG), 400);
}

/* Ensure bad %-escapes are kept literally (a message keeps them). */
static void test_form_bad_percent_kept(void **state)
{
    char   out[16];
    size_t n;
    (void) state;
    assert_int_equal(get("content=100%&x", "content", out, sizeof(out), &n,
                         NULL), PUSHQ_OK);
    assert_int_equal(n, 4);
    assert_memory_equal(out, "100%", 4);
    assert_int_equal(get("content=%g1%4", "content", out, sizeof(out), &n,
                         NULL), PUSHQ_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "%g1%4", 5);
}

/* Ensure cap == body length always suffices and a smaller one is refused
 * with ETOOBIG (adapters pass max_message_size + 1 to detect 413). */
static void test_form_small_buffer_too_big(void **state)
{
    char        out[8];
    size_t      n;
    const char *why = NULL;
    (void) state;
    assert_int_equal(get("content=abcdef", "content", out, 5, &n, &why),
                     PUSHQ_ETOOBIG);
    assert_non_null(why);
    assert_int_equal(get("content=abcdef", "content", out, 6, &n, NULL),
                     PUSHQ_OK);
    assert_int_equal(get("content=%41%41%41", "content", out, 3, &n, NULL),
                     PUSHQ_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_content_decoded),
        cmocka_unit_test(test_form_field_among_others_first_wins),
        cmocka_unit_test(test_form_empty_value_ok),
        cmocka_unit_test(test_form_missing_field_badarg),
        cmocka_unit_test(test_form_bad_percent_kept),
        cmocka_unit_test(test_form_small_buffer_too_big),
    };
    return cmocka_run_group_tests_name("form", tests, NULL, NULL);
}
