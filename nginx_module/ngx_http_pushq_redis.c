
/*
 * pushq nginx module: pushq_redis, this worker's connections to Redis.
 *
 * Per distinct pushq_redis URL every worker keeps a link:
 *
 *  - a command connection: hiredis's async API on nginx's event loop (the
 *    adapter below gives hiredis an ngx_connection_t for its socket).  On
 *    connect it sends AUTH and SELECT when the URL has them, then SCRIPT
 *    LOAD of every script; once every one of those replied OK the link is
 *    "up" and requests may send commands on it (ops);
 *  - in worker 0 only, a subscription connection: PSUBSCRIBE pushq:m:*,
 *    every message heard is mirrored into the shared store
 *    (pushq_redis_mirror_heard) and the workers with subscribers on the
 *    channel are woken through their eventfds.
 *
 * Catching the mirror up (worker 0; pushq_redis.h): a heard message that
 * is not its channel's next id is a gap; so is every Redis channel with
 * subscribers when the subscription is confirmed (first connect and every
 * reconnect: what was published meanwhile was not heard).  A gap becomes
 * a read of the stream (pushq_redis_cmd_range) on worker 0's command
 * connection, mirrored with pushq_redis_reply_range.  At most one read is
 * in flight per channel, in a table of NGX_HTTP_PUSHQ_REDIS_READS slots: a
 * gap heard meanwhile marks the slot "again"; the channel is read again
 * after the reply when the reply says there is more or "again" was
 * marked.  Reads wait for the command connection when it is down.  The
 * channels of the walk that find no slot wait in a bounded list (todo);
 * a heard gap that finds no slot asks for a new walk once the list is
 * drained.  A channel whose reads keep failing (3 in a row, or no
 * progress) is dropped: its readers count what it misses as lost.
 *
 * A lost connection is retried on a timer, 100 ms after the loss, then
 * doubling to 5 s while it keeps failing; the outage is logged once at
 * error level when it begins and at notice level when it ends, never per
 * request or per retry.  Nothing here blocks: the host was resolved to a
 * numeric address at configuration time, and hiredis connects
 * non-blocking.
 *
 * Ops: the handler of every op sent is called exactly once, with the reply
 * (freed by hiredis when the handler returns) or with reply NULL and err
 * set when the connection was lost; a cancelled op is freed without its
 * handler being called.  When the worker exits, pending ops are freed
 * without their handlers (their requests are going away with the
 * process).
 */


/* before the module's header: its "visibility hidden" would apply to
 * hiredis's declarations too, and they are the shared library's */

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ngx_http_pushq_module.h"


#define NGX_HTTP_PUSHQ_REDIS_BACKOFF_MIN  100      /* ms */
#define NGX_HTTP_PUSHQ_REDIS_BACKOFF_MAX  5000     /* ms */
#define NGX_HTTP_PUSHQ_REDIS_CONNECT_TIMEOUT  3000  /* ms, to be up */

#define NGX_HTTP_PUSHQ_REDIS_DOWN         0        /* retry timer set    */
#define NGX_HTTP_PUSHQ_REDIS_CONNECTING   1        /* handshake sent, the
                                                      timer is its timeout */
#define NGX_HTTP_PUSHQ_REDIS_UP           2


/* catching the mirror up (worker 0) */
#define NGX_HTTP_PUSHQ_REDIS_READS        64       /* reads at once      */
#define NGX_HTTP_PUSHQ_REDIS_READ_MSGS    64       /* messages per read  */
#define NGX_HTTP_PUSHQ_REDIS_READ_FAILS   3        /* then dropped       */
#define NGX_HTTP_PUSHQ_REDIS_TODO         4096     /* channels waiting   */


/* one channel being read (chan_len 0: a free slot) */

typedef struct {
    ngx_http_pushq_redis_link_t  *link;
    ngx_http_pushq_redis_op_t    *op;        /* the read in flight, or NULL:
                                                to send once the command
                                                connection is up */
    uint64_t                      after_id;  /* the next read: after it */
    uint64_t                      again_after; /* lowest after_id of the
                                                gaps heard meanwhile */
    ngx_uint_t                    failures;  /* in a row */
    size_t                        chan_len;
    unsigned                      again:1;
    u_char                        chan[PUSHQ_NAME_MAX];
} ngx_http_pushq_redis_read_t;


/* a channel of the walk still to read */

typedef struct {
    uint64_t                      after_id;
    size_t                        chan_len;
    u_char                        chan[PUSHQ_NAME_MAX];
} ngx_http_pushq_redis_todo_t;


typedef struct {
    ngx_http_pushq_redis_link_t  *link;
    redisAsyncContext            *ac;        /* NULL: not connected */
    ngx_event_t                   retry;     /* or the connect timeout */
    ngx_msec_t                    backoff;
    ngx_uint_t                    state;
    ngx_uint_t                    pending;   /* handshake replies awaited */
    unsigned                      subscriber:1;
} ngx_http_pushq_redis_conn_t;


struct ngx_http_pushq_redis_link_s {
    ngx_http_pushq_redis_conf_t  *conf;
    ngx_http_pushq_redis_conn_t   cmd;
    ngx_http_pushq_redis_conn_t   sub;
    unsigned                      has_sub:1;  /* worker 0 */
    unsigned                      outage:1;   /* logged as down */
    u_char                        name[sizeof(((pushq_redis_url_t *) 0)->host)
                                       + sizeof(":65535")];
    u_char                        err[256];   /* the last error, for ops */

