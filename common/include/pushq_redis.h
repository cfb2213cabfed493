/*
 * pushq_redis.h -- Redis scale-out: the part both adapters share.
 *
 * In Redis mode (nginx `pushq_redis <url>`, CivetWeb option `redis`) Redis
 * holds the truth for a channel; every server keeps its own store as a
 * mirror that feeds its local subscribers.  The core does not do I/O here
 * either: it builds the commands (argv for hiredis's redisCommandArgv /
 * redisAsyncCommandArgv) and interprets the replies; the adapter owns the
 * connections (nginx: hiredis async on nginx's event loop; CivetWeb: a
 * background thread for the subscription, blocking calls on request
 * threads).
 *
 * Keys, for channel <ch> (all under the prefix "pushq:"):
 *   pushq:{<ch>}:seq      hash {seq: newest id, epoch: ms when the channel
 *                         began}: ids are given by one atomic HINCRBY, so
 *                         they grow by one per message whichever server
 *                         publishes; epoch changes when the channel was
 *                         forgotten and began again at id 1
 *   pushq:{<ch>}:log      stream, entry id "0-<id>", fields t (publish ms,
 *                         Redis TIME), f (flags), d (payload), e (expiry
 *                         ms, 0 = none), b and y (the publisher's buffer
 *                         and buffer_bytes, for range reads; absent in
 *                         older entries); trimmed to the publisher's
 *                         `buffer` messages
 *   pushq:{<ch>}:n:<name> string: the named client's cursor (last id
 *                         delivered), expiring client_ttl after its last use
 *   both expire message_ttl + client_ttl after the channel's last publish.
 * Pub/sub: every publish also PUBLISHes, on "pushq:m:<ch>", one message
 * carrying the epoch, id, flags, the publisher's limits and the payload;
 * each server PSUBSCRIBEs "pushq:m:*" once (nginx: worker 0) and mirrors
 * what it hears into its store (pushq_redis_mirror), which wakes the local
 * subscribers: a broadcast costs Redis one message per server.
 *
 * Who reads from where:
 *   - anonymous subscribers (no name, no last_id): the local mirror only;
 *   - named and last_id subscribers: through the `take` script, which reads
 *     the stream after the cursor and moves a named cursor atomically (so
 *     a name is served exactly once, in order, whatever server it is on);
 *     while nothing is there they wait on the local mirror
 *     (pushq_sub_open_at) and take again when it wakes them.
 *
 * Scripts are loaded with SCRIPT LOAD when a connection is made (send
 * pushq_redis_cmd_script_load for every i < PUSHQ_REDIS_SCRIPTS first) and
 * run with EVALSHA.
 *
 * Thread safety: every function here is pure (or, pushq_redis_mirror, uses
 * the store, which is thread-safe); a pushq_redis_cmd_t belongs to one
 * thread.
 */

#ifndef PUSHQ_REDIS_H
#define PUSHQ_REDIS_H

#include "pushq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* hiredis's reply (<hiredis/hiredis.h>); only pointers cross this ABI. */
struct redisReply;


/* --- Where Redis is ----------------------------------------------------- */

typedef struct {
    char      host[256];        /* name or address, NUL-terminated        */
    uint16_t  port;             /* default 6379                           */
    char      password[256];    /* "" = no AUTH                           */
    uint32_t  db;               /* SELECT db; default 0                   */
} pushq_redis_url_t;

/* Parses "redis://[:password@]host[:port][/db]" (a user name before the
 * colon is accepted and ignored: Redis 6 ACL users need hiredis >= 1.0).
 * "rediss://" (TLS) is PUSHQ_EBADARG with a why saying that Debian 12's
 * hiredis 0.14 has no TLS.  Every rejection names the part that is wrong. */
PUSHQ_API pushq_status_t pushq_redis_url_parse(const char *s, size_t len,
    pushq_redis_url_t *out, const char **why);


/* --- Commands ----------------------------------------------------------- */

#define PUSHQ_REDIS_ARGV_MAX  16

/* One command as argv.  argv[] point into buf or into memory the caller
 * passed (a message payload): hiredis copies argv when the command is
 * queued, so the caller's memory need only live until that call. */
typedef struct {
    int          argc;
    const char  *argv[PUSHQ_REDIS_ARGV_MAX];
    size_t       argvlen[PUSHQ_REDIS_ARGV_MAX];
    char         buf[1024];
} pushq_redis_cmd_t;

