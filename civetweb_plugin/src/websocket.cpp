/*
 * websocket.cpp -- the WebSocket subscriber on CivetWeb's websocket
 * callbacks.
 *
 * CivetWeb 1.15 de-frames each client frame (unmasking it, but neither
 * requiring the mask nor checking anything else) and hands us its first
 * header byte and payload; the core's pushq_ws_parser_feed_frame applies
 * every RFC 6455 rule it can still apply (reassembly, opcodes, RSV bits,
 * control frames, close codes, UTF-8, max_message_size).  CivetWeb sends no
 * close reply and, with enable_websocket_ping_pong off, no pong: we do.
 *
 * Delivery.  mg_websocket_write blocks its caller for as long as the peer
 * does not read, so no thread ever writes to a connection other than its
 * own:
 *  - the connection's CivetWeb thread (connect, ready, data, close) reads
 *    frames and answers pings and closes;
 *  - the connection's sender thread (ours, 256 KB of stack) waits on its
 *    condition variable, fetches the connection's messages from the store
 *    by id and writes them, and sends the server pings.
 * A publisher only counts the message against each subscriber's backlog
 * and signals the senders.  Both writers write whole frames under
 * mg_lock_connection with one mg_write, so frames never interleave and a
 * frame costs one send().
 *
 * Backlog: ws_conn::unsent_ counts bytes published for the connection and
 * not yet handed to the kernel.  Past websocket_max_backlog, and when the
 * socket's send buffer is full (the reader, not our scheduling, is behind),
 * the connection is cut off: when its sender is blocked inside a write
 * (mid-frame) the socket is shut down (a plain close); otherwise the sender
 * sends close 1008 if it fits into the socket without blocking, then shuts
 * it down.
 */

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "plugin.hpp"

namespace pushq::civetweb {

struct ws_conn {
    plugin          *p_ = nullptr;
    gate            *g_ = nullptr;
    mg_connection   *conn_ = nullptr;
    int              fd_ = -1;
    bool             tls_ = false;
    std::string      channel_;
    pushq_format_t   format_ = PUSHQ_FORMAT_DEFAULT;
    pushq_sub_t      sub_{};
    pushq_ws_parser_t *parser_ = nullptr;

    pthread_t        sender_{};
    bool             sender_started_ = false;
    bool             registered_ = false;

    std::mutex               mu_;
    std::condition_variable  cv_;
    bool       notified_ = false;       /* mu_: something to fetch          */
    bool       stop_ = false;           /* mu_: the close handler runs      */
    bool       sender_done_ = false;    /* mu_                              */
    uint16_t   server_close_ = 0;       /* mu_: close code for the sender   */

    std::atomic<uint64_t> unsent_{0};   /* bytes published, not yet written */
    std::atomic<bool>     in_write_{false};
    std::atomic<bool>     slow_{false};
    std::atomic<bool>     shut_{false};
    std::atomic<bool>     close_sent_{false};   /* set under conn lock      */
    std::atomic<uint64_t> last_rx_ms_{0};

    /* Sender thread only: what the next format=json frame must carry. */
    uint64_t   pending_lost_ = 0;
    int        pending_reset_ = 0;

