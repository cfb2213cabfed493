/*
 * pushq.h -- the one header the adapters include.
 *
 * The C ABI of the pushq core: the store (channels, message logs, named
 * clients, subscribers, waiting), the WebSocket protocol (handshake, frame
 * parser, frame encoder), request arguments and forms, and the JSON /
 * Prometheus answers.  The contract behind every function is SPEC.md.
 *
 * Conventions (they hold for every declaration below unless it says
 * otherwise):
 *  - Functions return a pushq_status_t.  An optional `const char **why`
 *    receives a static, NUL-terminated English sentence that names the
 *    argument and the rule ("channel: must be 1-64 bytes of
 *    [A-Za-z0-9_.:-]"); it is never freed and is safe to log or to put into
 *    an error answer.  `why` may be NULL.
 *  - Inputs are pointer + length, never NUL-terminated strings.
 *  - Outputs go into caller buffers with their capacity.  No function
 *    returns memory that the caller must free with free(); memory the core
 *    owns lives until the named destroy/release call.
 *  - No C++ exception crosses this boundary: bad_alloc becomes
 *    PUSHQ_ENOMEM, anything else PUSHQ_EINTERNAL.
 *  - Times are milliseconds of CLOCK_MONOTONIC (the same clock in every
 *    process of the machine), passed in by the caller as `now_ms`, so that
 *    tests can drive time.  pushq_now_ms() reads it.
 *  - Thread safety is stated per group.  The store is safe to use from any
 *    number of threads and processes that share its region; every other
 *    object (parser, sub handle) belongs to one thread at a time.
 */

#ifndef PUSHQ_H
#define PUSHQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PUSHQ_API __attribute__((visibility("default")))
#else
#define PUSHQ_API
#endif


/* ------------------------------------------------------------------------
 * Status codes and the one table that maps them to HTTP and close codes.
 * ------------------------------------------------------------------------ */

typedef enum {
    PUSHQ_OK = 0,
    PUSHQ_EBADARG,      /* 400 bad argument / body / handshake          */
    PUSHQ_EMETHOD,      /* 405 wrong method (caller adds Allow)         */
    PUSHQ_ETOOBIG,      /* 413 message over max_message_size; WS 1009   */
    PUSHQ_EUPGRADE,     /* 426 plain request on WS-only location or bad
                           Sec-WebSocket-Version (add
                           Sec-WebSocket-Version: 13)                   */
    PUSHQ_ENOMEM,       /* 503 store memory exhausted; WS 1013          */
    PUSHQ_EPROTO,       /* WS 1002 protocol error                       */
    PUSHQ_EUTF8,        /* WS 1007 invalid UTF-8 in a text message      */
    PUSHQ_EPOLICY,      /* WS 1008 policy (publish off, slow reader)    */
    PUSHQ_ENOTFOUND,    /* 404 e.g. status of a channel that is unknown */
    PUSHQ_EINTERNAL     /* 500 / WS 1011: a bug; logged                 */
} pushq_status_t;

/* HTTP status for an error status (400, 405, 413, 426, 503, 404, 500);
 * 200 for PUSHQ_OK. */
PUSHQ_API int pushq_status_http(pushq_status_t st);

/* WebSocket close code for a status (1002, 1007, 1008, 1009, 1011, 1013);
 * 1000 for PUSHQ_OK. */
PUSHQ_API uint16_t pushq_status_close_code(pushq_status_t st);

/* CLOCK_MONOTONIC in milliseconds. */
PUSHQ_API uint64_t pushq_now_ms(void);


/* ------------------------------------------------------------------------
 * Limits and sizes (values as in SPEC.md's configuration table).
 * ------------------------------------------------------------------------ */

#define PUSHQ_NAME_MAX          64      /* channel and client names, bytes */
#define PUSHQ_BATCH_MAX         1000

typedef struct {
    uint32_t  buffer;               /* messages kept per channel (1000)    */
    uint64_t  buffer_bytes;         /* bytes kept per channel (16m)        */
    uint64_t  message_ttl_ms;       /* (1h)                                */
    uint64_t  client_ttl_ms;        /* (5m)                                */
    uint64_t  max_message_size;     /* (64k)                               */
} pushq_limits_t;

