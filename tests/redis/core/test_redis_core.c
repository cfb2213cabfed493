/*
 * test_redis_core.c -- the core's Redis scripts and commands against a
 * real redis-server (started here on a free loopback port, killed at the
 * end), through sync hiredis: what pushq_redis.h promises about ids,
 * named cursors, resets, lost counts, epochs and expiry, and the mirror
 * fed from a real PSUBSCRIBE connection, and its catching up (heard gaps,
 * range reads, the reconnect walk).
 *
 * Two connections (a, b) play two servers; a third (sub) is the
 * subscription connection of a server whose local store is `st`.
 */

#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "pushq.h"
#include "pushq_redis.h"

#define MAX_GOT 64

typedef struct {
    size_t    n;
    uint64_t  ids[MAX_GOT];
    unsigned  flags[MAX_GOT];
    char      data[MAX_GOT][64];
    size_t    len[MAX_GOT];
} got_t;

static pid_t          redis_pid;
static int            redis_port;
static redisContext  *ca, *cb, *csub;
static void          *st_mem;
static pushq_store_t *st;
static uint32_t       st_owner;
static size_t         st_size = 4u << 20;

/* ---- helpers ----------------------------------------------------------- */

static void collect(void *ctx, const pushq_msg_t *m)
{
    got_t *g = (got_t *) ctx;
    if (g->n < MAX_GOT) {
        size_t k = m->len < 63 ? m->len : 63;
        g->ids[g->n] = m->id;
        g->flags[g->n] = m->flags;
        memcpy(g->data[g->n], m->data, k);
        g->data[g->n][k] = '\0';
        g->len[g->n] = m->len;
    }
    g->n++;
}

