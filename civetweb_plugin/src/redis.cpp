/*
 * redis.cpp -- Redis mode (option `redis`, pushq_redis.h): Redis holds the
 * truth; the plugin's store is a mirror that feeds local subscribers.
 *
 *  - The subscription thread (ours) owns one connection: AUTH, SELECT,
 *    PSUBSCRIBE pushq:m:*, then reads in poll() slices (an eventfd stops it
 *    at once on detach) and hands every reply to pushq_redis_mirror, which
 *    stores it and wakes the long-polls blocked in pushq_sub_wait; the
 *    WebSocket senders on the channel are woken here, as a local publish
 *    wakes them.  A lost connection is retried with backoff (100 ms
 *    doubling to 5 s), logged once per outage and once when it is back.
 *  - Request threads (publish, long-poll takes) and WebSocket senders
 *    (takes) borrow a blocking hiredis connection from a small pool: a
 *    mutex and a list of idle connections, at most pool_max open,
 *    connected on demand with a short timeout (then AUTH, SELECT and
 *    SCRIPT LOAD of every script).  A connection that failed is freed,
 *    never reused.
 */

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <algorithm>

#include "plugin.hpp"

namespace pushq::civetweb {

struct redis_link {
    plugin             *p_ = nullptr;
    pushq_redis_url_t   url_{};
    std::string         where_;             /* "host:port/db" for logs    */

    /* The pool. */
    std::mutex                   pool_mu_;
    std::condition_variable      pool_cv_;
    std::vector<redisContext *>  idle_;
    size_t                       open_ = 0;  /* idle + lent out            */
    /* Redis restarts seen: a connection whose server has another run_id
     * than the last one seen counts one.  Each pooled connection keeps
     * the count it was made under, so a take knows when the server
     * behind its connection is not the one its cursor came from. */
    std::string                  run_id_;
    uint64_t                     restarts_ = 0;
    std::unordered_map<redisContext *, uint64_t> life_;
    bool                         pool_down_ = false;   /* logged          */
    uint64_t                     fail_until_ms_ = 0;
    std::string                  fail_why_;