/* Fills SPEC.md's defaults. */
PUSHQ_API void pushq_limits_default(pushq_limits_t *l);

/* Parses nginx-style sizes ("64k", "16m", "1g", plain bytes) and times
 * ("30s", "500ms", "5m", "1h", "1d", plain = seconds).  Used by the
 * CivetWeb options so both adapters accept the same syntax. */
PUSHQ_API pushq_status_t pushq_parse_size(const char *s, size_t len,
    uint64_t *out, const char **why);
PUSHQ_API pushq_status_t pushq_parse_time_ms(const char *s, size_t len,
    uint64_t *out_ms, const char **why);


/* ------------------------------------------------------------------------
 * The store.
 *
 * A store lives entirely inside one memory region that the caller provides
 * (nginx: a shared-memory zone mapped before fork at the same address in
 * every worker; CivetWeb: ordinary heap memory).  Everything inside uses
 * offsets, never process-local pointers.  A process-shared robust mutex
 * guards it: a process that dies while holding it does not wedge the others
 * (the next locker repairs or, if it cannot prove the state sound, resets
 * the store and says so through pushq_store_recoveries()).
 *
 * Thread/process safety: every pushq_store_* and pushq_sub_* function may be
 * called concurrently from any thread of any process that maps the region,
 * except pushq_store_init (once, before sharing).  A pushq_sub_t belongs to
 * one thread at a time.
 * ------------------------------------------------------------------------ */

typedef struct pushq_store pushq_store_t;   /* lives inside the region */

/* Smallest region pushq_store_init accepts. */
PUSHQ_API size_t pushq_store_min_size(void);

/* Formats `mem` (size bytes, 16-byte aligned) as a store, or, when it
 * already holds a store of this layout version and the same size (an nginx
 * zone reused across reload), attaches to it and keeps its contents.
 * *created (may be NULL) tells which.  Returns the store handle (== mem) in
 * *out.  Call before the region is shared. */
PUSHQ_API pushq_status_t pushq_store_init(void *mem, size_t size,
    pushq_store_t **out, int *created, const char **why);

/* The store at `mem`, already initialised (for a process that got the
 * region from elsewhere).  NULL if mem does not hold a store of this
 * layout version. */
PUSHQ_API pushq_store_t *pushq_store_attach(void *mem, size_t size);

/* Releases what the store holds outside the region (nothing at present;
 * the mutex and condition variables are destroyed).  The caller frees the
 * region. */
PUSHQ_API void pushq_store_destroy(pushq_store_t *s);

/* How many times a dead lock owner was recovered from, and how many of
 * those had to reset the store. */
PUSHQ_API void pushq_store_recoveries(pushq_store_t *s, uint64_t *recovered,
    uint64_t *resets);


/* --- Owners and wakers ------------------------------------------------
 *
 * Every subscriber belongs to an owner: a process (nginx worker) or the
 * whole program (CivetWeb).  An owner has a waker index 0..63: a publish
 * reports, as a bit mask, the wakers that have subscribers on the channel,
 * and the adapter wakes them (nginx: write to that worker's eventfd).
 * Wake-ups may be spurious and coalesce: always deliver by id.
 */

#define PUSHQ_MAX_OWNERS  128
#define PUSHQ_MAX_WAKERS  64

/* Registers an owner.  `pid` identifies the process for reaping (0 = never
 * reaped).  Returns its id (0..PUSHQ_MAX_OWNERS-1) in *owner. */
PUSHQ_API pushq_status_t pushq_store_owner_register(pushq_store_t *s,
    int32_t pid, uint32_t waker, uint32_t *owner, const char **why);

/* Closes every subscriber of the owner (as pushq_sub_close would) and frees
 * its slot.  For orderly exit, and for reaping a process that died. */
PUSHQ_API void pushq_store_owner_release(pushq_store_t *s, uint32_t owner,
    uint64_t now_ms);

/* Releases every owner whose pid is not alive (kill(pid, 0) == ESRCH);
 * nginx calls it when a worker starts, so a crashed worker's subscribers
 * stop counting.  Returns how many were released. */
PUSHQ_API uint32_t pushq_store_owner_reap(pushq_store_t *s, uint64_t now_ms);


