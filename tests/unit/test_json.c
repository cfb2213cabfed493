/*
 * test_json.c -- the JSON answers of SPEC.md, byte for byte, and string
 * escaping of every byte value (parsed back with a small JSON string
 * decoder below).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pushq.h"

typedef struct {
    char buf[4096];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    *state = f;
    return f == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static pushq_json_msg_t msg(const char *text, uint64_t id, const char *ch)
{
    pushq_json_msg_t m;
    memset(&m, 0, sizeof(m));
    m.id = id;
    m.channel = ch;
    m.channel_len = strlen(ch);
    m.data = text;
    m.len = strlen(text);
    return m;
}

#define ASSERT_JSON(len, buf, want) do {                                  \
        size_t n_ = (len);                                                \
        assert_int_equal(n_, strlen(want));                               \
        (buf)[n_] = '\0';                                                 \
        assert_string_equal((buf), (want));                               \
    } while (0)

/* Ensure the message answer is SPEC.md's, key order and spacing exact
 * ("Long-poll subscribe"). */
static void test_json_message_exact_spec_shape(void **state)
{
    fixture_t       *f = *state;
    pushq_json_msg_t m = msg("hi", 17, "ch");

    ASSERT_JSON(pushq_json_message(f->buf, sizeof(f->buf), &m), f->buf,
                "{\"status\": true, \"msg\": \"hi\", \"id\": 17, "
                "\"channel\": \"ch\"}");
    m.lost = 3;
    m.reset = 1;
    ASSERT_JSON(pushq_json_message(f->buf, sizeof(f->buf), &m), f->buf,
                "{\"status\": true, \"msg\": \"hi\", \"id\": 17, "
                "\"channel\": \"ch\", \"lost\": 3, \"reset\": true}");
}

/* Ensure a binary message is base64 with "encoding": "base64" (SPEC.md:
 * "a binary message adds "encoding": "base64" and msg is base64"). */
static void test_json_binary_message_base64(void **state)
{
    fixture_t       *f = *state;
    pushq_json_msg_t m = msg("", 5, "c");
    static const unsigned char bin[] = {0x00, 0xff, 0xfe};

    m.data = bin;
    m.len = 3;
    m.binary = 1;
    ASSERT_JSON(pushq_json_message(f->buf, sizeof(f->buf), &m), f->buf,
                "{\"status\": true, \"msg\": \"AP/+\", \"id\": 5, "
                "\"channel\": \"c\", \"encoding\": \"base64\"}");
}

/* Ensure an empty message, also with data NULL, is "msg": "" (SPEC.md
 * "Message": empty is allowed). */
static void test_json_empty_message_null_data(void **state)
{
    fixture_t       *f = *state;
    pushq_json_msg_t m = msg("", 1, "c");

    m.data = NULL;
    ASSERT_JSON(pushq_json_message(f->buf, sizeof(f->buf), &m), f->buf,
                "{\"status\": true, \"msg\": \"\", \"id\": 1, "
                "\"channel\": \"c\"}");
    m.binary = 1;
    ASSERT_JSON(pushq_json_message(f->buf, sizeof(f->buf), &m), f->buf,
                "{\"status\": true, \"msg\": \"\", \"id\": 1, "
                "\"channel\": \"c\", \"encoding\": \"base64\"}");
}

/* Ensure the batch answer lists the messages, then the last id, channel,
 * and lost/reset from the first message (SPEC.md "batch=k"). */
static void test_json_batch_exact_spec_shape(void **state)
{
    fixture_t       *f = *state;
    pushq_json_msg_t ms[3] = {msg("a", 17, "ch"), msg("b", 18, "ch"),
                              msg("", 19, "ch")};
    static const unsigned char bin[] = {'x'};

    ms[2].data = bin;
    ms[2].len = 1;
    ms[2].binary = 1;
    ms[0].lost = 2;
    ASSERT_JSON(pushq_json_batch(f->buf, sizeof(f->buf), ms, 3), f->buf,
                "{\"status\": true, \"msgs\": [{\"id\": 17, \"msg\": \"a\"}, "
                "{\"id\": 18, \"msg\": \"b\"}, {\"id\": 19, \"msg\": \"eA==\", "
                "\"encoding\": \"base64\"}], \"id\": 19, \"channel\": \"ch\", "
                "\"lost\": 2}");
    ASSERT_JSON(pushq_json_batch(f->buf, sizeof(f->buf), ms, 0), f->buf,
                "{\"status\": false, \"msg\": \"\", \"msgs\": []}");
}

/* Ensure the timeout answers (SPEC.md: {"status": false, "msg": ""},
 * with "msgs": [] for batch, lost on the timeout answer). */
