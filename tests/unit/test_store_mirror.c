/*
 * test_store_mirror.c -- Redis mode in the store (pushq.h): messages stored
 * under the ids Redis gave them (pushq_store_mirror: next, duplicate, gap,
 * new epoch, first mirrored message) and subscribers opened at a position
 * that may be ahead of the mirror (pushq_sub_open_at); the reconnect walk
 * (pushq_store_redis_channels, pushq_redis.h).
 */

#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pushq.h"
#include "pushq_redis.h"
#include "store_test_util.h"

#define E1 1700000000000ULL
#define E2 1700000005000ULL

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

static pushq_status_t mir(st_fixture_t *f, const char *chan, uint64_t epoch,
    uint64_t id, const char *msg, pushq_publish_result_t *r)
{
    pushq_publish_result_t local;
    return pushq_store_mirror(f->s, chan, strlen(chan), epoch, id, msg,
                              strlen(msg), 0, &f->lim, 1, r ? r : &local,
                              NULL);
}

static pushq_status_t open_at(st_fixture_t *f, pushq_sub_t *sub,
    const char *chan, uint64_t after)
{
    pushq_sub_spec_t sp;
    memset(&sp, 0, sizeof(sp));
    sp.chan = chan;
    sp.chan_len = strlen(chan);
    sp.kind = PUSHQ_SUB_WEBSOCKET;
    sp.owner = f->owner;
    return pushq_sub_open_at(f->s, &sp, after, &f->lim, 1, sub, NULL);
}

static void chan_stats(st_fixture_t *f, const char *chan,
    pushq_channel_stats_t *cs)
{
    assert_int_equal(pushq_store_channel_stats(f->s, chan, strlen(chan), 1,
                                               cs), PUSHQ_OK);
}

/* Ensure: Consecutive ids are stored as a publish would, under Redis's ids, and
 * report the subscribers and wakers; a duplicate changes nothing. */
