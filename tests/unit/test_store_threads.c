/*
 * test_store_threads.c -- one store in heap memory used by many threads of
 * one process at once, as the CivetWeb plugin uses it: publishers and
 * blocking long-poll style subscribers (pushq_sub_wait) on several
 * channels; nothing lost, nothing duplicated, order kept.
 */

#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pushq.h"
#include "store_test_util.h"

#define CHANNELS    3
#define PUBLISHERS  3           /* per channel */
#define PER_PUB     400
#define PER_CHAN    (PUBLISHERS * PER_PUB)
#define READERS     2           /* per channel, each with its own name */

typedef struct {
    st_fixture_t *f;
    int           chan;
    int           idx;
    atomic_int   *opened;
    /* results */
    uint64_t      got;
    int           ok;
} job_t;

static int setup(void **state)
{
    st_fixture_t *f = st_fixture_new(8u << 20);
    if (f == NULL) {
        return -1;
    }
    f->lim.buffer = PER_CHAN;           /* nothing trimmed */
    /* a wedged store fails the run (SIGALRM) instead of hanging it */
    alarm(60);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    alarm(0);
    st_fixture_free((st_fixture_t *) *state);
    return 0;
}

typedef struct {
    uint64_t  last;
    int       ok;
    uint64_t  n;
} order_t;

static void check_order(void *ctx, const pushq_msg_t *m)
{
    order_t *o = ctx;
    if (m->id != o->last + 1 || m->len == 0) {
        o->ok = 0;
    }
    o->last = m->id;
    o->n++;
}

static void *reader(void *arg)
{
    job_t *j = arg;
    char chan[16], name[16];
    snprintf(chan, sizeof(chan), "c%d", j->chan);
    snprintf(name, sizeof(name), "r%d", j->idx);
    pushq_sub_t sub;
    j->ok = st_open(j->f, &sub, chan, name, -1, 0) == PUSHQ_OK;
    atomic_fetch_add(j->opened, 1);
    order_t o = { 0, 1, 0 };
    int rounds = 0;
    while (j->ok && o.n < PER_CHAN && rounds++ < 100000) {
        pushq_sub_wait(j->f->s, &sub, 2000);
        pushq_fetch_info_t info;
        if (pushq_sub_fetch(j->f->s, &sub, 5, 1 << 20, 0, check_order, &o,
                            &info) != PUSHQ_OK || info.lost != 0)
        {
            j->ok = 0;
        }
    }
    j->got = o.n;
    j->ok = j->ok && o.ok;
    pushq_sub_close(j->f->s, &sub, 0);
    return NULL;
}

static void *publisher(void *arg)
{
    job_t *j = arg;
    char chan[16];
    snprintf(chan, sizeof(chan), "c%d", j->chan);
    j->ok = 1;
    for (int i = 0; i < PER_PUB; i++) {
        if (st_pub(j->f, chan, "message", 0) != PUSHQ_OK) {
            j->ok = 0;
        }
    }
    return NULL;
}

/* Ensure 9 publisher and 6 reader threads on 3 channels of one heap store
 * deliver every message to every reader exactly once, in id order, with
 * blocking waits woken by publishes from other threads. */
static void test_store_threads_publish_and_wait_exact(void **state)
{
    st_fixture_t *f = *state;
    atomic_int opened = 0;
    job_t readers[CHANNELS * READERS], pubs[CHANNELS * PUBLISHERS];
    pthread_t rt[CHANNELS * READERS], pt[CHANNELS * PUBLISHERS];

    for (int i = 0; i < CHANNELS * READERS; i++) {
        readers[i] = (job_t) { f, i % CHANNELS, i, &opened, 0, 0 };
        assert_int_equal(pthread_create(&rt[i], NULL, reader, &readers[i]),
                         0);
    }
    while (atomic_load(&opened) < CHANNELS * READERS) {
        sched_yield();
    }
    for (int i = 0; i < CHANNELS * PUBLISHERS; i++) {
        pubs[i] = (job_t) { f, i % CHANNELS, i, &opened, 0, 0 };
        assert_int_equal(pthread_create(&pt[i], NULL, publisher, &pubs[i]),
                         0);
    }
    for (int i = 0; i < CHANNELS * PUBLISHERS; i++) {
        pthread_join(pt[i], NULL);
        assert_true(pubs[i].ok);
    }
    for (int i = 0; i < CHANNELS * READERS; i++) {
        pthread_join(rt[i], NULL);
        assert_true(readers[i].ok);
        assert_int_equal(readers[i].got, PER_CHAN);
    }
    for (int c = 0; c < CHANNELS; c++) {
        char chan[16];
        pushq_channel_stats_t cs;
        snprintf(chan, sizeof(chan), "c%d", c);
        assert_int_equal(pushq_store_channel_stats(f->s, chan, strlen(chan),
                                                   0, &cs), PUSHQ_OK);
        assert_int_equal(cs.last_id, PER_CHAN);
        assert_int_equal(cs.subscribers, 0);
    }
    pushq_stats_t st;
    pushq_store_stats(f->s, 0, &st);
    assert_int_equal(st.published, CHANNELS * PER_CHAN);
    assert_int_equal(st.delivered, (uint64_t) CHANNELS * PER_CHAN * READERS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_store_threads_publish_and_wait_exact, setup, teardown),
    };
    return cmocka_run_group_tests_name("store_threads", tests, NULL, NULL);
}
