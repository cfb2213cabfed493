/*
 * test_ws_parser.c -- the WebSocket frame parser (RFC 6455 5, 7.4, 8.1),
 * through pushq.h: every rule, every valid message cut at every byte
 * boundary, every violation with its close code, and the same rules on
 * whole frames (pushq_ws_parser_feed_frame, the CivetWeb path).
 * Autobahn TestSuite case numbers are given where a case covers the rule.
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

/* ---- helpers ----------------------------------------------------------- */

#define MAX_EVENTS 16

typedef struct {
    pushq_ws_event_type_t type;
    unsigned char        *data;     /* malloc'd copy */
    size_t                len;
    uint16_t              close_code;
    pushq_status_t        status;
    const char           *reason;
} rec_t;

typedef struct {
    pushq_ws_parser_t *p;
    rec_t              ev[MAX_EVENTS];
    size_t             n;
} fixture_t;

static void fx_clear(fixture_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->ev[i].data);
    }
    f->n = 0;
}

static void fx_reset(fixture_t *f, uint64_t max)
{
    fx_clear(f);
    pushq_ws_parser_destroy(f->p);
    f->p = pushq_ws_parser_create(max);
    assert_non_null(f->p);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return -1;
    }
    f->p = pushq_ws_parser_create(1u << 20);
    if (f->p == NULL) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    fx_clear(f);
    pushq_ws_parser_destroy(f->p);
    free(f);
    return 0;
}

static void record(fixture_t *f, const pushq_ws_event_t *ev)
{
    assert_true(f->n < MAX_EVENTS);
    rec_t *r = &f->ev[f->n++];
    r->type = ev->type;
    r->len = ev->len;
    r->close_code = ev->close_code;
    r->status = ev->status;
    r->reason = ev->reason;
    r->data = malloc(ev->len + 1);
    assert_non_null(r->data);
    if (ev->len != 0) {
        assert_non_null(ev->data);
        memcpy(r->data, ev->data, ev->len);
    }
    if (ev->type == PUSHQ_WS_ERROR) {
        assert_non_null(ev->reason);
        assert_true(strlen(ev->reason) <= 123);
    }
}

/* Feeds b[0..n) as the adapters do: again with the rest after each event;
 * stops after CLOSE or ERROR.  Returns the bytes consumed. */
static size_t feed(fixture_t *f, const unsigned char *b, size_t n)
{
    size_t total = 0;

    for (;;) {
        pushq_ws_event_t ev;
        size_t used = pushq_ws_parser_feed(f->p, b + total, n - total, &ev);

        assert_true(used <= n - total);
        total += used;
        if (ev.type == PUSHQ_WS_NEED_MORE) {
            assert_int_equal(total, n);     /* NEED_MORE: all consumed */
            return total;
        }
        record(f, &ev);
        if (ev.type == PUSHQ_WS_CLOSE || ev.type == PUSHQ_WS_ERROR) {
            return total;
        }
        if (total == n) {
            return total;
        }
    }
}

/* Feeds b in pieces of `step` bytes. */
static void feed_steps(fixture_t *f, const unsigned char *b, size_t n,
                       size_t step)
{
    for (size_t i = 0; i < n; i += step) {
        size_t k = n - i < step ? n - i : step;
        size_t before = f->n;
        feed(f, b + i, k);
        if (f->n > before && (f->ev[f->n - 1].type == PUSHQ_WS_CLOSE
                              || f->ev[f->n - 1].type == PUSHQ_WS_ERROR))
        {
            return;
        }
    }
}

/* A masked client frame: b0 (FIN/RSV/opcode), payload, mask; the length
 * in the shortest form unless `len_form` forces 7, 16 or 64 bits. */
static unsigned char mask_[4] = {0x37, 0xfa, 0x21, 0x3d};

static size_t frame_ex(unsigned char *out, unsigned b0, const void *payload,
                       size_t len, int masked, int len_form)
{
    const unsigned char *mask = mask_;
    const unsigned char *p = payload;
    size_t o = 0;

    if (len_form == 0) {
        len_form = len <= 125 ? 7 : len <= 0xFFFF ? 16 : 64;
    }
    out[o++] = (unsigned char) b0;
    if (len_form == 7) {
        out[o++] = (unsigned char) ((masked ? 0x80 : 0) | len);
    } else if (len_form == 16) {
        out[o++] = (unsigned char) ((masked ? 0x80 : 0) | 126);
        out[o++] = (unsigned char) (len >> 8);
        out[o++] = (unsigned char) len;
    } else {
        out[o++] = (unsigned char) ((masked ? 0x80 : 0) | 127);
        for (int i = 7; i >= 0; i--) {
            out[o++] = (unsigned char) ((uint64_t) len >> (8 * i));
        }
    }
    if (masked) {
        memcpy(out + o, mask, 4);
        o += 4;
    }
    for (size_t i = 0; i < len; i++) {
        out[o + i] = masked ? (unsigned char) (p[i] ^ mask[i & 3]) : p[i];
    }
    return o + len;
}

static size_t frame(unsigned char *out, unsigned b0, const void *payload,
                    size_t len)
{
    return frame_ex(out, b0, payload, len, 1, 0);
}

static void assert_event(const rec_t *r, pushq_ws_event_type_t type,
                         const void *data, size_t len)
{
    assert_int_equal(r->type, type);
    assert_int_equal(r->len, len);
    if (len != 0) {
        assert_memory_equal(r->data, data, len);
    }
}

static void assert_error(const fixture_t *f, uint16_t code)
{
    assert_true(f->n >= 1);
    const rec_t *r = &f->ev[f->n - 1];
    assert_int_equal(r->type, PUSHQ_WS_ERROR);
    assert_int_equal(r->close_code, code);
    assert_int_equal(pushq_status_close_code(r->status), code);
}

