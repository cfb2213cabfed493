/*
 * test_store.c -- the store's region, publishing, message log limits and
 * stats (pushq.h "The store"; SPEC.md "Concepts").
 */

#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pushq.h"
#include "store_test_util.h"

#define REGION (1u << 20)

static int setup(void **state)
{
    st_fixture_t *f = st_fixture_new(REGION);
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

/* Ensure a region below pushq_store_min_size() is refused with a reason. */
static void test_store_init_too_small_refused(void **state)
{
    (void) state;
    size_t n = pushq_store_min_size() - 16;
    void *mem = aligned_alloc(16, n);
    pushq_store_t *s = (pushq_store_t *) 1;
    const char *why = NULL;
    assert_int_equal(pushq_store_init(mem, n, &s, NULL, &why),
                     PUSHQ_EBADARG);
    assert_null(s);
    assert_non_null(why);
    free(mem);
}

/* Ensure a region that is not 16-byte aligned is refused. */
static void test_store_init_misaligned_refused(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_store_t *s;
    assert_int_equal(pushq_store_init((char *) f->mem + 8, f->size - 16, &s,
                                      NULL, NULL), PUSHQ_EBADARG);
}

/* Ensure initialising a region that already holds a store of this layout
 * and size attaches to it and keeps channels, ids and clients (an nginx
 * zone reused across reload). */
static void test_store_init_existing_keeps_contents(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t sub;
    assert_int_equal(st_open(f, &sub, "ch", "bob", -1, 0), PUSHQ_OK);
    assert_int_equal(st_pub(f, "ch", "one", 1), PUSHQ_OK);
    assert_int_equal(st_pub(f, "ch", "two", 2), PUSHQ_OK);

    pushq_store_t *s2 = NULL;
    int created = 7;
    assert_int_equal(pushq_store_init(f->mem, f->size, &s2, &created, NULL),
                     PUSHQ_OK);
    assert_int_equal(created, 0);
    assert_ptr_equal(s2, f->s);
    assert_ptr_equal(pushq_store_attach(f->mem, f->size), f->s);

    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(s2, "ch", 2, 3, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.last_id, 2);
    assert_int_equal(cs.first_id, 1);
    assert_int_equal(cs.messages, 2);
    assert_int_equal(cs.subscribers, 1);
    assert_int_equal(cs.clients, 1);
    pushq_sub_close(s2, &sub, 4);
}

/* Ensure a region of another size is formatted afresh, not misread, and
 * attach refuses memory that holds no store. */
static void test_store_init_other_size_formats_afresh(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    assert_int_equal(st_pub(f, "ch", "one", 1), PUSHQ_OK);
    assert_null(pushq_store_attach(f->mem, f->size / 2));

    pushq_store_t *s2 = NULL;
    int created = 0;
    assert_int_equal(pushq_store_init(f->mem, f->size / 2, &s2, &created,
                                      NULL), PUSHQ_OK);
    assert_int_equal(created, 1);
    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(s2, "ch", 2, 3, &cs),
                     PUSHQ_ENOTFOUND);
    /* re-init to the fixture's size so teardown works */
    assert_int_equal(pushq_store_init(f->mem, f->size, &f->s, &created,
                                      NULL), PUSHQ_OK);
    assert_int_equal(created, 1);

    char junk[128 * 1024] __attribute__((aligned(16)));
    memset(junk, 0x5a, sizeof(junk));
    assert_null(pushq_store_attach(junk, sizeof(junk)));
}

/* Ensure a destroyed store is no longer attachable and the region can be
 * formatted again (CivetWeb detach, then attach). */