static void limits(pushq_limits_t *l)
{
    pushq_limits_default(l);
    l->buffer = 100;
    l->message_ttl_ms = 60000;
    l->client_ttl_ms = 30000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static redisReply *run(redisContext *c, pushq_redis_cmd_t *cmd)
{
    return redisCommandArgv(c, cmd->argc, cmd->argv, cmd->argvlen);
}

static redisContext *connect_redis(void)
{
    struct timeval tv = { 2, 0 };
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
    if (c == NULL || c->err) {
        if (c) redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

static int load_scripts(redisContext *c)
{
    for (unsigned i = 0; i < PUSHQ_REDIS_SCRIPTS; i++) {
        pushq_redis_cmd_t cmd;
        pushq_redis_cmd_script_load(&cmd, i);
        redisReply *r = run(c, &cmd);
        int ok = r != NULL && r->type == REDIS_REPLY_STRING && r->len == 40;
        if (r) freeReplyObject(r);
        if (!ok) return -1;
    }
    return 0;
}

/* Publishes on connection c; returns the id (0 on failure). */
static uint64_t publish_lim(redisContext *c, const char *chan,
    const void *msg, size_t len, unsigned flags, const pushq_limits_t *lim)
{
    pushq_redis_cmd_t cmd;
    const char *why = NULL;
    pushq_status_t st_ = pushq_redis_cmd_publish(&cmd, chan, strlen(chan),
        msg, len, flags, lim, &why);
    if (st_ != PUSHQ_OK) {
        fail_msg("cmd_publish: %s", why);
    }
    redisReply *r = run(c, &cmd);
    uint64_t id = 0;
    char err[256];
    st_ = pushq_redis_reply_publish(r, &id, err, sizeof(err), &why);
    if (st_ != PUSHQ_OK) {
        if (r) freeReplyObject(r);
        fail_msg("reply_publish: %d %s", st_, why);
    }
    freeReplyObject(r);
    return id;
}

static uint64_t publish(redisContext *c, const char *chan, const char *msg)
{
    pushq_limits_t lim;
    limits(&lim);
    return publish_lim(c, chan, msg, strlen(msg), 0, &lim);
}

/* name NULL: none; last_id < 0: not given; cursor < 0: not given */
static void take_lim(redisContext *c, const char *chan, const char *name,
    long long last_id, long long cursor, size_t max_msgs, size_t max_bytes,
    const pushq_limits_t *lim, got_t *got, pushq_redis_take_info_t *info)
{
    pushq_redis_take_t t;
    memset(&t, 0, sizeof(t));
    t.chan = chan;
    t.chan_len = strlen(chan);
    t.name = name;
    t.name_len = name ? strlen(name) : 0;
    t.has_last_id = last_id >= 0;
    t.last_id = last_id >= 0 ? (uint64_t) last_id : 0;
    t.has_cursor = cursor >= 0;
    t.cursor = cursor >= 0 ? (uint64_t) cursor : 0;
    t.max_msgs = max_msgs;
    t.max_bytes = max_bytes;
    pushq_redis_cmd_t cmd;
    const char *why = NULL;
    if (pushq_redis_cmd_take(&cmd, &t, lim, &why) != PUSHQ_OK) {
        fail_msg("cmd_take: %s", why);
    }
    redisReply *r = run(c, &cmd);
    memset(got, 0, sizeof(*got));
    char err[256];
    pushq_status_t s = pushq_redis_reply_take(r, collect, got, info, err,
                                              sizeof(err), &why);
    if (r) freeReplyObject(r);
    if (s != PUSHQ_OK) {
        fail_msg("reply_take: %d %s", s, why);
    }
}

static void take(redisContext *c, const char *chan, const char *name,
    long long last_id, size_t max_msgs, got_t *got,
    pushq_redis_take_info_t *info)
{
    pushq_limits_t lim;
    limits(&lim);
    take_lim(c, chan, name, last_id, -1, max_msgs, (size_t) -1, &lim, got,
             info);
}

static long long redis_int(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    long long v = LLONG_MIN;
    if (r != NULL && r->type == REDIS_REPLY_INTEGER) {
        v = r->integer;
    } else if (r != NULL && r->type == REDIS_REPLY_STRING) {
        v = strtoll(r->str, NULL, 10);
    }
    if (r) freeReplyObject(r);
    return v;
}

static void redis_ok(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

/* Reads the subscription connection, mirroring every message, until n
 * pmessages of channel chan were mirrored; returns the wakers of the
 * last. */
static uint64_t mirror_n(const char *chan, int n)
{
    char want[128];
    snprintf(want, sizeof(want), "pushq:m:%s", chan);
    uint64_t wakers = 0;
    while (n > 0) {
        void *rv = NULL;
        assert_int_equal(redisGetReply(csub, &rv), REDIS_OK);
        redisReply *r = rv;
        const char *why = NULL;
        uint64_t w = 0;
        pushq_status_t s = pushq_redis_mirror(st, r, pushq_now_ms(), &w,
                                              &why);
        if (s != PUSHQ_OK) {
            freeReplyObject(r);
            fail_msg("mirror: %d %s", s, why);
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
            strcmp(r->element[2]->str, want) == 0)
        {
            wakers = w;
            n--;
        }
        freeReplyObject(r);
    }
    return wakers;
}

static void open_local(pushq_sub_t *sub, const char *chan)
{
    pushq_sub_spec_t sp;
    memset(&sp, 0, sizeof(sp));
    sp.chan = chan;
    sp.chan_len = strlen(chan);
    sp.kind = PUSHQ_SUB_WEBSOCKET;
    sp.owner = st_owner;
    pushq_limits_t lim;
    limits(&lim);
    assert_int_equal(pushq_sub_open(st, &sp, &lim, pushq_now_ms(), sub,
                                    NULL), PUSHQ_OK);
}

/* Reads the subscription connection until n pmessages of chan were read,
 * storing none of them: the subscription connection was "down" for them
 * (other channels' messages are mirrored as usual). */
static void drop_n(const char *chan, int n)
{
    char want[128];
    snprintf(want, sizeof(want), "pushq:m:%s", chan);
    while (n > 0) {
        void *rv = NULL;
        assert_int_equal(redisGetReply(csub, &rv), REDIS_OK);
        redisReply *r = rv;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
            strcmp(r->element[2]->str, want) == 0)
        {
            n--;
        } else {
            assert_int_equal(pushq_redis_mirror(st, r, pushq_now_ms(), NULL,
                                                NULL), PUSHQ_OK);
        }
        freeReplyObject(r);
    }
}

/* Reads the next pmessage of chan and mirrors it with
 * pushq_redis_mirror_heard; returns its wakers, the gap in *gap. */
static uint64_t heard_one(const char *chan, pushq_redis_gap_t *gap)
{
    char want[128];
    snprintf(want, sizeof(want), "pushq:m:%s", chan);
    for (;;) {
        void *rv = NULL;
        assert_int_equal(redisGetReply(csub, &rv), REDIS_OK);
        redisReply *r = rv;
        if (!(r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
              strcmp(r->element[2]->str, want) == 0))
        {
            assert_int_equal(pushq_redis_mirror(st, r, pushq_now_ms(), NULL,
                                                NULL), PUSHQ_OK);
            freeReplyObject(r);
            continue;
        }
        const char *why = NULL;
        uint64_t w = 0;
        pushq_status_t s = pushq_redis_mirror_heard(st, r, pushq_now_ms(),
                                                    &w, gap, &why);
        freeReplyObject(r);
        if (s != PUSHQ_OK) {
            fail_msg("mirror_heard: %d %s", s, why);
        }
        return w;
    }
}

/* A range read on connection c mirrored into st; returns *more. */
static int range_read(redisContext *c, const char *chan, uint64_t after,
    size_t max_msgs, uint64_t *wakers)
{
    pushq_redis_cmd_t cmd;
    pushq_redis_cmd_range(&cmd, chan, strlen(chan), after, max_msgs);
    assert_true(cmd.argc > 0);
    redisReply *r = run(c, &cmd);
    const char *why = NULL;
    int more = -1;
    uint64_t w = 0;
    pushq_status_t s = pushq_redis_reply_range(st, chan, strlen(chan), r,
        pushq_now_ms(), &w, &more, &why);
    if (r) freeReplyObject(r);
    if (s != PUSHQ_OK) {
        fail_msg("reply_range: %d %s", s, why);
    }
    if (wakers) *wakers = w;
    return more;
}

static uint64_t local_last(const char *chan)
{
    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(st, chan, strlen(chan),
                     pushq_now_ms(), &cs), PUSHQ_OK);
    return cs.last_id;
}

static void fetch_all(pushq_sub_t *sub, got_t *got, pushq_fetch_info_t *fi)
{
    memset(got, 0, sizeof(*got));
    assert_int_equal(pushq_sub_fetch(st, sub, MAX_GOT, (size_t) -1,
                     pushq_now_ms(), collect, got, fi), PUSHQ_OK);
}

typedef struct {
    int       n;
    char      chan[8][PUSHQ_NAME_MAX + 1];
    uint64_t  newest[8];
} chans_t;

static void chan_cb(void *ctx, const char *chan, size_t len,
    uint64_t newest)
{
    chans_t *c = ctx;
    if (c->n < 8) {
        memcpy(c->chan[c->n], chan, len);
        c->chan[c->n][len] = '\0';
        c->newest[c->n] = newest;
    }
    c->n++;
}

static int chans_find(const chans_t *c, const char *chan)
{
    for (int i = 0; i < c->n && i < 8; i++) {
        if (strcmp(c->chan[i], chan) == 0) return i;
    }
    return -1;
}

/* ---- the server -------------------------------------------------------- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *) &a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *) &a, &l) != 0)
    {
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static void stop_redis(void)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGTERM);
        waitpid(redis_pid, NULL, 0);
        redis_pid = 0;
    }
}

static int group_setup(void **state)
{
    (void) state;
    redis_port = free_port();
    if (redis_port <= 0) return -1;
    char port[16];
    snprintf(port, sizeof(port), "%d", redis_port);
    redis_pid = fork();
    if (redis_pid < 0) return -1;
    if (redis_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (freopen("/dev/null", "w", stdout) == NULL) _exit(127);
        execlp("redis-server", "redis-server", "--bind", "127.0.0.1",
               "--port", port, "--save", "", "--appendonly", "no",
               "--dir", "/tmp", "--loglevel", "warning", (char *) NULL);
        _exit(127);
    }
    atexit(stop_redis);
    for (int i = 0; i < 100 && ca == NULL; i++) {
        sleep_ms(50);
        ca = connect_redis();
    }
    cb = connect_redis();
    csub = connect_redis();
    if (ca == NULL || cb == NULL || csub == NULL) {
        fprintf(stderr, "cannot reach redis-server on port %d\n", redis_port);
        return -1;
    }
    if (load_scripts(ca) != 0) return -1;
    /* the other "server" loads them too (a no-op for Redis) */
    if (load_scripts(cb) != 0) return -1;

    pushq_redis_cmd_t cmd;
    pushq_redis_cmd_subscribe(&cmd);
    redisReply *r = run(csub, &cmd);
    if (r == NULL) return -1;
    const char *why = NULL;
    uint64_t w = 1;
    /* the confirmation is OK with no wakers */
    if (pushq_redis_mirror(NULL, r, 0, &w, &why) != PUSHQ_OK || w != 0) {
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);

    st_mem = aligned_alloc(64, st_size);
    if (st_mem == NULL) return -1;
    memset(st_mem, 0, st_size);
    if (pushq_store_init(st_mem, st_size, &st, NULL, NULL) != PUSHQ_OK ||
        pushq_store_owner_register(st, 0, 5, &st_owner, NULL) != PUSHQ_OK)
    {
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void) state;
    if (ca) redisFree(ca);
    if (cb) redisFree(cb);
    if (csub) redisFree(csub);
    stop_redis();
    if (st) pushq_store_destroy(st);
    free(st_mem);
    return 0;
}

/* ---- tests ------------------------------------------------------------- */

/* Ids go 1, 2, 3 whichever server publishes; the payload is binary-safe;
 * every server's mirror gets them in order, with the publisher's flags,
 * and wakes the waker of a local subscriber. */
static void test_publish_ids_any_server(void **state)
{
    (void) state;
    const char *ch = "pub.ids";
    pushq_sub_t sub;
    open_local(&sub, ch);

    pushq_limits_t lim;
    limits(&lim);
    static const char bin[] = { 'a', 0, 'b', (char) 0xff };
    assert_int_equal(publish(ca, ch, "one"), 1);
    assert_int_equal(publish_lim(cb, ch, bin, sizeof(bin), PUSHQ_MSG_BINARY,
                                 &lim), 2);
    assert_int_equal(publish(ca, ch, "three"), 3);
    assert_int_equal(redis_int(ca, "XLEN pushq:{%s}:log", ch), 3);
    assert_int_equal(redis_int(ca, "HGET pushq:{%s}:seq seq", ch), 3);

    uint64_t w = mirror_n(ch, 3);
    assert_int_equal(w, (uint64_t) 1 << 5);

    got_t got;
    memset(&got, 0, sizeof(got));
    pushq_fetch_info_t fi;
    assert_int_equal(pushq_sub_fetch(st, &sub, 10, (size_t) -1,
                     pushq_now_ms(), collect, &got, &fi), PUSHQ_OK);
    assert_int_equal(got.n, 3);
    assert_int_equal(fi.lost, 0);
    assert_int_equal(got.ids[0], 1);
    assert_int_equal(got.ids[1], 2);
    assert_int_equal(got.ids[2], 3);
    assert_string_equal(got.data[0], "one");
    assert_int_equal(got.len[1], sizeof(bin));
    assert_memory_equal(got.data[1], bin, sizeof(bin));
    assert_int_equal(got.flags[1], PUSHQ_MSG_BINARY);
    assert_int_equal(got.flags[2], 0);
    pushq_sub_close(st, &sub, pushq_now_ms());

    /* the same through a take (last_id 0): binary data intact */
    pushq_redis_take_info_t ti;
    take(cb, ch, NULL, 0, 10, &got, &ti);
    assert_int_equal(got.n, 3);
    assert_int_equal(got.len[1], sizeof(bin));
    assert_memory_equal(got.data[1], bin, sizeof(bin));
    assert_int_equal(got.flags[1], PUSHQ_MSG_BINARY);
    assert_int_equal(ti.newest_id, 3);
    assert_int_equal(ti.last_id, 3);
    assert_true(ti.epoch > 1000000000000ULL);    /* ms since 1970 */
}

/* A new name starts at the newest id: it gets what is published after. */
static void test_take_new_name_starts_at_newest(void **state)
{
    (void) state;
    const char *ch = "take.new";
    publish(ca, ch, "old1");
    publish(ca, ch, "old2");
    got_t got;
    pushq_redis_take_info_t ti;
    take(ca, ch, "alice", -1, 10, &got, &ti);
    assert_int_equal(got.n, 0);
    assert_int_equal(ti.last_id, 2);
    assert_int_equal(ti.newest_id, 2);
    assert_int_equal(ti.lost, 0);
    assert_int_equal(redis_int(ca, "GET pushq:{%s}:n:alice", ch), 2);

    publish(cb, ch, "new3");
    take(cb, ch, "alice", -1, 10, &got, &ti);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 3);
    assert_string_equal(got.data[0], "new3");
    assert_int_equal(ti.last_id, 3);

    /* no name, no last_id: nothing old either */
    take(ca, ch, NULL, -1, 10, &got, &ti);
    assert_int_equal(got.n, 0);
    assert_int_equal(ti.last_id, 3);
    mirror_n(ch, 3);
}

