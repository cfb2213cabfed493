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
#include "store.hpp"
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
    arena_tag,          /* an allocator head tag zeroed          */
    torn_free_list,     /* a free block missing from its list    */
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
        /* the chain of blocks is cut: nothing in the arena can be found */
        *rec<uint64_t>(f, h->chan_list_ - 8) = 0;
        break;
    case torn_free_list:
        /* as a death inside alloc leaves it: the free lists forget a
         * block (and a foot no longer matches its head) */
        for (unsigned b = 0; b < pushq::arena_bins; b++) {
            if (h->arena_.bins_[b] != 0) {
                uint64_t blk = h->arena_.bins_[b];
                h->arena_.bins_[b] = 0;
                h->arena_.bin_map_[b / 64] &= ~(uint64_t(1) << (b % 64));
                uint64_t size = *rec<uint64_t>(f, blk) & ~uint64_t(15);
                *rec<uint64_t>(f, blk + size - 8) = 12345 << 4;
                break;
            }
        }
        break;
    case idle_link:
        rec<pushq::client_rec>(f, h->idle_head_)->idle_prev_ = 8;
        break;
    default:
        break;
    }
}

/* What recovery must make of each kind of damage. */
struct expectation {
    corruption  kind;
    uint64_t    next_id;    /* id of the next publish on the channel     */
    bool        lost_data;  /* counted as a reset                        */
    uint64_t    lost;       /* "lost" the open name's next fetch reports */
    size_t      fetched;    /* messages it then receives                 */
};

const expectation expectations[] = {
    /* derived structures are rebuilt: nothing lost, handles go on */
    { list_cycle,   3, false, 0, 3 },
    { chain_cycle,  3, false, 0, 3 },
    { leaked_block, 3, false, 0, 3 },
    { open_count,   3, false, 0, 3 },
    { idle_link,    3, false, 0, 3 },
    { torn_free_list, 3, false, 0, 3 },
    /* the log being changed is given up; the ids go on */
    { wrong_id,     3, true,  2, 1 },
    /* the allocator's own tags: nothing to trust, a fresh store; the old
     * handle is refused (fetched = SIZE_MAX marks "refused") */
    { arena_tag,    1, true,  0, SIZE_MAX },
};

} // namespace

/* Ensure every kind of broken structure left by a death mid-mutation
 * (cycles, a leak, a misplaced message, a wrong count, a smashed tag, a
 * broken list) is found, and repaired by giving up no more than the damaged
 * object: rebuilt when derivable, the one log dropped (ids going on) when
 * not, and a fresh store only when the allocator itself is broken.  The
 * store never hangs, crashes or carries the damage on. */
