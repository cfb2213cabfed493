/*
 * test_redis_store_valid.cpp -- the Redis mirror keeps the store's
 * structures valid (store::validate, the check crash recovery relies on)
 * through every kind of mirrored message, and a crash in the middle of a
 * new life (life_start_ ahead of last_id_) is salvaged, not reset.
 * (C++ to reach common/src/store.hpp.)
 */

#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>
extern "C" {
#include <cmocka.h>
}

#include <cstdlib>
#include <cstring>

#include "pushq.h"
#include "store.hpp"
#include "store_layout.hpp"

namespace {

constexpr size_t region = 1u << 20;
constexpr uint64_t e1 = 1700000000000ULL, e2 = 1700000001000ULL;

struct fixture {
    void           *mem;
    pushq_store_t  *s;
    uint32_t        owner;
    pushq_limits_t  lim;
};

int setup(void **state)
{
    auto *f = new fixture{};
    f->mem = std::aligned_alloc(64, region);
    std::memset(f->mem, 0, region);
    if (pushq_store_init(f->mem, region, &f->s, nullptr, nullptr) !=
        PUSHQ_OK ||
        pushq_store_owner_register(f->s, 0, 3, &f->owner, nullptr) !=
        PUSHQ_OK)
    {
        return -1;
    }
    f->lim = pushq_limits_t{4, 1u << 20, 3600000, 300000, 65536};
    *state = f;
    return 0;
}

int teardown(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    pushq_store_destroy(f->s);
    std::free(f->mem);
    delete f;
    return 0;
}

bool valid(fixture *f)
{
    pushq::store view(static_cast<pushq::store_header *>(f->mem));
    return view.validate();
}

pushq_status_t mir(fixture *f, uint64_t epoch, uint64_t id)
{
    pushq_publish_result_t r;
    return pushq_store_mirror(f->s, "ch", 2, epoch, id, "m", 1, 0, &f->lim,
                              1, &r, nullptr);
}

void open(fixture *f, pushq_sub_t *sub, const char *name)
{
    pushq_sub_spec_t sp{};
    sp.chan = "ch";
    sp.chan_len = 2;
    sp.name = name;
    sp.name_len = name ? std::strlen(name) : 0;
    sp.kind = PUSHQ_SUB_LONGPOLL;
    sp.owner = f->owner;
    assert_int_equal(pushq_sub_open(f->s, &sp, &f->lim, 1, sub, nullptr),
                     PUSHQ_OK);
}

void drain(fixture *f, pushq_sub_t *sub)
{
    pushq_fetch_info_t fi;
    pushq_sub_fetch(f->s, sub, 100, SIZE_MAX, 1,
                    [](void *, const pushq_msg_t *) {}, nullptr, &fi);
}

/* Ensure every mirror path (first life at a jump, next, duplicate, gap,
 * trim, new epoch with named clients whose cursors move back) leaves
 * structures that validate. */
void test_redis_store_mirror_paths_validate(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    pushq_sub_t named, anon, at;
    open(f, &named, "n1");
    open(f, &anon, nullptr);
    assert_int_equal(mir(f, e1, 10), PUSHQ_OK);     /* first life at 9 */
    assert_true(valid(f));
    for (uint64_t id = 11; id <= 16; id++) {        /* trims to 4 */
        assert_int_equal(mir(f, e1, id), PUSHQ_OK);
    }
    drain(f, &named);
    assert_true(valid(f));
    assert_int_equal(mir(f, e1, 12), PUSHQ_OK);     /* duplicate */
    assert_int_equal(mir(f, e1, 30), PUSHQ_OK);     /* gap */
    assert_true(valid(f));

    pushq_sub_spec_t sp{};
    sp.chan = "ch";
    sp.chan_len = 2;
    sp.kind = PUSHQ_SUB_WEBSOCKET;
    sp.owner = f->owner;
    assert_int_equal(pushq_sub_open_at(f->s, &sp, 40, &f->lim, 1, &at,
                                       nullptr), PUSHQ_OK);
    assert_true(valid(f));

    /* new life: the name's cursor (30) must come back to 0 */
    drain(f, &named);
    assert_int_equal(mir(f, e2, 1), PUSHQ_OK);
    assert_true(valid(f));
    assert_true(pushq_sub_ready(f->s, &named));
    assert_true(pushq_sub_ready(f->s, &anon));
    assert_true(pushq_sub_ready(f->s, &at));
    assert_int_equal(mir(f, e1, 3), PUSHQ_OK);      /* and back again */
    assert_true(valid(f));
    pushq_sub_close(f->s, &named, 1);
    pushq_sub_close(f->s, &anon, 1);
    pushq_sub_close(f->s, &at, 1);
    assert_true(valid(f));
    assert_int_equal(pushq_store_sweep(f->s, 10000000), 3u);  /* msgs, ch,
                                                                 name */
    assert_true(valid(f));
}

/* A holder that died in the middle of a new life (life_start_ past
 * last_id_) leaves a store that fails validation; the next locker
 * salvages it and keeps the channel. */
void test_redis_store_broken_life_salvaged(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    assert_int_equal(mir(f, e1, 5), PUSHQ_OK);
    auto *h = static_cast<pushq::store_header *>(f->mem);
    pushq::store view(h);
    pushq::channel_rec *c = view.find_channel("ch", 2,
        pushq::store::hash_name("ch", 2));
    assert_non_null(c);
    c->life_start_.store(99);
    assert_false(valid(f));
    h->dirty_ = 1;

    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(f->s, "ch", 2, 1, &cs),
                     PUSHQ_OK);
    uint64_t rec = 0, resets = 0;
    pushq_store_recoveries(f->s, &rec, &resets);
    assert_int_equal(rec, 1);
    assert_int_equal(resets, 0);
    assert_int_equal(cs.last_id, 5);
    assert_int_equal(c->life_start_.load(), 5);
    assert_true(valid(f));
    assert_int_equal(mir(f, e1, 6), PUSHQ_OK);
    assert_true(valid(f));
}

} // namespace

int main()
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const CMUnitTest tests[] = {
        T(test_redis_store_mirror_paths_validate),
        T(test_redis_store_broken_life_salvaged),
    };
#undef T
    return cmocka_run_group_tests_name("redis_store_valid", tests, nullptr,
                                       nullptr);
}
