/*
 * attach.cpp -- pushq_civetweb_attach / pushq_civetweb_detach, the
 * maintenance thread, the gate every handler enters through, the publish
 * path shared by HTTP, WebSocket and the C API, and the begin_request hook.
 */

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "plugin.hpp"

namespace pushq::civetweb {

namespace {

/* pushq speaks no subprotocol.  Registered without a list, CivetWeb 1.15
 * answers an offered "a, b" with the last one; with an empty list it
 * chooses none.  CivetWeb keeps the pointer and never writes through it. */
mg_websocket_subprotocols no_subprotocols{0, nullptr};

void set_error(char *error, size_t size, const std::string &msg)
{
    if (error != nullptr && size > 0) {
        std::snprintf(error, size, "%s", msg.c_str());
    }
}

void *maintenance_main(void *arg)
{
    auto *p = static_cast<plugin *>(arg);
    std::unique_lock<std::mutex> lk(p->maint_mu_);
    while (!p->maint_stop_) {
        p->maint_cv_.wait_for(lk, std::chrono::seconds(1));
        if (p->maint_stop_) {
            break;
        }
        lk.unlock();
        pushq_store_sweep(p->store_, pushq_now_ms());
        lk.lock();
    }
    return nullptr;
}

void remove_handlers(plugin *p)
{
    for (const std::string &u : p->opt_.publisher_uris) {
        mg_set_request_handler(p->ctx_, u.c_str(), nullptr, nullptr);
    }
    for (const std::string &u : p->opt_.status_uris) {
        mg_set_request_handler(p->ctx_, u.c_str(), nullptr, nullptr);
    }
    for (const std::string &u : p->opt_.subscriber_uris) {
        mg_set_request_handler(p->ctx_, u.c_str(), nullptr, nullptr);
        mg_set_websocket_handler(p->ctx_, u.c_str(), nullptr, nullptr,
                                 nullptr, nullptr, nullptr);
    }
}

void destroy(plugin *p)
{
    if (p->redis_ != nullptr) {
        redis_stop(p->redis_);
        p->redis_ = nullptr;
    }
    if (p->maint_started_) {
        {
            std::lock_guard<std::mutex> lk(p->maint_mu_);
            p->maint_stop_ = true;
        }
        p->maint_cv_.notify_all();
        pthread_join(p->maint_, nullptr);
    }
    if (p->store_ != nullptr) {
        pushq_store_destroy(p->store_);
    }
    std::free(p->region_);
    delete static_cast<pushq_civetweb *>(p);
}

/* Gates of detached plugins stay allocated (see struct gate), linked from
 * here (a plain pointer: no destructor at exit makes them unreachable):
 * one gate per attach/detach cycle. */
std::mutex  retired_mu;
gate       *retired = nullptr;

void retire(gate *g)
{
    std::lock_guard<std::mutex> lk(retired_mu);
    g->next_retired = retired;
    retired = g;
}

}  // namespace

plugin *gate_enter(gate *g)
{
    std::lock_guard<std::mutex> lk(g->mu);
    if (g->p == nullptr || g->closing) {
        return nullptr;
    }
    g->active++;
    return g->p;
}

void gate_leave(gate *g)
{
    std::lock_guard<std::mutex> lk(g->mu);
    g->active--;
    if (g->active == 0) {
        g->cv.notify_all();
    }
}

pushq_status_t plugin::publish(const char *chan, size_t chan_len,
                               const void *msg, size_t len, unsigned flags,
                               pushq_publish_result_t *res, const char **why)
{
    if (redis_ != nullptr) {
        /* Redis gives the id and tells every server (this one too: the
         * subscription thread mirrors it and wakes the subscribers).  The
         * why of a failure may be Redis's own words: kept per thread until
         * the caller has answered with it. */
        static thread_local char errbuf[256];
        uint64_t id = 0;
        pushq_status_t st = redis_publish(redis_, chan, chan_len, msg, len,
                                          flags, &opt_.limits, &id, errbuf,
                                          sizeof(errbuf), why);
        if (st != PUSHQ_OK) {
            return st;
        }
        pushq_channel_stats_t cs{};
        pushq_store_channel_stats(store_, chan, chan_len, pushq_now_ms(),
                                  &cs);
        res->id = id;
        res->subscribers = static_cast<uint32_t>(cs.subscribers);
        res->wakers = 0;
        return PUSHQ_OK;
    }
    pushq_status_t st = pushq_store_publish(store_, chan, chan_len, msg, len,
                                            flags, &opt_.limits,
                                            pushq_now_ms(), res, why);
    if (st != PUSHQ_OK) {
        return st;
    }
    /* Long-polls block in pushq_sub_wait, which the store wakes.  Each
     * WebSocket's sender waits on its own condition variable: wake the
     * ones on this channel.  Nothing is written from this thread. */
    std::lock_guard<std::mutex> lk(reg_mu_);
    auto it = by_channel_.find(std::string(chan, chan_len));
    if (it != by_channel_.end()) {
        for (ws_conn *wc : it->second) {
            ws_notify(this, wc, len);
        }
    }
    return PUSHQ_OK;
}

pushq_status_t plugin::resolve_name(pushq_arg_t which, const name_source &src,
                                    const char *query, char *out,
                                    size_t *out_len, const char **why) const
{
    if (!src.from_arg) {
        std::memcpy(out, src.value.data(), src.value.size());
        *out_len = src.value.size();
        return PUSHQ_OK;
    }
    std::string_view raw;
    if (!query_arg_raw(query, src.value, raw)) {
        raw = std::string_view();
    }
    return pushq_name_decode(which, raw.data(), raw.size(), out, out_len, why);
}

void plugin::register_ws(ws_conn *wc_, const std::string &channel)
{
    std::lock_guard<std::mutex> lk(reg_mu_);
    by_channel_[channel].push_back(wc_);
    ws_count_++;
}

void plugin::unregister_ws(ws_conn *wc_, const std::string &channel)
{
    std::lock_guard<std::mutex> lk(reg_mu_);
    auto it = by_channel_.find(channel);
    if (it == by_channel_.end()) {
        return;
    }
    auto &v = it->second;
    for (size_t i = 0; i < v.size(); i++) {
        if (v[i] == wc_) {
            v[i] = v.back();
            v.pop_back();
            ws_count_--;
            break;
        }
    }
    if (v.empty()) {
        by_channel_.erase(it);
    }
}

}  // namespace pushq::civetweb