/* One name taken from two servers: every message exactly once, in order,
 * even with takes pipelined on both connections. */
static void test_named_cursor_exactly_once(void **state)
{
    (void) state;
    const char *ch = "take.once";
    got_t got;
    pushq_redis_take_info_t ti;
    take(ca, ch, "w", -1, 1, &got, &ti);       /* the name appears */
    for (int i = 0; i < 30; i++) {
        char m[16];
        snprintf(m, sizeof(m), "m%d", i + 1);
        publish(i % 2 ? ca : cb, ch, m);
    }

    pushq_limits_t lim;
    limits(&lim);
    pushq_redis_take_t t;
    memset(&t, 0, sizeof(t));
    t.chan = ch;
    t.chan_len = strlen(ch);
    t.name = "w";
    t.name_len = 1;
    t.max_msgs = 2;
    t.max_bytes = (size_t) -1;
    pushq_redis_cmd_t cmd;
    assert_int_equal(pushq_redis_cmd_take(&cmd, &t, &lim, NULL), PUSHQ_OK);
    /* 10 takes queued on each connection before any reply is read */
    for (int i = 0; i < 10; i++) {
        redisAppendCommandArgv(ca, cmd.argc, cmd.argv, cmd.argvlen);
        redisAppendCommandArgv(cb, cmd.argc, cmd.argv, cmd.argvlen);
    }
    int seen[31] = { 0 };
    uint64_t last_a = 0, last_b = 0;
    size_t total = 0;
    for (int i = 0; i < 20; i++) {
        redisContext *c = i % 2 ? cb : ca;
        uint64_t *lastp = i % 2 ? &last_b : &last_a;
        void *rv = NULL;
        assert_int_equal(redisGetReply(c, &rv), REDIS_OK);
        memset(&got, 0, sizeof(got));
        assert_int_equal(pushq_redis_reply_take(rv, collect, &got, &ti, NULL,
                                                0, NULL), PUSHQ_OK);
        freeReplyObject(rv);
        assert_true(got.n <= 2);
        for (size_t k = 0; k < got.n; k++) {
            assert_true(got.ids[k] >= 1 && got.ids[k] <= 30);
            assert_int_equal(seen[got.ids[k]], 0);
            seen[got.ids[k]] = 1;
            /* in order per connection */
            assert_true(got.ids[k] > *lastp);
            *lastp = got.ids[k];
            char m[16];
            snprintf(m, sizeof(m), "m%llu", (unsigned long long) got.ids[k]);
            assert_string_equal(got.data[k], m);
        }
        assert_int_equal(ti.lost, 0);
        total += got.n;
    }
    assert_int_equal(total, 30);
    assert_int_equal(redis_int(ca, "GET pushq:{%s}:n:w", ch), 30);
    take(cb, ch, "w", -1, 10, &got, &ti);
    assert_int_equal(got.n, 0);
    mirror_n(ch, 30);
}

