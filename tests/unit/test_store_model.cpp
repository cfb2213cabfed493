/*
 * test_store_model.cpp -- the store against a reference model.
 *
 * Thousands of random operations (publish with varying limits, open with
 * and without name / last_id, fetch, close, sweep, stats) with time moving
 * forward, on a few channels and names so that everything collides: every
 * answer (ids, payloads, lost, reset, counts) must equal what a plain
 * std::map/std::deque model of SPEC.md's rules gives, and the region's
 * structures must validate after every step.  The model is the rules
 * written the simple way; the store is the rules written the fast way.
 */

/* the C++ library first: cmocka.h defines macros (fail, ...) that the
 * standard headers would trip over */
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <cstdarg>
#include <cstddef>
#include <csetjmp>
#include <cstdint>
extern "C" {
#include <cmocka.h>
}

#include "pushq.h"
#include "store.hpp"

namespace {

struct m_msg {
    uint64_t     id;
    uint64_t     expires;
    std::string  data;
};

struct m_channel {
    uint64_t             last = 0;
    std::deque<m_msg>    msgs;
    uint64_t             bytes = 0;
    uint64_t             ttl = 0;
    uint64_t             touched = 0;
    uint64_t             subs = 0;
};

struct m_client {
    uint64_t  cursor = 0;
    uint64_t  open = 0;
    uint64_t  ttl = 0;
    uint64_t  expires = 0;
};

struct m_sub {
    bool         open = false;
    std::string  chan, name;
    uint64_t     pos = 0;
    bool         reset = false;
    pushq_sub_t  h{};
};

struct model {
    std::map<std::string, m_channel> chans;
    std::map<std::pair<std::string, std::string>, m_client> clients;