    /* catching the mirror up (worker 0 only, reads != NULL) */
    ngx_http_pushq_redis_read_t  *reads;      /* [READS] */
    ngx_uint_t                    nreads;     /* slots in use */
    ngx_http_pushq_redis_todo_t  *todo;       /* [TODO], allocated on the
                                                 first walk */
    ngx_uint_t                    todo_head;
    ngx_uint_t                    todo_n;
    ngx_uint_t                    walk_skip;  /* the last walk stopped at
                                                 TODO channels: the next
                                                 one goes on from there */
    unsigned                      rewalk:1;   /* a gap found no slot */
    unsigned                      logged_full:1;
    unsigned                      logged_read:1;
    unsigned                      logged_nomem:1;
};


static void ngx_http_pushq_redis_connect(ngx_http_pushq_redis_conn_t *rc);
static void ngx_http_pushq_redis_retry_handler(ngx_event_t *ev);
static void ngx_http_pushq_redis_schedule(ngx_http_pushq_redis_conn_t *rc);
static void ngx_http_pushq_redis_timer(ngx_http_pushq_redis_conn_t *rc,
    ngx_msec_t ms);
static void ngx_http_pushq_redis_down(ngx_http_pushq_redis_conn_t *rc,
    const char *err);
static void ngx_http_pushq_redis_check_up(ngx_http_pushq_redis_link_t *link);
static ngx_int_t ngx_http_pushq_redis_handshake(
    ngx_http_pushq_redis_conn_t *rc);
static void ngx_http_pushq_redis_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_http_pushq_redis_on_disconnect(const redisAsyncContext *ac,
    int status);
static void ngx_http_pushq_redis_handshake_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_pushq_redis_sub_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_pushq_redis_op_reply(redisAsyncContext *ac, void *r,
    void *privdata);

static ngx_uint_t ngx_http_pushq_redis_gap(ngx_http_pushq_redis_link_t *link,
    const u_char *chan, size_t chan_len, uint64_t after_id);
static void ngx_http_pushq_redis_walk(ngx_http_pushq_redis_link_t *link);
static void ngx_http_pushq_redis_walk_channel(void *ctx, const char *chan,
    size_t chan_len, uint64_t newest_id);
static void ngx_http_pushq_redis_catch_up(ngx_http_pushq_redis_link_t *link);
static void ngx_http_pushq_redis_read_send(ngx_http_pushq_redis_read_t *rd);
static void ngx_http_pushq_redis_read_reply(ngx_http_pushq_redis_op_t *op,
    struct redisReply *reply, const char *err);
static void ngx_http_pushq_redis_read_free(ngx_http_pushq_redis_read_t *rd);
static uint64_t ngx_http_pushq_redis_newest(const u_char *chan,
    size_t chan_len);

static ngx_int_t ngx_http_pushq_redis_attach(ngx_http_pushq_redis_conn_t *rc,
    redisAsyncContext *ac);
static void ngx_http_pushq_redis_event(ngx_event_t *ev);
static void ngx_http_pushq_redis_add_read(void *privdata);
static void ngx_http_pushq_redis_del_read(void *privdata);
static void ngx_http_pushq_redis_add_write(void *privdata);
static void ngx_http_pushq_redis_del_write(void *privdata);
static void ngx_http_pushq_redis_cleanup(void *privdata);


/* this worker's links, one per distinct URL (pmcf->redis) */

static ngx_http_pushq_redis_link_t  *ngx_http_pushq_redis_links;
static ngx_uint_t                    ngx_http_pushq_redis_nlinks;
static ngx_uint_t                    ngx_http_pushq_redis_exiting;

/*
 * The retry timers' ev->data: the debug log of timers reads ev->data as a
 * connection (ngx_event_ident); the conn is found from the event itself.
 */

static ngx_connection_t  ngx_http_pushq_redis_dummy;


ngx_int_t
ngx_http_pushq_redis_init_worker(ngx_cycle_t *cycle,
    ngx_http_pushq_main_conf_t *pmcf)
{
    ngx_uint_t                    i;
    ngx_http_pushq_redis_conf_t **rcfs;
    ngx_http_pushq_redis_link_t  *link;

    ngx_http_pushq_redis_links = NULL;
    ngx_http_pushq_redis_nlinks = 0;
    ngx_http_pushq_redis_exiting = 0;

    if (pmcf->redis.nelts == 0) {
        return NGX_OK;
    }

    ngx_http_pushq_redis_dummy.fd = (ngx_socket_t) -1;

    link = ngx_pcalloc(cycle->pool,
                       pmcf->redis.nelts
                       * sizeof(ngx_http_pushq_redis_link_t));
    if (link == NULL) {
        return NGX_ERROR;
    }

    ngx_http_pushq_redis_links = link;
    ngx_http_pushq_redis_nlinks = pmcf->redis.nelts;

    rcfs = pmcf->redis.elts;

    for (i = 0; i < pmcf->redis.nelts; i++) {
        link = &ngx_http_pushq_redis_links[i];

        link->conf = rcfs[i];
        link->has_sub = (ngx_worker == 0);

        ngx_snprintf(link->name, sizeof(link->name) - 1, "%s:%d%Z",
                     rcfs[i]->parsed.host, (int) rcfs[i]->parsed.port);

        link->cmd.link = link;
        link->sub.link = link;
        link->sub.subscriber = 1;

        if (link->has_sub) {
            link->reads = ngx_pcalloc(cycle->pool,
                                      NGX_HTTP_PUSHQ_REDIS_READS
                                      * sizeof(ngx_http_pushq_redis_read_t));
            if (link->reads == NULL) {
                return NGX_ERROR;
            }
        }

        ngx_http_pushq_redis_connect(&link->cmd);

        if (link->has_sub) {
            ngx_http_pushq_redis_connect(&link->sub);
        }
    }

    return NGX_OK;
}


