/*
 * test_store_crash.cpp -- a process killed while it holds the store's lock
 * must not wedge the others (robust mutex + repair-or-reset).
 *
 * C++ so that it can reach the region's layout (common/src/store_layout.hpp)
 * to simulate a death in the middle of a mutation: the child takes the
 * store's mutex itself, marks the store dirty (and, in one test, breaks an
 * invariant) and is SIGKILLed.  No hook exists in production code.
 */

#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>
extern "C" {
#include <cmocka.h>
}

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pushq.h"
#include "arena.hpp"
#include "store_layout.hpp"

namespace {

constexpr size_t region = 2u << 20;

struct fixture {
    void           *mem;
    pushq_store_t  *s;
    uint32_t        owner;
    pushq_limits_t  lim;
    uint8_t        *shared;     /* a scratch page shared with children */
};

int setup(void **state)
{
    auto *f = new fixture{};
    f->mem = mmap(nullptr, region, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    f->shared = static_cast<uint8_t *>(mmap(nullptr, 1 << 16,
        PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    if (f->mem == MAP_FAILED || f->shared == MAP_FAILED ||
        pushq_store_init(f->mem, region, &f->s, nullptr, nullptr) != PUSHQ_OK
        || pushq_store_owner_register(f->s, 0, 0, &f->owner, nullptr)
           != PUSHQ_OK)
    {
        return -1;
    }
    f->lim = pushq_limits_t{1000, 16u << 20, 3600000, 300000, 65536};
    /* a test that wedges fails by alarm instead of hanging make test */
    alarm(20);
    *state = f;
    return 0;
}

int teardown(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    alarm(0);
    pushq_store_destroy(f->s);
    munmap(f->mem, region);
    munmap(f->shared, 1 << 16);
    delete f;
    return 0;
}

pushq::store_header *header(fixture *f)
{
    return static_cast<pushq::store_header *>(f->mem);
}

pushq_status_t pub(fixture *f, const char *chan, const char *msg,
    uint64_t *id = nullptr)
{
    pushq_publish_result_t r{};
    pushq_status_t st = pushq_store_publish(f->s, chan, std::strlen(chan),
        msg, std::strlen(msg), 0, &f->lim, 1, &r, nullptr);
    if (id) *id = r.id;
    return st;
}

pushq_status_t open_anon(fixture *f, uint32_t owner, const char *chan,
    uint64_t last_id, pushq_sub_t *sub)
{
    pushq_sub_spec_t sp{};
    sp.chan = chan;
    sp.chan_len = std::strlen(chan);
    sp.has_last_id = 1;
    sp.last_id = last_id;
    sp.owner = owner;
    return pushq_sub_open(f->s, &sp, &f->lim, 1, sub, nullptr);
}

void die_now(void *, const pushq_msg_t *)
{
    raise(SIGKILL);
}

void ignore(void *, const pushq_msg_t *) {}

bool killed(pid_t pid)
{
    int st = 0;
    return waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) &&
           WTERMSIG(st) == SIGKILL;
}

/* Child: takes the lock as the store does, starts a "mutation", optionally
 * breaks an invariant, and dies holding the lock. */
void die_mid_mutation(fixture *f, bool corrupt)
{
    pushq::store_header *h = header(f);
    if (pthread_mutex_lock(&h->mutex_) != 0) {
        _exit(1);
    }
    h->dirty_ = 1;
    if (corrupt) {
        h->messages_ += 5;      /* a gauge that no longer adds up */
    }
    raise(SIGKILL);
}

template <typename T> T *rec(fixture *f, uint64_t off)
{
    return reinterpret_cast<T *>(static_cast<char *>(f->mem) + off);
}

/* The ways a half-done mutation can leave the region. */
enum corruption {
    list_cycle,         /* channel list points back at itself    */
    chain_cycle,        /* hash chain points back at itself      */
    leaked_block,       /* allocated, reachable from nothing     */
    wrong_id,           /* a message not where its id says       */
    open_count,         /* a name's open count off by one        */
    arena_tag,          /* an allocator tag overwritten          */
    idle_link,          /* idle list broken                      */
    corruption_kinds
};

void corrupt(fixture *f, corruption k)
{
    pushq::store_header *h = header(f);
    auto *c = rec<pushq::channel_rec>(f, h->chan_list_);
    switch (k) {
    case list_cycle:
        c->next_ = h->chan_list_;
        break;
    case chain_cycle:
        c->hnext_ = h->chan_list_;
        break;
    case leaked_block: {
        pushq::arena a(static_cast<char *>(f->mem), &h->arena_);
        a.alloc(100);
        break;
    }
    case wrong_id:
        rec<pushq::message_rec>(f, rec<uint64_t>(f, c->ring_)[
            c->ring_head_])->id_ += 1;
        break;
    case open_count: {
        auto *r = rec<pushq::sub_rec>(f, h->owners_[f->owner].subs_head_);
        rec<pushq::client_rec>(f, r->client_)->open_subs_++;
        break;
    }
    case arena_tag:
        *rec<uint64_t>(f, h->chan_list_ - 8) ^= 0x40;
        break;
    case idle_link:
        rec<pushq::client_rec>(f, h->idle_head_)->idle_prev_ = 8;
        break;
    default:
        break;
    }
}

} // namespace

/* Ensure every kind of broken structure left by a death mid-mutation
 * (cycles, a leak, a misplaced message, a wrong count, a smashed tag, a
 * broken list) is caught by the validation: the store resets instead of
 * hanging, crashing or carrying the damage on. */
static void test_store_crash_each_corruption_detected_reset(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    for (int k = 0; k < corruption_kinds; k++) {
        /* a state with a channel, messages, an open and an idle name */
        pushq_sub_t open_sub, idle_sub;
        pushq_sub_spec_t sp{};
        sp.chan = "ch";
        sp.chan_len = 2;
        sp.name = "open";
        sp.name_len = 4;
        sp.owner = f->owner;
        assert_int_equal(pushq_sub_open(f->s, &sp, &f->lim, 1, &open_sub,
                                        nullptr), PUSHQ_OK);
        sp.name = "idle";
        assert_int_equal(pushq_sub_open(f->s, &sp, &f->lim, 1, &idle_sub,
                                        nullptr), PUSHQ_OK);
        pushq_sub_close(f->s, &idle_sub, 1);
        assert_int_equal(pub(f, "ch", "one"), PUSHQ_OK);
        assert_int_equal(pub(f, "ch", "two"), PUSHQ_OK);

        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0) {
            pushq::store_header *h = header(f);
            if (pthread_mutex_lock(&h->mutex_) != 0) {
                _exit(1);
            }
            h->dirty_ = 1;
            corrupt(f, static_cast<corruption>(k));
            raise(SIGKILL);
        }
        assert_true(killed(child));

        uint64_t id = 0;
        assert_int_equal(pub(f, "ch", "after", &id), PUSHQ_OK);
        assert_int_equal(id, 1);
        uint64_t rec_n = 0, resets = 0;
        pushq_store_recoveries(f->s, &rec_n, &resets);
        assert_int_equal(rec_n, k + 1);
        assert_int_equal(resets, k + 1);
        pushq_sub_close(f->s, &open_sub, 2);

        /* empty the store for the next round: sweep at a far time */
        pushq_store_sweep(f->s, uint64_t(1) << 40);
        pushq_stats_t st;
        pushq_store_stats(f->s, uint64_t(1) << 40, &st);
        assert_int_equal(st.channels, 0);
    }
}

/* Ensure a process killed inside a fetch callback (lock held, structures
 * consistent) leaves the store usable and its contents intact; the next
 * locker counts one recovery and no reset. */
static void test_store_crash_in_fetch_callback_recovers_keeps(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    assert_int_equal(pub(f, "ch", "one"), PUSHQ_OK);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        uint32_t o;
        pushq_sub_t sub;
        if (pushq_store_owner_register(f->s, getpid(), 1, &o, nullptr) ||
            open_anon(f, o, "ch", 0, &sub))
        {
            _exit(1);
        }
        pushq_sub_fetch(f->s, &sub, 10, 1 << 20, 1, die_now, nullptr,
                        nullptr);
        _exit(2);
    }
    assert_true(killed(child));