/* last_id above the newest id: reset, from the oldest buffered message;
 * it also moves the name's cursor. */
static void test_last_id_above_newest_resets(void **state)
{
    (void) state;
    const char *ch = "take.reset";
    pushq_limits_t lim;
    limits(&lim);
    lim.buffer = 3;
    for (int i = 0; i < 5; i++) {
        publish_lim(ca, ch, "x", 1, 0, &lim);
    }
    got_t got;
    pushq_redis_take_info_t ti;
    take(ca, ch, "r", 99, 10, &got, &ti);
    assert_int_equal(ti.reset, 1);
    assert_int_equal(ti.lost, 0);
    assert_int_equal(got.n, 3);
    assert_int_equal(got.ids[0], 3);
    assert_int_equal(got.ids[2], 5);
    assert_int_equal(ti.last_id, 5);

    /* last_id wins over the name's cursor and moves it */
    take(ca, ch, "r", 3, 1, &got, &ti);
    assert_int_equal(ti.reset, 0);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 4);
    assert_int_equal(redis_int(ca, "GET pushq:{%s}:n:r", ch), 4);
    take(cb, ch, "r", -1, 10, &got, &ti);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 5);

    /* an unknown channel: last_id 7 > newest 0 -> reset, nothing */
    take(ca, "take.reset.none", NULL, 7, 10, &got, &ti);
    assert_int_equal(ti.reset, 1);
    assert_int_equal(got.n, 0);
    assert_int_equal(ti.newest_id, 0);
    mirror_n(ch, 5);
}