using namespace pushq::civetweb;

extern "C" pushq_civetweb *pushq_civetweb_attach(mg_context *ctx,
                                                 const char **options,
                                                 char *error,
                                                 size_t error_size)
{
    pushq_civetweb *p = nullptr;
    try {
        if (ctx == nullptr) {
            set_error(error, error_size,
                      "ctx is NULL: call pushq_civetweb_attach after "
                      "mg_start succeeded");
            return nullptr;
        }
        if (mg_check_feature(16) == 0) {
            set_error(error, error_size,
                      "this CivetWeb library has no WebSocket support "
                      "(mg_check_feature(16) is 0): use one built with "
                      "USE_WEBSOCKET, as Debian's libcivetweb is");
            return nullptr;
        }

        p = new pushq_civetweb();
        p->ctx_ = ctx;
        std::string err;
        if (!parse_options(options, p->opt_, err)) {
            set_error(error, error_size, err);
            delete p;
            return nullptr;
        }

        const char *pp = mg_get_option(ctx, "enable_websocket_ping_pong");
        if (p->opt_.websocket && pp != nullptr
            && std::strcmp(pp, "yes") == 0) {
            set_error(error, error_size,
                      "CivetWeb option \"enable_websocket_ping_pong\" is "
                      "yes: pushq answers pings and sends its own (option "
                      "\"websocket_ping\"), and CivetWeb would hide the "
                      "client's pongs from it; set it to no");
            delete p;
            return nullptr;
        }

        size_t size = (p->opt_.store_size + 15) & ~static_cast<size_t>(15);
        p->region_ = std::aligned_alloc(16, size);
        if (p->region_ == nullptr) {
            set_error(error, error_size,
                      "option \"store_size\": cannot allocate "
                          + std::to_string(size) + " bytes");
            delete p;
            return nullptr;
        }
        /* pushq_store_init keeps a store it finds in the region (nginx's
         * zone across reload); heap memory may still hold the one an
         * earlier detach freed.  Clearing its header makes it new (and
         * the check reads no uninitialised bytes). */
        std::memset(p->region_, 0, size < 4096 ? size : 4096);
        const char *why = nullptr;
        if (pushq_store_init(p->region_, size, &p->store_, nullptr, &why)
            != PUSHQ_OK) {
            set_error(error, error_size,
                      std::string("option \"store_size\": ")
                          + (why ? why : "cannot create the store"));
            p->store_ = nullptr;
            destroy(p);
            return nullptr;
        }
        if (pushq_store_owner_register(p->store_, 0, 0, &p->owner_, &why)
            != PUSHQ_OK) {
            set_error(error, error_size,
                      std::string("cannot register with the store: ")
                          + (why ? why : "error"));
            destroy(p);
            return nullptr;
        }

        if (p->opt_.has_redis) {
            p->redis_ = redis_start(p, err);
            if (p->redis_ == nullptr) {
                set_error(error, error_size, err);
                destroy(p);
                return nullptr;
            }
        }

        if (pthread_create(&p->maint_, nullptr, maintenance_main, p) != 0) {
            set_error(error, error_size,
                      "cannot start the maintenance thread");
            destroy(p);
            return nullptr;
        }
        p->maint_started_ = true;

        p->gate_ = new gate();
        p->gate_->p = p;
        void *cb = p->gate_;
        for (const std::string &u : p->opt_.publisher_uris) {
            mg_set_request_handler(ctx, u.c_str(), handle_publish, cb);
        }
        for (const std::string &u : p->opt_.status_uris) {
            mg_set_request_handler(ctx, u.c_str(), handle_status, cb);
        }
        for (const std::string &u : p->opt_.subscriber_uris) {
            mg_set_request_handler(ctx, u.c_str(), handle_subscribe, cb);
            /* Also on long-poll-only locations, so that an Upgrade gets
             * SPEC.md's 400 rather than CivetWeb's header-less 404. */
            mg_set_websocket_handler_with_subprotocols(
                ctx, u.c_str(), &no_subprotocols, ws_connect, ws_ready,
                ws_data, ws_close, cb);
        }
        return p;
    } catch (const std::bad_alloc &) {
        set_error(error, error_size, "out of memory");
    } catch (...) {
        set_error(error, error_size, "internal error");
    }
    if (p != nullptr) {
        if (p->gate_ != nullptr) {
            remove_handlers(p);
            {
                std::lock_guard<std::mutex> lk(p->gate_->mu);
                p->gate_->p = nullptr;
            }
            retire(p->gate_);
        }
        destroy(p);
    }
    return nullptr;
}

