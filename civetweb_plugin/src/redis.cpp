/*
 * redis.cpp -- Redis mode (option `redis`, pushq_redis.h): Redis holds the
 * truth; the plugin's store is a mirror that feeds local subscribers.
 *
 *  - The subscription thread (ours) owns one connection: AUTH, SELECT,
 *    PSUBSCRIBE pushq:m:*, then reads in poll() slices (an eventfd stops it
 *    at once on detach) and hands every reply to pushq_redis_mirror_heard,
 *    which stores the channel's next message and wakes the long-polls
 *    blocked in pushq_sub_wait; the WebSocket senders on the channel are
 *    woken here, as a local publish wakes them.  A lost connection is
 *    retried with backoff (100 ms doubling to 5 s), logged once per outage
 *    and once when it is back.
 *  - Catching the mirror up (pushq_redis.h): a message heard past a gap,
 *    and on every subscription confirm each local channel that came from
 *    Redis (pushq_store_redis_channels), queue a read of the stream after
 *    the local newest id; the same thread reads them one at a time
 *    (pushq_redis_cmd_range on a pool connection, blocking with the
 *    pool's timeouts; pushq_redis_reply_range), between reads of the
 *    subscription socket, again while Redis says there is more.  A channel
 *    is queued once: a gap heard while it waits only lowers where its read
 *    starts.
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
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <deque>

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
    /* Subscription thread only: the channels to read from the stream
     * (pushq_redis.h "Catching the mirror up"), each once, in the order
     * asked; read one at a time between the subscription's replies. */
    struct pending_read {
        uint64_t  after_id;
        unsigned  failures;
    };
    std::unordered_map<std::string, pending_read> reads_;
    std::deque<std::string>                read_order_;
    bool                                   logged_read_ = false;
};

namespace {

constexpr size_t   pool_max = 32;
constexpr uint64_t connect_timeout_ms = 500;
constexpr uint64_t command_timeout_ms = 3000;
constexpr uint64_t pool_wait_ms = 2000;
constexpr uint64_t fail_fast_ms = 200;      /* after a failed connect     */
constexpr uint64_t backoff_first_ms = 100;
constexpr uint64_t backoff_max_ms = 5000;
constexpr size_t   read_max_msgs = 64;      /* messages per stream read   */
constexpr unsigned read_fails = 3;          /* then the read is dropped   */
constexpr uint64_t read_retry_ms = 200;     /* after a failed read        */

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

/* Wakes the WebSocket senders on chan (the long-polls blocked in
 * pushq_sub_wait were woken by the store); bytes count against their
 * websocket_max_backlog. */
void wake_channel(redis_link *r, std::string_view chan, size_t bytes)
{
    plugin *p = r->p_;
    std::lock_guard<std::mutex> lk(p->reg_mu_);
    auto it = p->by_channel_.find(std::string(chan));
    if (it == p->by_channel_.end()) {
        return;
    }
    for (ws_conn *wc : it->second) {
        ws_notify(p, wc, bytes);
    }
}

/* The bytes of a reply's strings: about what a range read mirrored. */
size_t reply_bytes(const redisReply *rep)
{
    if (rep == nullptr) {
        return 0;
    }
    if (rep->type == REDIS_REPLY_STRING) {
        return rep->len;
    }
    size_t n = 0;
    if (rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < rep->elements; i++) {
            n += reply_bytes(rep->element[i]);
        }
    }
    return n;
}

/* Asks for chan to be read after after_id (merged with a read already
 * asked for: from the lower of the two). */
void want_read(redis_link *r, std::string_view chan, uint64_t after_id)
{
    std::string key(chan);
    auto it = r->reads_.find(key);
    if (it != r->reads_.end()) {
        it->second.after_id = std::min(it->second.after_id, after_id);
        return;
    }
    r->reads_.emplace(key, redis_link::pending_read{after_id, 0});
    r->read_order_.push_back(std::move(key));
}

/* Every local channel that came from Redis and has subscribers: read on
 * each subscription confirm (what was published while it was down). */
void walk_channels(redis_link *r)
{
    std::vector<std::pair<std::string, uint64_t>> found;
    pushq_store_redis_channels(
        r->p_->store_,
        [](void *ctx, const char *chan, size_t chan_len, uint64_t newest) {
            /* the store is locked: copy only */
            try {
                static_cast<std::vector<std::pair<std::string, uint64_t>> *>(
                    ctx)->emplace_back(std::string(chan, chan_len), newest);
            } catch (...) {
            }
        },
        &found);
    for (const auto &[chan, newest] : found) {
        want_read(r, chan, newest);
    }
}

uint64_t local_newest(redis_link *r, const std::string &chan)
{
    pushq_channel_stats_t cs{};
    if (pushq_store_channel_stats(r->p_->store_, chan.data(), chan.size(),
                                  pushq_now_ms(), &cs) != PUSHQ_OK) {
        return 0;
    }
    return cs.last_id;
}

/* One read of the stream (the first channel waiting) on a pool
 * connection, mirrored with pushq_redis_reply_range; the channel waits
 * again (after its new local newest id) while Redis has more.  False when
 * it failed (the caller waits a little before the next). */