static void test_json_timeout_exact_spec_shape(void **state)
{
    fixture_t *f = *state;
    ASSERT_JSON(pushq_json_timeout(f->buf, sizeof(f->buf), 0, 0, 0), f->buf,
                "{\"status\": false, \"msg\": \"\"}");
    ASSERT_JSON(pushq_json_timeout(f->buf, sizeof(f->buf), 1, 0, 0), f->buf,
                "{\"status\": false, \"msg\": \"\", \"msgs\": []}");
    ASSERT_JSON(pushq_json_timeout(f->buf, sizeof(f->buf), 0, 4, 1), f->buf,
                "{\"status\": false, \"msg\": \"\", \"lost\": 4, "
                "\"reset\": true}");
}

/* Ensure the publish answer (SPEC.md "Publish") and the error answer
 * (SPEC.md "Errors"), with the why escaped. */
static void test_json_published_and_error_exact(void **state)
{
    fixture_t             *f = *state;
    pushq_publish_result_t r = {18, 3, 0, 0};

    ASSERT_JSON(pushq_json_published(f->buf, sizeof(f->buf), &r, "ch", 2),
                f->buf, "{\"status\": true, \"id\": 18, \"channel\": \"ch\", "
                "\"subscribers\": 3}");
    ASSERT_JSON(pushq_json_error(f->buf, sizeof(f->buf),
                                 "batch: must be an integer from 1 to 1000"),
                f->buf, "{\"status\": false, \"error\": \"batch: must be an "
                "integer from 1 to 1000\"}");
    ASSERT_JSON(pushq_json_error(f->buf, sizeof(f->buf), "a \"q\"\n"),
                f->buf, "{\"status\": false, \"error\": \"a \\\"q\\\"\\n\"}");
}

/* Ensure the status answers have SPEC.md "Status"'s fields. */
static void test_json_stats_shapes(void **state)
{
    fixture_t            *f = *state;
    pushq_stats_t         st = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                18446744073709551615u};
    pushq_channel_stats_t cs = {5, 9, 5, 2, 1};

    ASSERT_JSON(pushq_json_stats(f->buf, sizeof(f->buf), &st), f->buf,
                "{\"channels\": 1, \"messages\": 2, \"message_bytes\": 3, "
                "\"memory\": {\"used\": 4, \"total\": 5}, \"subscribers\": "
                "{\"longpoll\": 6, \"websocket\": 7}, \"clients\": 8, "
                "\"published\": 9, \"delivered\": 10, \"lost\": 11, "
                "\"dropped_slow\": 18446744073709551615}");
    ASSERT_JSON(pushq_json_channel_stats(f->buf, sizeof(f->buf), "ch", 2,
                                         &cs), f->buf,
                "{\"channel\": \"ch\", \"first_id\": 5, \"last_id\": 9, "
                "\"messages\": 5, \"subscribers\": 2, \"clients\": 1}");
}

/* Ensure a buffer too small gets the size needed, nothing past cap is
 * touched, and that size then suffices (pushq.h writer contract). */
static void test_json_small_buffer_returns_needed(void **state)
{
    fixture_t       *f = *state;
    pushq_json_msg_t m = msg("some message", 1, "channel");
    size_t           need = pushq_json_message(NULL, 0, &m);

    assert_true(need > 20);
    for (size_t cap = 0; cap < need; cap++) {
        memset(f->buf, '#', sizeof(f->buf));
        assert_int_equal(pushq_json_message(f->buf, cap, &m), need);
        assert_int_equal(f->buf[cap], '#');
    }
    assert_int_equal(pushq_json_message(f->buf, need, &m), need);
    assert_int_equal(f->buf[need], '#');
    assert_int_equal(pushq_json_timeout(f->buf, 3, 1, 1, 1),
                     pushq_json_timeout(NULL, 0, 1, 1, 1));
}

/* ---- a JSON string decoder, to parse escapes back ---------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t put_utf8(unsigned char *o, uint32_t cp)
{
    if (cp < 0x80) { o[0] = (unsigned char) cp; return 1; }
    if (cp < 0x800) {
        o[0] = (unsigned char) (0xC0 | cp >> 6);
        o[1] = (unsigned char) (0x80 | (cp & 63));
        return 2;
    }
    o[0] = (unsigned char) (0xE0 | cp >> 12);
    o[1] = (unsigned char) (0x80 | (cp >> 6 & 63));
    o[2] = (unsigned char) (0x80 | (cp & 63));
    return 3;
}

/* Decodes the JSON string starting at s (a '"'); returns the decoded
 * length, or -1 when it is not a valid JSON string (RFC 8259 7: no raw
 * control characters, only the defined escapes). */
static long json_unstring(const char *s, unsigned char *out)
{
    size_t i = 1, o = 0;
    if (s[0] != '"') return -1;
    for (;;) {
        unsigned char c = (unsigned char) s[i++];
        if (c == '"') return (long) o;
        if (c < 0x20) return -1;
        if (c != '\\') { out[o++] = c; continue; }
        c = (unsigned char) s[i++];
        switch (c) {
        case '"': out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; break;
        case '/': out[o++] = '/'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            uint32_t cp = 0;
            for (int k = 0; k < 4; k++) {
                int h = hexval(s[i++]);
                if (h < 0) return -1;
                cp = cp << 4 | (uint32_t) h;
            }
            if (cp >= 0xD800 && cp <= 0xDFFF) return -1;
            o += put_utf8(out + o, cp);
            break;
        }
        default:
            return -1;
        }
    }
}