/* --- Publishing ------------------------------------------------------- */

#define PUSHQ_MSG_BINARY  0x1u

typedef struct {
    uint64_t  id;               /* id given to the message               */
    uint32_t  subscribers;      /* connections waiting/open on the channel,
                                   over all owners                        */
    uint64_t  wakers;           /* bit i set: waker i has subscribers here */
    uint64_t  channel_key;      /* the channel, as pushq_sub_channel_key
                                   names it for its subscribers (0: none) */
} pushq_publish_result_t;

/* Stores one message (copied) in channel `chan` (already validated, see
 * pushq_name_decode).  `lim` are the publisher location's limits: the
 * channel is trimmed to lim->buffer messages and lim->buffer_bytes, and
 * the message expires after lim->message_ttl_ms.  len >
 * lim->max_message_size -> PUSHQ_ETOOBIG.  Region full (after reclaiming
 * what has expired) -> PUSHQ_ENOMEM, and nothing changes.  Wakes blocking
 * waiters (pushq_sub_wait) in every process; event-loop owners are woken
 * by the caller from out->wakers. */
PUSHQ_API pushq_status_t pushq_store_publish(pushq_store_t *s,
    const char *chan, size_t chan_len, const void *msg, size_t len,
    unsigned flags, const pushq_limits_t *lim, uint64_t now_ms,
    pushq_publish_result_t *out, const char **why);


/* Redis mode (pushq_redis.h): stores a message that Redis gave id `id`
 * (published on any server) in the local mirror of channel `chan`.
 * `epoch` identifies the channel's life in Redis: when it differs from
 * the one the local channel holds (and that is not 0), the channel began
 * again at id 1 in Redis, and the local channel restarts too: its
 * buffered messages are dropped, its newest id becomes 0, and open
 * subscribers (their positions belong to the old life) start from the
 * beginning of the new one.  Then:
 *   id <= newest id      a duplicate: nothing stored, out->id = 0, OK;
 *   id == newest id + 1  stored as pushq_store_publish would;
 *   id >  newest id + 1  the ids between were missed (the subscription
 *                        connection was down): the buffered messages are
 *                        dropped, and readers past them count the missed
 *                        ids as lost; then stored.
 * out (subscribers, wakers) and errors as pushq_store_publish; len is not
 * checked against max_message_size (the publisher did). */
PUSHQ_API pushq_status_t pushq_store_mirror(pushq_store_t *s,
    const char *chan, size_t chan_len, uint64_t epoch, uint64_t id,
    const void *msg, size_t len, unsigned flags, const pushq_limits_t *lim,
    uint64_t now_ms, pushq_publish_result_t *out, const char **why);


/* --- Subscribers --------------------------------------------------------
 *
 * A subscriber is one long-poll request or one WebSocket connection.  The
 * caller owns the pushq_sub_t (any memory: stack, pool, heap); the store
 * keeps a small record for it in the region until pushq_sub_close.
 */

typedef enum {
    PUSHQ_SUB_LONGPOLL = 0,
    PUSHQ_SUB_WEBSOCKET = 1
} pushq_sub_kind_t;

typedef struct {
    const char   *chan;         /* validated channel name                 */
    size_t        chan_len;
    const char   *name;         /* validated client name, or NULL         */
    size_t        name_len;
    int           has_last_id;  /* last_id=N given                        */
    uint64_t      last_id;
    pushq_sub_kind_t kind;
    uint32_t      owner;        /* from pushq_store_owner_register        */
} pushq_sub_spec_t;

/* Opaque to callers; its size is part of the ABI. */
typedef struct {
    uint64_t  priv_[8];
} pushq_sub_t;

/* Opens a subscriber, following SPEC.md: a new name starts at the
 * channel's newest id (it receives what is published after it first
 * appeared); a known name resumes at its cursor; last_id=N starts after N
 * (and moves the name's cursor when both are given); N above the newest id
 * starts at the oldest buffered message and sets `reset`; neither name nor
 * last_id starts at the newest id.  Creates the channel if needed.  A name
 * stays alive while any of its subscribers is open, and `lim->client_ttl_ms`
 * after the last one closes. */