    /* Redis mode, a named or last_id connection: deliveries come from
     * Redis's take script (sub_ is then only a placeholder that counts
     * the connection and makes the mirror report this channel's
     * publishes); a last_id connection without a name switches to the
     * mirror (sub_ reopened at its cursor) once it has caught up.  Sender
     * thread only, after ws_connect. */
    bool        take_mode_ = false;
    take_cursor tc_;
    /* What ws_connect's first take got (before the 101, so that a name
     * begins when its connection is accepted), for the sender to write. */
    std::vector<msg_copy> stash_;
};

namespace {

constexpr size_t   sender_stack = 256u << 10;
constexpr size_t   fetch_max_msgs = 256;
constexpr size_t   fetch_max_bytes = 1u << 20;
constexpr uint64_t close_wait_ms = 2000;    /* for the peer's close reply */
/* A take-mode placeholder subscriber waits for this id: never. */
constexpr uint64_t placeholder_after = 1ull << 62;

/* WebSockets of this plugin by connection (data/close handlers look their
 * state up here rather than in CivetWeb's per-connection user data, which
 * belongs to the embedding application). */
std::mutex conns_mu;
std::unordered_map<const mg_connection *, ws_conn *> conns;

ws_conn *lookup(const mg_connection *conn)
{
    std::lock_guard<std::mutex> lk(conns_mu);
    auto it = conns.find(conn);
    return it == conns.end() ? nullptr : it->second;
}

/* Shuts the socket down once: a blocked write fails, CivetWeb's read loop
 * ends, and the close handler runs.  The fd stays open (CivetWeb closes
 * it after our close handler returned), so this never hits a reused fd. */
void shut(ws_conn *wc)
{
    if (wc->fd_ >= 0 && !wc->shut_.exchange(true)) {
        shutdown(wc->fd_, SHUT_RDWR);
    }
}

/* Writes whole frames with one mg_write under the connection lock.  After
 * a close frame nothing more is written (RFC 6455 5.5.1). */
bool write_frames(ws_conn *wc, const void *data, size_t len, bool is_close)
{
    mg_lock_connection(wc->conn_);
    if (wc->close_sent_.load()) {
        mg_unlock_connection(wc->conn_);
        return false;
    }
    if (is_close) {
        wc->close_sent_.store(true);
    }
    wc->in_write_.store(true);
    int n = mg_write(wc->conn_, data, len);
    wc->in_write_.store(false);
    mg_unlock_connection(wc->conn_);
    return n >= 0 && static_cast<size_t>(n) == len;
}

bool send_close(ws_conn *wc, uint16_t code, const char *reason)
{
    unsigned char frame[127];
    size_t n = pushq_ws_close_frame(frame, code, reason);
    return write_frames(wc, frame, n, true);
}

/* Close 1008 for a slow reader, only if it fits into the socket buffer
 * now (non-TLS: one non-blocking send of the whole frame at a frame
 * boundary); then the socket is shut down. */
void close_slow(ws_conn *wc)
{
    unsigned char frame[127];
    size_t n = pushq_ws_close_frame(frame, 1008,
                                    "too slow: unsent data passed "
                                    "websocket_max_backlog");
    if (!wc->tls_ && wc->fd_ >= 0) {
        mg_lock_connection(wc->conn_);
        if (!wc->close_sent_.load()) {
            wc->close_sent_.store(true);
            ssize_t sent = send(wc->fd_, frame, n, MSG_DONTWAIT | MSG_NOSIGNAL);
            (void)sent;    /* whole, or a plain close as SPEC.md allows */
        }
        mg_unlock_connection(wc->conn_);
    }
    shut(wc);
}

void sub_unsent(ws_conn *wc, uint64_t bytes)
{
    uint64_t cur = wc->unsent_.load();
    while (!wc->unsent_.compare_exchange_weak(cur,
                                              cur > bytes ? cur - bytes : 0)) {
    }
}

void append_frame(std::string &out, unsigned opcode, const void *data,
                  size_t len)
{
    unsigned char hdr[10];
    size_t h = pushq_ws_frame_header(hdr, opcode, len);
    out.append(reinterpret_cast<const char *>(hdr), h);
    out.append(static_cast<const char *>(data), len);
}

/* Take mode: the next messages from Redis.  False when the take failed
 * (Redis down: the sender tries again within a second). */
bool take_batch(ws_conn *wc, std::vector<msg_copy> &msgs)
{
    plugin *p = wc->p_;
    pushq_redis_take_info_t info{};
    char errbuf[256];
    const char *why = nullptr;
    if (redis_take_next(p->redis_, wc->tc_, &p->opt_.limits, fetch_max_msgs,
                        fetch_max_bytes, msgs, &info, errbuf, sizeof(errbuf),
                        &why) != PUSHQ_OK) {
        return false;
    }
    wc->pending_lost_ += info.lost;
    wc->pending_reset_ |= info.reset;
    if (wc->tc_.name.empty() && msgs.size() < fetch_max_msgs) {
        /* A last_id connection has caught up: from here on the mirror
         * serves it, from its cursor on (what the mirror does not hold
         * yet wakes it when it comes). */
        pushq_sub_spec_t spec{};
        spec.chan = wc->channel_.data();
        spec.chan_len = wc->channel_.size();
        spec.kind = PUSHQ_SUB_WEBSOCKET;
        spec.owner = p->owner_;
        pushq_sub_t sub{};
        const uint64_t now = pushq_now_ms();
        if (pushq_sub_open_at(p->store_, &spec, info.last_id,
                              &p->opt_.limits, now, &sub, &why)
            == PUSHQ_OK) {
            pushq_sub_close(p->store_, &wc->sub_, now);
            wc->sub_ = sub;
            wc->take_mode_ = false;
        }
    }
    return true;
}

/* Fetches and writes what is ready.  Returns false when the connection
 * broke. */
bool deliver(ws_conn *wc, bool &more)
{
    plugin *p = wc->p_;
    more = false;
    for (int round = 0; round < 8; round++) {
        if (wc->close_sent_.load() || wc->slow_.load() || wc->shut_.load()) {
            return true;
        }
        std::vector<msg_copy> msgs;
        if (!wc->stash_.empty()) {
            msgs.swap(wc->stash_);
        } else if (wc->take_mode_) {
            if (!take_batch(wc, msgs)) {
                return true;
            }
        } else {
            pushq_fetch_info_t info{};
            pushq_status_t st = pushq_sub_fetch(p->store_, &wc->sub_,
                                                fetch_max_msgs,
                                                fetch_max_bytes,
                                                pushq_now_ms(), collect,
                                                &msgs, &info);
            if (st != PUSHQ_OK) {
                return true;
            }
            wc->pending_lost_ += info.lost;
            wc->pending_reset_ |= info.reset;
        }
        if (msgs.empty()) {
            if (round == 0) {
                /* Idle: nothing is owed, whatever was counted (messages
                 * a same-named connection took, for instance). */
                wc->unsent_.store(0);
            }
            return true;
        }

        std::string frames;
        uint64_t bytes = 0;
        for (const msg_copy &m : msgs) {
            bytes += m.data.size();
            const bool binary = (m.flags & PUSHQ_MSG_BINARY) != 0;
            if (wc->format_ == PUSHQ_FORMAT_JSON) {
                pushq_json_msg_t jm{};
                jm.id = m.id;
                jm.channel = wc->channel_.data();
                jm.channel_len = wc->channel_.size();
                jm.data = m.data.data();
                jm.len = m.data.size();
                jm.binary = binary;
                jm.lost = wc->pending_lost_;
                jm.reset = wc->pending_reset_;
                wc->pending_lost_ = 0;
                wc->pending_reset_ = 0;
                std::string json = json_build([&](char *b, size_t cap) {
                    return pushq_json_message(b, cap, &jm);
                }, m.data.size() * 2 + 128);
                append_frame(frames, PUSHQ_WS_OP_TEXT, json.data(),
                             json.size());
            } else {
                append_frame(frames,
                             binary ? PUSHQ_WS_OP_BINARY : PUSHQ_WS_OP_TEXT,
                             m.data.data(), m.data.size());
            }
        }
        bool ok = write_frames(wc, frames.data(), frames.size(), false);
        sub_unsent(wc, bytes);
        if (!ok) {
            if (!wc->close_sent_.load()) {
                shut(wc);
                return false;
            }
            return true;
        }
        if (msgs.size() < fetch_max_msgs) {
            return true;
        }
    }
    more = true;
    return true;
}

void *sender_main(void *arg)
{
    auto *wc = static_cast<ws_conn *>(arg);
    plugin *p = wc->p_;
    const uint64_t ping_ms = p->opt_.websocket_ping_ms;
    uint64_t now = pushq_now_ms();
    uint64_t next_ping = ping_ms > 0 ? now + ping_ms : UINT64_MAX;
    uint64_t ping_sent_at = 0;
    bool ping_out = false;
    uint64_t close_deadline = 0;       /* shut down if no reply by then */
    bool slow_done = false;
    bool more = true;                  /* deliver the backlog at once    */

    for (;;) {
        uint16_t close_code = 0;
        bool woke = false;
        {
            std::unique_lock<std::mutex> lk(wc->mu_);
            for (;;) {
                if (wc->stop_ || wc->notified_ || wc->server_close_ != 0
                    || more) {
                    break;
                }
                now = pushq_now_ms();
                uint64_t until = next_ping;
                if (close_deadline != 0 && close_deadline < until) {
                    until = close_deadline;
                }
                if (until <= now) {
                    break;
                }
                /* At most a second, as a safety net for wake-ups that
                 * did not come through a publish of ours. */
                uint64_t ms = until - now > 1000 ? 1000 : until - now;
                if (wc->cv_.wait_for(lk, std::chrono::milliseconds(ms))
                        == std::cv_status::timeout
                    && ms == 1000) {
                    break;
                }
            }
            if (wc->stop_) {
                break;
            }
            woke = wc->notified_;
            wc->notified_ = false;
            close_code = wc->server_close_;
            wc->server_close_ = 0;
        }
        now = pushq_now_ms();

        if (close_code != 0) {
            /* Detach: send what is ready, then 1001 (as nginx does when a
             * worker exits). */
            bool ignored = false;
            if (close_code == 1001) {
                deliver(wc, ignored);
            }
            send_close(wc, close_code,
                       close_code == 1001 ? "server shutting down" : "");
            if (close_deadline == 0) {
                close_deadline = now + close_wait_ms;
            }
            more = false;
            continue;
        }
        if (wc->slow_.load() && !slow_done) {
            slow_done = true;
            close_slow(wc);
            more = false;
            continue;
        }
        if (close_deadline != 0 && now >= close_deadline) {
            shut(wc);
            close_deadline = UINT64_MAX;
        }
        if (wc->shut_.load()) {
            more = false;
            next_ping = UINT64_MAX;
            continue;                   /* wait for stop_ */
        }

        /* A take-mode connection asks Redis when the mirror says its
         * channel got something, and otherwise (the safety-net second)
         * only while Redis or the mirror were out: a take per idle
         * connection per second would be a load of its own. */
        const bool take_now = !wc->take_mode_ || woke || more
                              || !wc->tc_.known || wc->tc_.failed
                              || !redis_subscribed(p->redis_)
                              || redis_generation(p->redis_) != wc->tc_.gen;
        if (take_now && !deliver(wc, more)) {
            more = false;
            continue;
        }

        if (now >= next_ping && !wc->close_sent_.load()) {
            if (ping_out && wc->last_rx_ms_.load() < ping_sent_at) {
                /* Nothing at all came back for a whole interval. */
                shut(wc);
                continue;
            }
            unsigned char frame[10];
            size_t n = pushq_ws_frame_header(frame, PUSHQ_WS_OP_PING, 0);
            write_frames(wc, frame, n, false);
            ping_out = true;
            ping_sent_at = now;
            next_ping = now + ping_ms;
        }
    }

    std::lock_guard<std::mutex> lk(wc->mu_);
    wc->sender_done_ = true;
    wc->cv_.notify_all();
    return nullptr;
}

void destroy_conn(ws_conn *wc)
{
    if (wc->parser_ != nullptr) {
        pushq_ws_parser_destroy(wc->parser_);
    }
    delete wc;
}

}  // namespace

pushq_status_t check_handshake(const mg_connection *conn, char accept[28],
                               const char **why)
{
    const mg_request_info *ri = mg_get_request_info(conn);
    pushq_ws_handshake_t h{};
    h.method = ri->request_method;
    h.method_len = std::strlen(ri->request_method);
    h.http_major = 1;
    h.http_minor = 0;
    if (ri->http_version != nullptr) {
        const char *v = ri->http_version;
        h.http_major = std::atoi(v);
        const char *dot = std::strchr(v, '.');
        h.http_minor = dot ? std::atoi(dot + 1) : 0;
    }
    auto header = [&](const char *name, const char *&val, size_t &len) {
        val = mg_get_header(conn, name);
        len = val ? std::strlen(val) : 0;
    };
    header("Upgrade", h.upgrade, h.upgrade_len);
    header("Connection", h.connection, h.connection_len);
    header("Sec-WebSocket-Key", h.key, h.key_len);
    header("Sec-WebSocket-Version", h.version, h.version_len);
    return pushq_ws_handshake_check(&h, accept, why);
}

/* Connect: validate and set up; non-zero refuses the upgrade (we have
 * written the HTTP answer; CivetWeb then closes the connection). */
int ws_connect(const mg_connection *cconn, void *cbdata)
{
    auto *conn = const_cast<mg_connection *>(cconn);
    auto *g = static_cast<gate *>(cbdata);
    plugin *p = gate_enter(g);
    if (p == nullptr) {
        send_error_raw(conn, PUSHQ_ENOMEM,
                       "server: pushq is being detached; try again later");
        return 1;
    }
    ws_conn *wc = nullptr;
    try {
        const mg_request_info *ri = mg_get_request_info(conn);
        const char *why = nullptr;
        char accept[28];
        pushq_args_t args{};
        pushq_status_t st;
        if (std::strcmp(ri->request_method, "GET") != 0) {
            st = PUSHQ_EMETHOD;
            why = "method: the subscriber location accepts GET";
        } else if (!p->opt_.websocket) {
            st = PUSHQ_EBADARG;
            why = "Upgrade: this location does long-poll only";
        } else if ((st = check_handshake(conn, accept, &why)) == PUSHQ_OK) {
            st = subscriber_args(p, ri, args, &why);
        }
        if (st != PUSHQ_OK) {
            send_error_raw(conn, st, why, "GET");
            gate_leave(g);
            return 1;
        }

        wc = new ws_conn();
        wc->p_ = p;
        wc->g_ = g;
        wc->conn_ = conn;
        wc->tls_ = ri->is_ssl != 0;
        wc->channel_.assign(args.channel, args.channel_len);
        wc->format_ = args.format;
        wc->parser_ = pushq_ws_parser_create(p->opt_.limits.max_message_size);
        if (wc->parser_ == nullptr) {
            throw std::bad_alloc();
        }
        pushq_sub_spec_t spec{};
        spec.chan = args.channel;
        spec.chan_len = args.channel_len;
        spec.name = args.name_len > 0 ? args.name : nullptr;
        spec.name_len = args.name_len;
        spec.has_last_id = args.has_last_id;
        spec.last_id = args.last_id;
        spec.kind = PUSHQ_SUB_WEBSOCKET;
        spec.owner = p->owner_;
        if (p->redis_ != nullptr && (args.name_len > 0 || args.has_last_id)) {
            /* Redis mode: delivered through take.  The first take runs
             * here, before the 101, so that a new name begins when its
             * connection is accepted (as pushq_sub_open would make it);
             * the sender writes what it got.  If Redis is down it fails,
             * and the sender tries again every second. */
            wc->take_mode_ = true;
            wc->tc_.chan = wc->channel_;
            wc->tc_.name.assign(args.name, args.name_len);
            wc->tc_.has_last_id = args.has_last_id;
            wc->tc_.last_id = args.last_id;
            st = pushq_sub_open_at(p->store_, &spec, placeholder_after,
                                   &p->opt_.limits, pushq_now_ms(),
                                   &wc->sub_, &why);
            if (st == PUSHQ_OK) {
                take_batch(wc, wc->stash_);
            }
        } else {
            st = pushq_sub_open(p->store_, &spec, &p->opt_.limits,
                                pushq_now_ms(), &wc->sub_, &why);
        }
        if (st != PUSHQ_OK) {
            send_error_raw(conn, st, why);
            destroy_conn(wc);
            gate_leave(g);
            return 1;
        }
        bool gone = false;  /* CivetWeb's read loop notices that itself */
        wc->fd_ = p->fds_.find(ri, &gone);
        if (wc->fd_ >= 0) {
            /* One frame per send: no Nagle delay whatever the server's
             * tcp_nodelay option says. */
            int one = 1;
            setsockopt(wc->fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        wc->last_rx_ms_.store(pushq_now_ms());
        std::lock_guard<std::mutex> lk(conns_mu);
        conns[conn] = wc;
        return 0;
    } catch (...) {
        if (wc != nullptr) {
            pushq_sub_close(p->store_, &wc->sub_, pushq_now_ms());
            destroy_conn(wc);
        }
        send_error_raw(conn, PUSHQ_ENOMEM, "server: out of memory");
        gate_leave(g);
        return 1;
    }
}

/* Ready: the 101 is out.  Register for wake-ups and start the sender. */
void ws_ready(mg_connection *conn, void *)
{
    ws_conn *wc = lookup(conn);
    if (wc == nullptr) {
        return;
    }
    try {
        wc->p_->register_ws(wc, wc->channel_);
        wc->registered_ = true;
    } catch (...) {
        send_close(wc, 1011, "out of memory");
        return;
    }
    {
        std::lock_guard<std::mutex> lk(wc->g_->mu);
        if (wc->g_->closing) {
            std::lock_guard<std::mutex> lk2(wc->mu_);
            wc->server_close_ = 1001;
        }
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, sender_stack);
    if (pthread_create(&wc->sender_, &attr, sender_main, wc) == 0) {
        wc->sender_started_ = true;
    } else {
        send_close(wc, 1013, "try again later: cannot start a sender thread");
        shut(wc);
    }
    pthread_attr_destroy(&attr);
}

/* Data: one whole frame, `bits` its first header byte.  Returning 0 ends
 * CivetWeb's read loop (then ws_close runs). */
int ws_data(mg_connection *conn, int bits, char *data, size_t len, void *)
{
    ws_conn *wc = lookup(conn);
    if (wc == nullptr) {
        return 0;
    }
    plugin *p = wc->p_;
    wc->last_rx_ms_.store(pushq_now_ms());
    pushq_ws_event_t ev{};
    pushq_ws_parser_feed_frame(wc->parser_, static_cast<unsigned>(bits) & 0xff,
                               data, len, &ev);
    switch (ev.type) {
    case PUSHQ_WS_NEED_MORE:
    case PUSHQ_WS_PONG:
        return 1;

    case PUSHQ_WS_PING: {
        std::string frame;
        append_frame(frame, PUSHQ_WS_OP_PONG, ev.data, ev.len);
        write_frames(wc, frame.data(), frame.size(), false);
        return 1;
    }

    case PUSHQ_WS_TEXT:
    case PUSHQ_WS_BINARY: {
        if (!p->opt_.websocket_publish) {
            send_close(wc, 1008,
                       "publishing over this WebSocket is off "
                       "(websocket_publish off)");
            return 0;
        }
        const char *why = nullptr;
        pushq_publish_result_t res{};
        pushq_status_t st;
        try {
            st = p->publish(wc->channel_.data(), wc->channel_.size(), ev.data,
                            ev.len,
                            ev.type == PUSHQ_WS_BINARY ? PUSHQ_MSG_BINARY : 0u,
                            &res, &why);
        } catch (...) {
            st = PUSHQ_ENOMEM;
            why = "server: out of memory";
        }
        if (st != PUSHQ_OK) {
            send_close(wc, pushq_status_close_code(st), why);
            return 0;
        }
        return 1;
    }

    case PUSHQ_WS_CLOSE:
        if (!wc->close_sent_.load()) {
            /* Echo the peer's code (RFC 6455 5.5.1). */
            send_close(wc, ev.close_code != 0 ? ev.close_code : 1000, "");
        }
        return 0;

    case PUSHQ_WS_ERROR:
    default:
        send_close(wc, ev.close_code != 0 ? ev.close_code : 1002, ev.reason);
        return 0;
    }
}

/* Close: the read loop ended.  Stop the sender, close the subscriber, and
 * free everything allocated in ws_connect. */
void ws_close(const mg_connection *conn, void *)
{
    ws_conn *wc = nullptr;
    {
        std::lock_guard<std::mutex> lk(conns_mu);
        auto it = conns.find(conn);
        if (it == conns.end()) {
            return;
        }
        wc = it->second;
        conns.erase(it);
    }
    plugin *p = wc->p_;
    gate *g = wc->g_;
    if (wc->registered_) {
        p->unregister_ws(wc, wc->channel_);
    }
    if (wc->sender_started_) {
        std::unique_lock<std::mutex> lk(wc->mu_);
        wc->stop_ = true;
        wc->cv_.notify_all();
        /* A sender blocked writing to a peer that stopped reading is
         * released by shutting the socket down. */
        if (!wc->cv_.wait_for(lk, std::chrono::milliseconds(200),
                              [wc] { return wc->sender_done_; })) {
            lk.unlock();
            shut(wc);
        }
    }
    if (wc->sender_started_) {
        pthread_join(wc->sender_, nullptr);
    }
    pushq_sub_close(p->store_, &wc->sub_, pushq_now_ms());
    destroy_conn(wc);
    gate_leave(g);
}

/* True when the peer is what holds the data back: the socket's send
 * buffer is full (no POLLOUT).  A sender that merely has not run yet (a
 * busy machine) is not the reader's fault. */
bool peer_stalled(ws_conn *wc)
{
    if (wc->fd_ < 0) {
        return wc->in_write_.load();
    }
    pollfd pfd{};
    pfd.fd = wc->fd_;
    pfd.events = POLLOUT;
    return poll(&pfd, 1, 0) == 0;
}

void ws_notify(plugin *p, ws_conn *wc, size_t bytes)
{
    uint64_t unsent = wc->unsent_.fetch_add(bytes) + bytes;
    if (unsent > p->opt_.websocket_max_backlog && !wc->slow_.load()
        && peer_stalled(wc) && !wc->slow_.exchange(true)) {
        pushq_store_count_dropped_slow(p->store_);
        if (wc->in_write_.load() || wc->tls_) {
            /* Mid-frame: no close frame fits; a plain close. */
            shut(wc);
        }
    }
    std::lock_guard<std::mutex> lk(wc->mu_);
    wc->notified_ = true;
    wc->cv_.notify_one();
}

void ws_notify_all(plugin *p)
{
    std::lock_guard<std::mutex> lk(p->reg_mu_);
    for (auto &[chan, list] : p->by_channel_) {
        for (ws_conn *wc : list) {
            std::lock_guard<std::mutex> lk2(wc->mu_);
            wc->notified_ = true;
            wc->cv_.notify_one();
        }
    }
}

void ws_close_all(plugin *p, bool force)
{
    std::lock_guard<std::mutex> lk(p->reg_mu_);
    for (auto &[chan, list] : p->by_channel_) {
        for (ws_conn *wc : list) {
            if (force) {
                shut(wc);
            } else {
                std::lock_guard<std::mutex> lk2(wc->mu_);
                wc->server_close_ = 1001;
                wc->cv_.notify_one();
            }
        }
    }
}

}  // namespace pushq::civetweb

using namespace pushq::civetweb;

extern "C" int pushq_civetweb_begin_request(pushq_civetweb *pc,
                                            mg_connection *conn)
{
    if (pc == nullptr || conn == nullptr) {
        return 0;
    }
    plugin *pl = pc;
    try {
        plugin *p = gate_enter(pl->gate_);
        if (p == nullptr) {
            return 0;
        }
        const mg_request_info *ri = mg_get_request_info(conn);
        const char *connection = mg_get_header(conn, "Connection");
        const char *upgrade = mg_get_header(conn, "Upgrade");
        /* CivetWeb's own test for a WebSocket request. */
        if (connection == nullptr || upgrade == nullptr
            || strcasestr(connection, "upgrade") == nullptr
            || strcasestr(upgrade, "websocket") == nullptr
            || !uri_matches(p->opt_.subscriber_uris, ri->local_uri)) {
            gate_leave(p->gate_);
            return 0;
        }
        const char *why = nullptr;
        char accept[28];
        pushq_status_t st = PUSHQ_OK;
        if (std::strcmp(ri->request_method, "GET") != 0) {
            st = PUSHQ_EMETHOD;
            why = "method: the subscriber location accepts GET";
        } else if (!p->opt_.websocket) {
            st = PUSHQ_EBADARG;
            why = "Upgrade: this location does long-poll only";
        } else {
            st = check_handshake(conn, accept, &why);
        }
        int rc = 0;
        if (st != PUSHQ_OK) {
            rc = send_error_raw(conn, st, why, "GET");
        }
        gate_leave(p->gate_);
        return rc;
    } catch (...) {
        return 0;
    }
}