    /* The subscription thread. */
    pthread_t              thread_{};
    bool                   started_ = false;
    int                    stop_fd_ = -1;    /* eventfd                   */
    std::atomic<bool>      stop_{false};
    std::atomic<bool>      subscribed_{false};
    std::atomic<uint64_t>  generation_{0};
    uint64_t               next_mirror_log_ms_ = 0;
    /* Subscription thread only: the epoch of the last message mirrored
     * per channel (pruned when the local channel is gone), to tell a gap
     * in one life from the start of a new one. */
    std::unordered_map<std::string, uint64_t> epochs_;
    uint64_t               next_prune_ms_ = 0;
};

namespace {

constexpr size_t   pool_max = 32;
constexpr uint64_t connect_timeout_ms = 500;
constexpr uint64_t command_timeout_ms = 3000;
constexpr uint64_t pool_wait_ms = 2000;
constexpr uint64_t fail_fast_ms = 200;      /* after a failed connect     */
constexpr uint64_t backoff_first_ms = 100;
constexpr uint64_t backoff_max_ms = 5000;

timeval to_tv(uint64_t ms)
{
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ms / 1000);
    tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
    return tv;
}

void copy_err(char *buf, size_t size, const std::string &s, const char **why)
{
    if (buf != nullptr && size > 0) {
        std::snprintf(buf, size, "%s", s.c_str());
        *why = buf;
    } else {
        *why = "redis: unavailable";
    }
}

redisReply *run(redisContext *c, const pushq_redis_cmd_t &cmd)
{
    return static_cast<redisReply *>(
        redisCommandArgv(c, cmd.argc, const_cast<const char **>(cmd.argv),
                         cmd.argvlen));
}

/* Runs one setup command; false (with the why) unless Redis said OK or
 * gave the value asked for. */
bool run_setup(redisContext *c, const pushq_redis_cmd_t &cmd,
               const char *what, std::string &err)
{
    redisReply *rep = run(c, cmd);
    if (rep == nullptr) {
        err = std::string("redis: ") + what + ": " + c->errstr;
        return false;
    }
    bool ok = rep->type != REDIS_REPLY_ERROR;
    if (!ok) {
        err = std::string("redis: ") + what + ": "
              + std::string(rep->str != nullptr ? rep->str : "error",
                            rep->str != nullptr ? rep->len : 5);
    }
    freeReplyObject(rep);
    return ok;
}

bool load_scripts(redisContext *c, std::string &err)
{
    for (unsigned i = 0; i < PUSHQ_REDIS_SCRIPTS; i++) {
        pushq_redis_cmd_t cmd;
        pushq_redis_cmd_script_load(&cmd, i);
        if (!run_setup(c, cmd, "SCRIPT LOAD", err)) {
            return false;
        }
    }
    return true;
}

/* The server's run_id (INFO server), "" when it does not say. */
std::string server_run_id(redisContext *c)
{
    const char *argv[2] = {"INFO", "server"};
    size_t argvlen[2] = {4, 6};
    auto *rep = static_cast<redisReply *>(
        redisCommandArgv(c, 2, argv, argvlen));
    std::string id;
    if (rep != nullptr && rep->type == REDIS_REPLY_STRING) {
        std::string_view info(rep->str, rep->len);
        size_t at = info.find("run_id:");
        if (at != std::string_view::npos) {
            size_t end = info.find_first_of("\r\n", at);
            id = std::string(info.substr(at + 7, end == std::string_view::npos
                                                     ? end : end - at - 7));
        }
    }
    if (rep != nullptr) {
        freeReplyObject(rep);
    }
    return id;
}

/* A connected, authenticated connection on the URL's database; NULL with
 * the why in err.  A pool connection (scripts) also loads the scripts and
 * reads the server's run_id. */
redisContext *connect_one(const redis_link *r, bool scripts, std::string &err,
                          std::string *run_id = nullptr)
{
    redisContext *c = redisConnectWithTimeout(
        r->url_.host, r->url_.port, to_tv(connect_timeout_ms));
    if (c == nullptr) {
        err = "redis: out of memory for a connection";
        return nullptr;
    }
    if (c->err != 0) {
        err = "redis: cannot connect to " + r->where_ + ": " + c->errstr;
        redisFree(c);
        return nullptr;
    }
    redisSetTimeout(c, to_tv(command_timeout_ms));
    redisEnableKeepAlive(c);
    pushq_redis_cmd_t cmd;
    if (pushq_redis_cmd_auth(&cmd, &r->url_) != 0
        && !run_setup(c, cmd, "AUTH", err)) {
        redisFree(c);
        return nullptr;
    }
    if (pushq_redis_cmd_select(&cmd, &r->url_) != 0
        && !run_setup(c, cmd, "SELECT", err)) {
        redisFree(c);
        return nullptr;
    }
    if (scripts && !load_scripts(c, err)) {
        redisFree(c);
        return nullptr;
    }
    if (run_id != nullptr) {
        *run_id = server_run_id(c);
    }
    return c;
}

/* An idle pooled connection is sound when nothing is waiting on it: a
 * server that went away left EOF (or a reset) there. */
bool idle_sound(redisContext *c)
{
    if (c->err != 0) {
        return false;
    }
    pollfd pfd{};
    pfd.fd = c->fd;
    pfd.events = POLLIN | POLLRDHUP;
    return poll(&pfd, 1, 0) == 0;
}

redisContext *checkout(redis_link *r, char *errbuf, size_t errbuf_size,
                       const char **why)
{
    std::unique_lock<std::mutex> lk(r->pool_mu_);
    const auto deadline = std::chrono::steady_clock::now()
                          + std::chrono::milliseconds(pool_wait_ms);
    for (;;) {
        while (!r->idle_.empty()) {
            redisContext *c = r->idle_.back();
            r->idle_.pop_back();
            if (idle_sound(c)) {
                return c;
            }
            r->open_--;
            r->life_.erase(c);
            redisFree(c);
        }
        if (r->open_ < pool_max) {
            break;
        }
        if (r->pool_cv_.wait_until(lk, deadline) == std::cv_status::timeout
            && r->idle_.empty() && r->open_ >= pool_max) {
            copy_err(errbuf, errbuf_size,
                     "redis: all " + std::to_string(pool_max)
                         + " connections are busy; try again",
                     why);
            return nullptr;
        }
    }
    if (pushq_now_ms() < r->fail_until_ms_) {
        copy_err(errbuf, errbuf_size, r->fail_why_, why);
        return nullptr;
    }
    r->open_++;
    lk.unlock();
    std::string err;
    std::string run_id;
    redisContext *c = connect_one(r, true, err, &run_id);
    lk.lock();
    if (c == nullptr) {
        r->open_--;
        r->pool_cv_.notify_one();
        r->fail_until_ms_ = pushq_now_ms() + fail_fast_ms;
        r->fail_why_ = err;
        if (!r->pool_down_) {
            r->pool_down_ = true;
            log_line("%s (publish and take answer 503 until it is back; "
                     "logged once)", err.c_str());
        }
        copy_err(errbuf, errbuf_size, err, why);
        return nullptr;
    }
    if (r->pool_down_) {
        r->pool_down_ = false;
        log_line("redis: %s: connected again (publish and take)",
                 r->where_.c_str());
    }
    if (!run_id.empty() && run_id != r->run_id_) {
        if (!r->run_id_.empty()) {
            r->restarts_++;
        }
        r->run_id_ = run_id;
    }
    r->life_[c] = r->restarts_;
    return c;
}

/* The restart count a pooled connection was made under. */
uint64_t life_of(redis_link *r, redisContext *c)
{
    std::lock_guard<std::mutex> lk(r->pool_mu_);
    auto it = r->life_.find(c);
    return it == r->life_.end() ? 0 : it->second;
}

void checkin(redis_link *r, redisContext *c, bool sound)
{
    std::lock_guard<std::mutex> lk(r->pool_mu_);
    if (sound && c->err == 0) {
        r->idle_.push_back(c);
    } else {
        r->open_--;
        r->life_.erase(c);
        redisFree(c);
    }
    r->pool_cv_.notify_one();
}

/* One command; a NOSCRIPT error (Redis restarted or SCRIPT FLUSH since the
 * connection loaded them: nothing ran) loads the scripts and retries. */
redisReply *command(redisContext *c, const pushq_redis_cmd_t &cmd)
{
    redisReply *rep = run(c, cmd);
    if (rep != nullptr && rep->type == REDIS_REPLY_ERROR
        && rep->str != nullptr && std::strncmp(rep->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(rep);
        std::string err;
        if (!load_scripts(c, err)) {
            return nullptr;
        }
        rep = run(c, cmd);
    }
    return rep;
}

/* ---- the subscription thread ---- */

/* Sleeps ms, or less if stopped.  False when stopped. */
bool nap(redis_link *r, uint64_t ms)
{
    pollfd pfd{};
    pfd.fd = r->stop_fd_;
    pfd.events = POLLIN;
    poll(&pfd, 1, static_cast<int>(ms));
    return !r->stop_.load();
}

redisContext *subscribe(redis_link *r, std::string &err)
{
    redisContext *c = connect_one(r, false, err);
    if (c == nullptr) {
        return nullptr;
    }
    pushq_redis_cmd_t cmd;
    pushq_redis_cmd_subscribe(&cmd);
    if (!run_setup(c, cmd, "PSUBSCRIBE", err)) {
        redisFree(c);
        return nullptr;
    }
    return c;
}

void wake_channel(redis_link *r, const redisReply *rep)
{
    /* "pmessage", pattern, "pushq:m:<channel>", message */
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 4
        || rep->element[2]->type != REDIS_REPLY_STRING
        || rep->element[3]->type != REDIS_REPLY_STRING) {
        return;
    }
    static constexpr std::string_view prefix = "pushq:m:";
    std::string_view ch(rep->element[2]->str, rep->element[2]->len);
    if (ch.substr(0, prefix.size()) != prefix) {
        return;
    }
    ch.remove_prefix(prefix.size());
    plugin *p = r->p_;
    std::lock_guard<std::mutex> lk(p->reg_mu_);
    auto it = p->by_channel_.find(std::string(ch));
    if (it == p->by_channel_.end()) {
        return;
    }
    for (ws_conn *wc : it->second) {
        ws_notify(p, wc, rep->element[3]->len);
    }
}

/* The header of a message heard on the subscription (redis_scripts.cpp):
 * "<epoch> <id> <flags> <buffer> <buffer_bytes> <message_ttl_ms>\n". */
struct heard {
    std::string  chan;
    uint64_t     epoch = 0;
    uint64_t     id = 0;
    pushq_limits_t lim{};
};

bool parse_heard(const redisReply *rep, heard &h)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 4
        || rep->element[0]->type != REDIS_REPLY_STRING
        || std::string_view(rep->element[0]->str, rep->element[0]->len)
               != "pmessage"
        || rep->element[2]->type != REDIS_REPLY_STRING
        || rep->element[3]->type != REDIS_REPLY_STRING) {
        return false;
    }
    static constexpr std::string_view prefix = "pushq:m:";
    std::string_view ch(rep->element[2]->str, rep->element[2]->len);
    if (ch.substr(0, prefix.size()) != prefix) {
        return false;
    }
    h.chan = std::string(ch.substr(prefix.size()));
    std::string body(rep->element[3]->str,
                     std::min<size_t>(rep->element[3]->len, 160));
    unsigned long long v[6];
    if (std::sscanf(body.c_str(), "%llu %llu %llu %llu %llu %llu", &v[0],
                    &v[1], &v[2], &v[3], &v[4], &v[5]) != 6
        || v[3] > UINT32_MAX) {
        return false;
    }
    h.epoch = v[0];
    h.id = v[1];
    pushq_limits_default(&h.lim);
    h.lim.buffer = static_cast<uint32_t>(v[3]);
    h.lim.buffer_bytes = v[4];
    h.lim.message_ttl_ms = v[5];
    h.lim.max_message_size = UINT64_MAX;
    return true;
}

