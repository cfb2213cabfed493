/*
 * test_sub.c -- subscribers and named clients: where a subscriber starts,
 * what fetch hands out, lost and reset, client_ttl, shared names, owners,
 * wakers, readiness and blocking waits (SPEC.md "Concepts").
 */

#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pushq.h"
#include "store_test_util.h"

static int setup(void **state)
{
    st_fixture_t *f = st_fixture_new(1u << 20);
    if (f == NULL) {
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    st_fixture_free((st_fixture_t *) *state);
    return 0;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Ensure a subscriber without name or last_id gets only messages published
 * after it connected, in order, with their bytes and flags. */
static void test_sub_anonymous_gets_only_new_messages(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t sub;
    st_got_t got;
    pushq_fetch_info_t info;
    assert_int_equal(st_pub(f, "ch", "old", 1), PUSHQ_OK);
    assert_int_equal(st_open(f, &sub, "ch", NULL, -1, 2), PUSHQ_OK);
    assert_false(pushq_sub_ready(f->s, &sub));
    assert_int_equal(st_fetch(f, &sub, 10, 3, &got, &info), PUSHQ_OK);
    assert_int_equal(got.n, 0);

    assert_int_equal(st_pub(f, "ch", "new1", 4), PUSHQ_OK);
    pushq_publish_result_t r;
    assert_int_equal(pushq_store_publish(f->s, "ch", 2, "\xff\x00", 2,
                     PUSHQ_MSG_BINARY, &f->lim, 5, &r, NULL), PUSHQ_OK);
    assert_int_equal(r.subscribers, 1);
    assert_int_equal(r.wakers, 1);              /* the owner's waker 0 */
    assert_true(pushq_sub_ready(f->s, &sub));
    assert_int_equal(st_fetch(f, &sub, 10, 6, &got, &info), PUSHQ_OK);
    assert_int_equal(got.n, 2);
    assert_int_equal(info.count, 2);
    assert_int_equal(info.last_id, 3);
    assert_int_equal(info.lost, 0);
    assert_int_equal(info.reset, 0);
    assert_int_equal(got.ids[0], 2);
    assert_string_equal(got.data[0], "new1");
    assert_int_equal(got.flags[0], 0);
    assert_int_equal(got.ids[1], 3);
    assert_int_equal(got.len[1], 2);
    assert_int_equal(got.flags[1], PUSHQ_MSG_BINARY);
    assert_false(pushq_sub_ready(f->s, &sub));
    pushq_sub_close(f->s, &sub, 7);
}

/* Ensure a new name starts at the newest id and a known name resumes at
 * its cursor after reconnecting, receiving what came while it was away. */
static void test_sub_named_resumes_at_cursor(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t sub;
    st_got_t got;
    assert_int_equal(st_pub(f, "ch", "before", 1), PUSHQ_OK);
    assert_int_equal(st_open(f, &sub, "ch", "bob", -1, 2), PUSHQ_OK);
    assert_int_equal(st_fetch(f, &sub, 10, 2, &got, NULL), PUSHQ_OK);
    assert_int_equal(got.n, 0);
    assert_int_equal(st_pub(f, "ch", "a", 3), PUSHQ_OK);
    assert_int_equal(st_fetch(f, &sub, 10, 4, &got, NULL), PUSHQ_OK);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 2);
    pushq_sub_close(f->s, &sub, 5);

    assert_int_equal(st_pub(f, "ch", "b", 6), PUSHQ_OK);
    assert_int_equal(st_pub(f, "ch", "c", 7), PUSHQ_OK);
    assert_int_equal(st_open(f, &sub, "ch", "bob", -1, 8), PUSHQ_OK);
    assert_true(pushq_sub_ready(f->s, &sub));
    assert_int_equal(st_fetch(f, &sub, 1, 9, &got, NULL), PUSHQ_OK);
    assert_int_equal(got.n, 1);
    assert_string_equal(got.data[0], "b");
    assert_int_equal(st_fetch(f, &sub, 10, 9, &got, NULL), PUSHQ_OK);
    assert_int_equal(got.n, 1);
    assert_string_equal(got.data[0], "c");
    pushq_sub_close(f->s, &sub, 10);
}

/* Ensure a name is per channel: the same name on two channels has two
 * cursors. */
static void test_sub_name_is_per_channel(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t a, b;
    st_got_t got;
    assert_int_equal(st_open(f, &a, "c1", "bob", -1, 0), PUSHQ_OK);
    assert_int_equal(st_open(f, &b, "c2", "bob", -1, 0), PUSHQ_OK);
    assert_int_equal(st_pub(f, "c1", "x", 1), PUSHQ_OK);
    assert_int_equal(st_fetch(f, &a, 10, 1, &got, NULL), PUSHQ_OK);
    assert_int_equal(got.n, 1);
    assert_int_equal(st_pub(f, "c2", "y", 1), PUSHQ_OK);
    assert_int_equal(st_fetch(f, &b, 10, 1, &got, NULL), PUSHQ_OK);
    assert_int_equal(got.n, 1);
    assert_string_equal(got.data[0], "y");
    assert_int_not_equal(pushq_sub_channel_key(&a),
                         pushq_sub_channel_key(&b));
    pushq_sub_close(f->s, &a, 2);
    pushq_sub_close(f->s, &b, 2);
}

/* Ensure last_id=N answers the buffered messages after N, and with a name
 * moves the name's cursor (SPEC "last_id wins ... and moves the cursor"). */
static void test_sub_last_id_starts_after_n_and_moves_cursor(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t sub;
    st_got_t got;
    pushq_fetch_info_t info;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(st_pub(f, "ch", "m", 1), PUSHQ_OK);
    }
    assert_int_equal(st_open(f, &sub, "ch", NULL, 2, 2), PUSHQ_OK);
    assert_int_equal(st_fetch(f, &sub, 10, 2, &got, &info), PUSHQ_OK);
    assert_int_equal(got.n, 3);
    assert_int_equal(got.ids[0], 3);
    assert_int_equal(info.reset, 0);
    pushq_sub_close(f->s, &sub, 2);

    assert_int_equal(st_open(f, &sub, "ch", "amy", -1, 3), PUSHQ_OK);
    pushq_sub_close(f->s, &sub, 3);                /* amy's cursor: 5 */
    assert_int_equal(st_open(f, &sub, "ch", "amy", 1, 4), PUSHQ_OK);
    assert_int_equal(st_fetch(f, &sub, 2, 4, &got, NULL), PUSHQ_OK);
    assert_int_equal(got.n, 2);
    assert_int_equal(got.ids[0], 2);
    pushq_sub_close(f->s, &sub, 4);                /* amy's cursor: 3 */
    assert_int_equal(st_open(f, &sub, "ch", "amy", -1, 5), PUSHQ_OK);
    assert_int_equal(st_fetch(f, &sub, 10, 5, &got, NULL), PUSHQ_OK);
    assert_int_equal(got.n, 2);
    assert_int_equal(got.ids[0], 4);
    assert_int_equal(got.ids[1], 5);
    pushq_sub_close(f->s, &sub, 5);
}