/*
 * The worker exits: every context is freed; hiredis calls the pending
 * callbacks with a NULL reply, which free the ops without calling their
 * handlers (ngx_http_pushq_redis_exiting), and the adapter's cleanup
 * releases the connections.  No retry is scheduled any more.
 */

void
ngx_http_pushq_redis_exit_worker(ngx_cycle_t *cycle)
{
    ngx_uint_t                    i, j;
    redisAsyncContext            *ac;
    ngx_http_pushq_redis_conn_t  *rc;
    ngx_http_pushq_redis_link_t  *link;

    ngx_http_pushq_redis_exiting = 1;

    for (i = 0; i < ngx_http_pushq_redis_nlinks; i++) {
        link = &ngx_http_pushq_redis_links[i];

        for (j = 0; j < 2; j++) {
            rc = j ? &link->sub : &link->cmd;

            if (rc->retry.timer_set) {
                ngx_del_timer(&rc->retry);
            }

            ac = rc->ac;

            if (ac != NULL) {
                rc->ac = NULL;
                rc->state = NGX_HTTP_PUSHQ_REDIS_DOWN;
                redisAsyncFree(ac);
            }
        }

        /* the reads' ops were freed with the command connection */

        if (link->todo != NULL) {
            ngx_free(link->todo);
            link->todo = NULL;
        }
    }

    ngx_http_pushq_redis_nlinks = 0;
}


ngx_http_pushq_redis_link_t *
ngx_http_pushq_redis_link(ngx_http_pushq_redis_conf_t *rcf)
{
    if (rcf == NULL || rcf->index >= ngx_http_pushq_redis_nlinks) {
        return NULL;
    }

    return &ngx_http_pushq_redis_links[rcf->index];
}


ngx_uint_t
ngx_http_pushq_redis_up(ngx_http_pushq_redis_link_t *link)
{
    return link != NULL && link->cmd.state == NGX_HTTP_PUSHQ_REDIS_UP;
}


ngx_http_pushq_redis_op_t *
ngx_http_pushq_redis_op(ngx_http_pushq_redis_handler_pt handler, void *data)
{
    ngx_http_pushq_redis_op_t  *op;

    op = ngx_alloc(sizeof(ngx_http_pushq_redis_op_t), ngx_cycle->log);
    if (op == NULL) {
        return NULL;
    }

    op->handler = handler;
    op->data = data;
    op->cancelled = 0;

    return op;
}