#define PUSHQ_REDIS_SCRIPTS  3      /* publish, take, range */

/* SCRIPT LOAD <script i>, for i in 0 .. PUSHQ_REDIS_SCRIPTS-1. */
PUSHQ_API void pushq_redis_cmd_script_load(pushq_redis_cmd_t *cmd,
    unsigned i);

/* AUTH <password> and SELECT <db> (send them first, when the URL has
 * them).  Return 0 when the URL needs no such command. */
PUSHQ_API int pushq_redis_cmd_auth(pushq_redis_cmd_t *cmd,
    const pushq_redis_url_t *url);
PUSHQ_API int pushq_redis_cmd_select(pushq_redis_cmd_t *cmd,
    const pushq_redis_url_t *url);

/* PSUBSCRIBE pushq:m:* (on the connection that does nothing else). */
PUSHQ_API void pushq_redis_cmd_subscribe(pushq_redis_cmd_t *cmd);

/* Publishes msg on chan (validated).  len > lim->max_message_size ->
 * PUSHQ_ETOOBIG and no command.  The script gives the id, appends to the
 * stream (trimmed to lim->buffer), refreshes the keys' expiry and
 * PUBLISHes to every server. */
PUSHQ_API pushq_status_t pushq_redis_cmd_publish(pushq_redis_cmd_t *cmd,
    const char *chan, size_t chan_len, const void *msg, size_t len,
    unsigned flags, const pushq_limits_t *lim, const char **why);

/* The publish reply: the id given.  A Redis error reply -> PUSHQ_ENOMEM
 * when Redis is out of memory (OOM), else PUSHQ_EINTERNAL; a NULL reply
 * (connection lost) -> PUSHQ_ENOMEM ("redis: connection lost ...": the
 * publish may or may not have happened; 503 tells the publisher to retry).
 * why is static text or, for Redis's own error text, copied into errbuf
 * (errbuf_size bytes, may be 0). */
PUSHQ_API pushq_status_t pushq_redis_reply_publish(
    const struct redisReply *reply, uint64_t *id, char *errbuf,
    size_t errbuf_size, const char **why);

/* What a named or cursor subscriber asks Redis for. */
typedef struct {
    const char  *chan;
    size_t       chan_len;
    const char  *name;          /* NULL: no name                          */
    size_t       name_len;
    int          has_last_id;   /* last_id=N given: wins, moves the name  */
    uint64_t     last_id;
    /* A connection that already holds a cursor for the name (a WebSocket
     * between deliveries) passes it here (has_cursor = 1): if the name's
     * key expired meanwhile, the take continues from it instead of
     * treating the name as new. */
    int          has_cursor;
    uint64_t     cursor;
    size_t       max_msgs;      /* >= 1 */
    size_t       max_bytes;     /* payload bytes; at least one message    */
} pushq_redis_take_t;

PUSHQ_API pushq_status_t pushq_redis_cmd_take(pushq_redis_cmd_t *cmd,
    const pushq_redis_take_t *t, const pushq_limits_t *lim,
    const char **why);

typedef struct {
    size_t    count;            /* messages handed to the callback        */
    uint64_t  lost;             /* as pushq_fetch_info_t                  */
    int       reset;
    uint64_t  last_id;          /* the cursor after this take: the id of
                                   the last message handed out, or where
                                   the subscriber now stands              */
    uint64_t  newest_id;        /* the channel's newest id in Redis       */
    uint64_t  epoch;
} pushq_redis_take_info_t;

/* Hands the messages of a take reply to cb in id order (m->data points
 * into the reply: copy it before the reply is freed).  Errors as
 * pushq_redis_reply_publish. */
PUSHQ_API pushq_status_t pushq_redis_reply_take(
    const struct redisReply *reply, pushq_msg_cb cb, void *ctx,
    pushq_redis_take_info_t *info, char *errbuf, size_t errbuf_size,
    const char **why);


/* --- The mirror ---------------------------------------------------------- */

/* A message heard on the subscription connection ("pmessage" reply):
 * stores it in the local store with pushq_store_mirror (using the limits
 * it carries) and gives the wakers to wake in *wakers (0 when it was a
 * duplicate or not a message: the subscribe confirmation is OK with
 * *wakers 0).  PUSHQ_EBADARG for a reply that is not ours (logged by the
 * caller, then ignored); PUSHQ_ENOMEM when the store is full. */