/* Ensure last_id above the newest id starts at the oldest buffered message
 * and reports reset once, also on an empty answer. */
static void test_sub_last_id_above_newest_resets(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t sub;
    st_got_t got;
    pushq_fetch_info_t info;
    f->lim.buffer = 2;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(st_pub(f, "ch", "m", 1), PUSHQ_OK);
    }
    assert_int_equal(st_open(f, &sub, "ch", NULL, 99, 2), PUSHQ_OK);
    assert_true(pushq_sub_ready(f->s, &sub));
    assert_int_equal(st_fetch(f, &sub, 10, 2, &got, &info), PUSHQ_OK);
    assert_int_equal(info.reset, 1);
    assert_int_equal(info.lost, 0);
    assert_int_equal(got.n, 2);
    assert_int_equal(got.ids[0], 3);
    assert_int_equal(st_pub(f, "ch", "m", 3), PUSHQ_OK);
    assert_int_equal(st_fetch(f, &sub, 10, 3, &got, &info), PUSHQ_OK);
    assert_int_equal(info.reset, 0);
    assert_int_equal(got.n, 1);
    pushq_sub_close(f->s, &sub, 3);

    /* an unknown (forgotten) channel: nothing buffered, reset reported on
     * the empty answer */
    assert_int_equal(st_open(f, &sub, "gone", "zed", 7, 4), PUSHQ_OK);
    assert_true(pushq_sub_ready(f->s, &sub));
    assert_int_equal(st_fetch(f, &sub, 10, 4, &got, &info), PUSHQ_OK);
    assert_int_equal(got.n, 0);
    assert_int_equal(info.reset, 1);
    assert_false(pushq_sub_ready(f->s, &sub));
    assert_int_equal(st_pub(f, "gone", "first", 5), PUSHQ_OK);
    assert_int_equal(st_fetch(f, &sub, 10, 5, &got, &info), PUSHQ_OK);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 1);
    pushq_sub_close(f->s, &sub, 6);
}