/* The "msg" value of a message answer. */
static long msg_value(const char *json, unsigned char *out)
{
    const char *p = strstr(json, "\"msg\": ");
    assert_non_null(p);
    return json_unstring(p + 7, out);
}

/* Ensure every single byte value is escaped exactly: controls as \b \f
 * \n \r \t or \u00XX, '"' and '\\' escaped, DEL as \u007f, other ASCII
 * as is, and a lone byte >= 0x80 (not UTF-8) as \ufffd (RFC 8259 7). */
static void test_json_all_256_bytes_exact_escapes(void **state)
{
    fixture_t *f = *state;

    for (unsigned b = 0; b < 256; b++) {
        char             want[16];
        unsigned char    byte = (unsigned char) b;
        pushq_json_msg_t m = msg("", 1, "c");
        m.data = &byte;
        m.len = 1;

        switch (b) {
        case '"':  strcpy(want, "\\\""); break;
        case '\\': strcpy(want, "\\\\"); break;
        case '\b': strcpy(want, "\\b"); break;
        case '\f': strcpy(want, "\\f"); break;
        case '\n': strcpy(want, "\\n"); break;
        case '\r': strcpy(want, "\\r"); break;
        case '\t': strcpy(want, "\\t"); break;
        default:
            if (b < 0x20 || b == 0x7F) {
                snprintf(want, sizeof(want), "\\u%04x", b);
            } else if (b >= 0x80) {
                strcpy(want, "\\ufffd");
            } else {
                want[0] = (char) b;
                want[1] = '\0';
            }
        }
        size_t n = pushq_json_message(f->buf, sizeof(f->buf), &m);
        f->buf[n] = '\0';
        char expect[128];
        snprintf(expect, sizeof(expect), "{\"status\": true, \"msg\": \"%s\", "
                 "\"id\": 1, \"channel\": \"c\"}", want);
        assert_string_equal(f->buf, expect);

        /* and it parses back to the byte (or U+FFFD) */
        unsigned char back[8];
        long k = msg_value(f->buf, back);
        if (b < 0x80) {
            assert_int_equal(k, 1);
            assert_int_equal(back[0], b);
        } else {
            assert_int_equal(k, 3);
            assert_memory_equal(back, "\xef\xbf\xbd", 3);
        }
    }
}

/* Ensure valid UTF-8 text of all byte lengths, with every ASCII byte and
 * U+2028/U+2029 (escaped for JavaScript), parses back unchanged. */
static void test_json_utf8_text_round_trips(void **state)
{
    fixture_t    *f = *state;
    unsigned char text[512], back[1024];
    size_t        n = 0;

    for (unsigned b = 0; b < 128; b++) {
        text[n++] = (unsigned char) b;
    }
    memcpy(text + n, "\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80"
                     "\xf4\x8f\xbf\xbf\xe2\x80\xa8\xe2\x80\xa9", 24);
    n += 24;

    pushq_json_msg_t m = msg("", 1, "c");
    m.data = text;
    m.len = n;
    size_t w = pushq_json_message(f->buf, sizeof(f->buf), &m);
    f->buf[w] = '\0';
    assert_non_null(strstr(f->buf, "\\u2028\\u2029\""));
    assert_true(pushq_utf8_valid(f->buf, w));

    /* 4-byte sequences are copied raw: decode them as bytes */
    long k = msg_value(f->buf, back);
    assert_int_equal(k, (long) n);
    assert_memory_equal(back, text, n);
}

/* Ensure invalid UTF-8 inside text becomes U+FFFD per bad byte while the
 * valid parts are kept: the answer stays valid UTF-8 JSON. */
static void test_json_invalid_utf8_replaced(void **state)
{
    fixture_t       *f = *state;
    pushq_json_msg_t m = msg("a\xed\xa0\x80" "b\xe2\x82" "c\xce\xba", 1, "c");
    size_t           w = pushq_json_message(f->buf, sizeof(f->buf), &m);

    f->buf[w] = '\0';
    assert_non_null(strstr(f->buf, "\"msg\": \"a\\ufffd\\ufffd\\ufffdb"
                                   "\\ufffd\\ufffdc\xce\xba\""));
    assert_true(pushq_utf8_valid(f->buf, w));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_json_message_exact_spec_shape),
        T(test_json_binary_message_base64),
        T(test_json_empty_message_null_data),
        T(test_json_batch_exact_spec_shape),
        T(test_json_timeout_exact_spec_shape),
        T(test_json_published_and_error_exact),
        T(test_json_stats_shapes),
        T(test_json_small_buffer_returns_needed),
        T(test_json_all_256_bytes_exact_escapes),
        T(test_json_utf8_text_round_trips),
        T(test_json_invalid_utf8_replaced),
#undef T
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