/* Feeds the whole buffer at once and expects one error with `code`. */
static void expect_error(fixture_t *f, const unsigned char *b, size_t n,
                         uint16_t code)
{
    fx_clear(f);
    feed(f, b, n);
    assert_int_equal(f->n, 1);
    assert_error(f, code);
}

/* ---- valid input ------------------------------------------------------- */

/* Ensure the masked "Hello" of RFC 6455 5.7 gives one text message. */
static void test_ws_parser_rfc_example_masked_hello_text(void **state)
{
    fixture_t *f = *state;
    static const unsigned char b[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                      0x7f, 0x9f, 0x4d, 0x51, 0x58};

    assert_int_equal(feed(f, b, sizeof(b)), sizeof(b));
    assert_int_equal(f->n, 1);
    assert_event(&f->ev[0], PUSHQ_WS_TEXT, "Hello", 5);
}

/* A stream of frames and the events it must give, whatever the cuts. */
typedef struct {
    const char   *name;
    unsigned char bytes[2048];
    size_t        len;
    rec_t         want[8];
    size_t        nwant;
} script_t;

static void add(script_t *s, unsigned b0, const void *p, size_t len)
{
    s->len += frame(s->bytes + s->len, b0, p, len);
}

static void want(script_t *s, pushq_ws_event_type_t t, const void *p,
                 size_t len, uint16_t code)
{
    rec_t *r = &s->want[s->nwant++];
    r->type = t;
    r->data = (unsigned char *) p;
    r->len = len;
    r->close_code = code;
}

static size_t make_scripts(script_t *s)
{
    static unsigned char big[1000];
    size_t n = 0;

    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = (unsigned char) (i * 7);
    }

    /* RFC 6455 5.6 / Autobahn 1.1.2: one text frame */
    s[n].name = "text";
    add(&s[n], 0x81, "Hello", 5);
    want(&s[n], PUSHQ_WS_TEXT, "Hello", 5, 0);
    n++;

    /* Autobahn 1.1.1 / 1.2.1: empty text and binary messages */
    s[n].name = "empty";
    add(&s[n], 0x81, "", 0);
    add(&s[n], 0x82, "", 0);
    want(&s[n], PUSHQ_WS_TEXT, "", 0, 0);
    want(&s[n], PUSHQ_WS_BINARY, "", 0, 0);
    n++;

    /* RFC 6455 5.7: a fragmented text message "Hel" + "lo" */
    s[n].name = "fragments";
    add(&s[n], 0x01, "Hel", 3);
    add(&s[n], 0x80, "lo", 2);
    want(&s[n], PUSHQ_WS_TEXT, "Hello", 5, 0);
    n++;

    /* Autobahn 5.6 / 5.7: a ping between fragments is answered at once */
    s[n].name = "ping between fragments";
    add(&s[n], 0x01, "Hel", 3);
    add(&s[n], 0x89, "ping!", 5);
    add(&s[n], 0x80, "lo", 2);
    want(&s[n], PUSHQ_WS_PING, "ping!", 5, 0);
    want(&s[n], PUSHQ_WS_TEXT, "Hello", 5, 0);
    n++;

    /* Autobahn 5.8 (with pong): empty fragments, a pong in between */
    s[n].name = "empty fragments";
    add(&s[n], 0x02, "", 0);
    add(&s[n], 0x8A, "", 0);
    add(&s[n], 0x00, "ab", 2);
    add(&s[n], 0x80, "", 0);
    want(&s[n], PUSHQ_WS_PONG, "", 0, 0);
    want(&s[n], PUSHQ_WS_BINARY, "ab", 2, 0);
    n++;

    /* Autobahn 6.2.3 / 6.2.4: UTF-8 cut inside characters across
     * fragments: "κόσμε" */
    s[n].name = "utf8 across fragments";
    {
        static const char k[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
        add(&s[n], 0x01, k, 1);
        add(&s[n], 0x00, k + 1, 3);
        add(&s[n], 0x00, k + 4, 6);
        add(&s[n], 0x80, k + 10, 1);
        want(&s[n], PUSHQ_WS_TEXT, k, 11, 0);
    }
    n++;

    /* Autobahn 6.2.x: every code point class, including U+10FFFF */
    s[n].name = "utf8 classes";
    {
        static const char u[] = "a\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf"
                                "\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80"
                                "\xf4\x8f\xbf\xbf";
        add(&s[n], 0x81, u, sizeof(u) - 1);
        want(&s[n], PUSHQ_WS_TEXT, u, sizeof(u) - 1, 0);
    }
    n++;

    /* Autobahn 1.2.x: 16-bit length, binary */
    s[n].name = "binary 16-bit length";
    add(&s[n], 0x82, big, 1000);
    want(&s[n], PUSHQ_WS_BINARY, big, 1000, 0);
    n++;

    /* Autobahn 2.2-2.4: ping with payload, 125 bytes; then pong */
    s[n].name = "ping 125";
    add(&s[n], 0x89, big, 125);
    add(&s[n], 0x8A, "x", 1);
    want(&s[n], PUSHQ_WS_PING, big, 125, 0);
    want(&s[n], PUSHQ_WS_PONG, "x", 1, 0);
    n++;

    /* RFC 6455 5.5.1 / Autobahn 7.1.1: text then close 1000 "bye" */
    s[n].name = "close with reason";
    add(&s[n], 0x81, "hi", 2);
    add(&s[n], 0x88, "\x03\xe8" "bye", 5);
    want(&s[n], PUSHQ_WS_TEXT, "hi", 2, 0);
    want(&s[n], PUSHQ_WS_CLOSE, "bye", 3, 1000);
    n++;

    /* Autobahn 7.3.1: close without a body */
    s[n].name = "close empty";
    add(&s[n], 0x88, "", 0);
    want(&s[n], PUSHQ_WS_CLOSE, "", 0, 0);
    n++;

    /* Autobahn 7.7.x: application code 4999 with a UTF-8 reason */
    s[n].name = "close 4999";
    add(&s[n], 0x88, "\x13\x87" "\xce\xba", 4);
    want(&s[n], PUSHQ_WS_CLOSE, "\xce\xba", 2, 4999);
    n++;

    /* Autobahn 5.x with a close: a close between fragments ends it all */
    s[n].name = "close between fragments";
    add(&s[n], 0x01, "Hel", 3);
    add(&s[n], 0x88, "\x03\xe8", 2);
    add(&s[n], 0x80, "lo", 2);
    want(&s[n], PUSHQ_WS_CLOSE, "", 0, 1000);
    n++;

    /* Autobahn 5.3-5.5: a fragmented binary message, many fragments */
    s[n].name = "binary fragments";
    add(&s[n], 0x02, big, 10);
    add(&s[n], 0x00, big + 10, 126);
    add(&s[n], 0x00, big + 136, 0);
    add(&s[n], 0x80, big + 136, 64);
    want(&s[n], PUSHQ_WS_BINARY, big, 200, 0);
    n++;

    return n;
}