/* Ensure a named client that fell behind the buffer (by count) is told
 * how many it lost, once, and goes on from the oldest buffered. */
static void test_sub_behind_buffer_count_reports_lost_once(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t sub;
    st_got_t got;
    pushq_fetch_info_t info;
    f->lim.buffer = 3;
    assert_int_equal(st_open(f, &sub, "ch", "slow", -1, 0), PUSHQ_OK);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(st_pub(f, "ch", "m", 1), PUSHQ_OK);
    }
    assert_int_equal(st_fetch(f, &sub, 1, 2, &got, &info), PUSHQ_OK);
    assert_int_equal(info.lost, 7);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 8);
    assert_int_equal(st_fetch(f, &sub, 10, 2, &got, &info), PUSHQ_OK);
    assert_int_equal(info.lost, 0);
    assert_int_equal(got.n, 2);
    pushq_stats_t st;
    pushq_store_stats(f->s, 3, &st);
    assert_int_equal(st.lost, 7);
    assert_int_equal(st.delivered, 3);
    pushq_sub_close(f->s, &sub, 3);
}

/* Ensure lost is reported when messages went by age, on an empty answer
 * (the timeout answer carries it). */
static void test_sub_expired_by_age_reports_lost_without_messages(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t sub;
    st_got_t got;
    pushq_fetch_info_t info;
    f->lim.message_ttl_ms = 100;
    assert_int_equal(st_open(f, &sub, "ch", NULL, 0, 0), PUSHQ_OK);
    assert_int_equal(st_pub(f, "ch", "a", 10), PUSHQ_OK);
    assert_int_equal(st_pub(f, "ch", "b", 20), PUSHQ_OK);
    assert_true(pushq_sub_ready(f->s, &sub));
    assert_int_equal(st_fetch(f, &sub, 10, 500, &got, &info), PUSHQ_OK);
    assert_int_equal(got.n, 0);
    assert_int_equal(info.count, 0);
    assert_int_equal(info.lost, 2);
    assert_false(pushq_sub_ready(f->s, &sub));
    assert_int_equal(st_fetch(f, &sub, 10, 501, &got, &info), PUSHQ_OK);
    assert_int_equal(info.lost, 0);
    pushq_sub_close(f->s, &sub, 600);
}

/* Ensure lost is reported when messages went by bytes (cursor client). */
static void test_sub_behind_buffer_bytes_reports_lost(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t sub;
    st_got_t got;
    pushq_fetch_info_t info;
    f->lim.buffer_bytes = 8;
    for (int i = 0; i < 6; i++) {
        assert_int_equal(st_pub(f, "ch", "abcd", 1), PUSHQ_OK);
    }
    assert_int_equal(st_open(f, &sub, "ch", NULL, 1, 2), PUSHQ_OK);
    assert_int_equal(st_fetch(f, &sub, 10, 2, &got, &info), PUSHQ_OK);
    assert_int_equal(info.lost, 3);         /* 2, 3, 4 gone; 5, 6 kept */
    assert_int_equal(got.n, 2);
    assert_int_equal(got.ids[0], 5);
    pushq_sub_close(f->s, &sub, 3);
}

/* Ensure a name is kept for client_ttl after its last close (resumes) and
 * forgotten after it (returns as new: starts at the newest id, and what was
 * published while it was away is not delivered). */
