/*
 * plugin.hpp -- the CivetWeb plugin's internal state, shared by its
 * per-feature sources (options, publisher, long-poll, websocket, status,
 * attach/detach).  Not installed; the public ABI is pushq_civetweb.h.
 *
 * Threads (CivetWeb is thread-per-connection):
 *  - CivetWeb worker threads run the request handlers (publish, long-poll,
 *    status) and each WebSocket's connect/ready/data/close handlers; a
 *    long-poll or WebSocket holds its worker thread for its lifetime.
 *  - Each WebSocket has one sender thread of ours (ws_conn::sender_) that
 *    fetches its messages from the store by id and writes them; it is the
 *    only thread that blocks on a slow reader.
 *  - One maintenance thread sweeps the store every second.
 *  - With option `redis`, one more thread of ours holds the Redis
 *    subscription and mirrors what it hears into the store, reading
 *    Redis's stream for what it did not hear (gaps, reconnects) on a pool
 *    connection (redis.cpp); request and sender threads borrow
 *    connections from the same small pool for publish and take.
 */

#ifndef PUSHQ_CIVETWEB_PLUGIN_HPP
#define PUSHQ_CIVETWEB_PLUGIN_HPP

#include <civetweb.h>
#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pushq.h"
#include "pushq_civetweb.h"
#include "pushq_redis.h"

namespace pushq::civetweb {

/* ---- options (options.cpp) ---------------------------------------------- */

/* Where a channel or client name comes from: a query argument (nginx's
 * default $arg_channel / $arg_name) or a fixed name. */
struct name_source {
    bool         from_arg = true;
    std::string  value;             /* argument name, or the fixed name   */
};

struct options {
    std::vector<std::string> publisher_uris;
    std::vector<std::string> subscriber_uris;
    std::vector<std::string> status_uris;
    bool          longpoll = true;          /* subscriber longpoll,websocket */
    bool          websocket = true;
    uint64_t      store_size = 32ull << 20;
    pushq_limits_t limits{};                /* buffer, ttls, max size        */
    uint64_t      longpoll_timeout_ms = 30000;
    bool          websocket_publish = true;
    uint64_t      websocket_ping_ms = 30000;
    uint64_t      websocket_max_backlog = 1ull << 20;
    name_source   channel{true, "channel"};
    name_source   client{true, "name"};
    bool          has_redis = false;        /* option redis given            */
    pushq_redis_url_t redis{};
};

/* Parses a NULL-terminated name/value list over defaults.  On error returns
 * false with a sentence naming the option in err. */
bool parse_options(const char **opts, options &o, std::string &err);

/* Checks one option; same sentence on error. */
bool parse_option(std::string_view name, std::string_view value, options &o,
                  std::string &err);


/* ---- small HTTP helpers (http.cpp) --------------------------------------- */

/* The raw (still percent-encoded) value of the first `name=` argument of a
 * query string; false when absent. */
bool query_arg_raw(const char *query, std::string_view name,
                   std::string_view &out);

/* A complete answer with a body: status line, the headers CivetWeb adds
 * (Date, Connection), Content-Type, Content-Length, Cache-Control:
 * no-store, and `extra` ("Name: value" lines, each ending in \r\n).
 * For ordinary HTTP requests (not the WebSocket connect handler). */
void send_answer(mg_connection *conn, int status, const char *content_type,
                 const std::string &body, const char *extra_name = nullptr,
                 const char *extra_value = nullptr);

/* {"status": false, "error": why} with pushq_status_http(st); adds Allow
 * for 405 (allow) and Sec-WebSocket-Version: 13 for 426.  Returns the
 * status sent. */
int send_error(mg_connection *conn, pushq_status_t st, const char *why,
               const char *allow = nullptr);

/* The same as raw bytes, for the WebSocket connect handler, where CivetWeb
 * refuses mg_response_header_*; the connection is closed afterwards. */
int send_error_raw(mg_connection *conn, pushq_status_t st, const char *why,
                   const char *allow = nullptr);

std::string json_error(const char *why);

/* The JSON writers' "return the size needed" convention, in one place. */
template <typename F>
std::string json_build(F &&write, size_t guess = 256)
{
    std::string s(guess, '\0');
    size_t n = write(s.data(), s.size());
    if (n > s.size()) {
        s.assign(n, '\0');
        n = write(s.data(), s.size());
    }
    s.resize(n <= s.size() ? n : 0);
    return s;
}

/* Case-insensitive "does the header value start with this media type". */
bool media_type_is(const char *header, std::string_view type);

/* Finds the socket of a connection (CivetWeb 1.15 has no API for it): the
 * fd whose peer is the request's remote address/port and whose local port
 * is its server port.  Cached; rescans /proc/self/fd on a miss.  -1 when
 * not found; then *gone is true when the connection (IPv4) is certainly no
 * longer connected: no connected socket is the request's, and a socket on
 * the server port is unconnected (reset by its peer: getpeername fails). */
class fd_finder {
public:
    int find(const mg_request_info *ri, bool *gone);
private:
    static bool matches(int fd, const mg_request_info *ri);
    bool rescan(uint16_t server_port);   /* true: saw an unconnected one */
    std::mutex mu_;
    std::unordered_map<uint64_t, int> by_ports_;  /* addr,peer,local -> fd */
};

/* poll(POLLRDHUP): true when the peer has closed or reset the connection.
 * Bytes the client sends meanwhile (pipelining) do not count. */
bool peer_gone(int fd);


/* ---- the plugin instance --------------------------------------------------- */

struct ws_conn;
struct plugin;
struct redis_link;

/* What CivetWeb gets as cbdata.  CivetWeb 1.15 copies a WebSocket handler's
 * pointers and cbdata when it looks the handler up, without a reference
 * count (request handlers have one), so a thread may call ws_connect just
 * after detach removed the handler.  The gate therefore outlives the
 * plugin: detach leaves `p` NULL and never frees the gate (one small
 * allocation per attach), and every entry goes through it. */
struct gate {
    std::mutex               mu;
    std::condition_variable  cv;
    plugin                  *p = nullptr;   /* NULL after detach           */
    bool                     closing = false;
    size_t                   active = 0;    /* handler threads inside      */
    gate                    *next_retired = nullptr;
};

/* Every request handler and every WebSocket (connect .. close) is
 * bracketed by gate_enter/gate_leave.  gate_enter returns NULL once detach
 * has begun (the handler then answers 503 and returns). */
plugin *gate_enter(gate *g);
void gate_leave(gate *g);

struct plugin {
    mg_context      *ctx_ = nullptr;
    options          opt_;
    void            *region_ = nullptr;
    pushq_store_t   *store_ = nullptr;
    uint32_t         owner_ = 0;
    fd_finder        fds_;