uint64_t realtime_ms()
{
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000
           + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

/* Mirrors ids first..last of h's channel and life from Redis's stream:
 * what the subscription missed (it was down, or Redis restarted and was
 * published to before this server subscribed again), so that the local
 * subscribers get it in order before h's message.  Best effort: what the
 * stream no longer holds stays missing (the mirror counts it lost). */
uint64_t backfill(redis_link *r, const heard &h, uint64_t first,
                  uint64_t last)
{
    if (last - first + 1 > h.lim.buffer) {
        first = last - h.lim.buffer + 1;
    }
    char errbuf[256];
    const char *why = nullptr;
    redisContext *c = checkout(r, errbuf, sizeof(errbuf), &why);
    if (c == nullptr) {
        return 0;
    }
    const std::string key = "pushq:{" + h.chan + "}:log";
    const std::string from = "0-" + std::to_string(first);
    const std::string to = "0-" + std::to_string(last);
    const std::string count = std::to_string(last - first + 1);
    const char *argv[6] = {"XRANGE", key.c_str(), from.c_str(), to.c_str(),
                           "COUNT", count.c_str()};
    size_t argvlen[6] = {6, key.size(), from.size(), to.size(), 5,
                         count.size()};
    auto *rep = static_cast<redisReply *>(
        redisCommandArgv(c, 6, argv, argvlen));
    checkin(r, c, rep != nullptr);
    if (rep == nullptr) {
        return 0;
    }
    uint64_t wakers = 0;
    const uint64_t now = pushq_now_ms();
    const uint64_t wall = realtime_ms();
    if (rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < rep->elements; i++) {
            const redisReply *e = rep->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2
                || e->element[0]->type != REDIS_REPLY_STRING
                || e->element[1]->type != REDIS_REPLY_ARRAY) {
                continue;
            }
            const uint64_t id = std::strtoull(e->element[0]->str + 2,
                                              nullptr, 10);
            uint64_t flags = 0, expires = 0;
            const char *data = "";
            size_t len = 0;
            const redisReply *f = e->element[1];
            for (size_t k = 0; k + 1 < f->elements; k += 2) {
                const redisReply *fk = f->element[k];
                const redisReply *fv = f->element[k + 1];
                if (fk->type != REDIS_REPLY_STRING
                    || fv->type != REDIS_REPLY_STRING || fk->len != 1) {
                    continue;
                }
                switch (fk->str[0]) {
                case 'f': flags = std::strtoull(fv->str, nullptr, 10); break;
                case 'e': expires = std::strtoull(fv->str, nullptr, 10); break;
                case 'd': data = fv->str; len = fv->len; break;
                default: break;
                }
            }
            if (id == 0 || (expires != 0 && expires <= wall)) {
                continue;
            }
            pushq_publish_result_t res{};
            if (pushq_store_mirror(r->p_->store_, h.chan.data(),
                                   h.chan.size(), h.epoch, id, data, len,
                                   static_cast<unsigned>(flags), &h.lim, now,
                                   &res, &why) == PUSHQ_OK) {
                wakers |= res.wakers;
            }
        }
    }
    freeReplyObject(rep);
    return wakers;
}