PUSHQ_API pushq_status_t pushq_redis_mirror(pushq_store_t *s,
    const struct redisReply *reply, uint64_t now_ms, uint64_t *wakers,
    const char **why);


/* --- Catching the mirror up ----------------------------------------------
 *
 * The subscription connection hears every publish, but not while it is
 * down (Redis restarting, a network cut) or not yet up (a server that
 * starts late): a message published then reaches this server's mirror
 * only by reading the stream.  So the adapter:
 *  - mirrors each heard message with pushq_redis_mirror_heard, which
 *    stores it only when it is the channel's next id (or a duplicate, which
 *    it ignores) and otherwise reports a gap, storing nothing;
 *  - for a gap, reads the stream after the local newest id
 *    (pushq_redis_cmd_range on a command connection) and mirrors the
 *    reply in order (pushq_redis_reply_range).  At most one read in flight
 *    per channel: a gap heard meanwhile only marks the channel to be read
 *    again once the reply has been mirrored (or when *more says so);
 *  - when the subscription is confirmed (first connect and every
 *    reconnect), reads the same way every local channel that came from
 *    Redis (pushq_store_redis_channels).
 * Messages trimmed from the stream before they were read are the only
 * ones the mirror then misses (its readers count them lost).
 */

typedef struct {
    char      chan[PUSHQ_NAME_MAX];
    size_t    chan_len;         /* 0: no gap                              */
    uint64_t  after_id;         /* read the stream after this id (0 when
                                   the channel began a new life in Redis) */
} pushq_redis_gap_t;

/* As pushq_redis_mirror, except that a heard message that is not the
 * channel's next id (id > newest + 1, or id > 1 in a new epoch) is not
 * stored: gap->chan/chan_len/after_id say what to read instead (else
 * gap->chan_len is 0). */
PUSHQ_API pushq_status_t pushq_redis_mirror_heard(pushq_store_t *s,
    const struct redisReply *reply, uint64_t now_ms, uint64_t *wakers,
    pushq_redis_gap_t *gap, const char **why);

/* As pushq_redis_mirror_heard, and *channel_key names the channel of the
 * message stored (as pushq_publish_result_t.channel_key; 0 when nothing
 * was stored), so that an adapter wakes only that channel's subscribers. */
PUSHQ_API pushq_status_t pushq_redis_mirror_heard_key(pushq_store_t *s,
    const struct redisReply *reply, uint64_t now_ms, uint64_t *wakers,
    uint64_t *channel_key, pushq_redis_gap_t *gap, const char **why);

/* Reads up to max_msgs stream entries of chan with id > after_id, with the
 * channel's newest id and epoch (a script: one round trip). */
PUSHQ_API void pushq_redis_cmd_range(pushq_redis_cmd_t *cmd,
    const char *chan, size_t chan_len, uint64_t after_id, size_t max_msgs);

/* Mirrors a range reply into the store, in id order, with
 * pushq_store_mirror (a new epoch restarts the local channel; ids missing
 * from the stream because they were trimmed become a gap, i.e. lost);
 * the wakers to wake in *wakers; *more non-zero when Redis holds newer
 * ids than the reply carried (read again after the new local newest id).
 * Errors as pushq_redis_reply_publish (why only: static text). */
PUSHQ_API pushq_status_t pushq_redis_reply_range(pushq_store_t *s,
    const char *chan, size_t chan_len, const struct redisReply *reply,
    uint64_t now_ms, uint64_t *wakers, int *more, const char **why);

/* Calls cb for every channel of the store that came from Redis (mirrored
 * at least once, epoch != 0) and still has open subscribers, with its
 * local newest id.  The store is locked during the walk: cb must copy and
 * must not call the store.  Returns how many. */
typedef void (*pushq_redis_chan_cb)(void *ctx, const char *chan,
    size_t chan_len, uint64_t newest_id);
PUSHQ_API size_t pushq_store_redis_channels(pushq_store_t *s,
    pushq_redis_chan_cb cb, void *ctx);

#ifdef __cplusplus
}
#endif

#endif /* PUSHQ_REDIS_H */