static void test_store_destroy_then_init_fresh(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    assert_int_equal(st_pub(f, "ch", "one", 1), PUSHQ_OK);
    pushq_store_destroy(f->s);
    assert_null(pushq_store_attach(f->mem, f->size));
    int created = 0;
    assert_int_equal(pushq_store_init(f->mem, f->size, &f->s, &created,
                                      NULL), PUSHQ_OK);
    assert_int_equal(created, 1);
    assert_int_equal(pushq_store_owner_register(f->s, 0, 0, &f->owner, NULL),
                     PUSHQ_OK);
    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(f->s, "ch", 2, 1, &cs),
                     PUSHQ_ENOTFOUND);
    assert_int_equal(st_pub(f, "ch", "again", 2), PUSHQ_OK);
}

/* Ensure ids are 1, 2, 3... per channel, independent between channels. */
static void test_store_publish_ids_per_channel_contiguous(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_publish_result_t r;
    for (uint64_t i = 1; i <= 5; i++) {
        assert_int_equal(pushq_store_publish(f->s, "a", 1, "x", 1, 0,
                         &f->lim, i, &r, NULL), PUSHQ_OK);
        assert_int_equal(r.id, i);
    }
    assert_int_equal(pushq_store_publish(f->s, "b", 1, "y", 1, 0, &f->lim,
                     9, &r, NULL), PUSHQ_OK);
    assert_int_equal(r.id, 1);
    assert_int_equal(r.subscribers, 0);
    assert_int_equal(r.wakers, 0);
}

/* Ensure a message over max_message_size is refused with ETOOBIG and
 * changes nothing; exactly max_message_size and empty are accepted. */
static void test_store_publish_too_big_refused_unchanged(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    static char big[1025];
    const char *why = NULL;
    pushq_publish_result_t r;
    f->lim.max_message_size = 1024;
    memset(big, 'z', sizeof(big));
    assert_int_equal(pushq_store_publish(f->s, "c", 1, big, 1025, 0, &f->lim,
                     1, &r, &why), PUSHQ_ETOOBIG);
    assert_non_null(why);
    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(f->s, "c", 1, 1, &cs),
                     PUSHQ_ENOTFOUND);
    assert_int_equal(pushq_store_publish(f->s, "c", 1, big, 1024, 0, &f->lim,
                     1, &r, NULL), PUSHQ_OK);
    assert_int_equal(pushq_store_publish(f->s, "c", 1, NULL, 0, 0, &f->lim,
                     1, &r, NULL), PUSHQ_OK);
    assert_int_equal(r.id, 2);
}

/* Ensure bad channel names and missing limits are refused. */
static void test_store_publish_bad_args_refused(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    char name[65];
    memset(name, 'a', sizeof(name));
    assert_int_equal(pushq_store_publish(f->s, name, 65, "x", 1, 0, &f->lim,
                     1, NULL, NULL), PUSHQ_EBADARG);
    assert_int_equal(pushq_store_publish(f->s, name, 0, "x", 1, 0, &f->lim,
                     1, NULL, NULL), PUSHQ_EBADARG);
    assert_int_equal(pushq_store_publish(f->s, name, 64, "x", 1, 0, NULL,
                     1, NULL, NULL), PUSHQ_EBADARG);
    assert_int_equal(pushq_store_publish(f->s, name, 64, "x", 1, 0, &f->lim,
                     1, NULL, NULL), PUSHQ_OK);
}

/* Ensure the log keeps only `buffer` messages: the oldest are dropped. */
static void test_store_buffer_count_trims_oldest(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    f->lim.buffer = 3;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(st_pub(f, "ch", "m", (uint64_t) i), PUSHQ_OK);
    }
    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(f->s, "ch", 2, 10, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.messages, 3);
    assert_int_equal(cs.first_id, 8);
    assert_int_equal(cs.last_id, 10);
}

/* Ensure the log keeps at most buffer_bytes of payload, but always the
 * newest message. */