void mirror(redis_link *r, const redisReply *rep)
{
    uint64_t wakers = 0;
    const char *why = nullptr;
    const uint64_t now = pushq_now_ms();
    heard h;
    if (parse_heard(rep, h)) {
        /* A gap in this life, or a new life that began before we heard
         * it: fetch what was missed first. */
        auto it = r->epochs_.find(h.chan);
        if (it != r->epochs_.end()) {
            pushq_channel_stats_t cs{};
            uint64_t local = 0;
            if (pushq_store_channel_stats(r->p_->store_, h.chan.data(),
                                          h.chan.size(), now, &cs)
                == PUSHQ_OK) {
                local = cs.last_id;
            }
            if (it->second == h.epoch && local > 0 && h.id > local + 1) {
                wakers |= backfill(r, h, local + 1, h.id - 1);
            } else if (it->second != h.epoch && h.id > 1) {
                wakers |= backfill(r, h, 1, h.id - 1);
            }
        }
        r->epochs_[h.chan] = h.epoch;
    }
    uint64_t w = 0;
    pushq_status_t st = pushq_redis_mirror(r->p_->store_, rep, now, &w, &why);
    wakers |= w;
    if (st != PUSHQ_OK) {
        /* At most one line every 10 s: a full store would say it per
         * message. */
        if (now >= r->next_mirror_log_ms_) {
            r->next_mirror_log_ms_ = now + 10000;
            log_line("redis: %s: a message heard on the subscription was "
                     "not mirrored: %s", r->where_.c_str(),
                     why ? why : "error");
        }
    }
    if (wakers != 0) {
        wake_channel(r, rep);
    }
}

