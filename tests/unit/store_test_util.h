/*
 * store_test_util.h -- fixture helpers shared by the store's unit tests
 * (test_store*.c, test_sub*.c).  Header-only, static functions.
 */

#ifndef STORE_TEST_UTIL_H
#define STORE_TEST_UTIL_H

#include <stdlib.h>
#include <string.h>

#include "pushq.h"

#define ST_MAX_GOT 64

/* A store in heap memory plus one registered owner. */
typedef struct {
    void           *mem;
    size_t          size;
    pushq_store_t  *s;
    uint32_t        owner;
    pushq_limits_t  lim;
} st_fixture_t;

/* What a fetch handed out. */
typedef struct {
    size_t    n;
    uint64_t  ids[ST_MAX_GOT];
    unsigned  flags[ST_MAX_GOT];
    char      data[ST_MAX_GOT][32];
    size_t    len[ST_MAX_GOT];
} st_got_t;

static inline void st_collect(void *ctx, const pushq_msg_t *m)
{
    st_got_t *g = (st_got_t *) ctx;
    if (g->n < ST_MAX_GOT) {
        size_t k = m->len < 31 ? m->len : 31;
        g->ids[g->n] = m->id;
        g->flags[g->n] = m->flags;
        memcpy(g->data[g->n], m->data, k);
        g->data[g->n][k] = '\0';
        g->len[g->n] = m->len;
    }
    g->n++;
}

static inline void st_limits(pushq_limits_t *l)
{
    l->buffer = 1000;
    l->buffer_bytes = 16u << 20;
    l->message_ttl_ms = 3600 * 1000;
    l->client_ttl_ms = 300 * 1000;
    l->max_message_size = 64 * 1024;
}

static inline st_fixture_t *st_fixture_new(size_t size)
{
    st_fixture_t *f = (st_fixture_t *) calloc(1, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    f->size = size;
    f->mem = aligned_alloc(64, size);
    if (f->mem == NULL) {
        free(f);
        return NULL;
    }
    memset(f->mem, 0, size);
    int created = 0;
    if (pushq_store_init(f->mem, size, &f->s, &created, NULL) != PUSHQ_OK ||
        !created ||
        pushq_store_owner_register(f->s, 0, 0, &f->owner, NULL) != PUSHQ_OK)
    {
        free(f->mem);
        free(f);
        return NULL;
    }
    st_limits(&f->lim);
    return f;
}

static inline void st_fixture_free(st_fixture_t *f)
{
    if (f != NULL) {
        pushq_store_destroy(f->s);
        free(f->mem);
        free(f);
    }
}

static inline pushq_status_t st_pub(st_fixture_t *f, const char *chan,
    const char *msg, uint64_t now)
{
    pushq_publish_result_t r;
    return pushq_store_publish(f->s, chan, strlen(chan), msg, strlen(msg), 0,
                               &f->lim, now, &r, NULL);
}

/* Opens a subscriber: name NULL = anonymous; last_id < 0 = not given. */
static inline pushq_status_t st_open(st_fixture_t *f, pushq_sub_t *sub,
    const char *chan, const char *name, long long last_id, uint64_t now)
{
    pushq_sub_spec_t sp;
    memset(&sp, 0, sizeof(sp));
    sp.chan = chan;
    sp.chan_len = strlen(chan);
    sp.name = name;
    sp.name_len = name ? strlen(name) : 0;
    sp.has_last_id = last_id >= 0;
    sp.last_id = last_id >= 0 ? (uint64_t) last_id : 0;
    sp.kind = PUSHQ_SUB_LONGPOLL;
    sp.owner = f->owner;
    return pushq_sub_open(f->s, &sp, &f->lim, now, sub, NULL);
}

static inline pushq_status_t st_fetch(st_fixture_t *f, pushq_sub_t *sub,
    size_t max, uint64_t now, st_got_t *got, pushq_fetch_info_t *info)
{
    memset(got, 0, sizeof(*got));
    return pushq_sub_fetch(f->s, sub, max, (size_t) -1, now, st_collect, got,
                           info);
}

#endif