static void test_sub_client_ttl_forgets_name(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t sub;
    st_got_t got;
    pushq_stats_t st;
    f->lim.client_ttl_ms = 1000;
    assert_int_equal(st_open(f, &sub, "ch", "eve", -1, 0), PUSHQ_OK);
    pushq_sub_close(f->s, &sub, 100);
    assert_int_equal(st_pub(f, "ch", "while away", 200), PUSHQ_OK);
    assert_int_equal(st_open(f, &sub, "ch", "eve", -1, 1099), PUSHQ_OK);
    assert_int_equal(st_fetch(f, &sub, 10, 1099, &got, NULL), PUSHQ_OK);
    assert_int_equal(got.n, 1);
    pushq_sub_close(f->s, &sub, 1100);

    assert_int_equal(st_pub(f, "ch", "while gone", 1200), PUSHQ_OK);
    pushq_store_stats(f->s, 2099, &st);
    assert_int_equal(st.clients, 1);
    /* open at exactly close + ttl: forgotten */
    assert_int_equal(st_open(f, &sub, "ch", "eve", -1, 2100), PUSHQ_OK);
    assert_false(pushq_sub_ready(f->s, &sub));
    assert_int_equal(st_fetch(f, &sub, 10, 2100, &got, NULL), PUSHQ_OK);
    assert_int_equal(got.n, 0);
    pushq_sub_close(f->s, &sub, 2100);

    /* and the sweep forgets idle names */
    pushq_store_stats(f->s, 3100, &st);
    assert_int_equal(st.clients, 0);
}

/* Ensure a name with an open subscriber never expires, however long it
 * waits. */
static void test_sub_client_with_open_sub_never_expires(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t sub;
    pushq_stats_t st;
    f->lim.client_ttl_ms = 10;
    assert_int_equal(st_open(f, &sub, "ch", "ann", -1, 0), PUSHQ_OK);
    pushq_store_stats(f->s, 100000, &st);
    assert_int_equal(st.clients, 1);
    pushq_sub_close(f->s, &sub, 100000);
    pushq_store_stats(f->s, 100010, &st);
    assert_int_equal(st.clients, 0);
}

/* Ensure two connections with one name share one queue: each message goes
 * to exactly one of them. */