    /* Entry to the plugin for handler threads; see struct gate. */
    struct gate     *gate_ = nullptr;

    /* WebSockets by channel, for waking their senders on a publish. */
    std::mutex                                             reg_mu_;
    std::unordered_map<std::string, std::vector<ws_conn *>> by_channel_;
    size_t                                                 ws_count_ = 0;

    /* Redis mode (option redis): the subscription thread and the
     * connection pool; NULL in local mode. */
    redis_link      *redis_ = nullptr;

    /* Maintenance thread. */
    pthread_t                maint_{};
    bool                     maint_started_ = false;
    std::mutex               maint_mu_;
    std::condition_variable  maint_cv_;
    bool                     maint_stop_ = false;

    /* Stores a message and wakes this channel's WebSocket senders; also
     * applies websocket_max_backlog to them. */
    pushq_status_t publish(const char *chan, size_t chan_len, const void *msg,
                           size_t len, unsigned flags,
                           pushq_publish_result_t *res, const char **why);

    /* Resolves a name option (channel or client) for a request. */
    pushq_status_t resolve_name(pushq_arg_t which, const name_source &src,
                                const char *query, char *out, size_t *out_len,
                                const char **why) const;

    void register_ws(ws_conn *wc, const std::string &channel);
    void unregister_ws(ws_conn *wc, const std::string &channel);
};

/* Request handlers (registered with the plugin as cbdata). */
int handle_publish(mg_connection *conn, void *cbdata);
int handle_subscribe(mg_connection *conn, void *cbdata);
int handle_status(mg_connection *conn, void *cbdata);

/* WebSocket handlers (websocket.cpp). */
int  ws_connect(const mg_connection *conn, void *cbdata);
void ws_ready(mg_connection *conn, void *cbdata);
int  ws_data(mg_connection *conn, int bits, char *data, size_t len,
             void *cbdata);
void ws_close(const mg_connection *conn, void *cbdata);

/* pushq_ws_handshake_check over the request's headers (websocket.cpp). */
pushq_status_t check_handshake(const mg_connection *conn, char accept[28],
                               const char **why);

/* Asks every open WebSocket to close with 1001 (detach); force: shut the
 * sockets down instead (peers that do not answer the close). */
void ws_close_all(plugin *p, bool force);

/* A publish of `bytes` on the WebSocket's channel: counts it against
 * websocket_max_backlog and wakes its sender (reg_mu_ held). */
void ws_notify(plugin *p, ws_conn *wc, size_t bytes);

/* A subscriber request's shared checks (longpoll.cpp): method, arguments,
 * channel and client resolution.  Fills args; on error returns the status
 * and why. */
pushq_status_t subscriber_args(plugin *p, const mg_request_info *ri,
                               pushq_args_t &args, const char **why);

/* True when the URI is one of the list, matched as CivetWeb matches
 * handler URIs (exactly, or as a prefix followed by '/'). */
bool uri_matches(const std::vector<std::string> &uris, const char *uri);

/* One message copied out of the store by pushq_sub_fetch's callback (the
 * store is locked while it runs, so the payload must be copied), for the
 * long-poll answer and the WebSocket sender alike. */
struct msg_copy {
    uint64_t     id;
    unsigned     flags;
    std::string  data;
};

/* pushq_msg_cb appending to the std::vector<msg_copy> given as ctx. */
inline void collect(void *ctx, const pushq_msg_t *m)
{
    auto *v = static_cast<std::vector<msg_copy> *>(ctx);
    v->push_back(msg_copy{m->id, m->flags,
                          std::string(static_cast<const char *>(m->data),
                                      m->len)});
}

/* ---- Redis mode (redis.cpp) ---------------------------------------------- */

/* Starts the subscription thread (which connects, and reconnects, in the
 * background: Redis being down at start is not an error).  NULL with the
 * why in err when the thread cannot be started. */
redis_link *redis_start(plugin *p, std::string &err);

/* Stops the thread and closes every connection (after every handler has
 * left). */
void redis_stop(redis_link *r);

/* Publishes through Redis; *id is the id Redis gave.  Errors: ETOOBIG,
 * EBADARG, and ENOMEM ("redis: ...", 503 / close 1013) when Redis cannot
 * be reached or refuses; never stores locally instead.  why may point into
 * errbuf. */
pushq_status_t redis_publish(redis_link *r, const char *chan, size_t chan_len,
                             const void *msg, size_t len, unsigned flags,
                             const pushq_limits_t *lim, uint64_t *id,
                             char *errbuf, size_t errbuf_size,
                             const char **why);

/* Where a take-based subscriber (a named or last_id long-poll request or
 * WebSocket in Redis mode) stands. */
struct take_cursor {
    std::string  chan;
    std::string  name;              /* empty: no name                     */
    int          has_last_id = 0;   /* as the client asked                */
    uint64_t     last_id = 0;
    bool         known = false;     /* a take succeeded                   */
    uint64_t     cursor = 0;        /* after it                           */
    uint64_t     epoch = 0;         /* the channel's life it was in       */
    uint64_t     gen = 0;           /* redis_generation at that take      */
    uint64_t     life = 0;          /* Redis restarts seen at that take   */
    bool         failed = false;    /* the last take failed               */
};

/* The next messages for tc (appended to msgs), moving it: the first take
 * asks as the client did, later ones continue from tc.cursor.  When the
 * Redis server restarted since tc's last take (its run_id changed) it
 * first asks for the channel's epoch: when the channel began again
 * meanwhile (Redis lost its data), tc's cursor belongs to the old life,
 * and the take starts at the new life's first message (or where the name
 * already stands in it), with info->reset set. */
pushq_status_t redis_take_next(redis_link *r, take_cursor &tc,
                               const pushq_limits_t *lim, size_t max_msgs,
                               size_t max_bytes, std::vector<msg_copy> &msgs,
                               pushq_redis_take_info_t *info, char *errbuf,
                               size_t errbuf_size, const char **why);

/* True while the subscription connection is up (the mirror is fed). */
bool redis_subscribed(const redis_link *r);

/* Counts subscription connects: a change means messages may have been
 * missed meanwhile, so take-based subscribers take again. */
uint64_t redis_generation(const redis_link *r);

/* One line on stderr, "<time> pushq: <message>" (log_line.cpp: the
 * background thread has no CivetWeb connection to log through). */
void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wakes every WebSocket sender (redis.cpp calls it when the subscription
 * comes back). */
void ws_notify_all(plugin *p);

}  // namespace pushq::civetweb

/* The public handle is the plugin itself. */
struct pushq_civetweb : pushq::civetweb::plugin {};

#endif  /* PUSHQ_CIVETWEB_PLUGIN_HPP */