ngx_int_t
ngx_http_pushq_redis_send(ngx_http_pushq_redis_link_t *link,
    pushq_redis_cmd_t *cmd, ngx_http_pushq_redis_op_t *op, const char **why)
{
    if (link == NULL || ngx_http_pushq_redis_exiting) {
        ngx_free(op);
        *why = "redis: not configured here";
        return NGX_ERROR;
    }

    if (link->cmd.state != NGX_HTTP_PUSHQ_REDIS_UP || link->cmd.ac == NULL) {
        ngx_free(op);
        *why = link->err[0] ? (const char *) link->err
                            : "redis: not connected yet";
        return NGX_ERROR;
    }

    /* hiredis copies argv into its output buffer here */

    if (redisAsyncCommandArgv(link->cmd.ac, ngx_http_pushq_redis_op_reply,
                              op, cmd->argc, cmd->argv, cmd->argvlen)
        != REDIS_OK)
    {
        ngx_free(op);
        *why = "redis: cannot queue the command (connection closing)";
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_pushq_redis_op_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply                   *reply = r;
    ngx_http_pushq_redis_op_t    *op = privdata;
    ngx_http_pushq_redis_conn_t  *rc;

    rc = ac->data;

    if (reply == NULL && rc != NULL && rc->ac == ac) {
        /*
         * the connection is being torn down: no command may be sent on it
         * any more, even from this very handler
         */
        ngx_http_pushq_redis_down(rc, ac->errstr[0] ? ac->errstr
                                                    : "connection lost");
    }

    if (reply != NULL && reply->type == REDIS_REPLY_ERROR
        && reply->len >= 8 && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0
        && rc != NULL && rc->ac == ac)
    {
        /*
         * Redis lost the scripts (SCRIPT FLUSH, a failover to a replica
         * that never loaded them): this op fails; the connection is
         * replaced by one that loads them again, the old one closes once
         * its pending replies are in
         */

        ngx_http_pushq_redis_down(rc, "the scripts are gone (NOSCRIPT), "
                                      "loading them again");
        redisAsyncDisconnect(ac);
    }

    if (!op->cancelled && !ngx_http_pushq_redis_exiting) {
        op->handler(op, reply,
                    reply == NULL
                    ? (rc && rc->link->err[0] ? (const char *) rc->link->err
                                              : "redis: connection lost")
                    : NULL);
    }

    ngx_free(op);
}


/* --- Connecting ---------------------------------------------------------- */


static void
ngx_http_pushq_redis_connect(ngx_http_pushq_redis_conn_t *rc)
{
    redisAsyncContext            *ac;
    ngx_http_pushq_redis_conf_t  *rcf;

    if (ngx_http_pushq_redis_exiting) {
        return;
    }

    rcf = rc->link->conf;

    ac = redisAsyncConnect(rcf->addr, (int) rcf->parsed.port);

    if (ac == NULL) {
        ngx_http_pushq_redis_down(rc, "out of memory");
        return;
    }

    if (ac->err) {
        /* e.g. connection refused at once (loopback) */
        ngx_http_pushq_redis_down(rc, ac->errstr);
        redisAsyncFree(ac);
        return;
    }

    if (ngx_http_pushq_redis_attach(rc, ac) != NGX_OK) {
        ngx_http_pushq_redis_down(rc, "no free worker connection "
                                      "(raise worker_connections)");
        redisAsyncFree(ac);
        return;
    }

    rc->ac = ac;
    rc->state = NGX_HTTP_PUSHQ_REDIS_CONNECTING;

    /* a host that drops SYNs, or a Redis that accepts and stalls */

    ngx_http_pushq_redis_timer(rc, NGX_HTTP_PUSHQ_REDIS_CONNECT_TIMEOUT);

    ac->data = rc;

    (void) redisAsyncSetDisconnectCallback(ac,
                                        ngx_http_pushq_redis_on_disconnect);

    /* adds the write event that tells when connect() is done */

    (void) redisAsyncSetConnectCallback(ac, ngx_http_pushq_redis_on_connect);

    /* queued now, written once connected */

    if (ngx_http_pushq_redis_handshake(rc) != NGX_OK) {
        rc->ac = NULL;
        ngx_http_pushq_redis_down(rc, "cannot queue the handshake");
        ac->data = NULL;
        redisAsyncFree(ac);
    }
}


static ngx_int_t
ngx_http_pushq_redis_handshake(ngx_http_pushq_redis_conn_t *rc)
{
    unsigned                      i;
    pushq_redis_cmd_t             cmd;
    ngx_http_pushq_redis_conf_t  *rcf;

    rcf = rc->link->conf;
    rc->pending = 0;

    if (pushq_redis_cmd_auth(&cmd, &rcf->parsed)) {
        if (redisAsyncCommandArgv(rc->ac, ngx_http_pushq_redis_handshake_reply,
                                  rc, cmd.argc, cmd.argv, cmd.argvlen)
            != REDIS_OK)
        {
            return NGX_ERROR;
        }

        rc->pending++;
    }

    if (pushq_redis_cmd_select(&cmd, &rcf->parsed)) {
        if (redisAsyncCommandArgv(rc->ac, ngx_http_pushq_redis_handshake_reply,
                                  rc, cmd.argc, cmd.argv, cmd.argvlen)
            != REDIS_OK)
        {
            return NGX_ERROR;
        }

        rc->pending++;
    }

    if (rc->subscriber) {
        /*
         * every reply on it, the confirmation first, goes to
         * ngx_http_pushq_redis_sub_reply: the confirmation makes it up
         */

        pushq_redis_cmd_subscribe(&cmd);

        if (redisAsyncCommandArgv(rc->ac, ngx_http_pushq_redis_sub_reply,
                                  rc, cmd.argc, cmd.argv, cmd.argvlen)
            != REDIS_OK)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    for (i = 0; i < PUSHQ_REDIS_SCRIPTS; i++) {
        pushq_redis_cmd_script_load(&cmd, i);

        if (redisAsyncCommandArgv(rc->ac, ngx_http_pushq_redis_handshake_reply,
                                  rc, cmd.argc, cmd.argv, cmd.argvlen)
            != REDIS_OK)
        {
            return NGX_ERROR;
        }

        rc->pending++;
    }

    return NGX_OK;
}


static void
ngx_http_pushq_redis_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_http_pushq_redis_conn_t  *rc = ac->data;

    if (rc == NULL || status == REDIS_OK) {
        /* the handshake's replies tell when it is up */
        return;
    }

    /* hiredis frees the context when this returns */

    if (rc->ac == ac) {
        ngx_http_pushq_redis_down(rc, ac->errstr[0] ? ac->errstr
                                                    : "cannot connect");
    }
}


static void
ngx_http_pushq_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    ngx_http_pushq_redis_conn_t  *rc = ac->data;

    /* hiredis frees the context when this returns */

    if (rc == NULL || rc->ac != ac) {
        /* already handled (dropped by us, or the worker exits) */
        return;
    }

    ngx_http_pushq_redis_down(rc, ac->errstr[0] ? ac->errstr
                                                : "connection closed");
}


static void
ngx_http_pushq_redis_handshake_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                   *reply = r;
    ngx_http_pushq_redis_conn_t  *rc = privdata;

    u_char  err[200];

    if (reply == NULL || rc->ac != ac) {
        /* the connection is being torn down: on_disconnect handles it */
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        /* e.g. a wrong password or db: drop it, try again later */

        ngx_snprintf(err, sizeof(err) - 1, "handshake refused: %*s%Z",
                     (size_t) ngx_min(reply->len, 150), reply->str);

        ngx_http_pushq_redis_down(rc, (const char *) err);

        /* deferred by hiredis until this callback returns */
        ac->data = NULL;
        redisAsyncFree(ac);
        return;
    }

    /* the subscription connection is up with its PSUBSCRIBE's
     * confirmation (ngx_http_pushq_redis_sub_reply) */

    if (rc->pending && --rc->pending == 0 && !rc->subscriber
        && rc->state == NGX_HTTP_PUSHQ_REDIS_CONNECTING)
    {
        rc->state = NGX_HTTP_PUSHQ_REDIS_UP;
        rc->backoff = 0;

        if (rc->retry.timer_set) {
            ngx_del_timer(&rc->retry);
        }

        ngx_http_pushq_redis_check_up(rc->link);

        /* named subscribers waiting on the link send their takes now */
        ngx_http_pushq_redis_kick();

        /* and the mirror's reads that waited for it */
        ngx_http_pushq_redis_catch_up(rc->link);
    }
}