static void test_sub_two_connections_one_name_share_queue(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t a, b;
    st_got_t ga, gb;
    assert_int_equal(st_open(f, &a, "ch", "tom", -1, 0), PUSHQ_OK);
    assert_int_equal(st_open(f, &b, "ch", "tom", -1, 0), PUSHQ_OK);
    assert_int_equal(st_pub(f, "ch", "1", 1), PUSHQ_OK);
    assert_int_equal(st_pub(f, "ch", "2", 1), PUSHQ_OK);
    assert_true(pushq_sub_ready(f->s, &a));
    assert_true(pushq_sub_ready(f->s, &b));
    assert_int_equal(st_fetch(f, &a, 1, 2, &ga, NULL), PUSHQ_OK);
    assert_int_equal(st_fetch(f, &b, 10, 2, &gb, NULL), PUSHQ_OK);
    assert_int_equal(ga.n, 1);
    assert_int_equal(ga.ids[0], 1);
    assert_int_equal(gb.n, 1);
    assert_int_equal(gb.ids[0], 2);
    assert_false(pushq_sub_ready(f->s, &a));
    assert_false(pushq_sub_ready(f->s, &b));

    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(f->s, "ch", 2, 3, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.subscribers, 2);
    assert_int_equal(cs.clients, 1);
    /* the name stays open while either connection is */
    pushq_sub_close(f->s, &a, 3);
    pushq_store_stats(f->s, 1000000, NULL);
    assert_int_equal(pushq_store_channel_stats(f->s, "ch", 2, 1000000, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.clients, 1);
    pushq_sub_close(f->s, &b, 1000000);
}

/* Ensure fetch honours max_msgs and max_bytes but always hands out one
 * message when one is ready. */
static void test_sub_fetch_limits_but_at_least_one(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t sub;
    st_got_t got;
    pushq_fetch_info_t info;
    assert_int_equal(st_open(f, &sub, "ch", NULL, 0, 0), PUSHQ_OK);
    assert_int_equal(st_pub(f, "ch", "0123456789", 1), PUSHQ_OK);
    assert_int_equal(st_pub(f, "ch", "0123456789", 1), PUSHQ_OK);
    assert_int_equal(st_pub(f, "ch", "0123456789", 1), PUSHQ_OK);
    memset(&got, 0, sizeof(got));
    assert_int_equal(pushq_sub_fetch(f->s, &sub, 10, 5, 2, st_collect, &got,
                                     &info), PUSHQ_OK);
    assert_int_equal(got.n, 1);
    memset(&got, 0, sizeof(got));
    assert_int_equal(pushq_sub_fetch(f->s, &sub, 10, 20, 2, st_collect, &got,
                                     &info), PUSHQ_OK);
    assert_int_equal(got.n, 2);
    assert_int_equal(info.last_id, 3);
    pushq_sub_close(f->s, &sub, 3);
}

/* Ensure a publish names its channel by the key its subscribers have
 * (the nginx module's wake-up lists carry it), and another channel's
 * publish by another key. */
static void test_publish_result_names_the_subscribers_channel(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t a;
    pushq_publish_result_t r;
    assert_int_equal(st_open(f, &a, "ch", NULL, -1, 0), PUSHQ_OK);
    memset(&r, 0xff, sizeof(r));
    assert_int_equal(pushq_store_publish(f->s, "ch", 2, "m", 1, 0, &f->lim,
                                         1, &r, NULL), PUSHQ_OK);
    assert_int_not_equal(r.channel_key, 0);
    assert_int_equal(r.channel_key, pushq_sub_channel_key(&a));
    memset(&r, 0, sizeof(r));
    assert_int_equal(pushq_store_publish(f->s, "other", 5, "m", 1, 0,
                                         &f->lim, 1, &r, NULL), PUSHQ_OK);
    assert_int_not_equal(r.channel_key, 0);
    assert_int_not_equal(r.channel_key, pushq_sub_channel_key(&a));
    pushq_sub_close(f->s, &a, 2);
}

/* Ensure close is idempotent, zeroes the channel key, and fetch on a
 * closed handle is refused. */
static void test_sub_close_twice_harmless(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t a, b;
    assert_int_equal(st_open(f, &a, "ch", NULL, -1, 0), PUSHQ_OK);
    assert_int_equal(st_open(f, &b, "ch", "x", -1, 0), PUSHQ_OK);
    assert_int_not_equal(pushq_sub_channel_key(&a), 0);
    assert_int_equal(pushq_sub_channel_key(&a), pushq_sub_channel_key(&b));
    pushq_sub_close(f->s, &a, 1);
    pushq_sub_close(f->s, &a, 1);
    assert_int_equal(pushq_sub_channel_key(&a), 0);
    assert_false(pushq_sub_ready(f->s, &a));
    st_got_t got;
    assert_int_not_equal(st_fetch(f, &a, 1, 1, &got, NULL), PUSHQ_OK);
    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(f->s, "ch", 2, 1, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.subscribers, 1);
    pushq_sub_close(f->s, &b, 1);
}

/* Ensure bad specs (long name, unregistered owner, bad kind) are refused
 * with a reason and leave the handle closed. */
static void test_sub_open_bad_spec_refused(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t sub;
    pushq_sub_spec_t sp;
    const char *why = NULL;
    char name[65];
    memset(name, 'n', sizeof(name));
    memset(&sp, 0, sizeof(sp));
    sp.chan = "ch";
    sp.chan_len = 2;
    sp.name = name;
    sp.name_len = 65;
    sp.owner = f->owner;
    assert_int_equal(pushq_sub_open(f->s, &sp, &f->lim, 0, &sub, &why),
                     PUSHQ_EBADARG);
    assert_non_null(why);
    assert_int_equal(pushq_sub_channel_key(&sub), 0);
    sp.name_len = 64;
    sp.owner = 77;
    assert_int_equal(pushq_sub_open(f->s, &sp, &f->lim, 0, &sub, NULL),
                     PUSHQ_EBADARG);
    sp.owner = f->owner;
    sp.kind = (pushq_sub_kind_t) 9;
    assert_int_equal(pushq_sub_open(f->s, &sp, &f->lim, 0, &sub, NULL),
                     PUSHQ_EBADARG);
    pushq_stats_t st;
    pushq_store_stats(f->s, 0, &st);
    assert_int_equal(st.channels, 0);
}

/* Ensure the publish result's waker mask has exactly the wakers of owners
 * with subscribers on the channel, and follows closes. */
static void test_sub_wakers_mask_follows_owners(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    uint32_t o3, o5;
    assert_int_equal(pushq_store_owner_register(f->s, 0, 3, &o3, NULL),
                     PUSHQ_OK);
    assert_int_equal(pushq_store_owner_register(f->s, 0, 63, &o5, NULL),
                     PUSHQ_OK);
    assert_int_not_equal(o3, o5);
    assert_int_equal(pushq_store_owner_register(f->s, 0, 64, &o5, NULL),
                     PUSHQ_EBADARG);
    pushq_sub_t a, b, c;
    pushq_sub_spec_t sp;
    memset(&sp, 0, sizeof(sp));
    sp.chan = "ch";
    sp.chan_len = 2;
    sp.owner = o3;
    assert_int_equal(pushq_sub_open(f->s, &sp, &f->lim, 0, &a, NULL),
                     PUSHQ_OK);
    assert_int_equal(pushq_sub_open(f->s, &sp, &f->lim, 0, &b, NULL),
                     PUSHQ_OK);
    sp.owner = o5;
    assert_int_equal(pushq_sub_open(f->s, &sp, &f->lim, 0, &c, NULL),
                     PUSHQ_OK);
    pushq_publish_result_t r;
    assert_int_equal(pushq_store_publish(f->s, "ch", 2, "x", 1, 0, &f->lim,
                     1, &r, NULL), PUSHQ_OK);
    assert_int_equal(r.subscribers, 3);
    assert_true(r.wakers == ((1ull << 3) | (1ull << 63)));
    pushq_sub_close(f->s, &a, 2);
    assert_int_equal(pushq_store_publish(f->s, "ch", 2, "x", 1, 0, &f->lim,
                     2, &r, NULL), PUSHQ_OK);
    assert_true(r.wakers == ((1ull << 3) | (1ull << 63)));
    pushq_sub_close(f->s, &b, 2);
    assert_int_equal(pushq_store_publish(f->s, "ch", 2, "x", 1, 0, &f->lim,
                     2, &r, NULL), PUSHQ_OK);
    assert_true(r.wakers == (1ull << 63));
    assert_int_equal(r.subscribers, 1);
    pushq_sub_close(f->s, &c, 2);
}

/* Ensure releasing an owner closes all of its subscribers (counts, wakers,
 * names' open counts) and later use of their handles is harmless. */
static void test_sub_owner_release_closes_its_subscribers(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    uint32_t o;
    assert_int_equal(pushq_store_owner_register(f->s, 0, 7, &o, NULL),
                     PUSHQ_OK);
    pushq_sub_t s1, s2, mine;
    pushq_sub_spec_t sp;
    memset(&sp, 0, sizeof(sp));
    sp.chan = "ch";
    sp.chan_len = 2;
    sp.owner = o;
    sp.name = "w";
    sp.name_len = 1;
    assert_int_equal(pushq_sub_open(f->s, &sp, &f->lim, 0, &s1, NULL),
                     PUSHQ_OK);
    sp.kind = PUSHQ_SUB_WEBSOCKET;
    sp.name = NULL;
    sp.name_len = 0;
    assert_int_equal(pushq_sub_open(f->s, &sp, &f->lim, 0, &s2, NULL),
                     PUSHQ_OK);
    assert_int_equal(st_open(f, &mine, "ch", NULL, -1, 0), PUSHQ_OK);

    f->lim.client_ttl_ms = 50;
    pushq_store_owner_release(f->s, o, 100);
    pushq_publish_result_t r;
    assert_int_equal(pushq_store_publish(f->s, "ch", 2, "x", 1, 0, &f->lim,
                     101, &r, NULL), PUSHQ_OK);
    assert_int_equal(r.subscribers, 1);
    assert_true(r.wakers == 1);
    pushq_stats_t st;
    pushq_store_stats(f->s, 101, &st);
    assert_int_equal(st.subscribers_longpoll, 1);
    assert_int_equal(st.subscribers_websocket, 0);
    assert_int_equal(st.clients, 1);        /* idle within its ttl */

    st_got_t got;
    assert_int_equal(st_fetch(f, &s1, 10, 102, &got, NULL), PUSHQ_EINTERNAL);
    pushq_sub_close(f->s, &s1, 102);
    pushq_sub_close(f->s, &s2, 102);
    pushq_store_stats(f->s, 102, &st);
    assert_int_equal(st.subscribers_longpoll, 1);

    /* the slot is free again and subscribing with it is refused */
    sp.owner = o;
    assert_int_equal(pushq_sub_open(f->s, &sp, &f->lim, 0, &s2, NULL),
                     PUSHQ_EBADARG);
    pushq_sub_close(f->s, &mine, 103);
}

/* Ensure reaping releases exactly the owners whose process is gone. */
static void test_sub_owner_reap_releases_dead_process(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pid_t child = fork();
    if (child == 0) {
        _exit(0);
    }
    assert_true(child > 0);
    assert_int_equal(waitpid(child, NULL, 0), child);

    uint32_t dead, alive;
    assert_int_equal(pushq_store_owner_register(f->s, child, 1, &dead, NULL),
                     PUSHQ_OK);
    assert_int_equal(pushq_store_owner_register(f->s, (int32_t) getpid(), 2,
                     &alive, NULL), PUSHQ_OK);
    pushq_sub_spec_t sp;
    pushq_sub_t a, b;
    memset(&sp, 0, sizeof(sp));
    sp.chan = "ch";
    sp.chan_len = 2;
    sp.owner = dead;
    assert_int_equal(pushq_sub_open(f->s, &sp, &f->lim, 0, &a, NULL),
                     PUSHQ_OK);
    sp.owner = alive;
    assert_int_equal(pushq_sub_open(f->s, &sp, &f->lim, 0, &b, NULL),
                     PUSHQ_OK);
    assert_int_equal(pushq_store_owner_reap(f->s, 1), 1);
    assert_int_equal(pushq_store_owner_reap(f->s, 1), 0);
    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(f->s, "ch", 2, 1, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.subscribers, 1);
    pushq_sub_close(f->s, &b, 2);
}

/* Ensure every owner slot can be used and the 129th registration is
 * refused; a released slot is reused. */
static void test_sub_owner_slots_exhausted_refused(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    uint32_t o = 0;
    for (int i = 1; i < PUSHQ_MAX_OWNERS; i++) {
        assert_int_equal(pushq_store_owner_register(f->s, 0, 0, &o, NULL),
                         PUSHQ_OK);
    }
    const char *why = NULL;
    assert_int_equal(pushq_store_owner_register(f->s, 0, 0, &o, &why),
                     PUSHQ_ENOMEM);
    assert_non_null(why);
    pushq_store_owner_release(f->s, 5, 0);
    assert_int_equal(pushq_store_owner_register(f->s, 0, 0, &o, NULL),
                     PUSHQ_OK);
    assert_int_equal(o, 5);
}

typedef struct {
    st_fixture_t    *f;
    pushq_status_t   st;
} reenter_t;

static void publish_from_callback(void *ctx, const pushq_msg_t *m)
{
    reenter_t *r = (reenter_t *) ctx;
    (void) m;
    r->st = st_pub(r->f, "other", "x", 1);
}

/* Ensure a fetch callback that calls the store (against the rules) gets an
 * error instead of dead-locking its thread, and the store stays usable. */
static void test_sub_callback_reentry_refused_not_hung(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t sub;
    reenter_t r = { f, PUSHQ_OK };
    assert_int_equal(st_open(f, &sub, "ch", NULL, 0, 0), PUSHQ_OK);
    assert_int_equal(st_pub(f, "ch", "m", 0), PUSHQ_OK);
    alarm(10);
    assert_int_equal(pushq_sub_fetch(f->s, &sub, 10, 1000, 1,
                                     publish_from_callback, &r, NULL),
                     PUSHQ_OK);
    alarm(0);
    assert_int_equal(r.st, PUSHQ_EINTERNAL);
    assert_int_equal(st_pub(f, "other", "y", 2), PUSHQ_OK);
    pushq_sub_close(f->s, &sub, 2);
}

/* Ensure pushq_sub_wait returns at its timeout when nothing comes. */
static void test_sub_wait_times_out(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t sub;
    assert_int_equal(st_open(f, &sub, "ch", NULL, -1, 0), PUSHQ_OK);
    uint64_t t0 = mono_ms();
    assert_int_equal(pushq_sub_wait(f->s, &sub, 150), PUSHQ_OK);
    uint64_t dt = mono_ms() - t0;
    assert_true(dt >= 149 && dt < 1000);
    assert_false(pushq_sub_ready(f->s, &sub));
    pushq_sub_close(f->s, &sub, 0);
}

typedef struct {
    st_fixture_t *f;
    int           what;     /* 0 publish, 1 wake_all */
} st_later_t;

static void *publish_later(void *arg)
{
    st_later_t *l = (st_later_t *) arg;
    struct timespec ts = { 0, 100 * 1000000 };
    nanosleep(&ts, NULL);
    if (l->what == 0) {
        st_pub(l->f, "ch", "late", 1);
    } else {
        pushq_store_wake_all(l->f->s);
    }
    return NULL;
}

/* Ensure a publish from another thread wakes pushq_sub_wait at once. */
static void test_sub_wait_woken_by_publish(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t sub;
    pthread_t t;
    st_later_t l = { f, 0 };
    assert_int_equal(st_open(f, &sub, "ch", NULL, -1, 0), PUSHQ_OK);
    uint64_t t0 = mono_ms();
    assert_int_equal(pthread_create(&t, NULL, publish_later, &l), 0);
    assert_int_equal(pushq_sub_wait(f->s, &sub, 5000), PUSHQ_OK);
    uint64_t dt = mono_ms() - t0;
    pthread_join(t, NULL);
    assert_true(dt < 2000);
    assert_true(pushq_sub_ready(f->s, &sub));
    pushq_sub_close(f->s, &sub, 0);
}

/* Ensure pushq_store_wake_all releases a waiter with nothing ready. */
static void test_sub_wait_woken_by_wake_all(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t sub;
    pthread_t t;
    st_later_t l = { f, 1 };
    assert_int_equal(st_open(f, &sub, "ch", NULL, -1, 0), PUSHQ_OK);
    uint64_t t0 = mono_ms();
    assert_int_equal(pthread_create(&t, NULL, publish_later, &l), 0);
    assert_int_equal(pushq_sub_wait(f->s, &sub, 5000), PUSHQ_OK);
    uint64_t dt = mono_ms() - t0;
    pthread_join(t, NULL);
    assert_true(dt < 2000);
    assert_false(pushq_sub_ready(f->s, &sub));
    pushq_sub_close(f->s, &sub, 0);
}

/* Ensure a waiter returns at once when a message is already ready. */
static void test_sub_wait_ready_returns_at_once(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t sub;
    assert_int_equal(st_open(f, &sub, "ch", NULL, 0, 0), PUSHQ_OK);
    assert_int_equal(st_pub(f, "ch", "x", 1), PUSHQ_OK);
    uint64_t t0 = mono_ms();
    assert_int_equal(pushq_sub_wait(f->s, &sub, 5000), PUSHQ_OK);
    assert_true(mono_ms() - t0 < 1000);
    pushq_sub_close(f->s, &sub, 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_sub_anonymous_gets_only_new_messages),
        T(test_sub_named_resumes_at_cursor),
        T(test_sub_name_is_per_channel),
        T(test_sub_last_id_starts_after_n_and_moves_cursor),
        T(test_sub_last_id_above_newest_resets),
        T(test_sub_behind_buffer_count_reports_lost_once),
        T(test_sub_expired_by_age_reports_lost_without_messages),
        T(test_sub_behind_buffer_bytes_reports_lost),
        T(test_sub_client_ttl_forgets_name),
        T(test_sub_client_with_open_sub_never_expires),
        T(test_sub_two_connections_one_name_share_queue),
        T(test_sub_fetch_limits_but_at_least_one),
        T(test_sub_close_twice_harmless),
        T(test_publish_result_names_the_subscribers_channel),
        T(test_sub_open_bad_spec_refused),
        T(test_sub_wakers_mask_follows_owners),
        T(test_sub_owner_release_closes_its_subscribers),
        T(test_sub_owner_reap_releases_dead_process),
        T(test_sub_owner_slots_exhausted_refused),
        T(test_sub_callback_reentry_refused_not_hung),
        T(test_sub_wait_times_out),
        T(test_sub_wait_woken_by_publish),
        T(test_sub_wait_woken_by_wake_all),
        T(test_sub_wait_ready_returns_at_once),
    };
#undef T
    return cmocka_run_group_tests_name("sub", tests, NULL, NULL);
}