bool read_one(redis_link *r)
{
    if (r->read_order_.empty()) {
        return true;
    }
    std::string chan = std::move(r->read_order_.front());
    r->read_order_.pop_front();
    auto it = r->reads_.find(chan);
    if (it == r->reads_.end()) {
        return true;
    }
    const uint64_t after = it->second.after_id;
    char errbuf[256];
    const char *why = nullptr;
    pushq_status_t st = PUSHQ_ENOMEM;
    int more = 0;
    redisContext *c = checkout(r, errbuf, sizeof(errbuf), &why);
    if (c != nullptr) {
        pushq_redis_cmd_t cmd;
        pushq_redis_cmd_range(&cmd, chan.data(), chan.size(), after,
                              read_max_msgs);
        redisReply *rep = command(c, cmd);
        checkin(r, c, rep != nullptr);
        uint64_t wakers = 0;
        st = pushq_redis_reply_range(r->p_->store_, chan.data(), chan.size(),
                                     rep, pushq_now_ms(), &wakers, &more,
                                     &why);
        if (wakers != 0) {
            wake_channel(r, chan, reply_bytes(rep));
        }
        if (rep != nullptr) {
            freeReplyObject(rep);
        }
    }
    if (st == PUSHQ_OK && more == 0) {
        r->reads_.erase(it);
        return true;
    }
    const uint64_t newest = local_newest(r, chan);
    if (st != PUSHQ_OK || newest == after) {
        it->second.failures++;          /* an error, or no progress */
    } else {
        it->second.failures = 0;
    }
    if (it->second.failures >= read_fails) {
        if (!r->logged_read_) {         /* once per subscription */
            r->logged_read_ = true;
            log_line("redis: %s: cannot catch channel \"%s\" up: %s; its "
                     "subscribers count the messages it misses as lost",
                     r->where_.c_str(), chan.c_str(),
                     st != PUSHQ_OK ? (why ? why : "error") : "no progress");
        }
        r->reads_.erase(it);
        return st == PUSHQ_OK;
    }
    if (st == PUSHQ_OK) {
        it->second.after_id = newest;
    }
    r->read_order_.push_back(std::move(chan));
    return st == PUSHQ_OK;
}

/* A reply heard on the subscription: the channel's next message is
 * mirrored (waking its subscribers), one past a gap asks for a read. */
void mirror(redis_link *r, const redisReply *rep)
{
    uint64_t wakers = 0;
    const char *why = nullptr;
    const uint64_t now = pushq_now_ms();
    pushq_redis_gap_t gap;
    gap.chan_len = 0;
    pushq_status_t st = pushq_redis_mirror_heard(r->p_->store_, rep, now,
                                                 &wakers, &gap, &why);
    if (st != PUSHQ_OK) {
        /* At most one line every 10 s: a full store would say it per
         * message. */
        if (now >= r->next_mirror_log_ms_) {
            r->next_mirror_log_ms_ = now + 10000;
            log_line("redis: %s: a message heard on the subscription was "
                     "not mirrored: %s", r->where_.c_str(),
                     why ? why : "error");
        }
        return;
    }
    if (gap.chan_len != 0 && gap.chan_len <= sizeof(gap.chan)) {
        want_read(r, std::string_view(gap.chan, gap.chan_len), gap.after_id);
    }
    if (wakers != 0) {
        /* "pmessage", pattern, "pushq:m:<channel>", message (checked) */
        static constexpr size_t prefix = sizeof("pushq:m:") - 1;
        const redisReply *ch = rep->element[2];
        wake_channel(r, std::string_view(ch->str + prefix, ch->len - prefix),
                     rep->element[3]->len);
    }
}

/* Reads and mirrors until the connection fails (returns why) or stop.
 * Between two reads of the socket (at most 16 KiB each: hiredis's read
 * size) one channel waiting is read from the stream, so neither starves
 * the other. */
std::string read_loop(redis_link *r, redisContext *c)
{
    uint64_t next_read_ms = 0;      /* after a failed stream read */
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
        int wait_ms = 1000;
        if (!r->read_order_.empty()) {
            const uint64_t now = pushq_now_ms();
            if (now >= next_read_ms) {
                bool ok = true;
                try {
                    ok = read_one(r);
                } catch (...) {
                    ok = false;
                }
                next_read_ms = ok ? 0 : pushq_now_ms() + read_retry_ms;
            }
            if (!r->read_order_.empty()) {
                const uint64_t at = pushq_now_ms();
                wait_ms = next_read_ms > at
                              ? static_cast<int>(next_read_ms - at) : 0;
            }
        }
        pollfd fds[2]{};
        fds[0].fd = c->fd;
        fds[0].events = POLLIN;
        fds[1].fd = r->stop_fd_;
        fds[1].events = POLLIN;
        int n = poll(fds, 2, wait_ms);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return std::string("poll: ") + std::strerror(errno);
        }
        if (fds[1].revents != 0) {
            return "";
        }
        if (n > 0 && fds[0].revents != 0 && redisBufferRead(c) != REDIS_OK) {
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
        /* The mirror reads what it did not hear meanwhile: every channel
         * that came from Redis and has subscribers. */
        r->logged_read_ = false;
        try {
            walk_channels(r);
            for (auto &[chan, rd] : r->reads_) {
                rd.failures = 0;
            }
        } catch (...) {
        }
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