/* Forgets the epochs of channels the store no longer has (every minute). */
void prune_epochs(redis_link *r)
{
    const uint64_t now = pushq_now_ms();
    if (now < r->next_prune_ms_) {
        return;
    }
    r->next_prune_ms_ = now + 60000;
    for (auto it = r->epochs_.begin(); it != r->epochs_.end();) {
        pushq_channel_stats_t cs{};
        if (pushq_store_channel_stats(r->p_->store_, it->first.data(),
                                      it->first.size(), now, &cs)
            == PUSHQ_ENOTFOUND) {
            it = r->epochs_.erase(it);
        } else {
            ++it;
        }
    }
}

/* Reads and mirrors until the connection fails (returns why) or stop. */
std::string read_loop(redis_link *r, redisContext *c)
{
    for (;;) {
        if (r->stop_.load()) {
            return "";
        }
        void *rep = nullptr;
        if (redisReaderGetReply(c->reader, &rep) != REDIS_OK) {
            return "protocol error";
        }
        if (rep != nullptr) {
            try {
                mirror(r, static_cast<redisReply *>(rep));
            } catch (...) {
            }
            freeReplyObject(rep);
            continue;
        }
        pollfd fds[2]{};
        fds[0].fd = c->fd;
        fds[0].events = POLLIN;
        fds[1].fd = r->stop_fd_;
        fds[1].events = POLLIN;
        int n = poll(fds, 2, 1000);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return std::string("poll: ") + std::strerror(errno);
        }
        if (fds[1].revents != 0) {
            return "";
        }
        if (n == 0) {
            try {
                prune_epochs(r);
            } catch (...) {
            }
            continue;
        }
        if (fds[0].revents != 0 && redisBufferRead(c) != REDIS_OK) {
            return c->errstr;
        }
    }
}

