/*
 * test_store_multiprocess.c -- one store in a MAP_SHARED region used by
 * several forked processes at once, as nginx workers use it: publishers
 * and blocking subscribers in different processes; nothing lost, nothing
 * duplicated, ids contiguous, and a publish in one process wakes waiters
 * in the others.
 */

#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pushq.h"

#define REGION      (8u << 20)
#define PUBLISHERS  4
#define PER_PUB     500
#define TOTAL       (PUBLISHERS * PER_PUB)
#define SOLO        3           /* consumers with a name of their own */
#define SHARED      2           /* consumers sharing the name "both"  */
#define CONSUMERS   (SOLO + SHARED)

/* Results, in a second shared mapping the children write into. */
typedef struct {
    atomic_uint  opened;                 /* consumers subscribed          */
    atomic_uint  shared_got;             /* messages the pair received    */
    /* publisher view: pub_of[id] = 1 + publisher index, seq_of[id]      */
    uint32_t     pub_of[TOTAL + 1];
    uint32_t     seq_of[TOTAL + 1];
    /* consumer view: got[c][id] = how many times c received id          */
    uint8_t      got[CONSUMERS][TOTAL + 1];
    /* the payload each consumer saw for id, as "p<pub>-<seq>" parsed    */
    uint32_t     saw_pub[CONSUMERS][TOTAL + 1];
    uint32_t     saw_seq[CONSUMERS][TOTAL + 1];
    uint32_t     order_ok[CONSUMERS];    /* ids came increasing           */
    uint32_t     max_wait_ms[CONSUMERS];
} results_t;

typedef struct {
    void          *mem;
    pushq_store_t *s;
    results_t     *r;
} mp_fixture_t;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void limits(pushq_limits_t *l)
{
    l->buffer = TOTAL;                  /* nothing trimmed: nothing lost */
    l->buffer_bytes = 1u << 30;
    l->message_ttl_ms = 3600 * 1000;
    l->client_ttl_ms = 60 * 1000;
    l->max_message_size = 1024;
}