PUSHQ_API pushq_status_t pushq_sub_open(pushq_store_t *s,
    const pushq_sub_spec_t *spec, const pushq_limits_t *lim,
    uint64_t now_ms, pushq_sub_t *sub, const char **why);

/* Redis mode: opens an anonymous subscriber (spec->name and
 * spec->has_last_id are ignored) that receives the local messages with
 * id > after_id, with none of last_id's rules: no reset when after_id is
 * above the local newest id (the mirror may lag behind Redis; the
 * subscriber then waits for after_id + 1), and no lost count.  When the
 * channel restarts (pushq_store_mirror with a new epoch) it starts from
 * the new life's first message. */
PUSHQ_API pushq_status_t pushq_sub_open_at(pushq_store_t *s,
    const pushq_sub_spec_t *spec, uint64_t after_id,
    const pushq_limits_t *lim, uint64_t now_ms, pushq_sub_t *sub,
    const char **why);

/* One message handed out by pushq_sub_fetch.  `data` points into the store
 * and is valid only during the callback (the store is locked: the callback
 * must copy, and must not call the store). */
typedef struct {
    uint64_t     id;
    unsigned     flags;         /* PUSHQ_MSG_BINARY                       */
    const void  *data;
    size_t       len;
} pushq_msg_t;

typedef void (*pushq_msg_cb)(void *ctx, const pushq_msg_t *m);

typedef struct {
    size_t    count;            /* messages handed to the callback        */
    uint64_t  lost;             /* messages skipped because they were gone,
                                   reported once (on the first answer)     */
    int       reset;            /* last_id was above the newest id         */
    uint64_t  last_id;          /* id of the last message handed out       */
} pushq_fetch_info_t;

/* Hands the subscriber's next messages (at most max_msgs, and at most
 * max_bytes of payload, but always at least one if any is ready) to `cb`,
 * in id order, and counts them delivered: a named subscriber's cursor
 * moves in the store (so another connection with the same name will not
 * get them), an anonymous one's position moves in *sub.  Call it only
 * when the messages will be handed to the connection.  info->lost and
 * info->reset are reported once, with the first fetch that has them,
 * even when count == 0 (so a timeout answer can carry them). */
PUSHQ_API pushq_status_t pushq_sub_fetch(pushq_store_t *s, pushq_sub_t *sub,
    size_t max_msgs, size_t max_bytes, uint64_t now_ms,
    pushq_msg_cb cb, void *ctx, pushq_fetch_info_t *info);

/* Non-zero when pushq_sub_fetch would hand out at least one message (or
 * has lost/reset to report).  Lock-free; for event loops after a wake-up. */
PUSHQ_API int pushq_sub_ready(pushq_store_t *s, const pushq_sub_t *sub);

/* Blocks the calling thread until pushq_sub_ready() or timeout_ms passed
 * or pushq_store_wake_all() was called.  Returns PUSHQ_OK either way; the
 * caller then checks readiness.  Works across processes (process-shared
 * condition variable).  For thread-per-connection servers. */
PUSHQ_API pushq_status_t pushq_sub_wait(pushq_store_t *s, pushq_sub_t *sub,
    uint64_t timeout_ms);

/* Wakes every pushq_sub_wait in every process (shutdown, detach). */
PUSHQ_API void pushq_store_wake_all(pushq_store_t *s);

/* Removes the subscriber.  A name's client_ttl starts when its last
 * subscriber closes.  Safe to call twice (the second does nothing). */
PUSHQ_API void pushq_sub_close(pushq_store_t *s, pushq_sub_t *sub,
    uint64_t now_ms);

/* A number unique among the store's live channels, equal for all open
 * subscribers of one channel (its offset in the region): adapters use it
 * to group their local subscribers by channel.  0 for a closed sub. */
PUSHQ_API uint64_t pushq_sub_channel_key(const pushq_sub_t *sub);


/* Which life of its channel the subscriber's last fetch read: a number
 * that changes when pushq_store_mirror restarts the channel (Redis mode:
 * its ids begin again at 1).  With a message id it names one message for
 * good, so adapters key caches of encoded frames on both. */
PUSHQ_API uint64_t pushq_sub_life(const pushq_sub_t *sub);


/* --- Maintenance and counters ----------------------------------------- */

