/*
 * test_redis_reply.c -- the replies of pushq_redis.h read from hand-made
 * hiredis replies: publish ({id, epoch}), take ({newest, epoch, lost,
 * reset, cursor, id, flags, data, ...}), errors (OOM, other, connection
 * lost), the mirror of a "pmessage" into a store, and the mirror catching
 * up (heard gaps, range replies).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "pushq_redis.h"
#include "store_test_util.h"

/* ---- building replies (freed by rfree) ---- */

static redisReply *rnum(long long v)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_INTEGER;
    r->integer = v;
    return r;
}

static redisReply *rstrn(int type, const char *s, size_t n)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = type;
    r->str = malloc(n + 1);
    memcpy(r->str, s, n);
    r->str[n] = '\0';
    r->len = n;
    return r;
}

static redisReply *rstr(const char *s)
{
    return rstrn(REDIS_REPLY_STRING, s, strlen(s));
}

static redisReply *rarr(size_t n, ...)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_ARRAY;
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof(*r->element));
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        r->element[i] = va_arg(ap, redisReply *);
    }
    va_end(ap);
    return r;
}

static void rfree(redisReply *r)
{
    if (r == NULL) return;
    for (size_t i = 0; i < r->elements; i++) rfree(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

/* ---- publish ---- */

static void test_redis_reply_publish_ok(void **state)
{
    (void) state;
    redisReply *r = rarr(2, rnum(17), rnum(1700000000000LL));
    uint64_t id = 0;
    assert_int_equal(pushq_redis_reply_publish(r, &id, NULL, 0, NULL),
                     PUSHQ_OK);
    assert_int_equal(id, 17);
    rfree(r);
}

static void test_redis_reply_publish_errors(void **state)
{
    (void) state;
    char err[64];
    const char *why = NULL;
    uint64_t id = 5;

    assert_int_equal(pushq_redis_reply_publish(NULL, &id, err, sizeof(err),
                     &why), PUSHQ_ENOMEM);
    assert_int_equal(id, 0);
    assert_non_null(strstr(why, "connection lost"));

    const char *oom = "OOM command not allowed when used memory > "
                      "'maxmemory'.";
    redisReply *r = rstrn(REDIS_REPLY_ERROR, oom, strlen(oom));
    assert_int_equal(pushq_redis_reply_publish(r, &id, err, sizeof(err),
                     &why), PUSHQ_ENOMEM);
    assert_ptr_equal(why, err);
    assert_int_equal(strncmp(err, "redis: OOM", 10), 0);
    assert_true(strlen(err) < sizeof(err));
    /* without a buffer: static text */
    assert_int_equal(pushq_redis_reply_publish(r, &id, NULL, 0, &why),
                     PUSHQ_ENOMEM);
    assert_non_null(strstr(why, "OOM"));
    rfree(r);

    /* Redis < 7 wraps it in a script error */
    const char *wrapped = "ERR Error running script (call to f_1): "
                          "@user_script:5: OOM command not allowed";
    r = rstrn(REDIS_REPLY_ERROR, wrapped, strlen(wrapped));
    assert_int_equal(pushq_redis_reply_publish(r, &id, err, sizeof(err),
                     &why), PUSHQ_ENOMEM);
    rfree(r);

    const char *nos = "NOSCRIPT No matching script.\r\nPlease use EVAL.";
    r = rstrn(REDIS_REPLY_ERROR, nos, strlen(nos));
    assert_int_equal(pushq_redis_reply_publish(r, &id, err, sizeof(err),
                     &why), PUSHQ_EINTERNAL);
    assert_non_null(strstr(why, "NOSCRIPT"));
    assert_null(strchr(why, '\r'));
    assert_null(strchr(why, '\n'));
    rfree(r);

    /* not what the script answers */
    r = rstr("OK");
    assert_int_equal(pushq_redis_reply_publish(r, &id, err, sizeof(err),
                     &why), PUSHQ_EINTERNAL);
    rfree(r);
    r = rarr(2, rnum(-1), rnum(1));
    assert_int_equal(pushq_redis_reply_publish(r, &id, err, sizeof(err),
                     &why), PUSHQ_EINTERNAL);
    rfree(r);
    r = rarr(0);
    assert_int_equal(pushq_redis_reply_publish(r, &id, err, sizeof(err),
                     &why), PUSHQ_EINTERNAL);
    rfree(r);
}

/* ---- take ---- */

static void test_redis_reply_take_messages(void **state)
{
    (void) state;
    redisReply *r = rarr(11, rnum(9), rnum(1700000000000LL), rnum(2),
        rnum(0), rnum(8),
        rnum(7), rnum(0), rstr("seven"),
        rnum(8), rnum(1), rstrn(REDIS_REPLY_STRING, "e\0ght", 5));
    st_got_t got;
    memset(&got, 0, sizeof(got));
    pushq_redis_take_info_t ti;
    assert_int_equal(pushq_redis_reply_take(r, st_collect, &got, &ti, NULL,
                                            0, NULL), PUSHQ_OK);
    assert_int_equal(got.n, 2);
    assert_int_equal(got.ids[0], 7);
    assert_string_equal(got.data[0], "seven");
    assert_int_equal(got.flags[0], 0);
    assert_int_equal(got.ids[1], 8);
    assert_int_equal(got.len[1], 5);
    assert_memory_equal(got.data[1], "e\0ght", 5);
    assert_int_equal(got.flags[1], PUSHQ_MSG_BINARY);
    assert_int_equal(ti.count, 2);
    assert_int_equal(ti.newest_id, 9);
    assert_int_equal(ti.epoch, 1700000000000ULL);
    assert_int_equal(ti.lost, 2);
    assert_int_equal(ti.reset, 0);
    assert_int_equal(ti.last_id, 8);
    rfree(r);

    /* nothing to take: reset and where the cursor stands */
    r = rarr(5, rnum(4), rnum(1), rnum(0), rnum(1), rnum(3));
    memset(&got, 0, sizeof(got));
    assert_int_equal(pushq_redis_reply_take(r, NULL, NULL, &ti, NULL, 0,
                                            NULL), PUSHQ_OK);
    assert_int_equal(ti.count, 0);
    assert_int_equal(ti.reset, 1);
    assert_int_equal(ti.last_id, 3);
    rfree(r);
}

/* A malformed reply hands out nothing, not even the good messages in
 * front of the bad one. */
static void test_redis_reply_take_malformed(void **state)
{
    (void) state;
    st_got_t got;
    pushq_redis_take_info_t ti;
    const char *why = NULL;
    redisReply *bad[] = {
        rarr(4, rnum(1), rnum(1), rnum(0), rnum(0)),
        rarr(7, rnum(1), rnum(1), rnum(0), rnum(0), rnum(0), rnum(1),
             rnum(0)),
        rarr(11, rnum(9), rnum(1), rnum(0), rnum(0), rnum(8),
             rnum(7), rnum(0), rstr("ok"),
             rnum(8), rnum(0), rnum(5)),
        rarr(11, rnum(9), rnum(1), rnum(0), rnum(0), rnum(8),
             rnum(8), rnum(0), rstr("ok"),
             rnum(7), rnum(0), rstr("back")),
        rarr(5, rnum(1), rnum(-3), rnum(0), rnum(0), rnum(0)),
        rstr("x"),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&got, 0, sizeof(got));
        assert_int_equal(pushq_redis_reply_take(bad[i], st_collect, &got,
                         &ti, NULL, 0, &why), PUSHQ_EINTERNAL);
        assert_int_equal(got.n, 0);
        assert_int_equal(ti.count, 0);
        rfree(bad[i]);
    }
    assert_int_equal(pushq_redis_reply_take(NULL, st_collect, &got, &ti,
                     NULL, 0, &why), PUSHQ_ENOMEM);
    assert_non_null(strstr(why, "connection lost"));
}

/* ---- the mirror ---- */

static redisReply *pmessage(const char *chan, const char *body, size_t n)
{
    return rarr(4, rstr("pmessage"), rstr("pushq:m:*"), rstr(chan),
                rstrn(REDIS_REPLY_STRING, body, n));
}

static void test_redis_mirror_stores_and_wakes(void **state)
{
    (void) state;
    st_fixture_t *f = st_fixture_new(1u << 20);
    assert_non_null(f);
    pushq_sub_t sub;
    assert_int_equal(st_open(f, &sub, "room", NULL, -1, 1), PUSHQ_OK);

    /* the subscribe confirmation: OK, nobody to wake */
    redisReply *r = rarr(3, rstr("psubscribe"), rstr("pushq:m:*"), rnum(1));
    uint64_t w = 99;
    assert_int_equal(pushq_redis_mirror(f->s, r, 1, &w, NULL), PUSHQ_OK);
    assert_int_equal(w, 0);
    rfree(r);

    static const char b1[] = "1700000000000 1 0 2 100 60000\nhello";
    r = pmessage("pushq:m:room", b1, sizeof(b1) - 1);
    assert_int_equal(pushq_redis_mirror(f->s, r, 1, &w, NULL), PUSHQ_OK);
    assert_int_equal(w, 1);
    /* heard twice: a duplicate, nobody woken */
    assert_int_equal(pushq_redis_mirror(f->s, r, 1, &w, NULL), PUSHQ_OK);
    assert_int_equal(w, 0);
    rfree(r);

    static const char b2[] = "1700000000000 2 1 2 100 60000\n\0\1\2";
    r = pmessage("pushq:m:room", b2, sizeof(b2) - 1);
    assert_int_equal(pushq_redis_mirror(f->s, r, 1, &w, NULL), PUSHQ_OK);
    rfree(r);
    /* buffer 2 from the header trims */
    static const char b3[] = "1700000000000 3 0 2 100 60000\n";
    r = pmessage("pushq:m:room", b3, sizeof(b3) - 1);
    assert_int_equal(pushq_redis_mirror(f->s, r, 1, &w, NULL), PUSHQ_OK);
    rfree(r);

    st_got_t got;
    pushq_fetch_info_t fi;
    assert_int_equal(st_fetch(f, &sub, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(fi.lost, 1);
    assert_int_equal(got.n, 2);
    assert_int_equal(got.ids[0], 2);
    assert_int_equal(got.flags[0], PUSHQ_MSG_BINARY);
    assert_int_equal(got.len[0], 3);
    assert_memory_equal(got.data[0], "\0\1\2", 3);
    assert_int_equal(got.ids[1], 3);
    assert_int_equal(got.len[1], 0);

    /* message_ttl from the header: expired after 60 s */
    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(f->s, "room", 4, 60002, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.messages, 0);

    /* a new epoch restarts the local channel */
    static const char b4[] = "1700000009999 1 0 2 100 60000\nnew";
    r = pmessage("pushq:m:room", b4, sizeof(b4) - 1);
    assert_int_equal(pushq_redis_mirror(f->s, r, 1, &w, NULL), PUSHQ_OK);
    assert_int_equal(w, 1);
    rfree(r);
    assert_int_equal(st_fetch(f, &sub, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(got.n, 1);
    assert_string_equal(got.data[0], "new");
    pushq_sub_close(f->s, &sub, 1);
    st_fixture_free(f);
}

static void test_redis_mirror_refuses_what_is_not_ours(void **state)
{
    (void) state;
    st_fixture_t *f = st_fixture_new(1u << 20);
    assert_non_null(f);
    const char *why = NULL;
    uint64_t w = 9;
    const char *bodies[] = {
        "1 0 0 2 100 60000\nzero id",
        "1 1 0 2 100\nshort",
        "1 1 0 2 100 60000 nonl",
        "x 1 0 2 100 60000\nx",
        "1 1 0 99999999999 100 60000\nbuffer",
        "",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        redisReply *r = pmessage("pushq:m:ch", bodies[i], strlen(bodies[i]));
        assert_int_equal(pushq_redis_mirror(f->s, r, 1, &w, &why),
                         PUSHQ_EBADARG);
        assert_int_equal(w, 0);
        assert_non_null(why);
        rfree(r);
    }
    const char *good = "1 1 0 2 100 60000\nok";
    redisReply *others[] = {
        pmessage("other:m:ch", good, strlen(good)),
        pmessage("pushq:m:bad chan", good, strlen(good)),
        pmessage("pushq:m:", good, strlen(good)),
        rarr(3, rstr("message"), rstr("pushq:m:ch"), rstr(good)),
        rarr(2, rstr("pmessage"), rstr("x")),
        rstr("pmessage"),
        rnum(1),
    };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        assert_int_equal(pushq_redis_mirror(f->s, others[i], 1, &w, &why),
                         PUSHQ_EBADARG);
        rfree(others[i]);
    }
    assert_int_equal(pushq_redis_mirror(f->s, NULL, 1, &w, &why),
                     PUSHQ_EBADARG);
    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(f->s, "ch", 2, 1, &cs),
                     PUSHQ_ENOTFOUND);
    st_fixture_free(f);
}

/* ---- catching the mirror up ---- */

static pushq_status_t heard(st_fixture_t *f, const char *chan,
    const char *body, uint64_t *w, pushq_redis_gap_t *gap)
{
    redisReply *r = pmessage(chan, body, strlen(body));
    pushq_status_t s = pushq_redis_mirror_heard(f->s, r, 1, w, gap, NULL);
    rfree(r);
    return s;
}

static uint64_t last_of(st_fixture_t *f, const char *chan)
{
    pushq_channel_stats_t cs;
    if (pushq_store_channel_stats(f->s, chan, strlen(chan), 1, &cs) !=
        PUSHQ_OK)
    {
        return UINT64_MAX;
    }
    return cs.last_id;
}

/* Only the next id is stored; a later one is a gap after the local newest
 * id (same epoch) or after 0 (a new epoch); duplicates and a channel's
 * first message are no gap. */
static void test_redis_mirror_heard_gaps(void **state)
{
    (void) state;
    st_fixture_t *f = st_fixture_new(1u << 20);
    assert_non_null(f);
    pushq_sub_t sub;
    assert_int_equal(st_open(f, &sub, "room", NULL, -1, 1), PUSHQ_OK);
    pushq_redis_gap_t gap;
    uint64_t w = 9;

    /* a channel's first mirrored message, whatever its id: stored */
    assert_int_equal(heard(f, "pushq:m:room", "100 5 0 10 1000 0\nfive", &w,
                           &gap), PUSHQ_OK);
    assert_int_equal(gap.chan_len, 0);
    assert_int_equal(w, 1);
    assert_int_equal(last_of(f, "room"), 5);
    /* the same for a channel nobody here knows */
    assert_int_equal(heard(f, "pushq:m:other", "100 7 0 10 1000 0\nx", &w,
                           &gap), PUSHQ_OK);
    assert_int_equal(gap.chan_len, 0);
    assert_int_equal(last_of(f, "other"), 7);

    /* past a gap: nothing stored, nobody woken */
    memset(&gap, 0x55, sizeof(gap));
    assert_int_equal(heard(f, "pushq:m:room", "100 8 0 10 1000 0\neight", &w,
                           &gap), PUSHQ_OK);
    assert_int_equal(w, 0);
    assert_int_equal(gap.chan_len, 4);
    assert_memory_equal(gap.chan, "room", 4);
    assert_int_equal(gap.after_id, 5);
    assert_int_equal(last_of(f, "room"), 5);

    /* the next one (its channel named by its subscribers' key), and a
     * duplicate (nothing stored: no channel) */
    uint64_t key = 0;
    redisReply *r6 = pmessage("pushq:m:room", "100 6 0 10 1000 0\nsix", 21);
    assert_int_equal(pushq_redis_mirror_heard_key(f->s, r6, 1, &w, &key,
                                                  &gap, NULL), PUSHQ_OK);
    assert_int_equal(gap.chan_len, 0);
    assert_int_equal(w, 1);
    assert_int_not_equal(key, 0);
    assert_int_equal(key, pushq_sub_channel_key(&sub));
    assert_int_equal(pushq_redis_mirror_heard_key(f->s, r6, 1, &w, &key,
                                                  &gap, NULL), PUSHQ_OK);
    rfree(r6);
    assert_int_equal(gap.chan_len, 0);
    assert_int_equal(w, 0);
    assert_int_equal(key, 0);
    assert_int_equal(last_of(f, "room"), 6);

    /* a new epoch with id > 1: a gap after 0, the old life kept */
    assert_int_equal(heard(f, "pushq:m:room", "200 3 0 10 1000 0\nn3", &w,
                           &gap), PUSHQ_OK);
    assert_int_equal(gap.chan_len, 4);
    assert_int_equal(gap.after_id, 0);
    assert_int_equal(last_of(f, "room"), 6);
    /* its id 1: stored, the local channel restarts */
    assert_int_equal(heard(f, "pushq:m:room", "200 1 0 10 1000 0\nn1", &w,
                           &gap), PUSHQ_OK);
    assert_int_equal(gap.chan_len, 0);
    assert_int_equal(last_of(f, "room"), 1);
    st_got_t got;
    pushq_fetch_info_t fi;
    assert_int_equal(st_fetch(f, &sub, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(got.n, 1);
    assert_string_equal(got.data[0], "n1");

    /* the 64-byte channel name comes back whole */
    char c64[8 + 64 + 1];
    memcpy(c64, "pushq:m:", 8);
    memset(c64 + 8, 'z', 64);
    c64[72] = '\0';
    assert_int_equal(heard(f, c64, "300 1 0 10 1000 0\na", &w, &gap),
                     PUSHQ_OK);
    assert_int_equal(heard(f, c64, "300 3 0 10 1000 0\nc", &w, &gap),
                     PUSHQ_OK);
    assert_int_equal(gap.chan_len, 64);
    assert_memory_equal(gap.chan, c64 + 8, 64);
    assert_int_equal(gap.after_id, 1);

    /* not ours, confirmations: no gap */
    assert_int_equal(heard(f, "pushq:m:room", "garbage", &w, &gap),
                     PUSHQ_EBADARG);
    assert_int_equal(gap.chan_len, 0);
    redisReply *r = rarr(3, rstr("psubscribe"), rstr("pushq:m:*"), rnum(1));
    assert_int_equal(pushq_redis_mirror_heard(f->s, r, 1, &w, &gap, NULL),
                     PUSHQ_OK);
    assert_int_equal(gap.chan_len, 0);
    assert_int_equal(w, 0);
    rfree(r);
    pushq_sub_close(f->s, &sub, 1);
    st_fixture_free(f);
}

typedef struct {
    long long   id, flags;
    const char *data;
    long long   t, e;
    const char *b, *y;          /* "" = absent (an older entry) */
} rentry_t;

static redisReply *range_reply(long long newest, long long epoch,
    long long now, long long more, long long after, size_t n,
    const rentry_t *e)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_ARRAY;
    r->elements = 5 + 7 * n;
    r->element = calloc(r->elements, sizeof(*r->element));
    r->element[0] = rnum(newest);
    r->element[1] = rnum(epoch);
    r->element[2] = rnum(now);
    r->element[3] = rnum(more);
    r->element[4] = rnum(after);
    for (size_t k = 0; k < n; k++) {
        redisReply **x = r->element + 5 + 7 * k;
        x[0] = rnum(e[k].id);
        x[1] = rnum(e[k].flags);
        x[2] = rstr(e[k].data);
        x[3] = rnum(e[k].t);
        x[4] = rnum(e[k].e);
        x[5] = rstr(e[k].b);
        x[6] = rstr(e[k].y);
    }
    return r;
}

static pushq_status_t range_in(st_fixture_t *f, const char *chan,
    redisReply *r, uint64_t now, uint64_t *w, int *more)
{
    pushq_status_t s = pushq_redis_reply_range(f->s, chan, strlen(chan), r,
                                               now, w, more, NULL);
    rfree(r);
    return s;
}

/* A range reply mirrored: in order, with the publisher's buffer, the
 * expiry left in Redis's clock moved to the local one, trimmed ids lost,
 * *more passed on; defaults for an entry without buffer/buffer_bytes. */
static void test_redis_reply_range_mirrors(void **state)
{
    (void) state;
    st_fixture_t *f = st_fixture_new(1u << 20);
    assert_non_null(f);
    pushq_sub_t sub;
    assert_int_equal(st_open(f, &sub, "room", NULL, -1, 1), PUSHQ_OK);
    uint64_t w = 0;
    int more = -1;
    static const char *b1 = "100 1 0 10 1000 0\none";
    assert_int_equal(heard(f, "pushq:m:room", b1, &w, NULL), PUSHQ_OK);

    /* 2 and 3 trimmed; 4..6 read; more in Redis */
    rentry_t e[] = {
        { 4, 0, "four", 5000, 0, "2", "1000" },
        { 5, 1, "five", 5000, 5100, "2", "1000" },  /* 100 ms left at 5000 */
        { 6, 0, "six", 5000, 0, "2", "1000" },
    };
    assert_int_equal(range_in(f, "room", range_reply(9, 100, 5000, 1, 1, 3,
                              e), 1000, &w, &more), PUSHQ_OK);
    assert_int_equal(more, 1);
    assert_int_equal(w, 1);
    assert_int_equal(last_of(f, "room"), 6);
    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(f->s, "room", 4, 1000, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.first_id, 5);       /* buffer 2 */
    st_got_t got;
    pushq_fetch_info_t fi;
    assert_int_equal(st_fetch(f, &sub, 10, 1000, &got, &fi), PUSHQ_OK);
    /* 1 (dropped at the jump), 2, 3 (trimmed), 4 (buffer 2) */
    assert_int_equal(fi.lost, 4);
    assert_int_equal(got.n, 2);
    assert_int_equal(got.ids[0], 5);
    assert_int_equal(got.flags[0], PUSHQ_MSG_BINARY);
    assert_string_equal(got.data[1], "six");

    /* 5 expires at local 1100 (100 ms after the read) */
    assert_int_equal(pushq_store_channel_stats(f->s, "room", 4, 1099, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.first_id, 5);
    assert_int_equal(pushq_store_channel_stats(f->s, "room", 4, 1100, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.first_id, 6);

    /* an older entry (no b, no y): the default buffer (1000) keeps all */
    rentry_t old[] = {
        { 7, 0, "seven", 1, 0, "", "" },
        { 8, 0, "eight", 1, 0, "", "" },
        { 9, 0, "nine", 1, 0, "", "" },
    };
    assert_int_equal(range_in(f, "room", range_reply(9, 100, 5000, 0, 6, 3,
                              old), 1100, &w, &more), PUSHQ_OK);
    assert_int_equal(more, 0);
    assert_int_equal(pushq_store_channel_stats(f->s, "room", 4, 1100, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.last_id, 9);
    assert_int_equal(cs.first_id, 6);
    assert_int_equal(st_fetch(f, &sub, 10, 1100, &got, &fi), PUSHQ_OK);
    assert_int_equal(got.n, 3);
    assert_int_equal(fi.lost, 0);

    /* duplicates only: nothing changes, nobody woken */
    assert_int_equal(range_in(f, "room", range_reply(9, 100, 5000, 0, 6, 3,
                              old), 1100, &w, &more), PUSHQ_OK);
    assert_int_equal(w, 0);
    assert_false(pushq_sub_ready(f->s, &sub));

    /* nothing in Redis: nothing done */
    assert_int_equal(range_in(f, "room", range_reply(0, 0, 5000, 0, 9, 0,
                              NULL), 1100, &w, &more), PUSHQ_OK);
    assert_int_equal(last_of(f, "room"), 9);
    pushq_sub_close(f->s, &sub, 1);
    st_fixture_free(f);
}

/* A new epoch: read after an id of the old life -> the local channel
 * restarts, nothing is stored, *more; read after 0 -> stored from the
 * new life's start. */
static void test_redis_reply_range_new_epoch(void **state)
{
    (void) state;
    st_fixture_t *f = st_fixture_new(1u << 20);
    assert_non_null(f);
    pushq_sub_t sub;
    assert_int_equal(st_open(f, &sub, "room", NULL, -1, 1), PUSHQ_OK);
    uint64_t w = 0;
    int more = -1;
    assert_int_equal(heard(f, "pushq:m:room", "100 1 0 10 1000 0\na", &w,
                           NULL), PUSHQ_OK);
    assert_int_equal(heard(f, "pushq:m:room", "100 2 0 10 1000 0\nb", &w,
                           NULL), PUSHQ_OK);
    st_got_t got;
    pushq_fetch_info_t fi;
    assert_int_equal(st_fetch(f, &sub, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(got.n, 2);

    rentry_t e[] = {
        { 3, 0, "n3", 1, 0, "10", "1000" },
        { 4, 0, "n4", 1, 0, "10", "1000" },
    };
    assert_int_equal(range_in(f, "room", range_reply(4, 200, 5000, 0, 2, 2,
                              e), 1, &w, &more), PUSHQ_OK);
    assert_int_equal(more, 1);
    assert_int_equal(last_of(f, "room"), 0);

    rentry_t all[] = {
        { 1, 0, "n1", 1, 0, "10", "1000" },
        { 2, 0, "n2", 1, 0, "10", "1000" },
        { 3, 0, "n3", 1, 0, "10", "1000" },
        { 4, 0, "n4", 1, 0, "10", "1000" },
    };
    assert_int_equal(range_in(f, "room", range_reply(4, 200, 5000, 0, 0, 4,
                              all), 1, &w, &more), PUSHQ_OK);
    assert_int_equal(more, 0);
    assert_int_equal(w, 1);
    assert_int_equal(st_fetch(f, &sub, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(got.n, 4);
    assert_int_equal(fi.lost, 0);
    assert_string_equal(got.data[0], "n1");

    /* a new epoch read after 0 whose first ids were trimmed: lost */
    rentry_t late[] = { { 3, 0, "m3", 1, 0, "10", "1000" } };
    assert_int_equal(range_in(f, "room", range_reply(3, 300, 5000, 0, 0, 1,
                              late), 1, &w, &more), PUSHQ_OK);
    assert_int_equal(more, 0);
    assert_int_equal(st_fetch(f, &sub, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 3);
    assert_int_equal(fi.lost, 2);
    pushq_sub_close(f->s, &sub, 1);
    st_fixture_free(f);
}

/* Errors: connection lost, Redis errors, malformed replies, a bad channel;
 * nothing stored by a reply that is refused. */
static void test_redis_reply_range_errors(void **state)
{
    (void) state;
    st_fixture_t *f = st_fixture_new(1u << 20);
    assert_non_null(f);
    const char *why = NULL;
    uint64_t w = 9;
    int more = 9;
    assert_int_equal(pushq_redis_reply_range(f->s, "c", 1, NULL, 1, &w,
                     &more, &why), PUSHQ_ENOMEM);
    assert_non_null(strstr(why, "connection lost"));
    assert_int_equal(w, 0);
    assert_int_equal(more, 0);
    redisReply *r = rstrn(REDIS_REPLY_ERROR, "OOM command not allowed", 23);
    assert_int_equal(pushq_redis_reply_range(f->s, "c", 1, r, 1, &w, &more,
                     &why), PUSHQ_ENOMEM);
    rfree(r);
    r = rstrn(REDIS_REPLY_ERROR, "NOSCRIPT No matching script", 27);
    assert_int_equal(pushq_redis_reply_range(f->s, "c", 1, r, 1, &w, &more,
                     &why), PUSHQ_EINTERNAL);
    rfree(r);

    rentry_t ok1 = { 2, 0, "x", 1, 0, "1", "1" };
    rentry_t two[] = { { 2, 0, "x", 1, 0, "1", "1" },
                       { 2, 0, "y", 1, 0, "1", "1" } };
    rentry_t bad_b = { 2, 0, "x", 1, 0, "lots", "1" };
    rentry_t big_b = { 2, 0, "x", 1, 0, "99999999999", "1" };
    redisReply *bad[] = {
        range_reply(2, 100, 1, 0, 2, 1, &ok1),      /* id <= after */
        range_reply(2, 100, 1, 0, 0, 2, two),       /* not increasing */
        range_reply(2, 100, 1, 0, 0, 1, &bad_b),
        range_reply(2, 100, 1, 0, 0, 1, &big_b),
        rarr(4, rnum(1), rnum(1), rnum(1), rnum(1)),
        rarr(6, rnum(1), rnum(1), rnum(1), rnum(1), rnum(0), rnum(1)),
        rarr(5, rnum(1), rstr("x"), rnum(1), rnum(1), rnum(0)),
        rnum(3),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        assert_int_equal(pushq_redis_reply_range(f->s, "c", 1, bad[i], 1, &w,
                         &more, &why), PUSHQ_EINTERNAL);
        assert_non_null(why);
        rfree(bad[i]);
    }
    r = range_reply(2, 100, 1, 0, 0, 1, &ok1);
    assert_int_equal(pushq_redis_reply_range(f->s, "bad chan", 8, r, 1, &w,
                     &more, &why), PUSHQ_EBADARG);
    assert_int_equal(pushq_redis_reply_range(f->s, "c", 1, r, 1, NULL, NULL,
                     NULL), PUSHQ_OK);
    rfree(r);
    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(f->s, "c", 1, 1, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.last_id, 2);
    assert_int_equal(cs.messages, 1);
    st_fixture_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_reply_publish_ok),
        cmocka_unit_test(test_redis_reply_publish_errors),
        cmocka_unit_test(test_redis_reply_take_messages),
        cmocka_unit_test(test_redis_reply_take_malformed),
        cmocka_unit_test(test_redis_mirror_stores_and_wakes),
        cmocka_unit_test(test_redis_mirror_refuses_what_is_not_ours),
        cmocka_unit_test(test_redis_mirror_heard_gaps),
        cmocka_unit_test(test_redis_reply_range_mirrors),
        cmocka_unit_test(test_redis_reply_range_new_epoch),
        cmocka_unit_test(test_redis_reply_range_errors),
    };
    return cmocka_run_group_tests_name("redis_reply", tests, NULL, NULL);
}