static void check_script(fixture_t *f, const script_t *s)
{
    if (f->n != s->nwant) {
        fprintf(stderr, "script %s: %zu events, want %zu\n", s->name, f->n,
                s->nwant);
    }
    assert_int_equal(f->n, s->nwant);
    for (size_t i = 0; i < s->nwant; i++) {
        assert_event(&f->ev[i], s->want[i].type, s->want[i].data,
                     s->want[i].len);
        if (s->want[i].type == PUSHQ_WS_CLOSE) {
            assert_int_equal(f->ev[i].close_code, s->want[i].close_code);
        }
    }
}

static script_t scripts_[16];

/* Ensure every valid stream gives the same events when cut into two
 * pieces at every byte boundary (uWS fuzzing/WebSocket.cpp makeChunked). */
static void test_ws_parser_every_split_same_events(void **state)
{
    fixture_t *f = *state;
    size_t     ns;

    memset(scripts_, 0, sizeof(scripts_));
    ns = make_scripts(scripts_);

    for (size_t s = 0; s < ns; s++) {
        const script_t *sc = &scripts_[s];
        for (size_t cut = 0; cut <= sc->len; cut++) {
            fx_reset(f, 1u << 20);
            feed(f, sc->bytes, cut);
            if (f->n == 0 || (f->ev[f->n - 1].type != PUSHQ_WS_CLOSE)) {
                feed(f, sc->bytes + cut, sc->len - cut);
            }
            check_script(f, sc);
        }
    }
}

/* Ensure every valid stream gives the same events fed 1, 2, 3, 5 and 7
 * bytes at a time. */
static void test_ws_parser_small_chunks_same_events(void **state)
{
    fixture_t *f = *state;
    static const size_t steps[] = {1, 2, 3, 5, 7};
    size_t     ns;

    memset(scripts_, 0, sizeof(scripts_));
    ns = make_scripts(scripts_);

    for (size_t s = 0; s < ns; s++) {
        for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
            fx_reset(f, 1u << 20);
            feed_steps(f, scripts_[s].bytes, scripts_[s].len, steps[k]);
            check_script(f, &scripts_[s]);
        }
    }
}

/* Ensure a 64-bit length (RFC 6455 5.2; Autobahn 1.1.6, 65536 bytes) is
 * read whole, in one piece, byte by byte through the header, and cut at
 * sample points of the payload. */
static void test_ws_parser_64bit_length_message(void **state)
{
    fixture_t     *f = *state;
    size_t         len = 65536 + 3;
    unsigned char *msg = malloc(len);
    unsigned char *b = malloc(len + 14);
    static const size_t cuts[] = {0, 1, 2, 3, 5, 9, 10, 11, 13, 14, 15, 100,
                                  65540, 65550, 65552};

    assert_non_null(msg);
    assert_non_null(b);
    for (size_t i = 0; i < len; i++) {
        msg[i] = (unsigned char) (i ^ (i >> 8));
    }
    size_t n = frame(b, 0x82, msg, len);
    assert_int_equal(n, len + 14);

    for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
        fx_reset(f, 1u << 20);
        feed(f, b, cuts[c]);
        feed(f, b + cuts[c], n - cuts[c]);
        assert_int_equal(f->n, 1);
        assert_event(&f->ev[0], PUSHQ_WS_BINARY, msg, len);
    }

    fx_reset(f, 1u << 20);
    feed_steps(f, b, n, 1);
    assert_int_equal(f->n, 1);
    assert_event(&f->ev[0], PUSHQ_WS_BINARY, msg, len);
    free(msg);
    free(b);
}

/* Ensure a close event is final: later calls consume nothing and repeat
 * it (pushq.h contract). */
static void test_ws_parser_after_close_repeats_close(void **state)
{
    fixture_t       *f = *state;
    unsigned char    b[64];
    pushq_ws_event_t ev;
    size_t           n = frame(b, 0x88, "\x03\xe9", 2);

    n += frame(b + n, 0x81, "late", 4);
    assert_int_equal(feed(f, b, n), 6 + 2);
    assert_int_equal(f->n, 1);
    assert_int_equal(f->ev[0].type, PUSHQ_WS_CLOSE);
    assert_int_equal(f->ev[0].close_code, 1001);

    assert_int_equal(pushq_ws_parser_feed(f->p, b + 8, n - 8, &ev), 0);
    assert_int_equal(ev.type, PUSHQ_WS_CLOSE);
    assert_int_equal(ev.close_code, 1001);
}