static void test_store_crash_each_corruption_repaired_minimally(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    pushq::store view(header(f));
    uint64_t resets_expected = 0;
    uint64_t round = 0;
    static_assert(sizeof(expectations) / sizeof(expectations[0]) ==
                  corruption_kinds);
    for (const expectation &e : expectations) {
        round++;
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
            corrupt(f, e.kind);
            raise(SIGKILL);
        }
        assert_true(killed(child));

        uint64_t id = 0;
        assert_int_equal(pub(f, "ch", "after", &id), PUSHQ_OK);
        assert_int_equal(id, e.next_id);
        uint64_t rec_n = 0, resets = 0;
        pushq_store_recoveries(f->s, &rec_n, &resets);
        resets_expected += e.lost_data;
        assert_int_equal(rec_n, round);
        assert_int_equal(resets, resets_expected);
        assert_true(view.validate());

        pushq_fetch_info_t info;
        pushq_status_t st = pushq_sub_fetch(f->s, &open_sub, 10, 1 << 20, 1,
                                            ignore, nullptr, &info);
        if (e.fetched == SIZE_MAX) {
            assert_int_equal(st, PUSHQ_EINTERNAL);
        } else {
            assert_int_equal(st, PUSHQ_OK);
            assert_int_equal(info.lost, e.lost);
            assert_int_equal(info.count, e.fetched);
        }
        pushq_sub_close(f->s, &open_sub, 2);
        pushq_sub_close(f->s, &open_sub, 2);

        /* empty the store for the next round: sweep at a far time */
        pushq_store_sweep(f->s, uint64_t(1) << 40);
        pushq_stats_t sts;
        pushq_store_stats(f->s, uint64_t(1) << 40, &sts);
        assert_int_equal(sts.channels, 0);
        assert_int_equal(sts.subscribers_longpoll, 0);
        assert_true(view.validate());
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

namespace {

/* Builds a rich state (10 channels with trimmed logs, 40 subscribers of
 * two owners and kinds, open and idle names), has a child die in the middle
 * of a mutation (with a wrong gauge when `damage`, which forces the
 * salvage path), and checks that everything survived: stats before ==
 * after, and every subscriber handle still fetches its own messages. */
void rich_state_survives(fixture *f, bool damage)
{
    uint32_t o2;
    assert_int_equal(pushq_store_owner_register(f->s, 0, 5, &o2, nullptr),
                     PUSHQ_OK);
    f->lim.buffer = 7;
    pushq_sub_t subs[40];
    bool open[40];
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
            sp.has_last_id = 1;
            sp.last_id = 0;
            sp.kind = k % 2 ? PUSHQ_SUB_WEBSOCKET : PUSHQ_SUB_LONGPOLL;
            sp.owner = k % 2 ? o2 : f->owner;
            assert_int_equal(pushq_sub_open(f->s, &sp, &f->lim, 1, &subs[n],
                                            nullptr), PUSHQ_OK);
            open[n] = true;
            n++;
        }
    }
    for (int i = 0; i < n; i += 3) {
        pushq_sub_close(f->s, &subs[i], 2);     /* some names go idle */
        open[i] = false;
    }
    pushq_publish_result_t r0;
    assert_int_equal(pushq_store_publish(f->s, "chan9", 5, "w", 1, 0,
                     &f->lim, 2, &r0, nullptr), PUSHQ_OK);
    pushq_stats_t before;
    pushq_store_stats(f->s, 2, &before);

    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        die_mid_mutation(f, damage);
    }
    assert_true(killed(child));

    pushq_publish_result_t r1;
    assert_int_equal(pushq_store_publish(f->s, "chan9", 5, "x", 1, 0,
                     &f->lim, 3, &r1, nullptr), PUSHQ_OK);
    assert_int_equal(r1.id, r0.id + 1);
    assert_int_equal(r1.subscribers, r0.subscribers);
    assert_true(r1.wakers == r0.wakers);
    uint64_t rec = 0, resets = 9;
    pushq_store_recoveries(f->s, &rec, &resets);
    assert_int_equal(rec, 1);
    assert_int_equal(resets, 0);
    pushq_stats_t after;
    pushq_store_stats(f->s, 3, &after);
    assert_int_equal(after.channels, before.channels);
    assert_int_equal(after.messages, before.messages);
    /* "x" (1 byte) pushed the oldest "payload" (7 bytes) out */
    assert_int_equal(after.message_bytes, before.message_bytes - 6);
    assert_int_equal(after.clients, before.clients);
    assert_int_equal(after.subscribers_longpoll, before.subscribers_longpoll);
    assert_int_equal(after.subscribers_websocket,
                     before.subscribers_websocket);
    pushq::store view(header(f));
    assert_true(view.validate());
    for (int i = 0; i < n; i++) {
        pushq_fetch_info_t info;
        pushq_status_t st = pushq_sub_fetch(f->s, &subs[i], 100, 1 << 20, 3,
                                            ignore, nullptr, &info);
        assert_int_equal(st, open[i] ? PUSHQ_OK : PUSHQ_EBADARG);
        pushq_sub_close(f->s, &subs[i], 3);
    }
}

} // namespace

/* Ensure the validation accepts a rich, sound state (many channels with
 * trimmed logs, idle and open named clients, subscribers of several owners
 * and kinds): a death mid-mutation there costs nothing. */
static void test_store_crash_rich_sound_state_kept(void **state)
{
    rich_state_survives(static_cast<fixture *>(*state), false);
}

/* Ensure the salvage path keeps a rich state whole when only derived data
 * (a gauge) is wrong: every channel, log, name, subscriber, waker mask and
 * handle survives. */
static void test_store_crash_rich_state_salvaged_whole(void **state)
{
    rich_state_survives(static_cast<fixture *>(*state), true);
}

/* Ensure a death mid-mutation that left a wrong gauge (derivable data) is
 * repaired without losing anything: counts recomputed, contents and
 * subscriber handles kept, not counted as a reset. */
static void test_store_crash_mid_mutation_broken_gauge_repaired(void **state)
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
    assert_int_equal(pub(f, "ch", "three", &id), PUSHQ_OK);
    assert_int_equal(id, 3);
    uint64_t rec = 0, resets = 9;
    pushq_store_recoveries(f->s, &rec, &resets);
    assert_int_equal(rec, 1);
    assert_int_equal(resets, 0);
    pushq_stats_t st;
    pushq_store_stats(f->s, 1, &st);
    assert_int_equal(st.messages, 3);
    assert_int_equal(st.subscribers_longpoll, 1);
    pushq_fetch_info_t info;
    assert_int_equal(pushq_sub_fetch(f->s, &sub, 10, 1 << 20, 1, ignore,
                                     nullptr, &info), PUSHQ_OK);
    assert_int_equal(info.count, 3);
    pushq_sub_close(f->s, &sub, 1);
}

/* Ensure a death that left the allocator's own tags broken resets the
 * store: it works again from empty, the reset is counted, handles from
 * before are refused harmlessly, owners and counters survive. */