extern "C" void pushq_civetweb_detach(pushq_civetweb *p)
{
    if (p == nullptr) {
        return;
    }
    gate *g = p->gate_;
    {
        std::lock_guard<std::mutex> lk(g->mu);
        g->closing = true;
    }

    /* Answer every long-poll (they see `closing` when woken) and close
     * every WebSocket with 1001; peers that do not answer the close within
     * two seconds are shut down. */
    try {
        ws_close_all(p, false);
    } catch (...) {
    }
    uint64_t start = pushq_now_ms();
    bool forced = false;
    for (;;) {
        pushq_store_wake_all(p->store_);
        std::unique_lock<std::mutex> lk(g->mu);
        if (g->active == 0) {
            break;
        }
        g->cv.wait_for(lk, std::chrono::milliseconds(50));
        if (g->active == 0) {
            break;
        }
        lk.unlock();
        if (!forced && pushq_now_ms() - start > 2000) {
            forced = true;
            try {
                ws_close_all(p, true);
            } catch (...) {
            }
        }
    }

    /* CivetWeb's removal waits until no thread is inside a request
     * handler; any request arriving meanwhile got 503 from the gate. */
    remove_handlers(p);
    {
        std::lock_guard<std::mutex> lk(g->mu);
        g->p = nullptr;
    }
    retire(g);
    destroy(p);
}

extern "C" int pushq_civetweb_publish(pushq_civetweb *p, const char *channel,
                                      size_t channel_len, const void *msg,
                                      size_t len, int binary, uint64_t *id,
                                      char *error, size_t error_size)
{
    try {
        if (p == nullptr) {
            set_error(error, error_size, "p is NULL");
            return -1;
        }
        plugin *pl = gate_enter(p->gate_);
        if (pl == nullptr) {
            set_error(error, error_size, "pushq is being detached");
            return -1;
        }
        char chan[PUSHQ_NAME_MAX];
        size_t chan_len = 0;
        const char *why = nullptr;
        pushq_status_t st = pushq_name_decode(
            PUSHQ_ARG_CHANNEL, channel, channel == nullptr ? 0 : channel_len,
            chan, &chan_len, &why);
        pushq_publish_result_t res{};
        if (st == PUSHQ_OK) {
            unsigned flags = 0;
            if (binary || !pushq_utf8_valid(msg, len)) {
                flags |= PUSHQ_MSG_BINARY;
            }
            st = pl->publish(chan, chan_len, msg, len, flags, &res, &why);
        }
        gate_leave(p->gate_);
        if (st != PUSHQ_OK) {
            set_error(error, error_size, why ? why : "publish failed");
            return -1;
        }
        if (id != nullptr) {
            *id = res.id;
        }
        return 0;
    } catch (...) {
        set_error(error, error_size, "internal error");
        return -1;
    }
}