/* Drops expired messages, forgets expired names and empty channels,
 * returning their memory.  Publish and fetch also do this lazily; call it
 * every second or so.  Returns how many objects were freed. */
PUSHQ_API size_t pushq_store_sweep(pushq_store_t *s, uint64_t now_ms);

/* Counts a subscriber disconnected for being too slow (dropped_slow). */
PUSHQ_API void pushq_store_count_dropped_slow(pushq_store_t *s);

typedef struct {
    uint64_t  channels;
    uint64_t  messages;
    uint64_t  message_bytes;
    uint64_t  memory_used;          /* bytes of the region in use         */
    uint64_t  memory_total;         /* bytes of the region                */
    uint64_t  subscribers_longpoll;
    uint64_t  subscribers_websocket;
    uint64_t  clients;              /* named clients alive                */
    uint64_t  published;            /* counters since the store was made  */
    uint64_t  delivered;
    uint64_t  lost;
    uint64_t  dropped_slow;
} pushq_stats_t;

typedef struct {
    uint64_t  first_id;             /* 0 when no message is buffered      */
    uint64_t  last_id;              /* 0 when no message was published    */
    uint64_t  messages;
    uint64_t  subscribers;
    uint64_t  clients;
} pushq_channel_stats_t;

PUSHQ_API void pushq_store_stats(pushq_store_t *s, uint64_t now_ms,
    pushq_stats_t *out);

/* PUSHQ_ENOTFOUND when the channel does not exist (out is zeroed). */
PUSHQ_API pushq_status_t pushq_store_channel_stats(pushq_store_t *s,
    const char *chan, size_t chan_len, uint64_t now_ms,
    pushq_channel_stats_t *out);


/* ------------------------------------------------------------------------
 * Request arguments and forms (SPEC.md "Concepts", "Long-poll subscribe").
 * Pure functions; any thread.
 * ------------------------------------------------------------------------ */

typedef enum {
    PUSHQ_FORMAT_DEFAULT = 0,       /* raw frames / JSON answers          */
    PUSHQ_FORMAT_JSON,              /* format=json                        */
    PUSHQ_FORMAT_PROMETHEUS         /* format=prometheus (status)         */
} pushq_format_t;

typedef struct {
    char      channel[PUSHQ_NAME_MAX];  /* decoded; "default" if absent   */
    size_t    channel_len;
    char      name[PUSHQ_NAME_MAX];     /* decoded; name_len 0 = absent   */
    size_t    name_len;
    int       has_last_id;
    uint64_t  last_id;
    int       has_timeout;
    uint64_t  timeout_ms;               /* timeout=1.5 -> 1500            */
    uint32_t  batch;                    /* 0 = not asked, else 1..1000    */
    pushq_format_t format;
} pushq_args_t;

/* Parses a query string (without '?'): channel, name, last_id, timeout,
 * batch, format; unknown arguments are ignored; for a repeated argument
 * the first wins.  Percent-decodes and '+' -> ' '.  Every rejection is
 * PUSHQ_EBADARG with a why naming the argument and the rule. */
PUSHQ_API pushq_status_t pushq_args_parse(const char *query, size_t len,
    pushq_args_t *out, const char **why);

typedef enum {
    PUSHQ_ARG_CHANNEL = 0,
    PUSHQ_ARG_NAME = 1
} pushq_arg_t;

/* Percent-decodes a raw channel or client name (as nginx's $arg_channel
 * gives it) into out[PUSHQ_NAME_MAX] and validates it: 1-64 bytes of
 * [A-Za-z0-9_.:-].  For PUSHQ_ARG_CHANNEL an empty value gives "default";
 * for PUSHQ_ARG_NAME an empty value gives *out_len == 0 (no name). */
PUSHQ_API pushq_status_t pushq_name_decode(pushq_arg_t which,
    const char *raw, size_t len, char *out, size_t *out_len,
    const char **why);

/* Finds form field `field` in an application/x-www-form-urlencoded body
 * and writes its decoded value to out (cap >= len suffices, decoding never
 * grows).  Absent field -> PUSHQ_EBADARG ("content: form field missing"
 * for field "content"). */
PUSHQ_API pushq_status_t pushq_form_get(const char *body, size_t len,
    const char *field, size_t field_len, char *out, size_t cap,
    size_t *out_len, const char **why);