static int setup(void **state)
{
    mp_fixture_t *f = calloc(1, sizeof(*f));
    f->mem = mmap(NULL, REGION, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    f->r = mmap(NULL, sizeof(results_t), PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (f->mem == MAP_FAILED || f->r == MAP_FAILED ||
        pushq_store_init(f->mem, REGION, &f->s, NULL, NULL) != PUSHQ_OK)
    {
        return -1;
    }
    /* a wedged store fails the run (SIGALRM) instead of hanging it */
    alarm(60);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    mp_fixture_t *f = *state;
    alarm(0);
    pushq_store_destroy(f->s);
    munmap(f->mem, REGION);
    munmap(f->r, sizeof(results_t));
    free(f);
    return 0;
}

typedef struct {
    results_t *r;
    int        c;
    uint64_t   last;
    int        order_ok;
} consume_ctx_t;

static void on_msg(void *ctx, const pushq_msg_t *m)
{
    consume_ctx_t *cc = ctx;
    char text[32];
    unsigned p, q;
    if (m->id == 0 || m->id > TOTAL) {
        cc->order_ok = 0;
        return;
    }
    if (m->id <= cc->last) {
        cc->order_ok = 0;
    }
    cc->last = m->id;
    cc->r->got[cc->c][m->id]++;
    /* compared with what the publisher recorded once everyone is done */
    if (m->len < sizeof(text)) {
        memcpy(text, m->data, m->len);
        text[m->len] = '\0';
        if (sscanf(text, "p%u-%u", &p, &q) == 2) {
            cc->r->saw_pub[cc->c][m->id] = p + 1;
            cc->r->saw_seq[cc->c][m->id] = q;
        }
    }
}

static void consumer(mp_fixture_t *f, int c)
{
    uint32_t owner;
    pushq_limits_t lim;
    limits(&lim);
    /* waker = consumer index: like one nginx worker each */
    if (pushq_store_owner_register(f->s, getpid(), (uint32_t) c, &owner,
                                   NULL) != PUSHQ_OK)
    {
        _exit(2);
    }
    char name[16];
    if (c < SOLO) {
        snprintf(name, sizeof(name), "solo%d", c);
    } else {
        snprintf(name, sizeof(name), "both");
    }
    pushq_sub_spec_t sp;
    memset(&sp, 0, sizeof(sp));
    sp.chan = "mp";
    sp.chan_len = 2;
    sp.name = name;
    sp.name_len = strlen(name);
    sp.kind = PUSHQ_SUB_LONGPOLL;
    sp.owner = owner;
    pushq_sub_t sub;
    if (pushq_sub_open(f->s, &sp, &lim, mono_ms(), &sub, NULL) != PUSHQ_OK) {
        _exit(3);
    }
    atomic_fetch_add(&f->r->opened, 1);

    consume_ctx_t cc = { f->r, c, 0, 1 };
    uint64_t mine = 0, deadline = mono_ms() + 20000;
    uint32_t max_wait = 0;
    for (;;) {
        int done = c < SOLO ? mine == TOTAL
                            : atomic_load(&f->r->shared_got) >= TOTAL;
        if (done || mono_ms() > deadline) {
            break;
        }
        uint64_t t0 = mono_ms();
        pushq_sub_wait(f->s, &sub, 5000);
        uint64_t dt = mono_ms() - t0;
        pushq_fetch_info_t info;
        /* small batches, so that the pair of "both" interleave */
        if (pushq_sub_fetch(f->s, &sub, 7, 1 << 20, mono_ms(), on_msg, &cc,
                            &info) != PUSHQ_OK || info.lost != 0)
        {
            cc.order_ok = 0;
        }
        mine += info.count;
        if (c >= SOLO && info.count != 0 &&
            atomic_fetch_add(&f->r->shared_got, (unsigned) info.count)
                + info.count >= TOTAL)
        {
            /* the other connection of the pair sleeps with nothing more
             * to come: wake it from this process */
            pushq_store_wake_all(f->s);
        }
        if (info.count != 0 && dt > max_wait) {
            max_wait = (uint32_t) dt;
        }
    }
    f->r->order_ok[c] = (uint32_t) cc.order_ok;
    f->r->max_wait_ms[c] = max_wait;
    pushq_sub_close(f->s, &sub, mono_ms());
    pushq_store_owner_release(f->s, owner, mono_ms());
    _exit(0);
}

static void publisher(mp_fixture_t *f, int p)
{
    pushq_limits_t lim;
    limits(&lim);
    for (uint32_t i = 0; i < PER_PUB; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof(msg), "p%d-%u", p, i);
        pushq_publish_result_t res;
        if (pushq_store_publish(f->s, "mp", 2, msg, (size_t) n, 0, &lim,
                                mono_ms(), &res, NULL) != PUSHQ_OK ||
            res.id == 0 || res.id > TOTAL || f->r->pub_of[res.id] != 0)
        {
            _exit(4);
        }
        f->r->seq_of[res.id] = i;
        f->r->pub_of[res.id] = (uint32_t) p + 1;
        if (i % 50 == 0) {
            usleep(1000);       /* let the consumers sleep and be woken */
        }
    }
    _exit(0);
}

static int wait_all(pid_t *pids, int n)
{
    int ok = 1;
    for (int i = 0; i < n; i++) {
        int st;
        if (waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) ||
            WEXITSTATUS(st) != 0)
        {
            ok = 0;
        }
    }
    return ok;
}

/* Ensure publishers in 4 processes and blocking subscribers in 5 others
 * share one region: every id 1..N is given exactly once, each named
 * subscriber receives all of them in order, the two connections sharing a
 * name receive each message exactly once between them, and no subscriber
 * waits long once a message is there (cross-process wake-up, and
 * pushq_store_wake_all from another process). */