/*
 * Every reply of the subscription connection: the PSUBSCRIBE confirmation,
 * then one "pmessage" per publish on any server.
 */

static void
ngx_http_pushq_redis_sub_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                   *reply = r;
    ngx_http_pushq_redis_conn_t  *rc = privdata;

    uint64_t            wakers, key;
    const char         *why;
    pushq_status_t      st;
    pushq_redis_gap_t   gap;

    if (reply == NULL || rc->ac != ac || ngx_http_pushq_redis_exiting) {
        return;
    }

    if (ngx_exiting) {
        /*
         * a reload: the new worker 0 mirrors now, and wakes the new
         * workers; a message this one stored first would be a duplicate
         * to it, and so wake nobody there
         */

        rc->ac = NULL;
        rc->state = NGX_HTTP_PUSHQ_REDIS_DOWN;
        ac->data = NULL;
        redisAsyncFree(ac);
        return;
    }

    if (rc->state == NGX_HTTP_PUSHQ_REDIS_CONNECTING && rc->pending == 0) {
        if (reply->type == REDIS_REPLY_ERROR) {
            ngx_http_pushq_redis_down(rc, "PSUBSCRIBE refused");
            ac->data = NULL;
            redisAsyncFree(ac);
            return;
        }

        rc->state = NGX_HTTP_PUSHQ_REDIS_UP;
        rc->backoff = 0;

        if (rc->retry.timer_set) {
            ngx_del_timer(&rc->retry);
        }

        ngx_http_pushq_redis_check_up(rc->link);

        /* what was published while it was down was not mirrored: named
         * subscribers of this worker take again */
        ngx_http_pushq_redis_kick();

        if (ngx_http_pushq_worker.store != NULL) {
            /* and the mirror reads what it did not hear: every channel,
             * from the first */
            rc->link->logged_read = 0;
            rc->link->walk_skip = 0;
            ngx_http_pushq_redis_walk(rc->link);
            ngx_http_pushq_redis_catch_up(rc->link);
        }
    }

    if (ngx_http_pushq_worker.store == NULL) {
        return;
    }

    wakers = 0;
    key = 0;
    why = NULL;
    gap.chan_len = 0;

    st = pushq_redis_mirror_heard_key(ngx_http_pushq_worker.store, reply,
                                      pushq_now_ms(), &wakers, &key, &gap,
                                      &why);

    switch (st) {

    case PUSHQ_OK:
        rc->link->logged_nomem = 0;

        if (gap.chan_len != 0 && gap.chan_len <= sizeof(gap.chan)) {
            (void) ngx_http_pushq_redis_gap(rc->link, (u_char *) gap.chan,
                                            gap.chan_len, gap.after_id);
            ngx_http_pushq_redis_catch_up(rc->link);
        }

        break;

    case PUSHQ_ENOMEM:
        /* once until a message is mirrored again, not per message */

        if (!rc->link->logged_nomem) {
            rc->link->logged_nomem = 1;

            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "pushq: redis %s: message not mirrored: %s "
                          "(raise pushq_shm_size)", rc->link->name,
                          why ? why : "store full");
        }

        break;

    default:
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "pushq: redis %s: ignored a message on the "
                      "subscription: %s", rc->link->name,
                      why ? why : "not ours");
        break;
    }

    if (wakers) {
        /* this worker's own bit too, as a publish (a posted pass) */
        ngx_http_pushq_wake(wakers, key);
    }
}


/*
 * A connection is lost (or could not be made): no command is sent on it
 * any more; the link's outage is logged once; a retry is scheduled.
 * The context itself is freed by hiredis (or by the caller).
 */

static void
ngx_http_pushq_redis_down(ngx_http_pushq_redis_conn_t *rc, const char *err)
{
    u_char                       *p;
    ngx_http_pushq_redis_link_t  *link;

    link = rc->link;

    rc->ac = NULL;
    rc->state = NGX_HTTP_PUSHQ_REDIS_DOWN;
    rc->pending = 0;

    /* "redis: <host:port>: <why>", hiredis's "Connection refused" as
     * "connection refused" */

    p = ngx_snprintf(link->err, sizeof(link->err) - 1, "redis: %s: %s",
                     link->name, err);
    *p = '\0';

    p = link->err + sizeof("redis: ") - 1 + ngx_strlen(link->name) + 2;

    if (p + 1 < link->err + sizeof(link->err)
        && *p >= 'A' && *p <= 'Z' && p[1] >= 'a' && p[1] <= 'z')
    {
        *p = (u_char) (*p - 'A' + 'a');
    }

    if (ngx_http_pushq_redis_exiting) {
        return;
    }

    if (!link->outage) {
        link->outage = 1;

        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "pushq: redis %s, retrying",
                      link->err + sizeof("redis: ") - 1);
    }

    /* the connect timeout, if it was running */

    if (rc->retry.timer_set) {
        ngx_del_timer(&rc->retry);
    }

    ngx_http_pushq_redis_schedule(rc);
}


