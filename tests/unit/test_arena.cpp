/*
 * test_arena.cpp -- the allocator inside the store's region
 * (common/src/arena.hpp): fits, alignment, coalescing, full arena, and the
 * structural check used after crashes.
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
#include <vector>

#include "arena.hpp"

namespace {

constexpr size_t region = 1u << 20;
constexpr uint64_t begin_off = 4096;   /* as if a header came first */

struct fixture {
    char                *base;
    pushq::arena_header  h;
    pushq::arena        *a;
};

int setup(void **state)
{
    auto *f = new fixture{};
    f->base = static_cast<char *>(std::aligned_alloc(64, region));
    std::memset(f->base, 0xee, region);
    f->a = new pushq::arena(f->base, &f->h);
    f->a->format(begin_off, region);
    *state = f;
    return 0;
}

int teardown(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    delete f->a;
    std::free(f->base);
    delete f;
    return 0;
}

/* xorshift: deterministic "random" sizes */
uint64_t next_rand(uint64_t &s)
{
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

} // namespace

/* Ensure a fresh arena is one free block that checks out, and offsets
 * handed out are 8-aligned, inside the region and past its start. */
static void test_arena_alloc_aligned_inside_region(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    assert_true(f->a->check());
    assert_int_equal(f->a->used(), 0);
    for (size_t n : {0, 1, 7, 8, 24, 100, 1000, 5000}) {
        uint64_t o = f->a->alloc(n);
        assert_int_not_equal(o, 0);
        assert_int_equal(o % 8, 0);
        assert_true(o >= begin_off && o + n <= region);
        assert_true(f->a->usable(o) >= n);
        std::memset(f->base + o, 0x11, n);
    }
    assert_true(f->a->check());
    assert_int_equal(f->a->allocations(), 8);
}

/* Ensure allocations never overlap: each block's bytes survive writes to
 * all the others. */
static void test_arena_allocations_disjoint(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    std::vector<std::pair<uint64_t, size_t>> v;
    uint64_t seed = 42;
    for (int i = 0; i < 500; i++) {
        size_t n = next_rand(seed) % 700;
        uint64_t o = f->a->alloc(n);
        assert_int_not_equal(o, 0);
        std::memset(f->base + o, i & 0xff, n);
        v.emplace_back(o, n);
    }
    for (size_t i = 0; i < v.size(); i++) {
        for (size_t k = 0; k < v[i].second; k++) {
            assert_int_equal(static_cast<unsigned char>(
                f->base[v[i].first + k]), i & 0xff);
        }
    }
}

/* Ensure freeing everything coalesces back into one block: the whole
 * capacity can then be allocated at once. */
static void test_arena_free_all_coalesces(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    std::vector<uint64_t> v;
    uint64_t o;
    while ((o = f->a->alloc(40)) != 0) {
        v.push_back(o);
    }
    assert_true(v.size() > 1000);
    assert_true(f->a->check());
    /* free in an interleaved order: odd ones, then even ones */
    for (size_t i = 1; i < v.size(); i += 2) f->a->free(v[i]);
    assert_true(f->a->check());
    assert_int_equal(f->a->alloc(200), 0);      /* holes are 64 bytes */
    for (size_t i = 0; i < v.size(); i += 2) f->a->free(v[i]);
    assert_true(f->a->check());
    assert_int_equal(f->a->used(), 0);
    uint64_t big = f->a->alloc(f->a->capacity() - 16);
    assert_int_not_equal(big, 0);
    assert_true(f->a->check());
}

/* Ensure a request larger than any free block fails with 0 and changes
 * nothing; a request that fits exactly the remaining space succeeds. */
static void test_arena_full_fails_unchanged(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    uint64_t a = f->a->alloc(region / 2);
    assert_int_not_equal(a, 0);
    uint64_t used = f->a->used(), allocs = f->a->allocations();
    assert_int_equal(f->a->alloc(region / 2), 0);
    assert_int_equal(f->a->alloc(size_t(1) << 50), 0);
    assert_int_equal(f->a->used(), used);
    assert_int_equal(f->a->allocations(), allocs);
    assert_true(f->a->check());
    uint64_t rest = f->a->capacity() - used - 16;
    assert_int_not_equal(f->a->alloc(rest), 0);
    assert_int_equal(f->a->alloc(0), 0);
    f->a->free(a);
    assert_int_not_equal(f->a->alloc(region / 4), 0);
}

/* Ensure a random mix of sizes from 0 to 64 KiB, allocated and freed in
 * random order, keeps every structure consistent and ends empty. */
static void test_arena_random_churn_consistent(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    std::vector<uint64_t> live;
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (int step = 0; step < 20000; step++) {
        uint64_t r = next_rand(seed);
        if (!live.empty() && (r % 3 == 0 || live.size() > 400)) {
            size_t i = (r >> 8) % live.size();
            f->a->free(live[i]);
            live[i] = live.back();
            live.pop_back();
        } else {
            size_t n = (r >> 16) % 4 == 0 ? (r >> 20) % 65536
                                          : (r >> 20) % 300;
            uint64_t o = f->a->alloc(n);
            if (o != 0) {
                live.push_back(o);
            }
        }
        if (step % 997 == 0) {
            assert_true(f->a->check());
        }
    }
    for (uint64_t o : live) f->a->free(o);
    assert_true(f->a->check());
    assert_int_equal(f->a->used(), 0);
    assert_int_equal(f->a->allocations(), 0);
}

/* Ensure check() notices a corrupted tag (used after a crash to decide
 * between keeping and resetting the store). */