    uint64_t id = 0;
    assert_int_equal(pub(f, "ch", "two", &id), PUSHQ_OK);
    assert_int_equal(id, 2);
    uint64_t rec = 0, resets = 9;
    pushq_store_recoveries(f->s, &rec, &resets);
    assert_int_equal(rec, 1);
    assert_int_equal(resets, 0);

    /* the dead child's subscriber still counts until it is reaped */
    pushq_channel_stats_t cs;
    assert_int_equal(pushq_store_channel_stats(f->s, "ch", 2, 1, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.messages, 2);
    assert_int_equal(cs.subscribers, 1);
    assert_int_equal(pushq_store_owner_reap(f->s, 1), 1);
    assert_int_equal(pushq_store_channel_stats(f->s, "ch", 2, 1, &cs),
                     PUSHQ_OK);
    assert_int_equal(cs.subscribers, 0);
    pushq_stats_t st;
    pushq_store_stats(f->s, 1, &st);
    assert_int_equal(st.delivered, 0);     /* the dead callback delivered
                                              nothing */
}

/* Ensure a death in the middle of a mutation whose structures still check
 * out keeps the contents (validated, not reset). */
static void test_store_crash_mid_mutation_sound_state_kept(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    pushq_sub_t sub;
    assert_int_equal(pub(f, "ch", "one"), PUSHQ_OK);
    assert_int_equal(open_anon(f, f->owner, "ch", 0, &sub), PUSHQ_OK);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        die_mid_mutation(f, false);
    }
    assert_true(killed(child));