static void test_store_buffer_bytes_trims_oldest(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    f->lim.buffer_bytes = 10;
    assert_int_equal(st_pub(f, "ch", "aaaa", 1), PUSHQ_OK);
    assert_int_equal(st_pub(f, "ch", "bbbb", 2), PUSHQ_OK);
    assert_int_equal(st_pub(f, "ch", "cccc", 3), PUSHQ_OK);   /* 12 > 10 */
    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(f->s, "ch", 2, 3, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.messages, 2);
    assert_int_equal(cs.first_id, 2);
    assert_int_equal(st_pub(f, "ch", "0123456789abcdef", 4), PUSHQ_OK);
    assert_int_equal(pushq_store_channel_stats(f->s, "ch", 2, 4, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.messages, 1);
    assert_int_equal(cs.first_id, 4);
}

/* Ensure messages leave after message_ttl, and an empty channel with no
 * subscribers or clients is forgotten: its ids start again at 1. */
static void test_store_message_ttl_expires_and_channel_forgotten(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    f->lim.message_ttl_ms = 1000;
    assert_int_equal(st_pub(f, "ch", "a", 100), PUSHQ_OK);
    assert_int_equal(st_pub(f, "ch", "b", 600), PUSHQ_OK);
    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(f->s, "ch", 2, 1099, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.messages, 2);
    assert_int_equal(pushq_store_channel_stats(f->s, "ch", 2, 1100, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.messages, 1);
    assert_int_equal(cs.first_id, 2);
    assert_int_equal(pushq_store_channel_stats(f->s, "ch", 2, 1600, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.messages, 0);
    assert_int_equal(cs.first_id, 0);
    assert_int_equal(cs.last_id, 2);

    assert_true(pushq_store_sweep(f->s, 1600) >= 1);
    assert_int_equal(pushq_store_channel_stats(f->s, "ch", 2, 1600, &cs),
                     PUSHQ_ENOTFOUND);
    pushq_publish_result_t r;
    assert_int_equal(pushq_store_publish(f->s, "ch", 2, "c", 1, 0, &f->lim,
                     1700, &r, NULL), PUSHQ_OK);
    assert_int_equal(r.id, 1);
}

/* Ensure a ttl of "forever" (UINT64_MAX) does not wrap into "expired",
 * and a message larger than the whole region is refused with ENOMEM. */
static void test_store_huge_ttl_and_size_no_overflow(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t sub;
    pushq_channel_stats_t cs;
    pushq_publish_result_t r;
    f->lim.message_ttl_ms = UINT64_MAX;
    f->lim.client_ttl_ms = UINT64_MAX;
    f->lim.max_message_size = UINT64_MAX;
    assert_int_equal(st_open(f, &sub, "ch", "forever", -1, 1000), PUSHQ_OK);
    pushq_sub_close(f->s, &sub, 1000);
    assert_int_equal(st_pub(f, "ch", "a", 1000), PUSHQ_OK);
    pushq_store_sweep(f->s, 5000);
    assert_int_equal(pushq_store_channel_stats(f->s, "ch", 2, 5000, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.messages, 1);
    assert_int_equal(cs.clients, 1);
    static const char one = 'x';
    assert_int_equal(pushq_store_publish(f->s, "ch", 2, &one, SIZE_MAX - 8,
                     0, &f->lim, 5000, &r, NULL), PUSHQ_ENOMEM);
    assert_int_equal(pushq_store_channel_stats(f->s, "ch", 2, 5000, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.messages, 1);
}

/* Ensure a channel with a subscriber is not forgotten even when empty. */
static void test_store_channel_with_subscriber_kept(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    f->lim.message_ttl_ms = 10;
    pushq_sub_t sub;
    assert_int_equal(st_pub(f, "ch", "a", 0), PUSHQ_OK);
    assert_int_equal(st_open(f, &sub, "ch", NULL, -1, 0), PUSHQ_OK);
    pushq_store_sweep(f->s, 10000);
    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(f->s, "ch", 2, 10000, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.last_id, 1);
    assert_int_equal(cs.subscribers, 1);
    pushq_sub_close(f->s, &sub, 10000);
    pushq_store_sweep(f->s, 10010);
    assert_int_equal(pushq_store_channel_stats(f->s, "ch", 2, 10010, &cs),
                     PUSHQ_ENOTFOUND);
}

/* Ensure a full region answers ENOMEM, changes nothing, and accepts again
 * once messages have expired. */
static void test_store_full_region_enomem_then_expiry_frees(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    static char blob[60000];
    memset(blob, 'q', sizeof(blob));
    f->lim.buffer = 100000;
    f->lim.buffer_bytes = 1ull << 40;
    f->lim.message_ttl_ms = 5000;
    pushq_publish_result_t r;
    pushq_status_t st = PUSHQ_OK;
    uint64_t n = 0;
    while (n < 1000) {
        st = pushq_store_publish(f->s, "big", 3, blob, sizeof(blob), 0,
                                 &f->lim, 1, &r, NULL);
        if (st != PUSHQ_OK) {
            break;
        }
        n++;
    }
    assert_int_equal(st, PUSHQ_ENOMEM);
    assert_true(n > 5);

    pushq_stats_t before, after;
    pushq_store_stats(f->s, 2, &before);
    const char *why = NULL;
    assert_int_equal(pushq_store_publish(f->s, "other", 5, blob, sizeof(blob),
                     0, &f->lim, 2, &r, &why), PUSHQ_ENOMEM);
    assert_non_null(why);
    pushq_store_stats(f->s, 2, &after);
    assert_memory_equal(&before, &after, sizeof(before));
    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(f->s, "other", 5, 2, &cs),
                     PUSHQ_ENOTFOUND);
    assert_true(before.memory_used <= before.memory_total);

    /* everything expires at 5001: the next publish reclaims and fits */
    assert_int_equal(pushq_store_publish(f->s, "big", 3, blob, sizeof(blob),
                     0, &f->lim, 5001, &r, NULL), PUSHQ_OK);
    assert_int_equal(r.id, n + 1);
}

/* Ensure a channel at its buffer limit keeps accepting in a full region
 * (the new message takes the oldest one's place), and that a message the
 * trimmed space cannot hold is refused with nothing changed. */
static void test_store_full_region_channel_at_limit_keeps_working(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    static char blob[120000];
    memset(blob, 'q', sizeof(blob));
    f->lim.max_message_size = sizeof(blob);
    f->lim.buffer = 100000;
    f->lim.buffer_bytes = 1ull << 40;
    pushq_publish_result_t r;
    uint64_t n = 0;
    while (pushq_store_publish(f->s, "a", 1, blob, 60000, 0, &f->lim, 1, &r,
                               NULL) == PUSHQ_OK)
    {
        n++;
    }
    assert_true(n > 5);

    f->lim.buffer = (uint32_t) n;       /* the next publish trims one */
    for (uint64_t k = 1; k <= 3; k++) {
        assert_int_equal(pushq_store_publish(f->s, "a", 1, blob, 60000, 0,
                         &f->lim, 2, &r, NULL), PUSHQ_OK);
        assert_int_equal(r.id, n + k);
    }
    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(f->s, "a", 1, 2, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.messages, n);
    assert_int_equal(cs.first_id, 4);

    /* twice the size: one trimmed message's space is not enough */
    assert_int_equal(pushq_store_publish(f->s, "a", 1, blob, sizeof(blob), 0,
                     &f->lim, 3, &r, NULL), PUSHQ_ENOMEM);
    assert_int_equal(pushq_store_channel_stats(f->s, "a", 1, 3, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.messages, n);
    assert_int_equal(cs.first_id, 4);
    assert_int_equal(cs.last_id, n + 3);
}

/* Ensure stats count channels, messages, bytes, subscribers by kind,
 * clients and the published/delivered/lost/dropped_slow counters. */
static void test_store_stats_counts_everything(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_sub_t a, b, c;
    pushq_sub_spec_t sp;
    memset(&sp, 0, sizeof(sp));
    sp.chan = "ws";
    sp.chan_len = 2;
    sp.kind = PUSHQ_SUB_WEBSOCKET;
    sp.owner = f->owner;
    assert_int_equal(pushq_sub_open(f->s, &sp, &f->lim, 0, &a, NULL),
                     PUSHQ_OK);
    assert_int_equal(st_open(f, &b, "lp", "n1", -1, 0), PUSHQ_OK);
    assert_int_equal(st_open(f, &c, "lp", "n2", -1, 0), PUSHQ_OK);
    assert_int_equal(st_pub(f, "lp", "hello", 1), PUSHQ_OK);
    assert_int_equal(st_pub(f, "ws", "hi", 1), PUSHQ_OK);
    st_got_t got;
    assert_int_equal(st_fetch(f, &b, 10, 2, &got, NULL), PUSHQ_OK);
    assert_int_equal(got.n, 1);
    pushq_store_count_dropped_slow(f->s);

    pushq_stats_t st;
    pushq_store_stats(f->s, 3, &st);
    assert_int_equal(st.channels, 2);
    assert_int_equal(st.messages, 2);
    assert_int_equal(st.message_bytes, 7);
    assert_int_equal(st.subscribers_longpoll, 2);
    assert_int_equal(st.subscribers_websocket, 1);
    assert_int_equal(st.clients, 2);
    assert_int_equal(st.published, 2);
    assert_int_equal(st.delivered, 1);
    assert_int_equal(st.lost, 0);
    assert_int_equal(st.dropped_slow, 1);
    assert_int_equal(st.memory_total, REGION);
    assert_true(st.memory_used > 0 && st.memory_used < st.memory_total);

    pushq_sub_close(f->s, &a, 4);
    pushq_sub_close(f->s, &b, 4);
    pushq_sub_close(f->s, &c, 4);
    pushq_store_stats(f->s, 5, &st);
    assert_int_equal(st.subscribers_longpoll, 0);
    assert_int_equal(st.subscribers_websocket, 0);
    assert_int_equal(st.clients, 2);        /* within client_ttl */
}

/* Ensure memory used returns to its starting level once everything has
 * expired and been swept (no leak through channels, messages, clients or
 * subscriber records). */
static void test_store_sweep_returns_all_memory(void **state)
{
    st_fixture_t *f = (st_fixture_t *) *state;
    pushq_stats_t st0, st1;
    pushq_store_stats(f->s, 0, &st0);
    f->lim.message_ttl_ms = 100;
    f->lim.client_ttl_ms = 100;
    for (int i = 0; i < 20; i++) {
        char ch[16], nm[16];
        snprintf(ch, sizeof(ch), "c%d", i % 4);
        snprintf(nm, sizeof(nm), "n%d", i);
        pushq_sub_t sub;
        assert_int_equal(st_open(f, &sub, ch, nm, -1, 0), PUSHQ_OK);
        assert_int_equal(st_pub(f, ch, "payload", 0), PUSHQ_OK);
        pushq_sub_close(f->s, &sub, 0);
    }
    pushq_store_stats(f->s, 1, &st1);
    assert_true(st1.memory_used > st0.memory_used);
    assert_true(pushq_store_sweep(f->s, 1000) >= 20 + 20 + 4);
    pushq_store_stats(f->s, 1000, &st1);
    assert_int_equal(st1.channels, 0);
    assert_int_equal(st1.clients, 0);
    assert_int_equal(st1.messages, 0);
    assert_int_equal(st1.memory_used, st0.memory_used);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_init_too_small_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_init_misaligned_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_init_existing_keeps_contents, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_init_other_size_formats_afresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_destroy_then_init_fresh,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_publish_ids_per_channel_contiguous, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_publish_too_big_refused_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_publish_bad_args_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_buffer_count_trims_oldest,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_buffer_bytes_trims_oldest,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_message_ttl_expires_and_channel_forgotten, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_store_huge_ttl_and_size_no_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_channel_with_subscriber_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_full_region_enomem_then_expiry_frees, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_store_full_region_channel_at_limit_keeps_working, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_store_stats_counts_everything,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_sweep_returns_all_memory,
                                        setup, teardown),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
