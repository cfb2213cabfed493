/*
 * test_store_layout.cpp -- the region's header: a store of another layout
 * version, or a damaged header, is never misread; it is formatted afresh.
 * (C++ to reach common/src/store_layout.hpp.)
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
#include "store_layout.hpp"

namespace {

constexpr size_t region = 256 * 1024;

struct fixture {
    void          *mem;
    pushq_store_t *s;
};

int setup(void **state)
{
    auto *f = new fixture{};
    f->mem = std::aligned_alloc(64, region);
    std::memset(f->mem, 0, region);
    int created = 0;
    if (pushq_store_init(f->mem, region, &f->s, &created, nullptr) !=
        PUSHQ_OK || !created)
    {
        return -1;
    }
    pushq_limits_t lim{1000, 1 << 20, 60000, 60000, 1024};
    pushq_publish_result_t r;
    pushq_store_publish(f->s, "ch", 2, "x", 1, 0, &lim, 1, &r, nullptr);
    pushq_store_publish(f->s, "ch", 2, "y", 1, 0, &lim, 1, &r, nullptr);
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

pushq::store_header *header(fixture *f)
{
    return static_cast<pushq::store_header *>(f->mem);
}

/* re-inits and says whether the contents survived */
bool kept_after_init(fixture *f, int *created)
{
    pushq_store_t *s = nullptr;
    if (pushq_store_init(f->mem, region, &s, created, nullptr) != PUSHQ_OK) {
        return false;
    }
    pushq_channel_stats_t cs;
    return pushq_store_channel_stats(s, "ch", 2, 2, &cs) == PUSHQ_OK &&
           cs.last_id == 2;
}

} // namespace

/* Ensure the same layout version and size attaches and keeps contents. */
static void test_store_layout_same_version_kept(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    int created = 1;
    assert_true(kept_after_init(f, &created));
    assert_int_equal(created, 0);
}

/* Ensure a store written by another layout version (an older module kept
 * the nginx zone across a reload) is formatted afresh, not misread. */
static void test_store_layout_other_version_formatted(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    header(f)->version_ = pushq::layout_version + 1;
    assert_null(pushq_store_attach(f->mem, region));
    int created = 0;
    assert_false(kept_after_init(f, &created));
    assert_int_equal(created, 1);
    assert_int_equal(header(f)->version_, pushq::layout_version);
}

/* Ensure a header whose struct size differs (same version number, other
 * build) or whose magic is damaged is not taken for a store. */
static void test_store_layout_damaged_header_formatted(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    header(f)->header_size_ += 8;
    assert_null(pushq_store_attach(f->mem, region));
    int created = 0;
    assert_false(kept_after_init(f, &created));
    assert_int_equal(created, 1);

    header(f)->magic_ ^= 1;
    assert_null(pushq_store_attach(f->mem, region));
    assert_false(kept_after_init(f, &created));
    assert_int_equal(created, 1);
}

/* Ensure the sub handle fits the ABI's pushq_sub_t and the header leaves
 * room for the arena in the smallest region. */
static void test_store_layout_sizes_fit(void **state)
{
    (void) state;
    assert_true(pushq::sw_spare < sizeof(pushq_sub_t) / sizeof(uint64_t));
    assert_true(sizeof(pushq::store_header) + 8 * 1024 <
                pushq_store_min_size());
}

int main()
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const CMUnitTest tests[] = {
        T(test_store_layout_same_version_kept),
        T(test_store_layout_other_version_formatted),
        T(test_store_layout_damaged_header_formatted),
        T(test_store_layout_sizes_fit),
    };
#undef T
    return cmocka_run_group_tests_name("store_layout", tests, nullptr,
                                       nullptr);
}