    uint64_t id = 0;
    assert_int_equal(pub(f, "ch", "two", &id), PUSHQ_OK);
    assert_int_equal(id, 2);
    uint64_t rec = 0, resets = 9;
    pushq_store_recoveries(f->s, &rec, &resets);
    assert_int_equal(rec, 1);
    assert_int_equal(resets, 0);
    pushq_fetch_info_t info;
    assert_int_equal(pushq_sub_fetch(f->s, &sub, 10, 1 << 20, 1, ignore,
                                     nullptr, &info), PUSHQ_OK);
    assert_int_equal(info.count, 2);
    pushq_sub_close(f->s, &sub, 1);
}

/* Ensure the validation accepts a rich, sound state (many channels with
 * trimmed logs, idle and open named clients, subscribers of several owners
 * and kinds): a death mid-mutation there must not cost a reset. */
static void test_store_crash_rich_sound_state_kept(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    uint32_t o2;
    assert_int_equal(pushq_store_owner_register(f->s, 0, 5, &o2, nullptr),
                     PUSHQ_OK);
    f->lim.buffer = 7;
    pushq_sub_t subs[40];
    int n = 0;
    for (int c = 0; c < 10; c++) {
        char ch[16];
        std::snprintf(ch, sizeof(ch), "chan%d", c);
        for (int m = 0; m < 3 * c; m++) {
            assert_int_equal(pub(f, ch, "payload"), PUSHQ_OK);
        }
        for (int k = 0; k < 4; k++) {
            char nm[16];
            std::snprintf(nm, sizeof(nm), "n%d", k % 3);
            pushq_sub_spec_t sp{};
            sp.chan = ch;
            sp.chan_len = std::strlen(ch);
            sp.name = k < 3 ? nm : nullptr;
            sp.name_len = k < 3 ? std::strlen(nm) : 0;
            sp.kind = k % 2 ? PUSHQ_SUB_WEBSOCKET : PUSHQ_SUB_LONGPOLL;
            sp.owner = k % 2 ? o2 : f->owner;
            assert_int_equal(pushq_sub_open(f->s, &sp, &f->lim, 1, &subs[n],
                                            nullptr), PUSHQ_OK);
            n++;
        }
    }
    for (int i = 0; i < n; i += 3) {
        pushq_sub_close(f->s, &subs[i], 2);     /* some names go idle */
    }
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        die_mid_mutation(f, false);
    }
    assert_true(killed(child));
    assert_int_equal(pub(f, "chan9", "x"), PUSHQ_OK);
    uint64_t rec = 0, resets = 9;
    pushq_store_recoveries(f->s, &rec, &resets);
    assert_int_equal(rec, 1);
    assert_int_equal(resets, 0);
    pushq_stats_t st;
    pushq_store_stats(f->s, 3, &st);
    assert_int_equal(st.channels, 10);
    for (int i = 0; i < n; i++) {
        pushq_sub_close(f->s, &subs[i], 3);
    }
}

/* Ensure a death in the middle of a mutation that left the structures
 * inconsistent resets the store: it works again from empty, the reset is
 * counted, and handles from before the reset are refused harmlessly. */