void *subscription_main(void *arg)
{
    auto *r = static_cast<redis_link *>(arg);
    uint64_t backoff = backoff_first_ms;
    bool down = false;              /* an outage was logged */
    while (!r->stop_.load()) {
        std::string err;
        redisContext *c = subscribe(r, err);
        if (c == nullptr) {
            if (!down) {
                down = true;
                log_line("%s: subscription down, retrying every %llu ms to "
                         "%llu s (logged once until it is back)",
                         err.c_str(),
                         static_cast<unsigned long long>(backoff_first_ms),
                         static_cast<unsigned long long>(backoff_max_ms
                                                         / 1000));
            }
            if (!nap(r, backoff)) {
                break;
            }
            backoff = backoff * 2 > backoff_max_ms ? backoff_max_ms
                                                   : backoff * 2;
            continue;
        }
        backoff = backoff_first_ms;
        log_line("redis: %s: %s (PSUBSCRIBE pushq:m:*)", r->where_.c_str(),
                 down ? "subscription back" : "subscribed");
        down = false;
        r->subscribed_.store(true);
        r->generation_.fetch_add(1);
        /* Takers may have missed what was published while the mirror was
         * deaf: wake them all to take again. */
        pushq_store_wake_all(r->p_->store_);
        try {
            ws_notify_all(r->p_);
        } catch (...) {
        }
        std::string why = read_loop(r, c);
        r->subscribed_.store(false);
        redisFree(c);
        if (r->stop_.load()) {
            break;
        }
        down = true;
        log_line("redis: %s: subscription lost (%s); reconnecting with "
                 "backoff (logged once until it is back)",
                 r->where_.c_str(), why.c_str());
    }
    return nullptr;
}

}  // namespace

void log_line(const char *fmt, ...)
{
    char ts[64];
    time_t t = time(nullptr);
    struct tm tm;
    gmtime_r(&t, &tm);
    std::snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02dZ",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                  tm.tm_min, tm.tm_sec);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    std::fprintf(stderr, "%s pushq: %s\n", ts, msg);
    std::fflush(stderr);
}

redis_link *redis_start(plugin *p, std::string &err)
{
    auto *r = new redis_link();
    r->p_ = p;
    r->url_ = p->opt_.redis;
    r->where_ = std::string(r->url_.host) + ":" + std::to_string(r->url_.port)
                + "/" + std::to_string(r->url_.db);
    r->stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->stop_fd_ < 0) {
        err = std::string("option \"redis\": eventfd: ")
              + std::strerror(errno);
        delete r;
        return nullptr;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256u << 10);
    int rc = pthread_create(&r->thread_, &attr, subscription_main, r);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        err = "option \"redis\": cannot start the subscription thread";
        close(r->stop_fd_);
        delete r;
        return nullptr;
    }
    r->started_ = true;
    return r;
}

void redis_stop(redis_link *r)
{
    if (r == nullptr) {
        return;
    }
    if (r->started_) {
        r->stop_.store(true);
        uint64_t one = 1;
        ssize_t n = write(r->stop_fd_, &one, sizeof(one));
        (void)n;
        pthread_join(r->thread_, nullptr);
    }
    close(r->stop_fd_);
    for (redisContext *c : r->idle_) {
        redisFree(c);
    }
    delete r;
}

bool redis_subscribed(const redis_link *r)
{
    return r->subscribed_.load();
}

uint64_t redis_generation(const redis_link *r)
{
    return r->generation_.load();
}

pushq_status_t redis_publish(redis_link *r, const char *chan, size_t chan_len,
                             const void *msg, size_t len, unsigned flags,
                             const pushq_limits_t *lim, uint64_t *id,
                             char *errbuf, size_t errbuf_size,
                             const char **why)
{
    pushq_redis_cmd_t cmd;
    pushq_status_t st = pushq_redis_cmd_publish(&cmd, chan, chan_len, msg,
                                                len, flags, lim, why);
    if (st != PUSHQ_OK) {
        return st;
    }
    redisContext *c = checkout(r, errbuf, errbuf_size, why);
    if (c == nullptr) {
        return PUSHQ_ENOMEM;
    }
    redisReply *rep = command(c, cmd);
    st = pushq_redis_reply_publish(rep, id, errbuf, errbuf_size, why);
    if (rep != nullptr) {
        freeReplyObject(rep);
    }
    checkin(r, c, rep != nullptr);
    return st;
}