    void expire(m_channel &c, uint64_t now) {
        while (!c.msgs.empty() && c.msgs.front().expires != 0 &&
               c.msgs.front().expires <= now)
        {
            c.bytes -= c.msgs.front().data.size();
            c.msgs.pop_front();
        }
    }
    size_t clients_of(const std::string &ch) const {
        size_t n = 0;
        for (auto &kv : clients) n += kv.first.first == ch;
        return n;
    }
    void sweep(uint64_t now) {
        for (auto it = clients.begin(); it != clients.end();) {
            if (it->second.open == 0 && it->second.expires <= now) {
                it = clients.erase(it);
            } else {
                ++it;
            }
        }
        for (auto it = chans.begin(); it != chans.end();) {
            expire(it->second, now);
            m_channel &c = it->second;
            uint64_t until = c.ttl > UINT64_MAX - c.touched
                             ? UINT64_MAX : c.touched + c.ttl;
            if (c.msgs.empty() && c.subs == 0 &&
                clients_of(it->first) == 0 && now >= until)
            {
                it = chans.erase(it);
            } else {
                ++it;
            }
        }
    }
};

constexpr size_t region = 1u << 20;
constexpr int max_subs = 10;

struct fixture {
    void                     *mem = nullptr;
    pushq_store_t            *s = nullptr;
    uint32_t                  owner = 0;
    model                     m;
    m_sub                     subs[max_subs];
    uint64_t                  seed = 0x2545f4914f6cdd1dULL;
    uint64_t                  now = 1;
};

uint64_t rnd(fixture *f, uint64_t n)
{
    f->seed ^= f->seed << 13;
    f->seed ^= f->seed >> 7;
    f->seed ^= f->seed << 17;
    return f->seed % n;
}

int setup(void **state)
{
    auto *f = new fixture;
    f->mem = std::aligned_alloc(64, region);
    std::memset(f->mem, 0, region);
    if (pushq_store_init(f->mem, region, &f->s, nullptr, nullptr) != PUSHQ_OK
        || pushq_store_owner_register(f->s, 0, 0, &f->owner, nullptr)
           != PUSHQ_OK)
    {
        return -1;
    }
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

const char *chan_names[] = { "a", "b", "c" };
const char *client_names[] = { "n1", "n2", "n3", "n4" };

pushq_limits_t random_limits(fixture *f)
{
    pushq_limits_t l;
    l.buffer = static_cast<uint32_t>(rnd(f, 6));             /* 0..5 */
    l.buffer_bytes = 10 + rnd(f, 40);
    l.message_ttl_ms = rnd(f, 4) == 0 ? 0 : 200 + rnd(f, 2000);
    l.client_ttl_ms = rnd(f, 5) == 0 ? 0 : 100 + rnd(f, 1500);
    l.max_message_size = 1024;
    return l;
}

struct got_t {
    std::vector<uint64_t>     ids;
    std::vector<std::string>  data;
};

void collect(void *ctx, const pushq_msg_t *m)
{
    auto *g = static_cast<got_t *>(ctx);
    g->ids.push_back(m->id);
    g->data.emplace_back(static_cast<const char *>(m->data), m->len);
}

void op_publish(fixture *f)
{
    std::string ch = chan_names[rnd(f, 3)];
    pushq_limits_t l = random_limits(f);
    std::string data(rnd(f, 16), static_cast<char>('a' + rnd(f, 26)));
    pushq_publish_result_t r;
    assert_int_equal(pushq_store_publish(f->s, ch.data(), ch.size(),
                     data.data(), data.size(), 0, &l, f->now, &r, nullptr),
                     PUSHQ_OK);

    model &m = f->m;
    auto it = m.chans.find(ch);
    if (it == m.chans.end()) {
        it = m.chans.emplace(ch, m_channel{}).first;
        it->second.touched = f->now;
    } else {
        m.expire(it->second, f->now);
    }
    m_channel &c = it->second;
    c.last++;
    uint64_t exp = l.message_ttl_ms == 0 ? 0 : f->now + l.message_ttl_ms;
    c.msgs.push_back(m_msg{c.last, exp, data});
    c.bytes += data.size();
    c.ttl = l.message_ttl_ms;
    c.touched = f->now;
    uint64_t keep = l.buffer ? l.buffer : 1;
    while (c.msgs.size() > keep ||
           (c.bytes > l.buffer_bytes && c.msgs.size() > 1))
    {
        c.bytes -= c.msgs.front().data.size();
        c.msgs.pop_front();
    }
    assert_int_equal(r.id, c.last);
    assert_int_equal(r.subscribers, c.subs);
}

void op_open(fixture *f)
{
    int k = static_cast<int>(rnd(f, max_subs));
    m_sub &sb = f->subs[k];
    if (sb.open) {
        return;
    }
    sb.chan = chan_names[rnd(f, 3)];
    sb.name = rnd(f, 3) == 0 ? "" : client_names[rnd(f, 4)];
    bool has_last = rnd(f, 3) == 0;
    pushq_limits_t l = random_limits(f);

    model &m = f->m;
    auto it = m.chans.find(sb.chan);
    uint64_t last_now = it == m.chans.end() ? 0 : it->second.last;
    uint64_t last_id = has_last ? rnd(f, last_now + 4) : 0;

    pushq_sub_spec_t sp{};
    sp.chan = sb.chan.data();
    sp.chan_len = sb.chan.size();
    sp.name = sb.name.empty() ? nullptr : sb.name.data();
    sp.name_len = sb.name.size();
    sp.has_last_id = has_last;
    sp.last_id = last_id;
    sp.kind = rnd(f, 2) ? PUSHQ_SUB_WEBSOCKET : PUSHQ_SUB_LONGPOLL;
    sp.owner = f->owner;
    assert_int_equal(pushq_sub_open(f->s, &sp, &l, f->now, &sb.h, nullptr),
                     PUSHQ_OK);

    if (it == m.chans.end()) {
        it = m.chans.emplace(sb.chan, m_channel{}).first;
        it->second.ttl = l.message_ttl_ms;
        it->second.touched = f->now;
    } else {
        m.expire(it->second, f->now);
    }
    m_channel &c = it->second;
    uint64_t first = c.last - c.msgs.size() + 1;
    m_client *cl = nullptr;
    if (!sb.name.empty()) {
        auto key = std::make_pair(sb.chan, sb.name);
        auto ci = m.clients.find(key);
        if (ci != m.clients.end() && ci->second.open == 0 &&
            ci->second.expires <= f->now)
        {
            m.clients.erase(ci);
            ci = m.clients.end();
        }
        if (ci == m.clients.end()) {
            ci = m.clients.emplace(key, m_client{}).first;
            ci->second.cursor = c.last;
        }
        cl = &ci->second;
    }
    uint64_t pos;
    sb.reset = false;
    if (has_last) {
        if (last_id > c.last) {
            pos = first - 1;
            sb.reset = true;
        } else {
            pos = last_id;
        }
        if (cl) cl->cursor = pos;
    } else if (cl) {
        pos = cl->cursor;
    } else {
        pos = c.last;
    }
    if (cl) {
        cl->open++;
        cl->ttl = l.client_ttl_ms;
    }
    sb.pos = pos;
    c.subs++;
    sb.open = true;
    assert_int_equal(pushq_sub_channel_key(&sb.h) != 0, 1);
}

void op_fetch(fixture *f)
{
    m_sub &sb = f->subs[rnd(f, max_subs)];
    if (!sb.open) {
        return;
    }
    size_t max = 1 + rnd(f, 3);
    got_t got;
    pushq_fetch_info_t info;
    int ready = pushq_sub_ready(f->s, &sb.h);
    assert_int_equal(pushq_sub_fetch(f->s, &sb.h, max, SIZE_MAX, f->now,
                     collect, &got, &info), PUSHQ_OK);

    model &m = f->m;
    m_channel &c = m.chans.at(sb.chan);
    m_client *cl = sb.name.empty() ? nullptr
                   : &m.clients.at(std::make_pair(sb.chan, sb.name));
    /* readiness is judged before the lazy expiry: a subscriber behind
     * expired messages is ready (it has "lost" to hear about) */
    uint64_t pos0 = cl ? cl->cursor : sb.pos;
    assert_int_equal(ready != 0, pos0 < c.last || sb.reset);

    m.expire(c, f->now);
    uint64_t pos = pos0;
    uint64_t first = c.last - c.msgs.size() + 1;
    uint64_t lost = 0;
    if (pos + 1 < first) {
        lost = first - 1 - pos;
        pos = first - 1;
    }
    assert_int_equal(info.lost, lost);
    assert_int_equal(info.reset, sb.reset ? 1 : 0);
    sb.reset = false;
    size_t n = 0;
    while (pos + n < c.last && n < max) {
        const m_msg &mm = c.msgs[pos + n + 1 - first];
        assert_true(n < got.ids.size());
        assert_int_equal(got.ids[n], mm.id);
        assert_true(got.data[n] == mm.data);
        n++;
    }
    assert_int_equal(got.ids.size(), n);
    assert_int_equal(info.count, n);
    pos += n;
    if (cl) cl->cursor = pos; else sb.pos = pos;
}

void op_close(fixture *f)
{
    m_sub &sb = f->subs[rnd(f, max_subs)];
    if (!sb.open) {
        return;
    }
    pushq_sub_close(f->s, &sb.h, f->now);
    assert_int_equal(pushq_sub_channel_key(&sb.h), 0);
    model &m = f->m;
    m_channel &c = m.chans.at(sb.chan);
    c.subs--;
    c.touched = f->now;
    if (!sb.name.empty()) {
        m_client &cl = m.clients.at(std::make_pair(sb.chan, sb.name));
        if (--cl.open == 0) {
            cl.expires = cl.ttl > UINT64_MAX - f->now ? UINT64_MAX
                                                      : f->now + cl.ttl;
        }
    }
    sb.open = false;
}

void check_stats(fixture *f)
{
    pushq_stats_t st;
    pushq_store_stats(f->s, f->now, &st);      /* sweeps */
    model &m = f->m;
    m.sweep(f->now);
    uint64_t msgs = 0, bytes = 0, subs = 0;
    for (auto &kv : m.chans) {
        msgs += kv.second.msgs.size();
        bytes += kv.second.bytes;
        subs += kv.second.subs;
    }
    assert_int_equal(st.channels, m.chans.size());
    assert_int_equal(st.messages, msgs);
    assert_int_equal(st.message_bytes, bytes);
    assert_int_equal(st.clients, m.clients.size());
    assert_int_equal(st.subscribers_longpoll + st.subscribers_websocket,
                     subs);
    for (const char *ch : chan_names) {
        pushq_channel_stats_t cs;
        pushq_status_t rc = pushq_store_channel_stats(f->s, ch, 1, f->now,
                                                      &cs);
        auto it = m.chans.find(ch);
        if (it == m.chans.end()) {
            assert_int_equal(rc, PUSHQ_ENOTFOUND);
            continue;
        }
        assert_int_equal(rc, PUSHQ_OK);
        assert_int_equal(cs.last_id, it->second.last);
        assert_int_equal(cs.messages, it->second.msgs.size());
        assert_int_equal(cs.first_id, it->second.msgs.empty() ? 0
                         : it->second.msgs.front().id);
        assert_int_equal(cs.subscribers, it->second.subs);
        assert_int_equal(cs.clients, m.clients_of(ch));
    }
}

} // namespace

/* Ensure 100,000 random operations give exactly the model's answers and
 * leave the region's structures valid at every step. */
static void test_store_model_random_ops_match(void **state)
{
    auto *f = static_cast<fixture *>(*state);
    pushq::store st(static_cast<pushq::store_header *>(f->mem));
    for (int step = 0; step < 100000; step++) {
        uint64_t r = rnd(f, 100);
        if (r < 30) {
            op_publish(f);
        } else if (r < 50) {
            op_open(f);
        } else if (r < 80) {
            op_fetch(f);
        } else if (r < 92) {
            op_close(f);
        } else if (r < 96) {
            check_stats(f);
        } else {
            pushq_store_sweep(f->s, f->now);
            f->m.sweep(f->now);
        }
        f->now += rnd(f, 4) == 0 ? rnd(f, 700) : rnd(f, 20);
        if (step % 50 == 0) {
            assert_true(st.validate());
        }
    }
    /* everything closed and the end of time: only channels holding
     * messages without an age limit (message_ttl 0) remain */
    for (int k = 0; k < max_subs; k++) {
        if (f->subs[k].open) {
            pushq_sub_close(f->s, &f->subs[k].h, f->now);
        }
    }
    uint64_t immortal = 0;
    for (auto &kv : f->m.chans) {
        bool keeps = false;
        for (auto &mm : kv.second.msgs) keeps = keeps || mm.expires == 0;
        immortal += keeps;
    }
    pushq_store_sweep(f->s, UINT64_MAX);
    pushq_stats_t s;
    pushq_store_stats(f->s, UINT64_MAX, &s);
    assert_int_equal(s.channels, immortal);
    assert_int_equal(s.clients, 0);
    assert_int_equal(s.subscribers_longpoll + s.subscribers_websocket, 0);
    assert_true(st.validate());
    /* the run exercised what it claims to */
    std::printf("# published %llu delivered %llu lost %llu\n",
                (unsigned long long) s.published,
                (unsigned long long) s.delivered,
                (unsigned long long) s.lost);
    assert_true(s.published > 20000 && s.delivered > 10000 && s.lost > 100);
}

int main()
{
    const CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_model_random_ops_match,
                                        setup, teardown),
    };
    return cmocka_run_group_tests_name("store_model", tests, nullptr,
                                       nullptr);
}