static void test_store_crash_mid_mutation_corrupt_state_reset(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    pushq_sub_t sub;
    assert_int_equal(pub(f, "ch", "one"), PUSHQ_OK);
    assert_int_equal(pub(f, "ch", "two"), PUSHQ_OK);
    assert_int_equal(open_anon(f, f->owner, "ch", 0, &sub), PUSHQ_OK);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        die_mid_mutation(f, true);
    }
    assert_true(killed(child));

    uint64_t id = 0;
    assert_int_equal(pub(f, "ch", "after", &id), PUSHQ_OK);
    assert_int_equal(id, 1);                    /* a fresh store */
    uint64_t rec = 0, resets = 0;
    pushq_store_recoveries(f->s, &rec, &resets);
    assert_int_equal(rec, 1);
    assert_int_equal(resets, 1);

    assert_true(pushq_sub_ready(f->s, &sub));   /* "go and fetch"... */
    pushq_fetch_info_t info;
    assert_int_equal(pushq_sub_fetch(f->s, &sub, 10, 1 << 20, 1, ignore,
                                     nullptr, &info),
                     PUSHQ_EINTERNAL);          /* ...which says it's gone */
    pushq_sub_close(f->s, &sub, 1);
    pushq_sub_close(f->s, &sub, 1);

    pushq_stats_t st;
    pushq_store_stats(f->s, 1, &st);
    assert_int_equal(st.channels, 1);
    assert_int_equal(st.messages, 1);
    assert_int_equal(st.subscribers_longpoll, 0);
    assert_int_equal(st.published, 3);          /* counters survive */

    /* owners survive a reset: the fixture's owner can subscribe again */
    assert_int_equal(open_anon(f, f->owner, "ch", 0, &sub), PUSHQ_OK);
    pushq_sub_close(f->s, &sub, 1);
}

/* Ensure publishers in three processes carry on, with ids contiguous and
 * unique, while a fourth process is killed holding the lock. */
static void test_store_crash_others_carry_on(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    constexpr int pubs = 3, per = 300;
    auto *seen = f->shared;             /* seen[id]: times id was given */
    std::memset(seen, 0, 1 << 16);
    assert_int_equal(pub(f, "ch", "seed"), PUSHQ_OK);
    seen[1] = 1;

    pid_t victim = fork();
    assert_true(victim >= 0);
    if (victim == 0) {
        uint32_t o;
        pushq_sub_t sub;
        if (pushq_store_owner_register(f->s, getpid(), 2, &o, nullptr) ||
            open_anon(f, o, "ch", 0, &sub))
        {
            _exit(1);
        }
        usleep(2000);                   /* die while the others publish */
        pushq_sub_fetch(f->s, &sub, 10, 1 << 20, 1, die_now, nullptr,
                        nullptr);
        _exit(2);
    }
    pid_t p[pubs];
    for (int k = 0; k < pubs; k++) {
        p[k] = fork();
        assert_true(p[k] >= 0);
        if (p[k] == 0) {
            for (int i = 0; i < per; i++) {
                uint64_t id = 0;
                if (pub(f, "ch", "m", &id) != PUSHQ_OK || id == 0 ||
                    id >= (1 << 16))
                {
                    _exit(1);
                }
                __atomic_fetch_add(&seen[id], 1, __ATOMIC_RELAXED);
                if (i % 30 == 0) {
                    usleep(300);
                }
            }
            _exit(0);
        }
    }
    assert_true(killed(victim));
    for (int k = 0; k < pubs; k++) {
        int st = 0;
        assert_int_equal(waitpid(p[k], &st, 0), p[k]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    for (int id = 1; id <= 1 + pubs * per; id++) {
        assert_int_equal(seen[id], 1);
    }
    assert_int_equal(seen[2 + pubs * per], 0);
    uint64_t rec = 0, resets = 9;
    pushq_store_recoveries(f->s, &rec, &resets);
    assert_int_equal(rec, 1);
    assert_int_equal(resets, 0);
    assert_int_equal(pushq_store_owner_reap(f->s, 1), 1);
}

int main()
{
    const CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_store_crash_in_fetch_callback_recovers_keeps, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_store_crash_mid_mutation_sound_state_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_crash_rich_sound_state_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_crash_mid_mutation_corrupt_state_reset, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_store_crash_each_corruption_detected_reset, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_store_crash_others_carry_on,
                                        setup, teardown),
    };
    return cmocka_run_group_tests_name("store_crash", tests, nullptr,
                                       nullptr);
}