/* Ensure an error is final too: later calls consume nothing and repeat
 * the same close code. */
static void test_ws_parser_after_error_repeats_error(void **state)
{
    fixture_t       *f = *state;
    unsigned char    b[64];
    pushq_ws_event_t ev;
    size_t           n = frame(b, 0xC1, "x", 1);     /* RSV1 */

    expect_error(f, b, n, 1002);
    assert_int_equal(pushq_ws_parser_feed(f->p, b, n, &ev), 0);
    assert_int_equal(ev.type, PUSHQ_WS_ERROR);
    assert_int_equal(ev.close_code, 1002);
    pushq_ws_parser_feed_frame(f->p, 0x81, "x", 1, &ev);
    assert_int_equal(ev.type, PUSHQ_WS_ERROR);
}

/* ---- protocol errors (1002) ------------------------------------------ */

/* Ensure RSV1, RSV2 and RSV3 each close with 1002 (RFC 6455 5.2;
 * Autobahn 3.1-3.7), seen from the first byte alone. */
static void test_ws_parser_rsv_bits_close_1002(void **state)
{
    fixture_t    *f = *state;
    static const unsigned rsv[] = {0x40, 0x20, 0x10, 0x70};

    for (size_t i = 0; i < 4; i++) {
        unsigned char b[1] = {(unsigned char) (0x81 | rsv[i])};
        fx_reset(f, 1u << 20);
        expect_error(f, b, 1, 1002);
        assert_int_equal(f->ev[0].status, PUSHQ_EPROTO);
    }
}

/* Ensure reserved opcodes 3-7 and B-F close with 1002 (RFC 6455 5.2;
 * Autobahn 4.1.x, 4.2.x). */
static void test_ws_parser_reserved_opcode_close_1002(void **state)
{
    fixture_t *f = *state;
    static const unsigned ops[] = {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF};

    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        unsigned char b[16];
        size_t        n = frame(b, 0x80 | ops[i], "", 0);
        fx_reset(f, 1u << 20);
        expect_error(f, b, n, 1002);
    }
}

/* Ensure an unmasked client frame closes with 1002 (RFC 6455 5.1). */
static void test_ws_parser_unmasked_close_1002(void **state)
{
    fixture_t    *f = *state;
    unsigned char b[16];
    size_t        n = frame_ex(b, 0x81, "Hello", 5, 0, 0);

    expect_error(f, b, n, 1002);
}

/* Ensure control frames over 125 bytes close with 1002, for a 16-bit
 * length of any value (RFC 6455 5.5; Autobahn 2.5). */
static void test_ws_parser_control_too_long_close_1002(void **state)
{
    fixture_t           *f = *state;
    static unsigned char p[200];
    unsigned char        b[256];
    static const unsigned ops[] = {0x88, 0x89, 0x8A};

    for (size_t i = 0; i < 3; i++) {
        size_t n = frame(b, ops[i], p, 126);
        fx_reset(f, 1u << 20);
        expect_error(f, b, n, 1002);
        /* the header alone is enough */
        fx_reset(f, 1u << 20);
        expect_error(f, b, 2, 1002);
    }
    /* a 16-bit length that says 5 is refused for not being minimal
     * before anything else */
    fx_reset(f, 1u << 20);
    size_t n = frame_ex(b, 0x89, p, 5, 1, 16);
    expect_error(f, b, n, 1002);
}

/* Ensure a fragmented control frame closes with 1002 (RFC 6455 5.5;
 * Autobahn 5.1, 5.2). */
static void test_ws_parser_control_fragmented_close_1002(void **state)
{
    fixture_t    *f = *state;
    unsigned char b[16];
    static const unsigned ops[] = {0x08, 0x09, 0x0A};

    for (size_t i = 0; i < 3; i++) {
        size_t n = frame(b, ops[i], "", 0);
        fx_reset(f, 1u << 20);
        expect_error(f, b, n, 1002);
    }
}

/* Ensure a continuation frame with no message to continue closes with
 * 1002 (RFC 6455 5.4; Autobahn 5.9-5.12), also after a complete one. */
static void test_ws_parser_continuation_without_start_close_1002(void **state)
{
    fixture_t    *f = *state;
    unsigned char b[64];
    size_t        n;

    n = frame(b, 0x80, "x", 1);
    expect_error(f, b, n, 1002);

    fx_reset(f, 1u << 20);
    n = frame(b, 0x81, "a", 1);
    n += frame(b + n, 0x00, "b", 1);
    feed(f, b, n);
    assert_int_equal(f->n, 2);
    assert_event(&f->ev[0], PUSHQ_WS_TEXT, "a", 1);
    assert_error(f, 1002);
}

/* Ensure a new text or binary frame inside a fragmented message closes
 * with 1002 (RFC 6455 5.4; Autobahn 5.17-5.20). */
static void test_ws_parser_data_inside_fragmented_close_1002(void **state)
{
    fixture_t    *f = *state;
    unsigned char b[64];
    static const unsigned ops[] = {0x81, 0x82, 0x01, 0x02};

    for (size_t i = 0; i < 4; i++) {
        size_t n = frame(b, 0x01, "a", 1);
        n += frame(b + n, ops[i], "b", 1);
        fx_reset(f, 1u << 20);
        expect_error(f, b, n, 1002);
    }
}

/* Ensure lengths that are not minimally encoded close with 1002
 * (RFC 6455 5.2: "the minimal number of bytes MUST be used"). */