static void
ngx_http_pushq_redis_schedule(ngx_http_pushq_redis_conn_t *rc)
{
    if (rc->retry.timer_set || (rc->subscriber && ngx_exiting)) {
        return;
    }

    if (rc->backoff == 0) {
        rc->backoff = NGX_HTTP_PUSHQ_REDIS_BACKOFF_MIN;

    } else {
        rc->backoff = ngx_min(rc->backoff * 2,
                              NGX_HTTP_PUSHQ_REDIS_BACKOFF_MAX);
    }

    ngx_http_pushq_redis_timer(rc, rc->backoff);
}


static void
ngx_http_pushq_redis_timer(ngx_http_pushq_redis_conn_t *rc, ngx_msec_t ms)
{
    /* cancelable: it never keeps an exiting worker alive */

    rc->retry.handler = ngx_http_pushq_redis_retry_handler;
    rc->retry.data = &ngx_http_pushq_redis_dummy;
    rc->retry.log = ngx_cycle->log;
    rc->retry.cancelable = 1;

    ngx_add_timer(&rc->retry, ms);
}


static void
ngx_http_pushq_redis_retry_handler(ngx_event_t *ev)
{
    redisAsyncContext            *ac;
    ngx_http_pushq_redis_conn_t  *rc;

    rc = (ngx_http_pushq_redis_conn_t *)
             ((u_char *) ev - offsetof(ngx_http_pushq_redis_conn_t, retry));

    ac = rc->ac;

    if (ac == NULL) {
        ngx_http_pushq_redis_connect(rc);
        return;
    }

    if (rc->state == NGX_HTTP_PUSHQ_REDIS_CONNECTING) {
        /* not up in time: dropped (its callbacks see ac->data NULL) */

        ngx_http_pushq_redis_down(rc, "connection or handshake timed out");
        ac->data = NULL;
        redisAsyncFree(ac);
    }
}


/* the link is back when all its connections are */

static void
ngx_http_pushq_redis_check_up(ngx_http_pushq_redis_link_t *link)
{
    if (link->cmd.state != NGX_HTTP_PUSHQ_REDIS_UP
        || (link->has_sub && link->sub.state != NGX_HTTP_PUSHQ_REDIS_UP))
    {
        return;
    }

    if (link->outage) {
        link->outage = 0;

        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "pushq: redis %s: connected again", link->name);

    } else {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "pushq: redis %s: connected", link->name);
    }
}


/* --- Catching the mirror up (worker 0) ------------------------------------
 *
 * reads[] holds the channels being read; todo[] the channels of the last
 * walk that found no slot yet.  Everything runs on worker 0's event loop:
 * no locking.
 */


/*
 * A channel to read after after_id: merged into its slot when it has one
 * (marked "again" when a read is in flight), else given a free slot.
 * Returns 1 when a read was added, 0 when it was merged or found no slot
 * (then a walk is asked for, logged once while the table stays full).
 * catch_up sends it.
 */

static ngx_uint_t
ngx_http_pushq_redis_gap(ngx_http_pushq_redis_link_t *link,
    const u_char *chan, size_t chan_len, uint64_t after_id)
{
    ngx_uint_t                    i;
    ngx_http_pushq_redis_read_t  *rd, *empty;

    if (link->reads == NULL || chan_len == 0 || chan_len > PUSHQ_NAME_MAX) {
        return 0;
    }

    empty = NULL;

    for (i = 0; i < NGX_HTTP_PUSHQ_REDIS_READS; i++) {
        rd = &link->reads[i];

        if (rd->chan_len == 0) {
            if (empty == NULL) {
                empty = rd;
            }

            continue;
        }

        if (rd->chan_len != chan_len
            || ngx_memcmp(rd->chan, chan, chan_len) != 0)
        {
            continue;
        }

        if (rd->op != NULL) {
            /* read again once this reply is mirrored */

            if (!rd->again || after_id < rd->again_after) {
                rd->again_after = after_id;
            }

            rd->again = 1;

        } else if (after_id < rd->after_id) {
            rd->after_id = after_id;
        }

        return 0;
    }

    if (empty == NULL) {
        link->rewalk = 1;

        if (!link->logged_full) {
            link->logged_full = 1;

            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "pushq: redis %s: more than %d channels to catch "
                          "up at once; the others wait their turn",
                          link->name, NGX_HTTP_PUSHQ_REDIS_READS);
        }

        return 0;
    }

    rd = empty;

    rd->link = link;
    rd->op = NULL;
    rd->after_id = after_id;
    rd->again_after = 0;
    rd->again = 0;
    rd->failures = 0;
    rd->chan_len = chan_len;
    ngx_memcpy(rd->chan, chan, chan_len);

    link->nreads++;

    return 1;
}


typedef struct {
    ngx_http_pushq_redis_link_t  *link;
    ngx_uint_t                    index;
    ngx_uint_t                    skip;
    unsigned                      more:1;
} ngx_http_pushq_redis_walk_ctx_t;


/*
 * Every Redis channel of the store with subscribers goes into todo (what
 * was there is replaced: the walk lists them again); beyond TODO of them,
 * the next walk (once todo is drained) goes on after those.  The store's
 * order may change between two walks: a channel then skipped is read on
 * its next gap.
 */