static void test_store_crash_broken_allocator_resets(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    pushq_sub_t sub;
    assert_int_equal(pub(f, "ch", "one"), PUSHQ_OK);
    assert_int_equal(pub(f, "ch", "two"), PUSHQ_OK);
    assert_int_equal(open_anon(f, f->owner, "ch", 0, &sub), PUSHQ_OK);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        pushq::store_header *h = header(f);
        if (pthread_mutex_lock(&h->mutex_) != 0) {
            _exit(1);
        }
        h->dirty_ = 1;
        corrupt(f, arena_tag);
        raise(SIGKILL);
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

namespace {

/* A worker's life: subscribe with a name, publish, fetch, close, on a few
 * channels, for ever (until killed). */
[[noreturn]] void busy_worker(fixture *f, unsigned seed)
{
    uint32_t o;
    if (pushq_store_owner_register(f->s, getpid(), seed % 64, &o, nullptr)) {
        _exit(1);
    }
    for (uint64_t i = 0;; i++) {
        seed = seed * 1103515245u + 12345u;
        char ch[8], nm[8];
        std::snprintf(ch, sizeof(ch), "c%u", (seed >> 8) % 4);
        std::snprintf(nm, sizeof(nm), "n%u", (seed >> 12) % 6);
        pushq_sub_spec_t sp{};
        sp.chan = ch;
        sp.chan_len = std::strlen(ch);
        sp.name = nm;
        sp.name_len = std::strlen(nm);
        sp.owner = o;
        pushq_sub_t sub;
        if (pushq_sub_open(f->s, &sp, &f->lim, i, &sub, nullptr) !=
            PUSHQ_OK)
        {
            continue;           /* e.g. handles went stale by a reset */
        }
        pushq_store_publish(f->s, ch, std::strlen(ch), "payload", 7, 0,
                            &f->lim, i, nullptr, nullptr);
        pushq_sub_fetch(f->s, &sub, 3, 1 << 20, i, ignore, nullptr, nullptr);
        pushq_sub_close(f->s, &sub, i);
        if (i % 64 == 0) {
            pushq_store_sweep(f->s, i);
        }
    }
}

} // namespace

/* Ensure real deaths at random points (SIGKILL to busy workers, wherever
 * they are: inside mutations and inside the allocator too) never wedge the
 * store nor leave it unsound, and never cost more than the object being
 * changed: after a storm of kills every structure validates, the dead
 * workers' subscribers are reaped, nothing forced a reset of everything,
 * and the store works. */
static void test_store_crash_kill_storm_stays_sound(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    f->lim.buffer = 20;
    constexpr int workers = 3, kills = 60;
    pid_t pid[workers];
    for (int w = 0; w < workers; w++) {
        pid[w] = fork();
        assert_true(pid[w] >= 0);
        if (pid[w] == 0) {
            busy_worker(f, 7u + unsigned(w));
        }
    }
    unsigned seed = 99;
    for (int k = 0; k < kills; k++) {
        seed = seed * 1103515245u + 12345u;
        usleep(2000 + (seed >> 8) % 8000);
        int w = int((seed >> 16) % workers);
        kill(pid[w], SIGKILL);
        assert_true(killed(pid[w]));
        pushq_store_owner_reap(f->s, 1);    /* as a new nginx worker does */
        pid[w] = fork();
        assert_true(pid[w] >= 0);
        if (pid[w] == 0) {
            busy_worker(f, seed);
        }
    }
    for (int w = 0; w < workers; w++) {
        kill(pid[w], SIGKILL);
        assert_true(killed(pid[w]));
    }
    /* a worker killed before it registered has no owner to reap */
    assert_true(pushq_store_owner_reap(f->s, 1) <= uint32_t(workers));

    pushq_stats_t st;
    pushq_store_stats(f->s, 1, &st);            /* takes the lock: repairs */
    assert_int_equal(st.subscribers_longpoll + st.subscribers_websocket, 0);
    pushq::store view(header(f));
    assert_true(view.validate());
    assert_true(st.published > 100);
    uint64_t rec = 0, resets = 0;
    pushq_store_recoveries(f->s, &rec, &resets);
    /* the generation moves only when everything was reset */
    uint64_t full = header(f)->generation_.load() - 1;
    std::printf("# published %llu, %d kills, %llu recovered, %llu lost "
                "data, %llu of them everything\n",
                (unsigned long long) st.published, kills + workers,
                (unsigned long long) rec, (unsigned long long) resets,
                (unsigned long long) full);
    assert_true(resets <= rec);
    /* the allocator's heads always partition the arena (see
     * arena::rebuild), so no death can force a reset of everything */
    assert_int_equal(full, 0);
    uint64_t id = 0;
    assert_int_equal(pub(f, "after", "x", &id), PUSHQ_OK);
    assert_int_equal(id, 1);
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
            test_store_crash_rich_state_salvaged_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_crash_mid_mutation_broken_gauge_repaired, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_store_crash_broken_allocator_resets, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_crash_each_corruption_repaired_minimally, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_store_crash_kill_storm_stays_sound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_crash_others_carry_on,
                                        setup, teardown),
    };
    return cmocka_run_group_tests_name("store_crash", tests, nullptr,
                                       nullptr);
}
