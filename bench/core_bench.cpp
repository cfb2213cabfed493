/*
 * core_bench.cpp -- the store's costs, through the public C API only.
 *
 *   make bench-core
 *
 * 1. Publish cost (ns per pushq_store_publish, 64-byte messages, buffer
 *    1000 so every publish also trims one) on a channel with 1, 1,000 and
 *    100,000 named clients, each with an open long-poll subscriber.  A
 *    publish never touches named clients, so the figure must stay flat.
 * 2. Region bytes per named client (idle, within client_ttl), per open
 *    subscriber, and per stored message (beyond its payload), from
 *    pushq_store_stats' memory_used.
 * 3. Fetch cost for a named subscriber (one message per fetch).
 *
 * Time is CLOCK_MONOTONIC around the loop; each figure is the best of 5
 * runs (the machine is shared; the best run is the least disturbed).
 */

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "pushq.h"

namespace {

constexpr size_t region = 128u << 20;

uint64_t now_ns()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

struct bench_store {
    void           *mem = nullptr;
    pushq_store_t  *s = nullptr;
    uint32_t        owner = 0;
    pushq_limits_t  lim{};

    bench_store() {
        mem = std::aligned_alloc(4096, region);
        if (mem == nullptr) {
            std::fprintf(stderr, "out of memory\n");
            std::exit(1);
        }
        std::memset(mem, 0, region);        /* fault the pages in now */
        if (pushq_store_init(mem, region, &s, nullptr, nullptr) != PUSHQ_OK ||
            pushq_store_owner_register(s, 0, 0, &owner, nullptr) != PUSHQ_OK)
        {
            std::fprintf(stderr, "store init failed\n");
            std::exit(1);
        }
        lim.buffer = 1000;
        lim.buffer_bytes = 16u << 20;
        lim.message_ttl_ms = 3600 * 1000;
        lim.client_ttl_ms = 300 * 1000;
        lim.max_message_size = 64 * 1024;
    }
    ~bench_store() {
        pushq_store_destroy(s);
        std::free(mem);
    }
    uint64_t used() {
        pushq_stats_t st;
        pushq_store_stats(s, 1, &st);
        return st.memory_used;
    }
    pushq_status_t open(pushq_sub_t *sub, const char *name) {
        pushq_sub_spec_t sp{};
        sp.chan = "bench";
        sp.chan_len = 5;
        sp.name = name;
        sp.name_len = name ? std::strlen(name) : 0;
        sp.kind = PUSHQ_SUB_LONGPOLL;
        sp.owner = owner;
        return pushq_sub_open(s, &sp, &lim, 1, sub, nullptr);
    }
};

void name_of(char *buf, size_t cap, size_t i)
{
    std::snprintf(buf, cap, "client-%07zu", i);     /* 14 bytes */
}

double publish_ns(size_t clients)
{
    bench_store b;
    std::vector<pushq_sub_t> subs(clients);
    char name[32];
    for (size_t i = 0; i < clients; i++) {
        name_of(name, sizeof(name), i);
        if (b.open(&subs[i], name) != PUSHQ_OK) {
            std::fprintf(stderr, "open failed at %zu\n", i);
            std::exit(1);
        }
    }
    char msg[64];
    std::memset(msg, 'm', sizeof(msg));
    pushq_publish_result_t r;
    constexpr int n = 200000;
    for (int i = 0; i < 20000; i++) {       /* warm up: reach the trim */
        pushq_store_publish(b.s, "bench", 5, msg, sizeof(msg), 0, &b.lim, 1,
                            &r, nullptr);
    }
    double best = 1e30;
    for (int run = 0; run < 5; run++) {
        uint64_t t0 = now_ns();
        for (int i = 0; i < n; i++) {
            if (pushq_store_publish(b.s, "bench", 5, msg, sizeof(msg), 0,
                                    &b.lim, 1, &r, nullptr) != PUSHQ_OK)
            {
                std::fprintf(stderr, "publish failed\n");
                std::exit(1);
            }
        }
        best = std::min(best, double(now_ns() - t0) / n);
    }
    if (r.subscribers != clients) {
        std::fprintf(stderr, "subscribers %u != %zu\n", r.subscribers,
                     clients);
        std::exit(1);
    }
    for (auto &sub : subs) pushq_sub_close(b.s, &sub, 2);
    return best;
}

void memory_figures()
{
    constexpr size_t n = 100000;
    bench_store b;
    std::vector<pushq_sub_t> subs(n);
    char name[32];
    /* the channel itself first, so that it is not counted per client */
    pushq_publish_result_t r;
    pushq_store_publish(b.s, "bench", 5, "x", 1, 0, &b.lim, 1, &r, nullptr);
    uint64_t u0 = b.used();
    for (size_t i = 0; i < n; i++) {
        name_of(name, sizeof(name), i);
        b.open(&subs[i], name);
    }
    uint64_t u1 = b.used();
    for (auto &sub : subs) pushq_sub_close(b.s, &sub, 2);
    uint64_t u2 = b.used();
    std::printf("memory per named client (idle, 14-byte name): %.1f bytes\n",
                double(u2 - u0) / n);
    std::printf("memory per open subscriber record:            %.1f bytes\n",
                double(u1 - u2) / n);
    uint64_t t0 = now_ns();
    size_t freed = pushq_store_sweep(b.s, uint64_t(1) << 40);
    std::printf("sweep forgetting %zu expired names + 1 channel:  %.1f ms "
                "(lock held)\n", freed, double(now_ns() - t0) / 1e6);

    {
        /* channels made by a subscriber (no message, no ring yet) */
        bench_store c;
        constexpr size_t k = 10000;
        uint64_t a = c.used();
        for (size_t i = 0; i < k; i++) {
            char ch[32];
            std::snprintf(ch, sizeof(ch), "channel-%06zu", i);
            pushq_sub_spec_t sp{};
            sp.chan = ch;
            sp.chan_len = std::strlen(ch);
            sp.owner = c.owner;
            pushq_sub_t sub;
            pushq_sub_open(c.s, &sp, &c.lim, 1, &sub, nullptr);
            pushq_sub_close(c.s, &sub, 1);
        }
        std::printf("memory per channel (no message yet):          %.1f "
                    "bytes\n", double(c.used() - a) / k);
    }

    for (size_t len : {0, 64, 1024}) {
        bench_store m;
        std::vector<char> msg(len, 'p');
        m.lim.buffer = 100000;
        m.lim.buffer_bytes = uint64_t(1) << 30;
        pushq_store_publish(m.s, "bench", 5, msg.data(), len, 0, &m.lim, 1,
                            &r, nullptr);
        uint64_t a = m.used();
        constexpr size_t k = 50000;
        for (size_t i = 0; i < k; i++) {
            pushq_store_publish(m.s, "bench", 5, msg.data(), len, 0, &m.lim,
                                1, &r, nullptr);
        }
        uint64_t d = m.used() - a;
        std::printf("memory per stored message (%4zu-byte payload): %.1f "
                    "bytes = payload + %.1f\n", len, double(d) / k,
                    double(d) / k - double(len));
    }
}

struct counter {
    size_t n = 0;
};

void count_cb(void *ctx, const pushq_msg_t *)
{
    static_cast<counter *>(ctx)->n++;
}

double fetch_ns()
{
    bench_store b;
    pushq_sub_t sub;
    b.open(&sub, "reader");
    constexpr int n = 1000;
    double best = 1e30;
    char msg[64];
    std::memset(msg, 'f', sizeof(msg));
    pushq_publish_result_t r;
    for (int run = 0; run < 5; run++) {
        for (int i = 0; i < n; i++) {
            pushq_store_publish(b.s, "bench", 5, msg, sizeof(msg), 0, &b.lim,
                                1, &r, nullptr);
        }
        counter c;
        uint64_t t0 = now_ns();
        for (int i = 0; i < n; i++) {
            pushq_sub_fetch(b.s, &sub, 1, 1 << 20, 1, count_cb, &c, nullptr);
        }
        best = std::min(best, double(now_ns() - t0) / n);
        if (c.n != n) {
            std::fprintf(stderr, "fetched %zu != %d\n", c.n, n);
            std::exit(1);
        }
    }
    pushq_sub_close(b.s, &sub, 2);
    return best;
}

} // namespace

int main()
{
    std::printf("pushq core benchmark (region %zu MiB, 64-byte messages, "
                "buffer 1000)\n", region >> 20);
    for (size_t clients : {size_t(1), size_t(1000), size_t(100000)}) {
        std::printf("publish, %6zu named clients on the channel: %7.1f ns\n",
                    clients, publish_ns(clients));
    }
    std::printf("fetch, one named subscriber, 1 message:      %7.1f ns\n",
                fetch_ns());
    memory_figures();
    return 0;
}