static void test_ws_parser_length_not_minimal_close_1002(void **state)
{
    fixture_t           *f = *state;
    static unsigned char p[70000];
    static unsigned char b[70100];
    size_t               n;

    n = frame_ex(b, 0x82, p, 0, 1, 16);     /* 16-bit 0 */
    expect_error(f, b, n, 1002);
    fx_reset(f, 1u << 20);
    n = frame_ex(b, 0x82, p, 125, 1, 16);   /* 16-bit 125 */
    expect_error(f, b, n, 1002);
    fx_reset(f, 1u << 20);
    n = frame_ex(b, 0x82, p, 126, 1, 64);   /* 64-bit 126 */
    expect_error(f, b, n, 1002);
    fx_reset(f, 1u << 20);
    n = frame_ex(b, 0x82, p, 65535, 1, 64); /* 64-bit 65535 */
    expect_error(f, b, 10, 1002);           /* header's length suffices */

    /* the boundaries themselves are fine */
    fx_reset(f, 1u << 20);
    n = frame_ex(b, 0x82, p, 126, 1, 16);
    feed(f, b, n);
    assert_event(&f->ev[0], PUSHQ_WS_BINARY, p, 126);
    fx_reset(f, 1u << 20);
    n = frame_ex(b, 0x82, p, 65536, 1, 64);
    feed(f, b, n);
    assert_event(&f->ev[0], PUSHQ_WS_BINARY, p, 65536);
}

/* Ensure a 64-bit length with its most significant bit set closes with
 * 1002 (RFC 6455 5.2), from the header alone. */
static void test_ws_parser_length_top_bit_close_1002(void **state)
{
    fixture_t    *f = *state;
    unsigned char b[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1};

    expect_error(f, b, sizeof(b), 1002);
    assert_string_equal(f->ev[0].reason,
        "frame: 64-bit payload length with the top bit set (RFC 6455 5.2)");
}

/* Ensure a close frame with a 1-byte body closes with 1002
 * (RFC 6455 5.5.1; Autobahn 7.3.2). */
static void test_ws_parser_close_one_byte_close_1002(void **state)
{
    fixture_t    *f = *state;
    unsigned char b[16];
    size_t        n = frame(b, 0x88, "\x03", 1);

    expect_error(f, b, n, 1002);
}

/* Ensure invalid close codes close with 1002 and valid ones are accepted
 * (RFC 6455 7.4; Autobahn 7.7.x valid, 7.9.x invalid). */
static void test_ws_parser_close_codes_valid_or_1002(void **state)
{
    fixture_t *f = *state;
    static const unsigned bad[] = {0, 1, 999, 1004, 1005, 1006, 1015, 1016,
                                   1100, 2000, 2999, 5000, 65535};
    static const unsigned good[] = {1000, 1001, 1002, 1003, 1007, 1008,
                                    1009, 1010, 1011, 1012, 1013, 1014,
                                    3000, 3999, 4000, 4999};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned char p[2] = {(unsigned char) (bad[i] >> 8),
                              (unsigned char) bad[i]};
        unsigned char b[16];
        size_t        n = frame(b, 0x88, p, 2);
        fx_reset(f, 1u << 20);
        expect_error(f, b, n, 1002);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        unsigned char p[2] = {(unsigned char) (good[i] >> 8),
                              (unsigned char) good[i]};
        unsigned char b[16];
        size_t        n = frame(b, 0x88, p, 2);
        fx_reset(f, 1u << 20);
        feed(f, b, n);
        assert_int_equal(f->n, 1);
        assert_int_equal(f->ev[0].type, PUSHQ_WS_CLOSE);
        assert_int_equal(f->ev[0].close_code, good[i]);
    }
}

/* ---- UTF-8 (1007) ----------------------------------------------------- */

/* Ensure a close reason that is not UTF-8 closes with 1007
 * (RFC 6455 5.5.1; Autobahn 7.5.1). */
static void test_ws_parser_close_reason_bad_utf8_close_1007(void **state)
{
    fixture_t    *f = *state;
    unsigned char b[32];
    size_t        n = frame(b, 0x88, "\x03\xe8" "a\xed\xa0\x80", 6);

    expect_error(f, b, n, 1007);
}

/* Invalid sequences (Autobahn 6.3-6.21 classes) and how many bytes of
 * them are valid before the offending byte. */
static const struct {
    const char *s;
    size_t      len;
    size_t      bad_at;     /* index of the first offending byte */
} bad_utf8_[] = {
    {"\x80", 1, 0},                         /* lone continuation */
    {"\xbf", 1, 0},
    {"\xc0\xaf", 2, 0},                     /* overlong '/' (6.9.x) */
    {"\xc1\xbf", 2, 0},
    {"\xe0\x80\xaf", 3, 1},                 /* overlong 3-byte */
    {"\xe0\x9f\xbf", 3, 1},
    {"\xf0\x80\x80\xaf", 4, 1},             /* overlong 4-byte */
    {"\xf0\x8f\xbf\xbf", 4, 1},
    {"\xed\xa0\x80", 3, 1},                 /* surrogate D800 (6.20.x) */
    {"\xed\xbf\xbf", 3, 1},                 /* surrogate DFFF */
    {"\xed\xa0\x80\xed\xb0\x80", 6, 1},     /* surrogate pair (6.21.x) */
    {"\xf4\x90\x80\x80", 4, 1},             /* U+110000 (6.3.x) */
    {"\xf5\x80\x80\x80", 4, 0},             /* F5-FF (6.6.x) */
    {"\xf8\x88\x80\x80\x80", 5, 0},
    {"\xfe", 1, 0},
    {"\xff", 1, 0},
    {"a\xc2" "b", 3, 2},                    /* truncated then ASCII */
    {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80" "edited", 20,
     12},                                   /* Autobahn 6.4.1 */
};

/* Ensure each invalid sequence in a text message closes with 1007
 * (RFC 6455 8.1; Autobahn 6.3-6.21), at every cut. */