static void test_store_mirror_next_stored_duplicate_ignored(void **state)
{
    st_fixture_t *f = *state;
    pushq_sub_t sub;
    assert_int_equal(st_open(f, &sub, "ch", NULL, -1, 1), PUSHQ_OK);
    pushq_publish_result_t r;
    assert_int_equal(mir(f, "ch", E1, 1, "a", &r), PUSHQ_OK);
    assert_int_equal(r.id, 1);
    assert_int_equal(r.subscribers, 1);
    assert_int_equal(r.wakers, 1);
    assert_int_equal(mir(f, "ch", E1, 2, "b", &r), PUSHQ_OK);
    assert_int_equal(r.id, 2);

    /* the same id again (heard twice): nothing stored, nobody woken */
    assert_int_equal(mir(f, "ch", E1, 2, "B", &r), PUSHQ_OK);
    assert_int_equal(r.id, 0);
    assert_int_equal(r.wakers, 0);
    assert_int_equal(mir(f, "ch", E1, 1, "A", &r), PUSHQ_OK);
    assert_int_equal(r.id, 0);

    pushq_channel_stats_t cs;
    chan_stats(f, "ch", &cs);
    assert_int_equal(cs.last_id, 2);
    assert_int_equal(cs.messages, 2);

    st_got_t got;
    pushq_fetch_info_t fi;
    assert_int_equal(st_fetch(f, &sub, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(got.n, 2);
    assert_int_equal(got.ids[0], 1);
    assert_string_equal(got.data[0], "a");
    assert_string_equal(got.data[1], "b");
    assert_int_equal(fi.lost, 0);
    pushq_sub_close(f->s, &sub, 1);
}

/* Ensure: A gap (ids missed while the subscription was down): the buffered
 * messages go, readers behind count the missed ids as lost, the window
 * stays contiguous. */
static void test_store_mirror_gap_readers_count_lost(void **state)
{
    st_fixture_t *f = *state;
    pushq_sub_t behind, current;
    assert_int_equal(mir(f, "ch", E1, 1, "1", NULL), PUSHQ_OK);
    assert_int_equal(mir(f, "ch", E1, 2, "2", NULL), PUSHQ_OK);
    assert_int_equal(st_open(f, &behind, "ch", NULL, 1, 1), PUSHQ_OK);
    assert_int_equal(st_open(f, &current, "ch", NULL, -1, 1), PUSHQ_OK);
    assert_int_equal(mir(f, "ch", E1, 3, "3", NULL), PUSHQ_OK);

    pushq_publish_result_t r;
    assert_int_equal(mir(f, "ch", E1, 7, "7", &r), PUSHQ_OK);
    assert_int_equal(r.id, 7);
    assert_int_equal(r.wakers, 1);
    pushq_channel_stats_t cs;
    chan_stats(f, "ch", &cs);
    assert_int_equal(cs.first_id, 7);
    assert_int_equal(cs.last_id, 7);
    assert_int_equal(cs.messages, 1);

    st_got_t got;
    pushq_fetch_info_t fi;
    assert_int_equal(st_fetch(f, &behind, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(fi.lost, 5);          /* 2..6 */
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 7);
    assert_int_equal(st_fetch(f, &current, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(fi.lost, 4);          /* 3..6 */
    assert_int_equal(got.n, 1);

    /* then on as usual */
    assert_int_equal(mir(f, "ch", E1, 8, "8", NULL), PUSHQ_OK);
    assert_int_equal(st_fetch(f, &behind, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(fi.lost, 0);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 8);
    chan_stats(f, "ch", &cs);
    assert_int_equal(cs.first_id, 7);
    assert_int_equal(cs.messages, 2);
    pushq_sub_close(f->s, &behind, 1);
    pushq_sub_close(f->s, &current, 1);
}

/* Ensure: A new epoch: the channel begins again; subscribers of the old life
 * (anonymous and named) start at the new life's first message, without
 * lost or reset. */
static void test_store_mirror_new_epoch_subscribers_restart(void **state)
{
    st_fixture_t *f = *state;
    for (uint64_t i = 1; i <= 5; i++) {
        assert_int_equal(mir(f, "ch", E1, i, "old", NULL), PUSHQ_OK);
    }
    pushq_sub_t anon, named;
    assert_int_equal(st_open(f, &anon, "ch", NULL, -1, 1), PUSHQ_OK);
    assert_int_equal(st_open(f, &named, "ch", "nm", -1, 1), PUSHQ_OK);
    assert_false(pushq_sub_ready(f->s, &anon));
    assert_false(pushq_sub_ready(f->s, &named));

    pushq_publish_result_t r;
    assert_int_equal(mir(f, "ch", E2, 1, "new1", &r), PUSHQ_OK);
    assert_int_equal(r.id, 1);
    assert_int_equal(r.wakers, 1);
    pushq_channel_stats_t cs;
    chan_stats(f, "ch", &cs);
    assert_int_equal(cs.last_id, 1);
    assert_int_equal(cs.first_id, 1);
    assert_int_equal(cs.messages, 1);

    assert_true(pushq_sub_ready(f->s, &anon));
    assert_true(pushq_sub_ready(f->s, &named));
    st_got_t got;
    pushq_fetch_info_t fi;
    assert_int_equal(st_fetch(f, &anon, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(got.n, 1);
    assert_string_equal(got.data[0], "new1");
    assert_int_equal(fi.lost, 0);
    assert_int_equal(fi.reset, 0);
    assert_int_equal(st_fetch(f, &named, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 1);

    /* the old epoch's late duplicates are not taken for a new life */
    assert_int_equal(mir(f, "ch", E2, 2, "new2", NULL), PUSHQ_OK);
    assert_int_equal(st_fetch(f, &anon, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 2);
    assert_false(pushq_sub_ready(f->s, &anon));
    pushq_sub_close(f->s, &anon, 1);
    pushq_sub_close(f->s, &named, 1);
}

typedef struct {
    pushq_sub_t  *sub;
    uint64_t      id;
    uint64_t      life;     /* pushq_sub_life() seen inside the callback */
} life_seen_t;

static void see_life(void *ctx, const pushq_msg_t *m)
{
    life_seen_t *ls = ctx;
    ls->id = m->id;
    ls->life = pushq_sub_life(ls->sub);
}

/* Ensure: pushq_sub_life(), read inside the fetch callback (where the
 * adapters look up their cache of encoded frames), names the life of the
 * message handed out: message 1 of a channel's new life (after Redis
 * restarted empty) is not taken for message 1 of the old one. */
static void test_sub_life_tells_lives_apart(void **state)
{
    st_fixture_t *f = *state;
    pushq_sub_t anon;
    assert_int_equal(st_open(f, &anon, "lf", NULL, -1, 1), PUSHQ_OK);
    assert_int_equal(mir(f, "lf", E1, 1, "old1", NULL), PUSHQ_OK);

    life_seen_t first = { &anon, 0, 0 }, second = { &anon, 0, 0 };
    pushq_fetch_info_t fi;
    assert_int_equal(pushq_sub_fetch(f->s, &anon, 10, 1 << 20, 1, see_life,
                                     &first, &fi), PUSHQ_OK);
    assert_int_equal(fi.count, 1);
    assert_int_equal(first.id, 1);
    assert_int_equal(pushq_sub_life(&anon), first.life);

    assert_int_equal(mir(f, "lf", E2, 1, "new1", NULL), PUSHQ_OK);
    assert_true(pushq_sub_ready(f->s, &anon));
    assert_int_equal(pushq_sub_fetch(f->s, &anon, 10, 1 << 20, 1, see_life,
                                     &second, &fi), PUSHQ_OK);
    assert_int_equal(fi.count, 1);
    assert_int_equal(second.id, 1);
    assert_int_not_equal(second.life, first.life);
    assert_int_equal(pushq_sub_life(&anon), second.life);

    pushq_sub_close(f->s, &anon, 1);
    assert_int_equal(pushq_sub_life(&anon), 0);
}

/* Ensure: A new epoch whose first message here is not id 1: the old life's
 * readers count the new life's missed ids as lost. */
static void test_store_mirror_new_epoch_gap_counts_lost(void **state)
{
    st_fixture_t *f = *state;
    assert_int_equal(mir(f, "ch", E1, 1, "a", NULL), PUSHQ_OK);
    assert_int_equal(mir(f, "ch", E1, 2, "b", NULL), PUSHQ_OK);
    pushq_sub_t sub;
    assert_int_equal(st_open(f, &sub, "ch", NULL, -1, 1), PUSHQ_OK);
    assert_int_equal(mir(f, "ch", E2, 4, "d", NULL), PUSHQ_OK);
    assert_true(pushq_sub_ready(f->s, &sub));
    st_got_t got;
    pushq_fetch_info_t fi;
    assert_int_equal(st_fetch(f, &sub, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(fi.lost, 3);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 4);
    assert_string_equal(got.data[0], "d");
    pushq_sub_close(f->s, &sub, 1);
}

/* Ensure: The first message mirrored into a channel this server never saw a
 * message of (a local subscriber made it) begins there: no lost for what
 * was published before the server knew the channel. */
static void test_store_mirror_first_message_no_lost(void **state)
{
    st_fixture_t *f = *state;
    pushq_sub_t sub;
    assert_int_equal(st_open(f, &sub, "ch", NULL, -1, 1), PUSHQ_OK);
    assert_false(pushq_sub_ready(f->s, &sub));
    assert_int_equal(mir(f, "ch", E1, 42, "x", NULL), PUSHQ_OK);
    assert_true(pushq_sub_ready(f->s, &sub));
    st_got_t got;
    pushq_fetch_info_t fi;
    assert_int_equal(st_fetch(f, &sub, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(fi.lost, 0);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 42);
    assert_false(pushq_sub_ready(f->s, &sub));
    /* same epoch again: ordinary */
    assert_int_equal(mir(f, "ch", E1, 43, "y", NULL), PUSHQ_OK);
    assert_int_equal(st_fetch(f, &sub, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 43);
    pushq_sub_close(f->s, &sub, 1);

    /* a channel no one had: created, starts at the id */
    pushq_publish_result_t r;
    assert_int_equal(mir(f, "fresh", E1, 9, "z", &r), PUSHQ_OK);
    assert_int_equal(r.id, 9);
    assert_int_equal(r.subscribers, 0);
    pushq_channel_stats_t cs;
    chan_stats(f, "fresh", &cs);
    assert_int_equal(cs.first_id, 9);
    assert_int_equal(cs.last_id, 9);
}

/* Ensure: A channel made by pushq_store_publish has epoch 0: the first epoch seen
 * is adopted without a restart; a different one afterwards restarts. */
static void test_store_mirror_local_channel_adopts_epoch(void **state)
{
    st_fixture_t *f = *state;
    assert_int_equal(st_pub(f, "ch", "p1", 1), PUSHQ_OK);
    assert_int_equal(st_pub(f, "ch", "p2", 1), PUSHQ_OK);
    pushq_publish_result_t r;
    assert_int_equal(mir(f, "ch", E1, 3, "m3", &r), PUSHQ_OK);
    assert_int_equal(r.id, 3);
    pushq_channel_stats_t cs;
    chan_stats(f, "ch", &cs);
    assert_int_equal(cs.first_id, 1);
    assert_int_equal(cs.messages, 3);
    assert_int_equal(mir(f, "ch", E2, 1, "n1", &r), PUSHQ_OK);
    assert_int_equal(r.id, 1);
    chan_stats(f, "ch", &cs);
    assert_int_equal(cs.last_id, 1);
    assert_int_equal(cs.messages, 1);
}

/* Ensure: The publisher's limits trim and expire the mirror; max_message_size is
 * not checked (the publisher did). */
static void test_store_mirror_publisher_limits_trim(void **state)
{
    st_fixture_t *f = *state;
    f->lim.buffer = 2;
    f->lim.max_message_size = 1;
    for (uint64_t i = 1; i <= 4; i++) {
        assert_int_equal(mir(f, "ch", E1, i, "longer", NULL), PUSHQ_OK);
    }
    pushq_channel_stats_t cs;
    chan_stats(f, "ch", &cs);
    assert_int_equal(cs.first_id, 3);
    assert_int_equal(cs.messages, 2);
    f->lim.message_ttl_ms = 10;
    assert_int_equal(mir(f, "ch", E1, 5, "x", NULL), PUSHQ_OK);
    assert_int_equal(pushq_store_channel_stats(f->s, "ch", 2, 2 * 3600 * 1000,
                                               &cs), PUSHQ_OK);
    assert_int_equal(cs.messages, 0);
    assert_int_equal(cs.last_id, 5);
}

/* Ensure: a zero id, a bad channel, no limits or no store are refused. */
static void test_store_mirror_bad_args_refused(void **state)
{
    st_fixture_t *f = *state;
    pushq_publish_result_t r;
    const char *why = NULL;
    assert_int_equal(pushq_store_mirror(f->s, "ch", 2, E1, 0, "x", 1, 0,
                     &f->lim, 1, &r, &why), PUSHQ_EBADARG);
    assert_non_null(why);
    assert_int_equal(pushq_store_mirror(f->s, "", 0, E1, 1, "x", 1, 0,
                     &f->lim, 1, &r, NULL), PUSHQ_EBADARG);
    assert_int_equal(pushq_store_mirror(f->s, "ch", 2, E1, 1, "x", 1, 0,
                     NULL, 1, &r, NULL), PUSHQ_EBADARG);
    assert_int_equal(pushq_store_mirror(NULL, "ch", 2, E1, 1, "x", 1, 0,
                     &f->lim, 1, &r, NULL), PUSHQ_EBADARG);
}

/* Ensure: A region too small for the message: ENOMEM, and the channel is as it
 * was (a duplicate-free retry works). */
static void test_store_mirror_enomem_changes_nothing(void **state)
{
    st_fixture_t *f = *state;
    (void) f;
    st_fixture_t *g = st_fixture_new(pushq_store_min_size());
    assert_non_null(g);
    assert_int_equal(mir(g, "ch", E1, 1, "a", NULL), PUSHQ_OK);
    size_t big = pushq_store_min_size() - 4096;
    char *m = malloc(big);
    assert_non_null(m);
    memset(m, 'q', big);
    pushq_publish_result_t r;
    const char *why = NULL;
    g->lim.max_message_size = big;
    assert_int_equal(pushq_store_mirror(g->s, "ch", 2, E1, 2, m, big, 0,
                     &g->lim, 1, &r, &why), PUSHQ_ENOMEM);
    pushq_channel_stats_t cs;
    chan_stats(g, "ch", &cs);
    assert_int_equal(cs.last_id, 1);
    assert_int_equal(cs.messages, 1);
    assert_int_equal(mir(g, "ch", E1, 2, "b", &r), PUSHQ_OK);
    assert_int_equal(r.id, 2);
    free(m);
    st_fixture_free(g);
}

/* Ensure: open_at: ahead of the mirror -> waits for after_id + 1 (no reset), and
 * gets only what follows after_id. */
static void test_sub_open_at_ahead_waits_for_next(void **state)
{
    st_fixture_t *f = *state;
    assert_int_equal(mir(f, "ch", E1, 1, "1", NULL), PUSHQ_OK);
    pushq_sub_t sub;
    assert_int_equal(open_at(f, &sub, "ch", 3), PUSHQ_OK);
    assert_false(pushq_sub_ready(f->s, &sub));
    st_got_t got;
    pushq_fetch_info_t fi;
    assert_int_equal(st_fetch(f, &sub, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(got.n, 0);
    assert_int_equal(fi.reset, 0);
    assert_int_equal(fi.lost, 0);
    assert_int_equal(mir(f, "ch", E1, 2, "2", NULL), PUSHQ_OK);
    assert_int_equal(mir(f, "ch", E1, 3, "3", NULL), PUSHQ_OK);
    assert_false(pushq_sub_ready(f->s, &sub));
    assert_int_equal(st_fetch(f, &sub, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(got.n, 0);
    assert_int_equal(mir(f, "ch", E1, 4, "4", NULL), PUSHQ_OK);
    assert_true(pushq_sub_ready(f->s, &sub));
    assert_int_equal(st_fetch(f, &sub, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 4);
    assert_int_equal(fi.lost, 0);
    assert_int_equal(fi.reset, 0);
    pushq_sub_close(f->s, &sub, 1);
}

/* Ensure: open_at on a channel this server has not mirrored yet (a take told the
 * position): the first mirrored message, below the position, does not
 * move it back. */
static void test_sub_open_at_before_first_mirror_kept(void **state)
{
    st_fixture_t *f = *state;
    pushq_sub_t sub, anon;
    assert_int_equal(open_at(f, &sub, "ch", 5), PUSHQ_OK);
    assert_int_equal(st_open(f, &anon, "ch", NULL, -1, 1), PUSHQ_OK);
    assert_int_equal(mir(f, "ch", E1, 3, "3", NULL), PUSHQ_OK);
    assert_false(pushq_sub_ready(f->s, &sub));
    assert_true(pushq_sub_ready(f->s, &anon));
    st_got_t got;
    pushq_fetch_info_t fi;
    assert_int_equal(st_fetch(f, &sub, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(got.n, 0);
    assert_int_equal(st_fetch(f, &anon, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 3);
    assert_int_equal(fi.lost, 0);
    assert_int_equal(mir(f, "ch", E1, 4, "4", NULL), PUSHQ_OK);
    assert_int_equal(mir(f, "ch", E1, 5, "5", NULL), PUSHQ_OK);
    assert_false(pushq_sub_ready(f->s, &sub));
    assert_int_equal(mir(f, "ch", E1, 6, "6", NULL), PUSHQ_OK);
    assert_true(pushq_sub_ready(f->s, &sub));
    assert_int_equal(st_fetch(f, &sub, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 6);
    pushq_sub_close(f->s, &sub, 1);
    pushq_sub_close(f->s, &anon, 1);
}

/* Ensure: open_at below the buffered window: no lost count; behind the newest:
 * ready at once. */
static void test_sub_open_at_behind_window_no_lost(void **state)
{
    st_fixture_t *f = *state;
    f->lim.buffer = 2;
    for (uint64_t i = 1; i <= 5; i++) {
        assert_int_equal(mir(f, "ch", E1, i, "m", NULL), PUSHQ_OK);
    }
    pushq_sub_t sub;
    assert_int_equal(open_at(f, &sub, "ch", 1), PUSHQ_OK);
    assert_true(pushq_sub_ready(f->s, &sub));
    st_got_t got;
    pushq_fetch_info_t fi;
    assert_int_equal(st_fetch(f, &sub, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(fi.lost, 0);
    assert_int_equal(got.n, 2);
    assert_int_equal(got.ids[0], 4);
    pushq_sub_close(f->s, &sub, 1);
}

/* Ensure: open_at ignores name and last_id (it is anonymous), and a restart
 * makes it ready and start at the new life. */
static void test_sub_open_at_anonymous_restart_ready(void **state)
{
    st_fixture_t *f = *state;
    for (uint64_t i = 1; i <= 3; i++) {
        assert_int_equal(mir(f, "ch", E1, i, "m", NULL), PUSHQ_OK);
    }
    pushq_sub_spec_t sp;
    memset(&sp, 0, sizeof(sp));
    sp.chan = "ch";
    sp.chan_len = 2;
    sp.name = "nm";
    sp.name_len = 2;
    sp.has_last_id = 1;
    sp.last_id = 0;
    sp.kind = PUSHQ_SUB_LONGPOLL;
    sp.owner = f->owner;
    pushq_sub_t sub;
    assert_int_equal(pushq_sub_open_at(f->s, &sp, 10, &f->lim, 1, &sub,
                                       NULL), PUSHQ_OK);
    pushq_channel_stats_t cs;
    chan_stats(f, "ch", &cs);
    assert_int_equal(cs.clients, 0);
    assert_int_equal(cs.subscribers, 1);
    assert_false(pushq_sub_ready(f->s, &sub));

    assert_int_equal(mir(f, "ch", E2, 1, "r1", NULL), PUSHQ_OK);
    assert_true(pushq_sub_ready(f->s, &sub));
    st_got_t got;
    pushq_fetch_info_t fi;
    assert_int_equal(st_fetch(f, &sub, 10, 1, &got, &fi), PUSHQ_OK);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 1);
    assert_string_equal(got.data[0], "r1");
    assert_int_equal(fi.lost, 0);
    assert_false(pushq_sub_ready(f->s, &sub));
    pushq_sub_close(f->s, &sub, 1);
}

/* A blocked waiter is woken by a mirrored message. */
typedef struct {
    st_fixture_t *f;
} waker_arg_t;

static void *mirror_later(void *p)
{
    waker_arg_t *a = p;
    struct timespec ts = { 0, 50 * 1000000L };
    nanosleep(&ts, NULL);
    mir(a->f, "ch", E1, 2, "w", NULL);
    return NULL;
}

static void test_sub_open_at_wait_woken_by_mirror(void **state)
{
    st_fixture_t *f = *state;
    assert_int_equal(mir(f, "ch", E1, 1, "1", NULL), PUSHQ_OK);
    pushq_sub_t sub;
    assert_int_equal(open_at(f, &sub, "ch", 1), PUSHQ_OK);
    waker_arg_t a = { f };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, mirror_later, &a), 0);
    assert_int_equal(pushq_sub_wait(f->s, &sub, 5000), PUSHQ_OK);
    assert_true(pushq_sub_ready(f->s, &sub));
    pthread_join(t, NULL);
    pushq_sub_close(f->s, &sub, 1);
}

typedef struct {
    int       n;
    char      chan[8][PUSHQ_NAME_MAX + 1];
    uint64_t  newest[8];
} walk_t;

static void walk_cb(void *ctx, const char *chan, size_t len, uint64_t newest)
{
    walk_t *w = ctx;
    if (w->n < 8) {
        memcpy(w->chan[w->n], chan, len);
        w->chan[w->n][len] = '\0';
        w->newest[w->n] = newest;
    }
    w->n++;
}

static int walk_find(const walk_t *w, const char *chan)
{
    for (int i = 0; i < w->n && i < 8; i++) {
        if (strcmp(w->chan[i], chan) == 0) return i;
    }
    return -1;
}

/* Ensure: The reconnect walk lists exactly the channels that came from
 * Redis (mirrored at least once) and have open subscribers, each with its
 * local newest id; not a local-only channel, not one nobody reads. */
static void test_store_redis_channels_walk(void **state)
{
    st_fixture_t *f = *state;
    pushq_sub_t s1, s2, s3;
    assert_int_equal(mir(f, "red", E1, 4, "a", NULL), PUSHQ_OK);
    assert_int_equal(mir(f, "red", E1, 5, "b", NULL), PUSHQ_OK);
    assert_int_equal(st_open(f, &s1, "red", NULL, -1, 1), PUSHQ_OK);
    assert_int_equal(st_open(f, &s2, "red", NULL, -1, 1), PUSHQ_OK);
    assert_int_equal(mir(f, "unread", E1, 1, "a", NULL), PUSHQ_OK);
    assert_int_equal(st_pub(f, "local", "x", 1), PUSHQ_OK);
    assert_int_equal(st_open(f, &s3, "local", NULL, -1, 1), PUSHQ_OK);
    pushq_sub_t s4;
    assert_int_equal(open_at(f, &s4, "waiting", 3), PUSHQ_OK);

    walk_t w;
    memset(&w, 0, sizeof(w));
    assert_int_equal(pushq_store_redis_channels(f->s, walk_cb, &w), 1);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.chan[0], "red");
    assert_int_equal(w.newest[0], 5);
    assert_int_equal(walk_find(&w, "waiting"), -1);   /* epoch 0 yet */

    /* the waiting channel gets its first message: listed too */
    assert_int_equal(mir(f, "waiting", E2, 9, "m", NULL), PUSHQ_OK);
    memset(&w, 0, sizeof(w));
    assert_int_equal(pushq_store_redis_channels(f->s, walk_cb, &w), 2);
    assert_int_equal(w.newest[walk_find(&w, "waiting")], 9);
    /* no callback: counted anyway */
    assert_int_equal(pushq_store_redis_channels(f->s, NULL, NULL), 2);

    /* its last subscriber gone: no longer listed */
    pushq_sub_close(f->s, &s1, 1);
    assert_int_equal(pushq_store_redis_channels(f->s, NULL, NULL), 2);
    pushq_sub_close(f->s, &s2, 1);
    memset(&w, 0, sizeof(w));
    assert_int_equal(pushq_store_redis_channels(f->s, walk_cb, &w), 1);
    assert_string_equal(w.chan[0], "waiting");
    pushq_sub_close(f->s, &s3, 1);
    pushq_sub_close(f->s, &s4, 1);
    assert_int_equal(pushq_store_redis_channels(f->s, walk_cb, &w), 0);
    assert_int_equal(pushq_store_redis_channels(NULL, walk_cb, &w), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_store_mirror_next_stored_duplicate_ignored),
        T(test_store_mirror_gap_readers_count_lost),
        T(test_store_mirror_new_epoch_subscribers_restart),
        T(test_sub_life_tells_lives_apart),
        T(test_store_mirror_new_epoch_gap_counts_lost),
        T(test_store_mirror_first_message_no_lost),
        T(test_store_mirror_local_channel_adopts_epoch),
        T(test_store_mirror_publisher_limits_trim),
        T(test_store_mirror_bad_args_refused),
        T(test_store_mirror_enomem_changes_nothing),
        T(test_sub_open_at_ahead_waits_for_next),
        T(test_sub_open_at_before_first_mirror_kept),
        T(test_sub_open_at_behind_window_no_lost),
        T(test_sub_open_at_anonymous_restart_ready),
        T(test_sub_open_at_wait_woken_by_mirror),
        T(test_store_redis_channels_walk),
    };
#undef T
    return cmocka_run_group_tests_name("store_mirror", tests, NULL, NULL);
}
