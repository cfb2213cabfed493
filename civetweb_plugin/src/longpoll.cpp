/*
 * longpoll.cpp -- GET <subscriber_uri>: the long-poll subscriber.
 *
 * The handler holds its CivetWeb worker thread while it waits: it blocks
 * in the core's pushq_sub_wait in slices of at most 200 ms, and between
 * slices polls the socket for POLLRDHUP, so a client that disconnects is
 * noticed within 200 ms and its subscriber is closed before anything is
 * fetched for it (it consumes nothing).  CivetWeb 1.15 has no API for the
 * socket; fd_finder finds it (http.cpp).
 */

#include <chrono>
#include <cstring>
#include <thread>

#include "plugin.hpp"

namespace pushq::civetweb {

namespace {

constexpr uint64_t wait_slice_ms = 200;
constexpr size_t   batch_max_bytes = 16u << 20;
/* A placeholder subscriber waits for this id: never. */
constexpr uint64_t placeholder_after = 1ull << 62;

bool gate_closing(gate *g)
{
    std::lock_guard<std::mutex> lk(g->mu);
    return g->closing;
}

/* The answer's body: the message(s), or the timeout answer. */
std::string answer(const pushq_args_t &args, const std::vector<msg_copy> &msgs,
                   uint64_t lost, int reset)
{
    std::string body;
    if (msgs.empty()) {
        body = json_build([&](char *b, size_t cap) {
            return pushq_json_timeout(b, cap, args.batch > 0, lost, reset);
        });
    } else {
        std::vector<pushq_json_msg_t> jm(msgs.size());
        for (size_t i = 0; i < msgs.size(); i++) {
            jm[i].id = msgs[i].id;
            jm[i].channel = args.channel;
            jm[i].channel_len = args.channel_len;
            jm[i].data = msgs[i].data.data();
            jm[i].len = msgs[i].data.size();
            jm[i].binary = (msgs[i].flags & PUSHQ_MSG_BINARY) != 0;
        }
        jm[0].lost = lost;
        jm[0].reset = reset;
        size_t guess = 256;
        for (const msg_copy &m : msgs) {
            guess += m.data.size() * 2 + 64;
        }
        if (args.batch > 0) {
            body = json_build([&](char *b, size_t cap) {
                return pushq_json_batch(b, cap, jm.data(), jm.size());
            }, guess);
        } else {
            body = json_build([&](char *b, size_t cap) {
                return pushq_json_message(b, cap, &jm[0]);
            }, guess);
        }
    }
    return body;
}

/* The newest id of the channel's local mirror (0 when it has none). */
uint64_t local_newest(plugin *p, const pushq_args_t &args)
{
    pushq_channel_stats_t cs{};
    if (pushq_store_channel_stats(p->store_, args.channel, args.channel_len,
                                  pushq_now_ms(), &cs) != PUSHQ_OK) {
        return 0;
    }
    return cs.last_id;
}

/* Redis mode, a named or last_id long-poll: Redis's take script hands out
 * the messages (and moves a name's cursor there, whatever server the
 * previous request was on).  While nothing is there the request waits on a
 * local subscriber opened past what both Redis and the mirror hold, which
 * the mirror wakes, and takes again; while Redis cannot be reached (or the
 * mirror is not fed) it takes again every second.  The mirror's newest id
 * is read before each take: whatever it held then was in Redis before the
 * take, and whatever it gets later wakes the subscriber, so nothing falls
 * between the two.  Disconnects are checked between slices as in local
 * mode. */
int longpoll_take(plugin *p, mg_connection *conn, const mg_request_info *ri,
                  const pushq_args_t &args, uint64_t deadline,
                  size_t max_msgs, size_t max_bytes)
{
    redis_link *r = p->redis_;
    pushq_sub_spec_t spec{};
    spec.chan = args.channel;
    spec.chan_len = args.channel_len;
    spec.kind = PUSHQ_SUB_LONGPOLL;
    spec.owner = p->owner_;
    pushq_sub_t sub{};
    bool sub_open = false;
    auto close_sub = [&] {
        if (sub_open) {
            pushq_sub_close(p->store_, &sub, pushq_now_ms());
            sub_open = false;
        }
    };

    bool gone = false;
    const int fd = p->fds_.find(ri, &gone);

    /* Until a take succeeds the request waits on a placeholder (an id it
     * never reaches): it counts as a subscriber, and detach and the
     * subscription coming back (pushq_store_wake_all) wake it. */
    auto open_at = [&](uint64_t after, uint64_t now) {
        close_sub();
        const char *why = nullptr;
        sub_open = pushq_sub_open_at(p->store_, &spec, after, &p->opt_.limits,
                                     now, &sub, &why) == PUSHQ_OK;
    };
    open_at(placeholder_after, pushq_now_ms());

    take_cursor tc;
    tc.chan.assign(args.channel, args.channel_len);
    tc.name.assign(args.name, args.name_len);
    tc.has_last_id = args.has_last_id;
    tc.last_id = args.last_id;
    uint64_t next_take = 0;         /* at once */
    std::vector<msg_copy> msgs;
    uint64_t lost = 0;
    int reset = 0;
    char errbuf[256];

    for (;;) {
        if (gone || peer_gone(fd)) {
            close_sub();
            return 499;
        }
        uint64_t now = pushq_now_ms();
        if (now >= next_take
            || (sub_open && pushq_sub_ready(p->store_, &sub))
            || (tc.known && !tc.failed && redis_generation(r) != tc.gen)) {
            const uint64_t mirrored = local_newest(p, args);
            pushq_redis_take_info_t info{};
            const char *why = nullptr;
            pushq_status_t st = redis_take_next(r, tc, &p->opt_.limits,
                                                max_msgs, max_bytes, msgs,
                                                &info, errbuf, sizeof(errbuf),
                                                &why);
            now = pushq_now_ms();
            if (st == PUSHQ_EBADARG || st == PUSHQ_ETOOBIG) {
                close_sub();
                return send_error(conn, st, why);
            }
            if (st != PUSHQ_OK) {
                /* Redis down: the client keeps waiting (the pool logged
                 * the outage once); take again in a second. */
                msgs.clear();
                next_take = now + 1000;
                if (!sub_open || pushq_sub_ready(p->store_, &sub)) {
                    open_at(placeholder_after, now);
                }
            } else {
                lost += info.lost;
                reset |= info.reset;
                if (!msgs.empty()) {
                    break;
                }
                open_at(info.newest_id > mirrored ? info.newest_id
                                                  : mirrored,
                        now);
                next_take = sub_open && redis_subscribed(r) ? UINT64_MAX
                                                             : now + 1000;
            }
        }
        if (now >= deadline || gate_closing(p->gate_)) {
            break;
        }
        if (next_take == UINT64_MAX && !redis_subscribed(r)) {
            next_take = now + 1000;
        }
        uint64_t slice = deadline - now;
        if (slice > wait_slice_ms) {
            slice = wait_slice_ms;
        }
        if (next_take > now && next_take - now < slice) {
            slice = next_take - now;
        }
        if (sub_open) {
            pushq_sub_wait(p->store_, &sub, slice);
        } else {
            std::this_thread::sleep_for(std::chrono::milliseconds(slice));
        }
    }

    send_answer(conn, 200, "application/json",
                answer(args, msgs, lost, reset));
    close_sub();
    return 200;
}

int longpoll(plugin *p, mg_connection *conn, const mg_request_info *ri)
{
    const char *why = nullptr;
    pushq_args_t args{};
    pushq_status_t st = subscriber_args(p, ri, args, &why);
    if (st != PUSHQ_OK) {
        return send_error(conn, st, why, "GET");
    }

    uint64_t now = pushq_now_ms();
    uint64_t timeout = p->opt_.longpoll_timeout_ms;
    if (args.has_timeout && args.timeout_ms < timeout) {
        timeout = args.timeout_ms;
    }
    const uint64_t deadline = now + timeout;
    const size_t max_msgs = args.batch > 0 ? args.batch : 1;
    const size_t max_bytes = args.batch > 0 ? batch_max_bytes : SIZE_MAX;

    if (p->redis_ != nullptr && (args.name_len > 0 || args.has_last_id)) {
        return longpoll_take(p, conn, ri, args, deadline, max_msgs,
                             max_bytes);
    }

    /* Local mode, or an anonymous subscriber in Redis mode (the mirror
     * holds everything it can receive). */
    pushq_sub_spec_t spec{};
    spec.chan = args.channel;
    spec.chan_len = args.channel_len;
    spec.name = args.name_len > 0 ? args.name : nullptr;
    spec.name_len = args.name_len;
    spec.has_last_id = args.has_last_id;
    spec.last_id = args.last_id;
    spec.kind = PUSHQ_SUB_LONGPOLL;
    spec.owner = p->owner_;

    pushq_sub_t sub{};
    st = pushq_sub_open(p->store_, &spec, &p->opt_.limits, now, &sub, &why);
    if (st != PUSHQ_OK) {
        return send_error(conn, st, why);
    }

    std::vector<msg_copy> msgs;
    uint64_t lost = 0;
    int reset = 0;
    /* The socket is found before anything is fetched: a client that
     * reset its connection right after sending the request has no
     * connected socket left (getpeername fails), which find() reports as
     * gone; it must not consume a message it can never receive. */
    bool gone = false;
    const int fd = p->fds_.find(ri, &gone);

    for (;;) {
        if (gone || peer_gone(fd)) {
            /* Gone while waiting: forget it, fetch nothing. */
            pushq_sub_close(p->store_, &sub, pushq_now_ms());
            return 499;
        }
        pushq_fetch_info_t info{};
        st = pushq_sub_fetch(p->store_, &sub, max_msgs, max_bytes,
                             pushq_now_ms(), collect, &msgs, &info);
        if (st != PUSHQ_OK) {
            pushq_sub_close(p->store_, &sub, pushq_now_ms());
            return send_error(conn, st, "subscriber: fetch failed");
        }
        lost += info.lost;
        reset |= info.reset;
        if (!msgs.empty()) {
            break;
        }
        now = pushq_now_ms();
        if (now >= deadline || gate_closing(p->gate_)) {
            break;
        }
        uint64_t slice = deadline - now;
        if (slice > wait_slice_ms) {
            slice = wait_slice_ms;
        }
        pushq_sub_wait(p->store_, &sub, slice);
    }

    send_answer(conn, 200, "application/json",
                answer(args, msgs, lost, reset));
    pushq_sub_close(p->store_, &sub, pushq_now_ms());
    return 200;
}

}  // namespace

pushq_status_t subscriber_args(plugin *p, const mg_request_info *ri,
                               pushq_args_t &args, const char **why)
{
    const char *q = ri->query_string;
    pushq_status_t st = pushq_args_parse(q, q ? std::strlen(q) : 0, &args,
                                         why);
    if (st != PUSHQ_OK) {
        return st;
    }
    const options &o = p->opt_;
    if (!(o.channel.from_arg && o.channel.value == "channel")) {
        st = p->resolve_name(PUSHQ_ARG_CHANNEL, o.channel, q, args.channel,
                             &args.channel_len, why);
        if (st != PUSHQ_OK) {
            return st;
        }
    }
    if (!(o.client.from_arg && o.client.value == "name")) {
        st = p->resolve_name(PUSHQ_ARG_NAME, o.client, q, args.name,
                             &args.name_len, why);
        if (st != PUSHQ_OK) {
            return st;
        }
    }
    return PUSHQ_OK;
}

int handle_subscribe(mg_connection *conn, void *cbdata)
{
    auto *g = static_cast<gate *>(cbdata);
    plugin *p = gate_enter(g);
    if (p == nullptr) {
        return send_error(conn, PUSHQ_ENOMEM,
                          "server: pushq is being detached; try again later");
    }
    int rc = 500;
    try {
        const mg_request_info *ri = mg_get_request_info(conn);
        const char *upgrade = mg_get_header(conn, "Upgrade");
        if (std::strcmp(ri->request_method, "GET") != 0) {
            rc = send_error(conn, PUSHQ_EMETHOD,
                            "method: the subscriber location accepts GET",
                            "GET");
        } else if (upgrade != nullptr
                   && pushq_ws_is_upgrade(upgrade, std::strlen(upgrade))) {
            /* An Upgrade without "Connection: upgrade" (CivetWeb routes a
             * complete one to ws_connect). */
            if (!p->opt_.websocket) {
                rc = send_error(conn, PUSHQ_EBADARG,
                                "Upgrade: this location does long-poll only");
            } else {
                char accept[28];
                const char *why = nullptr;
                pushq_status_t st = check_handshake(conn, accept, &why);
                if (st == PUSHQ_OK) {
                    st = PUSHQ_EBADARG;
                    why = "Connection: a WebSocket handshake needs the "
                          "token \"upgrade\"";
                }
                rc = send_error(conn, st, why, "GET");
            }
        } else if (!p->opt_.longpoll) {
            rc = send_error(conn, PUSHQ_EUPGRADE,
                            "Upgrade: this location accepts WebSocket only");
        } else {
            rc = longpoll(p, conn, ri);
        }
    } catch (...) {
        rc = 500;
    }
    gate_leave(g);
    return rc;
}

}  // namespace pushq::civetweb