static void test_ws_parser_text_bad_utf8_close_1007(void **state)
{
    fixture_t *f = *state;

    for (size_t i = 0; i < sizeof(bad_utf8_) / sizeof(bad_utf8_[0]); i++) {
        unsigned char b[64];
        size_t        n = frame(b, 0x81, bad_utf8_[i].s, bad_utf8_[i].len);
        for (size_t cut = 0; cut <= n; cut++) {
            fx_reset(f, 1u << 20);
            feed(f, b, cut);
            if (f->n == 0) {
                feed(f, b + cut, n - cut);
            }
            assert_int_equal(f->n, 1);
            assert_error(f, 1007);
            assert_int_equal(f->ev[0].status, PUSHQ_EUTF8);
        }
    }
}

/* Ensure the error comes at the first bad byte: the payload up to and
 * including it is enough, before the frame ends (Autobahn 6.4.x "fail
 * fast"). */
static void test_ws_parser_text_bad_utf8_fails_fast(void **state)
{
    fixture_t *f = *state;

    for (size_t i = 0; i < sizeof(bad_utf8_) / sizeof(bad_utf8_[0]); i++) {
        unsigned char b[64];
        size_t        n = frame(b, 0x81, bad_utf8_[i].s, bad_utf8_[i].len);
        size_t        hdr = n - bad_utf8_[i].len;
        size_t        upto = hdr + bad_utf8_[i].bad_at;

        /* everything before the bad byte: no event */
        fx_reset(f, 1u << 20);
        feed(f, b, upto);
        assert_int_equal(f->n, 0);
        /* the bad byte: 1007 at once, one byte at a time */
        feed(f, b + upto, 1);
        assert_int_equal(f->n, 1);
        assert_error(f, 1007);
    }
}

/* Ensure UTF-8 is checked across fragments: a bad byte in a later
 * fragment fails at once, and a message ending inside a character fails
 * at its last fragment (RFC 6455 8.1; Autobahn 6.4.2, 6.4.4). */
static void test_ws_parser_fragmented_bad_utf8_close_1007(void **state)
{
    fixture_t    *f = *state;
    unsigned char b[64];
    size_t        n;

    n = frame(b, 0x01, "\xce\xba\xe1", 3);      /* ends mid-character */
    n += frame(b + n, 0x00, "\xbd\xb9", 2);     /* completes it: fine */
    n += frame(b + n, 0x00, "\xed", 1);
    size_t before = n;
    n += frame(b + n, 0x00, "\xa0", 1);         /* surrogate: fails */
    feed(f, b, before);
    assert_int_equal(f->n, 0);
    feed(f, b + before, n - before);
    assert_error(f, 1007);

    /* a final fragment that leaves a character incomplete */
    fx_reset(f, 1u << 20);
    n = frame(b, 0x01, "ok", 2);
    n += frame(b + n, 0x80, "\xe2\x82", 2);
    expect_error(f, b, n, 1007);

    /* binary is not checked */
    fx_reset(f, 1u << 20);
    n = frame(b, 0x02, "\xff", 1);
    n += frame(b + n, 0x80, "\xed\xa0\x80", 3);
    feed(f, b, n);
    assert_event(&f->ev[0], PUSHQ_WS_BINARY, "\xff\xed\xa0\x80", 4);
}

/* ---- size (1009) ------------------------------------------------------ */

/* Ensure a frame over max_message_size closes with 1009 from its header
 * alone, before the payload is sent (RFC 6455 10.4; Autobahn 9.x with a
 * small limit). */
static void test_ws_parser_too_big_header_close_1009(void **state)
{
    fixture_t    *f = *state;
    unsigned char b[16];

    fx_reset(f, 100);
    b[0] = 0x82;
    b[1] = 0x80 | 126;
    b[2] = 0;
    b[3] = 200;
    expect_error(f, b, 4, 1009);
    assert_int_equal(f->ev[0].status, PUSHQ_ETOOBIG);

    /* a 64-bit length of 2^62: refused without allocating */
    fx_reset(f, 100);
    unsigned char h[10] = {0x82, 0xFF, 0x40, 0, 0, 0, 0, 0, 0, 0};
    expect_error(f, h, sizeof(h), 1009);

    /* exactly the limit is fine */
    fx_reset(f, 5);
    size_t n = frame(b, 0x81, "Hello", 5);
    feed(f, b, n);
    assert_event(&f->ev[0], PUSHQ_WS_TEXT, "Hello", 5);
}

/* Ensure the limit applies to the whole message: fragments adding up to
 * more close with 1009 at the header of the fragment that passes it. */
static void test_ws_parser_too_big_fragments_close_1009(void **state)
{
    fixture_t    *f = *state;
    unsigned char b[64];
    size_t        n, first;

    fx_reset(f, 8);
    n = frame(b, 0x01, "Hello", 5);
    n += frame(b + n, 0x89, "p", 1);        /* control: not counted */
    first = n;
    n += frame(b + n, 0x80, "Worl", 4);
    feed(f, b, first + 2);                  /* up to the second header */
    assert_int_equal(f->n, 2);
    assert_int_equal(f->ev[0].type, PUSHQ_WS_PING);
    assert_error(f, 1009);

    /* 5 + 3 = 8 fits */
    fx_reset(f, 8);
    n = frame(b, 0x01, "Hello", 5);
    n += frame(b + n, 0x80, "Wor", 3);
    feed(f, b, n);
    assert_event(&f->ev[0], PUSHQ_WS_TEXT, "HelloWor", 8);
}

/* ---- feed_frame: whole frames from the host (CivetWeb) ---------------- */