static void
ngx_http_pushq_redis_walk(ngx_http_pushq_redis_link_t *link)
{
    ngx_http_pushq_redis_walk_ctx_t  ctx;

    if (link->reads == NULL || ngx_http_pushq_worker.store == NULL) {
        return;
    }

    if (link->todo == NULL) {
        link->todo = ngx_alloc(NGX_HTTP_PUSHQ_REDIS_TODO
                               * sizeof(ngx_http_pushq_redis_todo_t),
                               ngx_cycle->log);
        if (link->todo == NULL) {
            return;
        }
    }

    link->todo_head = 0;
    link->todo_n = 0;
    link->rewalk = 0;

    ctx.link = link;
    ctx.index = 0;
    ctx.skip = link->walk_skip;
    ctx.more = 0;

    (void) pushq_store_redis_channels(ngx_http_pushq_worker.store,
                                      ngx_http_pushq_redis_walk_channel,
                                      &ctx);

    link->walk_skip = ctx.more ? ctx.skip + NGX_HTTP_PUSHQ_REDIS_TODO : 0;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "pushq redis walk: %ui channels, %ui to read, more:%d",
                   ctx.index, link->todo_n, (int) ctx.more);
}


/* the store is locked here: copy, no store call */

static void
ngx_http_pushq_redis_walk_channel(void *data, const char *chan,
    size_t chan_len, uint64_t newest_id)
{
    ngx_http_pushq_redis_walk_ctx_t  *ctx = data;

    ngx_http_pushq_redis_todo_t  *t;
    ngx_http_pushq_redis_link_t  *link;

    link = ctx->link;

    if (ctx->index++ < ctx->skip
        || chan_len == 0 || chan_len > PUSHQ_NAME_MAX)
    {
        return;
    }

    if (link->todo_n == NGX_HTTP_PUSHQ_REDIS_TODO) {
        ctx->more = 1;
        return;
    }

    t = &link->todo[link->todo_n++];

    t->after_id = newest_id;
    t->chan_len = chan_len;
    ngx_memcpy(t->chan, chan, chan_len);
}


/*
 * Moves waiting channels into free slots (walking again when todo is
 * drained and a walk was asked for), then sends every read that is not
 * in flight, when the command connection is up.
 */

static void
ngx_http_pushq_redis_catch_up(ngx_http_pushq_redis_link_t *link)
{
    ngx_uint_t                    i, walks;
    ngx_http_pushq_redis_todo_t  *t;
    ngx_http_pushq_redis_read_t  *rd;

    if (link->reads == NULL || ngx_exiting || ngx_http_pushq_redis_exiting
        || ngx_http_pushq_worker.store == NULL)
    {
        return;
    }

    for (walks = 0; /* void */; walks++) {

        while (link->todo_n && link->nreads < NGX_HTTP_PUSHQ_REDIS_READS) {
            t = &link->todo[link->todo_head];

            link->todo_head++;
            link->todo_n--;

            (void) ngx_http_pushq_redis_gap(link, t->chan, t->chan_len,
                                            t->after_id);
        }

        if (link->todo_n == 0) {
            link->todo_head = 0;
        }

        /* at most one walk per call: each lists every channel once */

        if (walks > 0 || link->todo_n != 0
            || link->nreads == NGX_HTTP_PUSHQ_REDIS_READS
            || (!link->rewalk && link->walk_skip == 0))
        {
            break;
        }

        ngx_http_pushq_redis_walk(link);

        if (link->todo_n == 0) {
            break;
        }
    }

    if (link->nreads < NGX_HTTP_PUSHQ_REDIS_READS / 2) {
        link->logged_full = 0;
    }

    if (!ngx_http_pushq_redis_up(link)) {
        /* sent when it is (the handshake's end calls here) */
        return;
    }

    for (i = 0; i < NGX_HTTP_PUSHQ_REDIS_READS; i++) {
        rd = &link->reads[i];

        if (rd->chan_len != 0 && rd->op == NULL) {
            ngx_http_pushq_redis_read_send(rd);

            if (!ngx_http_pushq_redis_up(link)) {
                break;
            }
        }
    }
}


static void
ngx_http_pushq_redis_read_send(ngx_http_pushq_redis_read_t *rd)
{
    const char                 *why;
    pushq_redis_cmd_t           cmd;
    ngx_http_pushq_redis_op_t  *op;

    op = ngx_http_pushq_redis_op(ngx_http_pushq_redis_read_reply, rd);
    if (op == NULL) {
        /* tried again on the next gap or connection */
        return;
    }

    pushq_redis_cmd_range(&cmd, (const char *) rd->chan, rd->chan_len,
                          rd->after_id, NGX_HTTP_PUSHQ_REDIS_READ_MSGS);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "pushq redis read \"%*s\" after %uL",
                   rd->chan_len, rd->chan, rd->after_id);

    why = NULL;

    if (ngx_http_pushq_redis_send(rd->link, &cmd, op, &why) != NGX_OK) {
        /* the op is freed; the read waits for the connection */
        return;
    }

    rd->op = op;
}


/*
 * A range reply: mirrored, the wakers woken; then the channel is read
 * again (after its new local newest id) when Redis has more or a gap was
 * heard meanwhile, else its slot is freed.
 */

static void
ngx_http_pushq_redis_read_reply(ngx_http_pushq_redis_op_t *op,
    struct redisReply *reply, const char *err)
{
    ngx_http_pushq_redis_read_t *rd = op->data;

    int                           more;
    uint64_t                      wakers, after;
    const char                   *why;
    pushq_status_t                st;
    ngx_http_pushq_redis_link_t  *link;

    link = rd->link;
    rd->op = NULL;

    if (ngx_exiting || ngx_http_pushq_worker.store == NULL) {
        /* a reload: the new worker 0 catches its mirror up */
        ngx_http_pushq_redis_read_free(rd);
        return;
    }