/* Trimmed by buffer: a cursor behind the stream counts the missing ids. */
static void test_trimmed_counts_lost(void **state)
{
    (void) state;
    const char *ch = "take.lost";
    pushq_limits_t lim;
    limits(&lim);
    lim.buffer = 3;
    for (int i = 0; i < 10; i++) {
        char m[16];
        snprintf(m, sizeof(m), "%d", i + 1);
        publish_lim(i % 2 ? cb : ca, ch, m, strlen(m), 0, &lim);
    }
    assert_int_equal(redis_int(ca, "XLEN pushq:{%s}:log", ch), 3);
    got_t got;
    pushq_redis_take_info_t ti;
    take(ca, ch, NULL, 2, 10, &got, &ti);
    assert_int_equal(ti.lost, 5);          /* 3..7 */
    assert_int_equal(got.n, 3);
    assert_int_equal(got.ids[0], 8);
    assert_string_equal(got.data[2], "10");
    assert_int_equal(ti.reset, 0);

    /* the mirror (buffer from the header) keeps 3 too */
    mirror_n(ch, 10);
    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(st, ch, strlen(ch),
                     pushq_now_ms(), &cs), PUSHQ_OK);
    assert_int_equal(cs.last_id, 10);
    assert_int_equal(cs.first_id, 8);
}

/* Messages older than message_ttl are skipped and counted lost. */
static void test_expired_counts_lost(void **state)
{
    (void) state;
    const char *ch = "take.expired";
    pushq_limits_t lim;
    limits(&lim);
    lim.message_ttl_ms = 40;
    publish_lim(ca, ch, "a", 1, 0, &lim);
    publish_lim(ca, ch, "b", 1, 0, &lim);
    sleep_ms(120);
    lim.message_ttl_ms = 60000;
    publish_lim(ca, ch, "c", 1, 0, &lim);
    got_t got;
    pushq_redis_take_info_t ti;
    /* one at a time: the expired ones are skipped all the same */
    take(cb, ch, NULL, 0, 1, &got, &ti);
    assert_int_equal(ti.lost, 2);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 3);
    take(cb, ch, NULL, 0, 10, &got, &ti);
    assert_int_equal(ti.lost, 2);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 3);
    assert_string_equal(got.data[0], "c");

    /* all expired: cursor moves to the newest, all lost */
    lim.message_ttl_ms = 40;
    publish_lim(ca, ch, "d", 1, 0, &lim);
    sleep_ms(120);
    take(cb, ch, NULL, 3, 10, &got, &ti);
    assert_int_equal(got.n, 0);
    assert_int_equal(ti.lost, 1);
    assert_int_equal(ti.last_id, 4);
    mirror_n(ch, 4);
}

/* max_bytes bounds a take, but one message always goes. */
static void test_max_bytes(void **state)
{
    (void) state;
    const char *ch = "take.bytes";
    publish(ca, ch, "0123456789");
    publish(ca, ch, "0123456789");
    publish(ca, ch, "0123456789");
    pushq_limits_t lim;
    limits(&lim);
    got_t got;
    pushq_redis_take_info_t ti;
    take_lim(ca, ch, NULL, 0, -1, 10, 25, &lim, &got, &ti);
    assert_int_equal(got.n, 2);
    assert_int_equal(ti.last_id, 2);
    take_lim(ca, ch, NULL, 0, -1, 10, 3, &lim, &got, &ti);
    assert_int_equal(got.n, 1);
    assert_int_equal(ti.last_id, 1);
    take_lim(ca, ch, NULL, 0, -1, 2, (size_t) -1, &lim, &got, &ti);
    assert_int_equal(got.n, 2);
    mirror_n(ch, 3);
}

/* A connection's cursor carries a name whose key expired. */
static void test_cursor_fallback(void **state)
{
    (void) state;
    const char *ch = "take.fallback";
    for (int i = 0; i < 4; i++) publish(ca, ch, "m");
    pushq_limits_t lim;
    limits(&lim);
    got_t got;
    pushq_redis_take_info_t ti;
    /* the name's key is missing: the connection's cursor 1 is used */
    take_lim(ca, ch, "ws", -1, 1, 10, (size_t) -1, &lim, &got, &ti);
    assert_int_equal(got.n, 3);
    assert_int_equal(got.ids[0], 2);
    /* the key exists now: it wins over the connection's cursor */
    publish(ca, ch, "m");
    take_lim(ca, ch, "ws", -1, 0, 10, (size_t) -1, &lim, &got, &ti);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 5);
    /* client_ttl 0: the name is forgotten at once */
    lim.client_ttl_ms = 0;
    take_lim(ca, ch, "gone", -1, -1, 10, (size_t) -1, &lim, &got, &ti);
    assert_int_equal(redis_int(ca, "EXISTS pushq:{%s}:n:gone", ch), 0);
    mirror_n(ch, 5);
}

/* Keys expire message_ttl + client_ttl after the last publish; a name
 * client_ttl after its last take. */
static void test_expiry_set(void **state)
{
    (void) state;
    const char *ch = "keys.ttl";
    pushq_limits_t lim;
    limits(&lim);
    lim.message_ttl_ms = 50000;
    lim.client_ttl_ms = 20000;
    publish_lim(ca, ch, "m", 1, 0, &lim);
    long long t1 = redis_int(ca, "PTTL pushq:{%s}:seq", ch);
    long long t2 = redis_int(ca, "PTTL pushq:{%s}:log", ch);
    assert_true(t1 > 69000 && t1 <= 70000);
    assert_true(t2 > 69000 && t2 <= 70000);
    got_t got;
    pushq_redis_take_info_t ti;
    take_lim(ca, ch, "n1", -1, -1, 1, (size_t) -1, &lim, &got, &ti);
    long long t3 = redis_int(ca, "PTTL pushq:{%s}:n:n1", ch);
    assert_true(t3 > 19000 && t3 <= 20000);

    /* message_ttl 0 (no age limit): the keys do not expire */
    lim.message_ttl_ms = 0;
    publish_lim(ca, ch, "m", 1, 0, &lim);
    assert_int_equal(redis_int(ca, "PTTL pushq:{%s}:seq", ch), -1);
    assert_int_equal(redis_int(ca, "PTTL pushq:{%s}:log", ch), -1);
    mirror_n(ch, 2);
}