static void ff(fixture_t *f, unsigned b0, const void *p, size_t len)
{
    pushq_ws_event_t ev;
    pushq_ws_parser_feed_frame(f->p, b0, p, len, &ev);
    if (ev.type != PUSHQ_WS_NEED_MORE) {
        record(f, &ev);
    }
}

/* Ensure whole frames are reassembled with a ping between fragments
 * (RFC 6455 5.4; Autobahn 5.6). */
static void test_ws_parser_feed_frame_reassembles(void **state)
{
    fixture_t *f = *state;

    ff(f, 0x01, "Hel", 3);
    assert_int_equal(f->n, 0);
    ff(f, 0x89, "p", 1);
    ff(f, 0x80, "lo", 2);
    ff(f, 0x82, "\x00\xff", 2);
    ff(f, 0x88, "\x03\xe8", 2);
    assert_int_equal(f->n, 4);
    assert_event(&f->ev[0], PUSHQ_WS_PING, "p", 1);
    assert_event(&f->ev[1], PUSHQ_WS_TEXT, "Hello", 5);
    assert_event(&f->ev[2], PUSHQ_WS_BINARY, "\x00\xff", 2);
    assert_int_equal(f->ev[3].type, PUSHQ_WS_CLOSE);
    assert_int_equal(f->ev[3].close_code, 1000);
}

/* Ensure feed_frame applies the RSV, opcode, control, continuation, close,
 * UTF-8 and size rules with their close codes (RFC 6455 5.2-5.5, 7.4,
 * 8.1). */
static void test_ws_parser_feed_frame_violations_close_codes(void **state)
{
    fixture_t *f = *state;
    static unsigned char big[200];
    static const struct {
        unsigned    b0;
        const void *p;
        size_t      len;
        uint16_t    code;
    } cases[] = {
        {0xC1, "x", 1, 1002},               /* RSV1 (CivetWeb passes it) */
        {0x8B, "", 0, 1002},                /* reserved opcode */
        {0x83, "", 0, 1002},
        {0x80, "x", 1, 1002},               /* continuation, no start */
        {0x09, "", 0, 1002},                /* fragmented ping */
        {0x89, big, 126, 1002},             /* ping over 125 */
        {0x88, "\x03", 1, 1002},            /* 1-byte close */
        {0x88, "\x03\xe7", 2, 1002},        /* close 999 */
        {0x88, "\x03\xe8\xff", 3, 1007},    /* close reason not UTF-8 */
        {0x81, "\xff\xfe", 2, 1007},        /* text not UTF-8 */
        {0x81, "\xe2\x82", 2, 1007},        /* text cut in a character */
        {0x82, big, 101, 1009},             /* over the limit (100) */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fx_reset(f, 100);
        ff(f, cases[i].b0, cases[i].p, cases[i].len);
        assert_int_equal(f->n, 1);
        assert_error(f, cases[i].code);
    }

    /* a text frame inside a fragmented message */
    fx_reset(f, 100);
    ff(f, 0x01, "a", 1);
    ff(f, 0x81, "b", 1);
    assert_error(f, 1002);

    /* fragments over the limit together */
    fx_reset(f, 100);
    ff(f, 0x02, big, 60);
    ff(f, 0x80, big, 41);
    assert_error(f, 1009);
}

/* Ensure an event consumes exactly its own frame: the bytes after it
 * are left for the next call (pushq.h: "call again with the rest"). */
static void test_ws_parser_event_consumes_exactly_its_frame(void **state)
{
    fixture_t       *f = *state;
    unsigned char    b[64];
    pushq_ws_event_t ev;
    size_t           a = frame(b, 0x81, "one", 3);
    size_t           n = a + frame(b + a, 0x89, "two", 3);

    assert_int_equal(pushq_ws_parser_feed(f->p, b, n, &ev), a);
    assert_int_equal(ev.type, PUSHQ_WS_TEXT);
    assert_int_equal(ev.len, 3);
    assert_memory_equal(ev.data, "one", 3);
    assert_int_equal(pushq_ws_parser_feed(f->p, b + a, n - a, &ev), n - a);
    assert_int_equal(ev.type, PUSHQ_WS_PING);
    assert_memory_equal(ev.data, "two", 3);
    assert_int_equal(pushq_ws_parser_feed(f->p, b + n, 0, &ev), 0);
    assert_int_equal(ev.type, PUSHQ_WS_NEED_MORE);
}

/* Ensure a limit of 0 allows only empty messages (RFC 6455 10.4). */
static void test_ws_parser_zero_limit_only_empty(void **state)
{
    fixture_t    *f = *state;
    unsigned char b[32];
    size_t        n;

    fx_reset(f, 0);
    n = frame(b, 0x81, "", 0);
    n += frame(b + n, 0x89, "ping", 4);     /* control: not limited */
    feed(f, b, n);
    assert_int_equal(f->n, 2);
    assert_event(&f->ev[0], PUSHQ_WS_TEXT, "", 0);
    assert_event(&f->ev[1], PUSHQ_WS_PING, "ping", 4);
    n = frame(b, 0x82, "x", 1);
    expect_error(f, b, n, 1009);
}

/* Ensure a large message followed by small ones still parses right (the
 * reassembly buffer is released and regrown between messages). */
static void test_ws_parser_buffer_reused_between_messages(void **state)
{
    fixture_t     *f = *state;
    size_t         big = 100000;
    unsigned char *m = malloc(big);
    unsigned char *b = malloc(big + 64);

    assert_non_null(m);
    assert_non_null(b);
    memset(m, 'z', big);
    for (int round = 0; round < 3; round++) {
        size_t n = frame(b, 0x81, m, big);
        n += frame(b + n, 0x81, "small", 5);
        fx_clear(f);
        feed(f, b, n);
        assert_int_equal(f->n, 2);
        assert_event(&f->ev[0], PUSHQ_WS_TEXT, m, big);
        assert_event(&f->ev[1], PUSHQ_WS_TEXT, "small", 5);
    }
    free(m);
    free(b);
}