static void test_arena_check_detects_corruption(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    uint64_t a = f->a->alloc(100);
    uint64_t b = f->a->alloc(100);
    assert_true(f->a->check());
    /* overwrite b's head tag as a buffer overrun of a would */
    uint64_t *tag = reinterpret_cast<uint64_t *>(f->base + b - 8);
    uint64_t saved = *tag;
    *tag = 48 | 1;
    assert_false(f->a->check());
    *tag = saved;
    assert_true(f->a->check());
    f->h.used_ += 16;
    assert_false(f->a->check());
    f->h.used_ -= 16;
    f->a->free(a);
    f->a->free(b);
    assert_true(f->a->check());
}

/* Ensure fits_after_free predicts what freeing would allow, counting
 * merges with free neighbours and with the other blocks to be freed, and
 * changes nothing. */
static void test_arena_fits_after_free_predicts(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    std::vector<uint64_t> v;
    uint64_t o;
    while ((o = f->a->alloc(1000)) != 0) {
        v.push_back(o);
    }
    assert_true(v.size() > 10);
    uint64_t used = f->a->used();
    uint64_t one[1] = { v[3] };
    assert_true(f->a->fits_after_free(one, 1, 1000));
    assert_false(f->a->fits_after_free(one, 1, 1009));
    uint64_t two[2] = { v[3], v[4] };          /* neighbours merge */
    assert_true(f->a->fits_after_free(two, 2, 2000));
    uint64_t apart[2] = { v[3], v[5] };        /* not adjacent */
    assert_false(f->a->fits_after_free(apart, 2, 2000));
    f->a->free(v[4]);                          /* a free neighbour counts */
    assert_true(f->a->fits_after_free(apart, 2, 3000));
    assert_false(f->a->fits_after_free(apart, 2, 3100));
    assert_int_equal(f->a->used(), used - pushq::arena::block_size(1000));
    assert_true(f->a->check());
    f->a->free(v[3]);
    f->a->free(v[5]);
    assert_int_not_equal(f->a->alloc(3000), 0);
}

/* Ensure free_unmarked frees exactly the unmarked blocks (a leak after a
 * crash) and reports a mark that is not on the chain of blocks. */
static void test_arena_free_unmarked_keeps_marked(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    uint64_t a = f->a->alloc(100), b = f->a->alloc(200), c = f->a->alloc(50);
    f->a->mark(a);
    f->a->mark(c);
    f->a->mark(b);
    f->a->unmark(b);
    assert_true(f->a->marked(a));
    assert_false(f->a->marked(b));
    assert_true(f->a->free_unmarked());
    assert_true(f->a->check());                 /* marks cleared */
    assert_int_equal(f->a->allocations(), 2);
    assert_int_not_equal(f->a->alloc(200), 0);  /* b's space is back */

    /* a "block" inside another one: its mark is never met by the walk */
    uint64_t big = f->a->alloc(1000);
    uint64_t *fake = reinterpret_cast<uint64_t *>(f->base + big + 64);
    fake[0] = 48 | 1;                           /* head */
    fake[5] = 48 | 1;                           /* foot */
    f->a->mark(big);
    f->a->mark(big + 64 + 8);
    assert_false(f->a->free_unmarked());
}

/* Ensure rebuild restores free lists, feet and counters from the heads
 * after a crash inside alloc or free, and refuses a broken head chain. */
static void test_arena_rebuild_after_torn_update(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    std::vector<uint64_t> v;
    for (int i = 0; i < 50; i++) v.push_back(f->a->alloc(64 + 16 * i));
    for (int i = 0; i < 50; i += 3) f->a->free(v[i]);
    uint64_t used = f->a->used(), allocs = f->a->allocations();

    /* torn: a free block dropped from its list, a foot stale, a counter
     * off -- what a death half-way through alloc/free can leave */
    for (unsigned b = 0; b < pushq::arena_bins; b++) {
        if (f->h.bins_[b] != 0) {
            f->h.bins_[b] = 0;
            f->h.bin_map_[b / 64] &= ~(uint64_t(1) << (b % 64));
            break;
        }
    }
    *reinterpret_cast<uint64_t *>(f->base + v[1] - 8 +
        pushq::arena::block_size(64 + 16) - 8) = 999 << 4;
    f->h.used_ += 7;
    assert_false(f->a->check());
    assert_true(f->a->rebuild());
    assert_true(f->a->check());
    assert_int_equal(f->a->used(), used);
    assert_int_equal(f->a->allocations(), allocs);
    for (int i = 1; i < 50; i++) {
        if (i % 3 != 0) f->a->free(v[i]);
    }
    assert_int_equal(f->a->used(), 0);
    assert_true(f->a->check());

    /* a head of size 0: the chain is gone, nothing to rebuild from */
    uint64_t x = f->a->alloc(100);
    *reinterpret_cast<uint64_t *>(f->base + x - 8) = 0;
    assert_false(f->a->rebuild());
}

/* Ensure block_size accounts the tags: what a payload really costs. */
static void test_arena_block_size_includes_tags(void **state)
{
    (void) state;
    assert_int_equal(pushq::arena::block_size(0), 32);
    assert_int_equal(pushq::arena::block_size(16), 32);
    assert_int_equal(pushq::arena::block_size(17), 48);
    assert_int_equal(pushq::arena::block_size(1000), 1024);
}

int main()
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const CMUnitTest tests[] = {
        T(test_arena_alloc_aligned_inside_region),
        T(test_arena_allocations_disjoint),
        T(test_arena_free_all_coalesces),
        T(test_arena_full_fails_unchanged),
        T(test_arena_random_churn_consistent),
        T(test_arena_check_detects_corruption),
        T(test_arena_fits_after_free_predicts),
        T(test_arena_free_unmarked_keeps_marked),
        T(test_arena_rebuild_after_torn_update),
        T(test_arena_block_size_includes_tags),
    };
#undef T
    return cmocka_run_group_tests_name("arena", tests, nullptr, nullptr);
}