/* When the keys are gone the channel begins again at 1 with a new epoch,
 * and the mirror restarts the local channel: a local subscriber gets the
 * new life's first message. */
static void test_epoch_changes_after_delete(void **state)
{
    (void) state;
    const char *ch = "epoch.new";
    publish(ca, ch, "a");
    publish(ca, ch, "b");
    mirror_n(ch, 2);
    got_t got;
    pushq_redis_take_info_t ti;
    take(ca, ch, NULL, 0, 10, &got, &ti);
    uint64_t e1 = ti.epoch;
    assert_true(e1 != 0);

    pushq_sub_t sub;
    open_local(&sub, ch);           /* at 2 */
    redis_ok(ca, "DEL pushq:{%s}:seq pushq:{%s}:log", ch, ch);
    sleep_ms(5);
    assert_int_equal(publish(cb, ch, "new"), 1);
    take(ca, ch, NULL, 0, 10, &got, &ti);
    assert_int_not_equal(ti.epoch, e1);
    assert_int_equal(got.n, 1);
    assert_int_equal(ti.newest_id, 1);

    mirror_n(ch, 1);
    assert_true(pushq_sub_ready(st, &sub));
    memset(&got, 0, sizeof(got));
    pushq_fetch_info_t fi;
    assert_int_equal(pushq_sub_fetch(st, &sub, 10, (size_t) -1,
                     pushq_now_ms(), collect, &got, &fi), PUSHQ_OK);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 1);
    assert_string_equal(got.data[0], "new");
    assert_int_equal(fi.lost, 0);
    pushq_sub_close(st, &sub, pushq_now_ms());
}

/* ---- catching the mirror up ------------------------------------------- */

/* Heard past a gap in the same epoch: nothing stored, the gap reported
 * after the local newest id; a duplicate and the next id are no gap. */
static void test_heard_gap_same_epoch(void **state)
{
    (void) state;
    const char *ch = "catch.gap";
    pushq_sub_t sub;
    open_local(&sub, ch);
    pushq_redis_gap_t gap;
    publish(ca, ch, "1");
    assert_int_equal(heard_one(ch, &gap), (uint64_t) 1 << 5);
    assert_int_equal(gap.chan_len, 0);
    publish(ca, ch, "2");
    publish(ca, ch, "3");
    drop_n(ch, 1);                          /* 2 missed */
    memset(&gap, 0x55, sizeof(gap));
    assert_int_equal(heard_one(ch, &gap), 0);
    assert_int_equal(gap.chan_len, strlen(ch));
    assert_memory_equal(gap.chan, ch, strlen(ch));
    assert_int_equal(gap.after_id, 1);
    assert_int_equal(local_last(ch), 1);    /* 3 not stored */

    /* the read fills it: 2 and 3, in order, nothing lost */
    uint64_t w = 0;
    assert_int_equal(range_read(cb, ch, gap.after_id, 10, &w), 0);
    assert_int_equal(w, (uint64_t) 1 << 5);
    assert_int_equal(local_last(ch), 3);
    got_t got;
    pushq_fetch_info_t fi;
    fetch_all(&sub, &got, &fi);
    assert_int_equal(got.n, 3);
    assert_int_equal(fi.lost, 0);
    assert_string_equal(got.data[0], "1");
    assert_string_equal(got.data[1], "2");
    assert_string_equal(got.data[2], "3");

    /* a range read again: duplicates only, nothing changes */
    assert_int_equal(range_read(cb, ch, 1, 10, &w), 0);
    assert_int_equal(local_last(ch), 3);
    assert_false(pushq_sub_ready(st, &sub));

    /* the next id heard is stored */
    publish(cb, ch, "4");
    heard_one(ch, &gap);
    assert_int_equal(gap.chan_len, 0);
    assert_int_equal(local_last(ch), 4);
    pushq_sub_close(st, &sub, pushq_now_ms());
}

/* The keys began again (Redis restarted without them) while the
 * subscription was down: a message of the new epoch with id > 1 is a gap
 * after 0; the read gets the new life from its first message. */
static void test_heard_gap_new_epoch(void **state)
{
    (void) state;
    const char *ch = "catch.epoch";
    publish(ca, ch, "a");
    publish(ca, ch, "b");
    mirror_n(ch, 2);
    pushq_sub_t sub;
    open_local(&sub, ch);                   /* at 2 */
    redis_ok(ca, "DEL pushq:{%s}:seq pushq:{%s}:log", ch, ch);
    sleep_ms(5);
    assert_int_equal(publish(cb, ch, "new1"), 1);
    assert_int_equal(publish(cb, ch, "new2"), 2);
    drop_n(ch, 1);                          /* new1 missed */
    pushq_redis_gap_t gap;
    heard_one(ch, &gap);
    assert_int_equal(gap.chan_len, strlen(ch));
    assert_int_equal(gap.after_id, 0);
    assert_int_equal(local_last(ch), 2);    /* still the old life */
    assert_false(pushq_sub_ready(st, &sub));

    assert_int_equal(range_read(ca, ch, 0, 10, NULL), 0);
    assert_int_equal(local_last(ch), 2);
    got_t got;
    pushq_fetch_info_t fi;
    fetch_all(&sub, &got, &fi);
    assert_int_equal(got.n, 2);
    assert_int_equal(fi.lost, 0);
    assert_int_equal(got.ids[0], 1);
    assert_string_equal(got.data[0], "new1");
    assert_string_equal(got.data[1], "new2");
    pushq_sub_close(st, &sub, pushq_now_ms());
}