/* xorshift64: a fixed, reproducible sequence */
static uint64_t rng_ = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(uint64_t n)
{
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return n == 0 ? 0 : rng_ % n;
}

/* Ensure random valid streams -- messages cut into random fragments,
 * pings and pongs in between, random masks, all three length forms --
 * give their messages whatever the chunking (RFC 6455 5.4, 5.3;
 * uWS makeChunked). */
static void test_ws_parser_random_streams_any_chunking_same_events(void **state)
{
    fixture_t           *f = *state;
    static unsigned char stream[200000];
    static unsigned char msgs[8][70000];
    static const char    utf8[] = "a\xce\xba\xe1\xbd\xb9\xf0\x9f\x98\x80z";

    for (int iter = 0; iter < 60; iter++) {
        size_t             n = 0, nexp = 0;
        rec_t              exp[MAX_EVENTS];
        size_t             nmsg = 1 + rnd(4);

        for (size_t m = 0; m < nmsg; m++) {
            int    text = (int) rnd(2);
            size_t len = rnd(4) == 0 ? 126 + rnd(70000 - 126) : rnd(300);
            for (size_t i = 0; i < len; i++) {
                msgs[m][i] = text ? (unsigned char) utf8[i % 11]
                                  : (unsigned char) rnd(256);
            }
            if (text && len > 0) {
                len -= len % 11;            /* whole characters */
            }
            /* cut into fragments, anywhere (also inside characters) */
            size_t pos = 0;
            int    first = 1;
            do {
                size_t k = rnd(4) == 0 ? len - pos : rnd(len - pos + 1);
                int    fin = pos + k == len;
                for (int q = 0; q < 4; q++) {
                    mask_[q] = (unsigned char) rnd(256);
                }
                unsigned op = first ? (text ? 0x1 : 0x2) : 0x0;
                n += frame(stream + n, (fin ? 0x80 : 0) | op, msgs[m] + pos,
                           k);
                pos += k;
                first = 0;
                if (!fin && rnd(3) == 0) {
                    unsigned char pp[125];
                    size_t        pl = rnd(126);
                    for (size_t i = 0; i < pl; i++) {
                        pp[i] = (unsigned char) rnd(256);
                    }
                    int ping = (int) rnd(2);
                    n += frame(stream + n, ping ? 0x89 : 0x8A, pp, pl);
                    exp[nexp].type = ping ? PUSHQ_WS_PING : PUSHQ_WS_PONG;
                    exp[nexp].data = malloc(pl + 1);
                    memcpy(exp[nexp].data, pp, pl);
                    exp[nexp].len = pl;
                    nexp++;
                }
                if (fin) {
                    break;
                }
            } while (1);
            exp[nexp].type = text ? PUSHQ_WS_TEXT : PUSHQ_WS_BINARY;
            exp[nexp].data = malloc(len + 1);
            memcpy(exp[nexp].data, msgs[m], len);
            exp[nexp].len = len;
            nexp++;
            assert_true(nexp + 2 < MAX_EVENTS);
        }
        assert_true(n < sizeof(stream) - 1000);

        fx_reset(f, 1u << 20);
        size_t pos = 0;
        while (pos < n) {
            size_t k = 1 + rnd(rnd(2) ? 16 : 5000);
            if (k > n - pos) k = n - pos;
            feed(f, stream + pos, k);
            pos += k;
        }
        assert_int_equal(f->n, nexp);
        for (size_t i = 0; i < nexp; i++) {
            assert_event(&f->ev[i], exp[i].type, exp[i].data, exp[i].len);
            free(exp[i].data);
        }
    }
    memcpy(mask_, "\x37\xfa\x21\x3d", 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_ws_parser_rfc_example_masked_hello_text),
        T(test_ws_parser_every_split_same_events),
        T(test_ws_parser_small_chunks_same_events),
        T(test_ws_parser_64bit_length_message),
        T(test_ws_parser_random_streams_any_chunking_same_events),
        T(test_ws_parser_after_close_repeats_close),
        T(test_ws_parser_after_error_repeats_error),
        T(test_ws_parser_rsv_bits_close_1002),
        T(test_ws_parser_reserved_opcode_close_1002),
        T(test_ws_parser_unmasked_close_1002),
        T(test_ws_parser_control_too_long_close_1002),
        T(test_ws_parser_control_fragmented_close_1002),
        T(test_ws_parser_continuation_without_start_close_1002),
        T(test_ws_parser_data_inside_fragmented_close_1002),
        T(test_ws_parser_length_not_minimal_close_1002),
        T(test_ws_parser_length_top_bit_close_1002),
        T(test_ws_parser_close_one_byte_close_1002),
        T(test_ws_parser_close_codes_valid_or_1002),
        T(test_ws_parser_close_reason_bad_utf8_close_1007),
        T(test_ws_parser_text_bad_utf8_close_1007),
        T(test_ws_parser_text_bad_utf8_fails_fast),
        T(test_ws_parser_fragmented_bad_utf8_close_1007),
        T(test_ws_parser_too_big_header_close_1009),
        T(test_ws_parser_too_big_fragments_close_1009),
        T(test_ws_parser_event_consumes_exactly_its_frame),
        T(test_ws_parser_zero_limit_only_empty),
        T(test_ws_parser_buffer_reused_between_messages),
        T(test_ws_parser_feed_frame_reassembles),
        T(test_ws_parser_feed_frame_violations_close_codes),
#undef T
    };
    return cmocka_run_group_tests_name("ws_parser", tests, NULL, NULL);
}