/* Non-zero when data is valid UTF-8 (RFC 3629: no surrogates, no
 * overlongs, nothing above U+10FFFF). */
PUSHQ_API int pushq_utf8_valid(const void *data, size_t len);


/* ------------------------------------------------------------------------
 * JSON and Prometheus answers.  Each writer returns the bytes written, or
 * the bytes it would need if that is more than cap (then nothing usable is
 * written: call again with a buffer that large).  Any bytes are escaped
 * correctly; binary messages are base64 with "encoding": "base64".
 * Pure functions; any thread.
 * ------------------------------------------------------------------------ */

typedef struct {
    uint64_t     id;
    const char  *channel;
    size_t       channel_len;
    const void  *data;
    size_t       len;
    int          binary;
    uint64_t     lost;          /* 0 = omit "lost"                         */
    int          reset;         /* 0 = omit "reset"                        */
} pushq_json_msg_t;

/* {"status": true, "msg": "...", "id": 17, "channel": "ch"[, "encoding":
 * "base64"][, "lost": n][, "reset": true]} */
PUSHQ_API size_t pushq_json_message(char *out, size_t cap,
    const pushq_json_msg_t *m);

/* {"status": true, "msgs": [{"id": 17, "msg": "..."[, "encoding":
 * "base64"]}, ...], "id": <last id>, "channel": "ch"[, "lost": n]
 * [, "reset": true]}; lost/reset are taken from msgs[0]. */
PUSHQ_API size_t pushq_json_batch(char *out, size_t cap,
    const pushq_json_msg_t *msgs, size_t n);

/* {"status": false, "msg": ""[, "msgs": []][, "lost": n][, "reset": true]} */
PUSHQ_API size_t pushq_json_timeout(char *out, size_t cap, int batch,
    uint64_t lost, int reset);

/* {"status": true, "id": 18, "channel": "ch", "subscribers": 3} */
PUSHQ_API size_t pushq_json_published(char *out, size_t cap,
    const pushq_publish_result_t *r, const char *chan, size_t chan_len);

/* {"status": false, "error": "<why>"} */
PUSHQ_API size_t pushq_json_error(char *out, size_t cap, const char *why);

PUSHQ_API size_t pushq_json_stats(char *out, size_t cap,
    const pushq_stats_t *st);
PUSHQ_API size_t pushq_json_channel_stats(char *out, size_t cap,
    const char *chan, size_t chan_len, const pushq_channel_stats_t *st);
PUSHQ_API size_t pushq_prometheus_stats(char *out, size_t cap,
    const pushq_stats_t *st);
PUSHQ_API size_t pushq_prometheus_channel_stats(char *out, size_t cap,
    const char *chan, size_t chan_len, const pushq_channel_stats_t *st);


/* ------------------------------------------------------------------------
 * WebSocket (RFC 6455), no I/O.  Pure functions, or objects owned by one
 * thread at a time.
 * ------------------------------------------------------------------------ */

typedef struct {
    const char *method;      size_t method_len;
    int         http_major;  int    http_minor;
    const char *upgrade;     size_t upgrade_len;     /* NULL if absent  */
    const char *connection;  size_t connection_len;  /* NULL if absent  */
    const char *key;         size_t key_len;         /* NULL if absent  */
    const char *version;     size_t version_len;     /* NULL if absent  */
} pushq_ws_handshake_t;

/* Validates an opening handshake (RFC 6455 4.2.1): GET, HTTP/1.1 or
 * later, Upgrade contains the token "websocket" and Connection the token
 * "upgrade" (case-insensitive, comma lists), a key that is base64 of 16
 * bytes, Sec-WebSocket-Version 13.  Bad version -> PUSHQ_EUPGRADE (426,
 * answer with Sec-WebSocket-Version: 13); wrong method -> PUSHQ_EMETHOD;
 * anything else -> PUSHQ_EBADARG.  On success writes the
 * Sec-WebSocket-Accept value (28 characters, no NUL) to accept. */
PUSHQ_API pushq_status_t pushq_ws_handshake_check(
    const pushq_ws_handshake_t *h, char accept[28], const char **why);