/* After a reconnect every Redis channel with subscribers is read after its
 * local newest id; when the keys began again meanwhile, that first read
 * (after an old id) restarts the local channel and asks for another. */
static void test_reconnect_read_new_epoch(void **state)
{
    (void) state;
    const char *ch = "catch.reconnect";
    const char *quiet = "catch.quiet";      /* Redis channel, no subs */
    const char *local = "catch.local";      /* local channel, no Redis */
    for (int i = 0; i < 5; i++) publish(ca, ch, "old");
    mirror_n(ch, 5);
    publish(ca, quiet, "q");
    mirror_n(quiet, 1);
    pushq_sub_t sub, lsub;
    open_local(&sub, ch);                   /* at 5 */
    open_local(&lsub, local);

    chans_t cs;
    memset(&cs, 0, sizeof(cs));
    size_t n = pushq_store_redis_channels(st, chan_cb, &cs);
    assert_int_equal(n, (size_t) cs.n);
    int i = chans_find(&cs, ch);
    assert_true(i >= 0);
    assert_int_equal(cs.newest[i], 5);
    assert_int_equal(chans_find(&cs, quiet), -1);
    assert_int_equal(chans_find(&cs, local), -1);

    redis_ok(ca, "DEL pushq:{%s}:seq pushq:{%s}:log", ch, ch);
    sleep_ms(5);
    for (int k = 0; k < 7; k++) {
        char m[16];
        snprintf(m, sizeof(m), "n%d", k + 1);
        publish(cb, ch, m);
    }
    drop_n(ch, 7);                          /* all missed */

    uint64_t w = 0;
    assert_int_equal(range_read(ca, ch, 5, 10, &w), 1);
    assert_int_equal(local_last(ch), 0);    /* restarted, nothing stored */
    assert_int_equal(range_read(ca, ch, 0, 10, &w), 0);
    assert_int_equal(w, (uint64_t) 1 << 5);
    assert_int_equal(local_last(ch), 7);
    got_t got;
    pushq_fetch_info_t fi;
    fetch_all(&sub, &got, &fi);
    assert_int_equal(got.n, 7);
    assert_int_equal(fi.lost, 0);
    assert_string_equal(got.data[0], "n1");
    assert_string_equal(got.data[6], "n7");

    memset(&cs, 0, sizeof(cs));
    pushq_store_redis_channels(st, chan_cb, &cs);
    i = chans_find(&cs, ch);
    assert_true(i >= 0);
    assert_int_equal(cs.newest[i], 7);
    pushq_sub_close(st, &sub, pushq_now_ms());
    pushq_sub_close(st, &lsub, pushq_now_ms());
    memset(&cs, 0, sizeof(cs));
    pushq_store_redis_channels(st, chan_cb, &cs);
    assert_int_equal(chans_find(&cs, ch), -1);
}

/* Trimmed from the stream before it was read: the missing ids are lost
 * for the local readers, the rest arrives. */
static void test_range_trimmed_lost(void **state)
{
    (void) state;
    const char *ch = "catch.trim";
    pushq_limits_t lim;
    limits(&lim);
    lim.buffer = 3;
    publish_lim(ca, ch, "1", 1, 0, &lim);
    mirror_n(ch, 1);
    pushq_sub_t sub;
    open_local(&sub, ch);                   /* at 1 */
    for (int i = 2; i <= 10; i++) {
        char m[16];
        snprintf(m, sizeof(m), "%d", i);
        publish_lim(cb, ch, m, strlen(m), 0, &lim);
    }
    drop_n(ch, 9);
    assert_int_equal(range_read(ca, ch, 1, 10, NULL), 0);
    assert_int_equal(local_last(ch), 10);
    got_t got;
    pushq_fetch_info_t fi;
    fetch_all(&sub, &got, &fi);
    assert_int_equal(fi.lost, 6);           /* 2..7 */
    assert_int_equal(got.n, 3);
    assert_int_equal(got.ids[0], 8);
    assert_string_equal(got.data[2], "10");

    /* the publisher's buffer came with the entries: 3 kept */
    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(st, ch, strlen(ch),
                     pushq_now_ms(), &cs), PUSHQ_OK);
    assert_int_equal(cs.first_id, 8);
    pushq_sub_close(st, &sub, pushq_now_ms());
}