static void test_store_multiprocess_publish_and_wait_exact(void **state)
{
    mp_fixture_t *f = *state;
    pid_t cons[CONSUMERS], pubs[PUBLISHERS];

    for (int c = 0; c < CONSUMERS; c++) {
        cons[c] = fork();
        assert_true(cons[c] >= 0);
        if (cons[c] == 0) {
            consumer(f, c);
        }
    }
    uint64_t t0 = mono_ms();
    while (atomic_load(&f->r->opened) < CONSUMERS && mono_ms() - t0 < 10000) {
        usleep(1000);
    }
    assert_int_equal(atomic_load(&f->r->opened), CONSUMERS);

    for (int p = 0; p < PUBLISHERS; p++) {
        pubs[p] = fork();
        assert_true(pubs[p] >= 0);
        if (pubs[p] == 0) {
            publisher(f, p);
        }
    }
    assert_true(wait_all(pubs, PUBLISHERS));
    assert_true(wait_all(cons, CONSUMERS));

    /* ids contiguous, each given once */
    for (uint32_t id = 1; id <= TOTAL; id++) {
        assert_int_not_equal(f->r->pub_of[id], 0);
    }
    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(f->s, "mp", 2, mono_ms(), &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.last_id, TOTAL);
    assert_int_equal(cs.subscribers, 0);

    for (int c = 0; c < CONSUMERS; c++) {
        assert_true(f->r->order_ok[c]);
        for (uint32_t id = 1; id <= TOTAL; id++) {
            if (c < SOLO) {
                assert_int_equal(f->r->got[c][id], 1);
            }
            if (f->r->got[c][id] != 0) {
                /* the bytes stored under id are the ones published */
                assert_int_equal(f->r->saw_pub[c][id], f->r->pub_of[id]);
                assert_int_equal(f->r->saw_seq[c][id], f->r->seq_of[id]);
            }
        }
    }
    uint32_t each[SHARED] = { 0 };
    for (uint32_t id = 1; id <= TOTAL; id++) {
        unsigned sum = 0;
        for (int k = 0; k < SHARED; k++) {
            sum += f->r->got[SOLO + k][id];
            each[k] += f->r->got[SOLO + k][id];
        }
        assert_int_equal(sum, 1);
    }
    for (int c = 0; c < CONSUMERS; c++) {
        /* woken by a publish in another process, never by the 5 s
         * timeout running out (generous: the machine may be loaded) */
        assert_true(f->r->max_wait_ms[c] < 2500);
    }

    pushq_stats_t st;
    pushq_store_stats(f->s, mono_ms(), &st);
    assert_int_equal(st.published, TOTAL);
    assert_int_equal(st.delivered, (uint64_t) TOTAL * (SOLO + 1));
    assert_int_equal(st.lost, 0);
    assert_int_equal(st.subscribers_longpoll, 0);
    printf("# pair split %u/%u\n", each[0], each[1]);
}

/* Ensure an owner registered by a process that exits without releasing is
 * reaped by another process, and its subscribers stop counting. */
static void test_store_multiprocess_dead_worker_reaped(void **state)
{
    mp_fixture_t *f = *state;
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        uint32_t owner;
        pushq_limits_t lim;
        pushq_sub_t sub;
        pushq_sub_spec_t sp;
        limits(&lim);
        memset(&sp, 0, sizeof(sp));
        sp.chan = "mp";
        sp.chan_len = 2;
        sp.kind = PUSHQ_SUB_WEBSOCKET;
        if (pushq_store_owner_register(f->s, getpid(), 9, &owner, NULL)) {
            _exit(1);
        }
        sp.owner = owner;
        for (int i = 0; i < 10; i++) {
            if (pushq_sub_open(f->s, &sp, &lim, 0, &sub, NULL)) {
                _exit(1);
            }
        }
        _exit(0);               /* "crash": nothing closed */
    }
    assert_true(wait_all(&child, 1));
    pushq_stats_t st;
    pushq_store_stats(f->s, 0, &st);
    assert_int_equal(st.subscribers_websocket, 10);
    assert_int_equal(pushq_store_owner_reap(f->s, 0), 1);
    pushq_store_stats(f->s, 0, &st);
    assert_int_equal(st.subscribers_websocket, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_store_multiprocess_publish_and_wait_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_multiprocess_dead_worker_reaped, setup, teardown),
    };
    return cmocka_run_group_tests_name("store_multiprocess", tests, NULL,
                                       NULL);
}