/* Non-zero when the request asks for a WebSocket (an Upgrade header with
 * the token "websocket"); used to route a subscriber request. */
PUSHQ_API int pushq_ws_is_upgrade(const char *upgrade, size_t len);

typedef enum {
    PUSHQ_WS_NEED_MORE = 0, /* everything given was consumed            */
    PUSHQ_WS_TEXT,          /* a complete, valid UTF-8 text message     */
    PUSHQ_WS_BINARY,        /* a complete binary message                */
    PUSHQ_WS_PING,          /* answer with a pong carrying data         */
    PUSHQ_WS_PONG,
    PUSHQ_WS_CLOSE,         /* peer's close; echo close_code (1000 if the
                               peer sent none), then close              */
    PUSHQ_WS_ERROR          /* send close close_code with reason, close  */
} pushq_ws_event_type_t;

typedef struct {
    pushq_ws_event_type_t type;
    const unsigned char  *data;   /* payload; valid until the next call */
    size_t                len;
    uint16_t              close_code;  /* CLOSE: peer's (0 = none sent);
                                          ERROR: the one to send        */
    const char           *reason;      /* ERROR: static, <= 123 bytes   */
    pushq_status_t        status;      /* ERROR: EPROTO, EUTF8, ETOOBIG */
} pushq_ws_event_t;

typedef struct pushq_ws_parser pushq_ws_parser_t;

/* A parser for client-to-server frames: masking required, fragmented
 * messages reassembled (up to max_message_size bytes, enforced before
 * the payload is buffered: 1009), control frames may interleave, UTF-8 of
 * text checked incrementally (fails at the first bad byte: 1007).  Owns
 * its reassembly buffer (heap).  NULL on out of memory. */
PUSHQ_API pushq_ws_parser_t *pushq_ws_parser_create(uint64_t max_message_size);
PUSHQ_API void pushq_ws_parser_destroy(pushq_ws_parser_t *p);

/* Feeds raw bytes (any split, one byte at a time works).  Returns how many
 * bytes were consumed and fills *ev.  Call again with the rest while the
 * returned count < len or ev->type != PUSHQ_WS_NEED_MORE.  After ERROR or
 * CLOSE every further call returns 0 with the same event type. */
PUSHQ_API size_t pushq_ws_parser_feed(pushq_ws_parser_t *p, const void *buf,
    size_t len, pushq_ws_event_t *ev);

/* For servers that parse frames themselves (CivetWeb): one whole frame
 * given as its first header byte (FIN, RSV, opcode) and its unmasked
 * payload.  The same reassembly, opcode, RSV, control-frame, close,
 * UTF-8 and size rules apply.  Fills *ev (NEED_MORE after a non-final
 * fragment). */
PUSHQ_API void pushq_ws_parser_feed_frame(pushq_ws_parser_t *p,
    unsigned first_byte, const void *payload, size_t len,
    pushq_ws_event_t *ev);

#define PUSHQ_WS_OP_CONT    0x0
#define PUSHQ_WS_OP_TEXT    0x1
#define PUSHQ_WS_OP_BINARY  0x2
#define PUSHQ_WS_OP_CLOSE   0x8
#define PUSHQ_WS_OP_PING    0x9
#define PUSHQ_WS_OP_PONG    0xA

/* Writes a server frame header (FIN set, unmasked, minimal length
 * encoding) for one payload of len bytes; returns its size (2, 4 or 10).
 * The header plus the payload is the whole frame, so one encoded frame can
 * be shared read-only by every subscriber of a broadcast. */
PUSHQ_API size_t pushq_ws_frame_header(unsigned char out[10],
    unsigned opcode, uint64_t len);

/* Writes a whole close frame (header + code + reason cut to fit 123
 * bytes at a UTF-8 boundary); code 0 writes an empty close frame.
 * Returns its size (<= 127). */
PUSHQ_API size_t pushq_ws_close_frame(unsigned char out[127], uint16_t code,
    const char *reason);

/* base64 of len bytes into out (cap >= 4 * ((len + 2) / 3)); returns the
 * length written. */
PUSHQ_API size_t pushq_base64_encode(char *out, size_t cap, const void *data,
    size_t len);

#ifdef __cplusplus
}
#endif

#endif /* PUSHQ_H */