    if (reply == NULL
        || (reply->type == REDIS_REPLY_ERROR
            && !ngx_http_pushq_redis_up(link)))
    {
        /*
         * the connection was lost (or is being replaced, NOSCRIPT): read
         * again once it is up, from the lowest point asked for
         */

        if (rd->again) {
            rd->after_id = ngx_min(rd->after_id, rd->again_after);
            rd->again = 0;
        }

        return;
    }

    wakers = 0;
    more = 0;
    why = NULL;

    st = pushq_redis_reply_range(ngx_http_pushq_worker.store,
                                 (const char *) rd->chan, rd->chan_len,
                                 reply, pushq_now_ms(), &wakers, &more,
                                 &why);

    if (wakers) {
        ngx_http_pushq_wake(wakers, 0);
    }

    if (st == PUSHQ_OK && !more && !rd->again) {
        ngx_http_pushq_redis_read_free(rd);
        ngx_http_pushq_redis_catch_up(link);
        return;
    }

    after = ngx_http_pushq_redis_newest(rd->chan, rd->chan_len);

    if (st != PUSHQ_OK || (after == rd->after_id && !rd->again)) {
        /* an error, or "more" without progress */
        rd->failures++;

    } else {
        rd->failures = 0;
    }

    if (rd->again) {
        after = ngx_min(after, rd->again_after);
        rd->again = 0;
    }

    if (rd->failures >= NGX_HTTP_PUSHQ_REDIS_READ_FAILS) {

        /* once per subscription, not per channel or message */

        if (!link->logged_read) {
            link->logged_read = 1;

            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "pushq: redis %s: cannot catch channel \"%*s\" "
                          "up: %s; its subscribers count the messages it "
                          "misses as lost", link->name, rd->chan_len,
                          rd->chan,
                          st != PUSHQ_OK ? (why ? why : "error")
                                         : "no progress");
        }

        ngx_http_pushq_redis_read_free(rd);
        ngx_http_pushq_redis_catch_up(link);
        return;
    }

    rd->after_id = after;

    ngx_http_pushq_redis_read_send(rd);
}


static void
ngx_http_pushq_redis_read_free(ngx_http_pushq_redis_read_t *rd)
{
    if (rd->chan_len == 0) {
        return;
    }

    rd->chan_len = 0;
    rd->op = NULL;
    rd->again = 0;
    rd->link->nreads--;
}


/* the local newest id of a channel (0: none) */

static uint64_t
ngx_http_pushq_redis_newest(const u_char *chan, size_t chan_len)
{
    pushq_channel_stats_t  cs;

    if (pushq_store_channel_stats(ngx_http_pushq_worker.store,
                                  (const char *) chan, chan_len,
                                  pushq_now_ms(), &cs)
        != PUSHQ_OK)
    {
        return 0;
    }

    return cs.last_id;
}


/* --- hiredis on nginx's event loop ----------------------------------------
 *
 * The socket is hiredis's (it connects, reads, writes and closes it); an
 * ngx_connection_t only puts it into nginx's event loop: ac->ev.data is
 * that connection, and c->data the context.  Events are level triggered:
 * hiredis reads at most 16k per call, and level-triggered epoll calls
 * again while more is there.
 */


static ngx_int_t
ngx_http_pushq_redis_attach(ngx_http_pushq_redis_conn_t *rc,
    redisAsyncContext *ac)
{
    ngx_connection_t  *c;

    c = ngx_get_connection(ac->c.fd, ngx_cycle->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = ac;
    c->log = ngx_cycle->log;
    c->read->log = ngx_cycle->log;
    c->write->log = ngx_cycle->log;
    c->read->handler = ngx_http_pushq_redis_event;
    c->write->handler = ngx_http_pushq_redis_event;

    /*
     * not a client: neither worker_shutdown_timeout nor the "open socket
     * left" check at exit touches it
     */

    c->read->channel = 1;
    c->write->channel = 1;

    ac->ev.data = c;
    ac->ev.addRead = ngx_http_pushq_redis_add_read;
    ac->ev.delRead = ngx_http_pushq_redis_del_read;
    ac->ev.addWrite = ngx_http_pushq_redis_add_write;
    ac->ev.delWrite = ngx_http_pushq_redis_del_write;
    ac->ev.cleanup = ngx_http_pushq_redis_cleanup;

    return NGX_OK;
}


static void
ngx_http_pushq_redis_event(ngx_event_t *ev)
{
    ngx_connection_t  *c;

    c = ev->data;

    /* either may free the context and c: nothing is touched after */

    if (ev->write) {
        redisAsyncHandleWrite(c->data);

    } else {
        redisAsyncHandleRead(c->data);
    }
}


static void
ngx_http_pushq_redis_add_read(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (!c->read->active
        && ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                      "pushq: redis: cannot add a read event");
    }
}


static void
ngx_http_pushq_redis_del_read(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_pushq_redis_add_write(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (!c->write->active
        && ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                      "pushq: redis: cannot add a write event");
    }
}


static void
ngx_http_pushq_redis_del_write(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}


/*
 * hiredis frees the context and then closes the socket itself: the events
 * are dropped as ngx_close_connection() drops those of a socket about to
 * be closed (NGX_CLOSE_EVENT: closing takes it out of epoll), and the
 * connection is given back without closing the fd.
 */

static void
ngx_http_pushq_redis_cleanup(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (c->read->active || c->read->disabled) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
    }

    if (c->write->active || c->write->disabled) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_CLOSE_EVENT);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    c->read->closed = 1;
    c->write->closed = 1;

    ngx_free_connection(c);

    /* epoll events still queued for it in this loop are seen as stale */
    c->fd = (ngx_socket_t) -1;
}