/* max_msgs smaller than what is there: *more until it is all read. */
static void test_range_more(void **state)
{
    (void) state;
    const char *ch = "catch.more";
    publish(ca, ch, "1");
    mirror_n(ch, 1);
    pushq_sub_t sub;
    open_local(&sub, ch);
    for (int i = 2; i <= 6; i++) publish(cb, ch, "x");
    drop_n(ch, 5);
    assert_int_equal(range_read(ca, ch, 1, 2, NULL), 1);
    assert_int_equal(local_last(ch), 3);
    assert_int_equal(range_read(ca, ch, 3, 2, NULL), 1);
    assert_int_equal(local_last(ch), 5);
    assert_int_equal(range_read(ca, ch, 5, 2, NULL), 0);
    assert_int_equal(local_last(ch), 6);
    /* exactly max_msgs left: no more */
    publish(cb, ch, "7");
    publish(cb, ch, "8");
    drop_n(ch, 2);
    assert_int_equal(range_read(ca, ch, 6, 2, NULL), 0);
    assert_int_equal(local_last(ch), 8);
    got_t got;
    pushq_fetch_info_t fi;
    fetch_all(&sub, &got, &fi);
    assert_int_equal(got.n, 7);
    assert_int_equal(fi.lost, 0);
    assert_int_equal(got.ids[0], 2);
    assert_int_equal(got.ids[6], 8);
    pushq_sub_close(st, &sub, pushq_now_ms());
}

/* Expired entries at the front are skipped (lost); the stored ones keep
 * what is left of their message_ttl; an entry written without b/y (an
 * older publish script) gets the default limits. */
static void test_range_expiry_and_old_entries(void **state)
{
    (void) state;
    const char *ch = "catch.expiry";
    pushq_limits_t lim;
    limits(&lim);
    publish_lim(ca, ch, "1", 1, 0, &lim);
    mirror_n(ch, 1);
    pushq_sub_t sub;
    open_local(&sub, ch);
    lim.message_ttl_ms = 40;
    publish_lim(ca, ch, "2", 1, 0, &lim);
    sleep_ms(120);
    lim.message_ttl_ms = 300;
    publish_lim(ca, ch, "3", 1, 0, &lim);
    drop_n(ch, 2);
    assert_int_equal(range_read(cb, ch, 1, 10, NULL), 0);
    got_t got;
    pushq_fetch_info_t fi;
    fetch_all(&sub, &got, &fi);
    assert_int_equal(fi.lost, 1);
    assert_int_equal(got.n, 1);
    assert_string_equal(got.data[0], "3");

    /* 3 expires locally when it does in Redis */
    pushq_channel_stats_t cs;
    sleep_ms(400);
    assert_int_equal(pushq_store_channel_stats(st, ch, strlen(ch),
                     pushq_now_ms(), &cs), PUSHQ_OK);
    assert_int_equal(cs.messages, 0);

    /* an entry as the first publish script wrote it (no b, no y) */
    assert_int_equal(redis_int(ca, "HINCRBY pushq:{%s}:seq seq 1", ch), 4);
    redis_ok(ca, "XADD pushq:{%s}:log 0-4 t 1 f 1 e 0 d old", ch);
    assert_int_equal(range_read(cb, ch, 3, 10, NULL), 0);
    fetch_all(&sub, &got, &fi);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ids[0], 4);
    assert_string_equal(got.data[0], "old");
    assert_int_equal(got.flags[0], PUSHQ_MSG_BINARY);
    pushq_sub_close(st, &sub, pushq_now_ms());
}

/* Redis out of memory -> PUSHQ_ENOMEM; a script Redis does not know (it
 * restarted) -> PUSHQ_EINTERNAL with Redis's text. */
static void test_errors(void **state)
{
    (void) state;
    pushq_limits_t lim;
    limits(&lim);
    pushq_redis_cmd_t cmd;
    assert_int_equal(pushq_redis_cmd_publish(&cmd, "err", 3, "x", 1, 0, &lim,
                                             NULL), PUSHQ_OK);
    redis_ok(ca, "CONFIG SET maxmemory 1");
    redisReply *r = run(ca, &cmd);
    redis_ok(cb, "CONFIG SET maxmemory 0");
    uint64_t id = 7;
    char err[128];
    const char *why = NULL;
    assert_int_equal(pushq_redis_reply_publish(r, &id, err, sizeof(err),
                                               &why), PUSHQ_ENOMEM);
    assert_int_equal(id, 0);
    assert_non_null(strstr(why, "OOM"));
    freeReplyObject(r);

    redis_ok(ca, "SCRIPT FLUSH");
    r = run(ca, &cmd);
    assert_int_equal(pushq_redis_reply_publish(r, &id, err, sizeof(err),
                                               &why), PUSHQ_EINTERNAL);
    assert_non_null(strstr(why, "NOSCRIPT"));
    freeReplyObject(r);
    assert_int_equal(load_scripts(ca), 0);
    r = run(ca, &cmd);
    assert_int_equal(pushq_redis_reply_publish(r, &id, err, sizeof(err),
                                               &why), PUSHQ_OK);
    assert_int_equal(id, 1);
    freeReplyObject(r);
    mirror_n("err", 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish_ids_any_server),
        cmocka_unit_test(test_take_new_name_starts_at_newest),
        cmocka_unit_test(test_named_cursor_exactly_once),
        cmocka_unit_test(test_last_id_above_newest_resets),
        cmocka_unit_test(test_trimmed_counts_lost),
        cmocka_unit_test(test_expired_counts_lost),
        cmocka_unit_test(test_max_bytes),
        cmocka_unit_test(test_cursor_fallback),
        cmocka_unit_test(test_expiry_set),
        cmocka_unit_test(test_epoch_changes_after_delete),
        cmocka_unit_test(test_heard_gap_same_epoch),
        cmocka_unit_test(test_heard_gap_new_epoch),
        cmocka_unit_test(test_reconnect_read_new_epoch),
        cmocka_unit_test(test_range_trimmed_lost),
        cmocka_unit_test(test_range_more),
        cmocka_unit_test(test_range_expiry_and_old_entries),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("redis_core", tests, group_setup,
                                       group_teardown);
}