/* The channel's epoch in Redis (0: it has none), on connection c.  False
 * when the connection failed. */
bool epoch_on(redisContext *c, const std::string &chan, uint64_t *epoch,
              std::string &err)
{
    const std::string key = "pushq:{" + chan + "}:seq";
    const char *argv[3] = {"HGET", key.c_str(), "epoch"};
    size_t argvlen[3] = {4, key.size(), 5};
    auto *rep = static_cast<redisReply *>(
        redisCommandArgv(c, 3, argv, argvlen));
    *epoch = 0;
    if (rep == nullptr) {
        err = std::string("redis: connection lost: ") + c->errstr;
        return false;
    }
    if (rep->type == REDIS_REPLY_STRING) {
        *epoch = std::strtoull(rep->str, nullptr, 10);
    }
    freeReplyObject(rep);
    return true;
}

pushq_status_t redis_take_next(redis_link *r, take_cursor &tc,
                               const pushq_limits_t *lim, size_t max_msgs,
                               size_t max_bytes, std::vector<msg_copy> &msgs,
                               pushq_redis_take_info_t *info, char *errbuf,
                               size_t errbuf_size, const char **why)
{
    const uint64_t gen = redis_generation(r);
    pushq_redis_take_t t{};
    t.chan = tc.chan.data();
    t.chan_len = tc.chan.size();
    t.name = tc.name.empty() ? nullptr : tc.name.data();
    t.name_len = tc.name.size();
    t.max_msgs = max_msgs;
    t.max_bytes = max_bytes;
    /* Checks the arguments before a connection is borrowed. */
    pushq_redis_cmd_t cmd;
    pushq_status_t st = pushq_redis_cmd_take(&cmd, &t, lim, why);
    if (st != PUSHQ_OK) {
        return st;
    }
    redisContext *c = checkout(r, errbuf, errbuf_size, why);
    if (c == nullptr) {
        tc.failed = true;
        return PUSHQ_ENOMEM;
    }
    const uint64_t life = life_of(r, c);
    bool restart = false;
    if (tc.known && life != tc.life && tc.epoch != 0) {
        /* Redis restarted since tc's last take: if it lost the channel
         * (a new epoch, or none yet), tc's cursor belongs to the old life
         * and must not be used (the name's key is gone too, so the take
         * would fall back to it and skip the new life's first ids). */
        uint64_t epoch = 0;
        std::string err;
        if (!epoch_on(c, tc.chan, &epoch, err)) {
            checkin(r, c, false);
            copy_err(errbuf, errbuf_size, err, why);
            tc.failed = true;
            return PUSHQ_ENOMEM;
        }
        restart = epoch != tc.epoch;
    }
    if (!tc.known) {
        t.has_last_id = tc.has_last_id;
        t.last_id = tc.last_id;
    } else if (t.name != nullptr) {
        /* The name's key holds the truth (another server may have moved
         * it); the connection's cursor counts only when it is gone. */
        t.has_cursor = 1;
        t.cursor = restart ? 0 : tc.cursor;
    } else {
        t.has_last_id = 1;
        t.last_id = restart ? 0 : tc.cursor;
    }
    st = pushq_redis_cmd_take(&cmd, &t, lim, why);
    if (st != PUSHQ_OK) {
        checkin(r, c, true);
        return st;
    }
    redisReply *rep = command(c, cmd);
    const size_t had = msgs.size();
    st = pushq_redis_reply_take(rep, collect, &msgs, info, errbuf,
                                errbuf_size, why);
    if (rep != nullptr) {
        freeReplyObject(rep);
    }
    checkin(r, c, rep != nullptr);
    if (st != PUSHQ_OK) {
        msgs.resize(had);
        tc.failed = true;
        return st;
    }
    if (restart) {
        info->reset = 1;
    }
    tc.known = true;
    tc.failed = false;
    tc.gen = gen;
    tc.life = life;
    tc.cursor = info->last_id;
    tc.epoch = info->epoch;
    return PUSHQ_OK;
}

}  // namespace pushq::civetweb
