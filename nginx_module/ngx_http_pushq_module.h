
/*
 * pushq nginx module: types shared by its files.
 *
 *   ngx_http_pushq_module.c     directives, configuration, module hooks
 *   ngx_http_pushq_shm.c        the shared zone, per-worker eventfds,
 *                               wake-ups, the local subscriber registry,
 *                               the sweep timer and graceful shutdown
 *   ngx_http_pushq_util.c       answers (JSON, errors), arguments, body
 *   ngx_http_pushq_publisher.c  pushq_publisher
 *   ngx_http_pushq_longpoll.c   pushq_subscriber, long-poll transport
 *   ngx_http_pushq_websocket.c  pushq_subscriber, WebSocket transport
 *   ngx_http_pushq_status.c     pushq_status
 *   ngx_http_pushq_redis.c      pushq_redis: this worker's hiredis
 *                               connections on nginx's event loop, the
 *                               subscription that feeds the mirror
 */

#ifndef _NGX_HTTP_PUSHQ_MODULE_H_INCLUDED_
#define _NGX_HTTP_PUSHQ_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <pushq.h>
#include <pushq_redis.h>


/*
 * nginx dlopens modules with RTLD_GLOBAL: the module's own functions are
 * hidden so they never interpose with another module's (nginx finds the
 * module through ngx_modules[], which the generated file exports).
 */
#pragma GCC visibility push(hidden)


#define NGX_HTTP_PUSHQ_LONGPOLL    0x01
#define NGX_HTTP_PUSHQ_WEBSOCKET   0x02

#define NGX_HTTP_PUSHQ_PUBLISHER   1
#define NGX_HTTP_PUSHQ_SUBSCRIBER  2
#define NGX_HTTP_PUSHQ_STATUS      3


/* One distinct pushq_redis URL of the configuration. */
typedef struct {
    ngx_str_t                    url;
    pushq_redis_url_t            parsed;
    ngx_uint_t                   index;      /* in main conf's redis array */
    /* parsed.host resolved at configuration time, numeric: hiredis
     * resolves a name with a blocking getaddrinfo() */
    char                         addr[NGX_INET6_ADDRSTRLEN + 1];
} ngx_http_pushq_redis_conf_t;

typedef struct ngx_http_pushq_redis_link_s  ngx_http_pushq_redis_link_t;


typedef struct {
    size_t                       shm_size;
    ngx_array_t                  redis;      /* ngx_http_pushq_redis_conf_t *,
                                                distinct URLs */
    ngx_shm_zone_t              *shm_zone;   /* NULL: no pushq location */

    /* one eventfd per worker of this cycle, made in init_module */
    ngx_fd_t                    *efd;
    ngx_uint_t                   nefd;
    /* the lists of changed channels (ngx_http_pushq_changes.c); NULL:
     * none, every pass visits every subscriber */
    void                        *changes;
} ngx_http_pushq_main_conf_t;


typedef struct {
    ngx_uint_t                   role;       /* NGX_HTTP_PUSHQ_PUBLISHER... */
    ngx_uint_t                   subscriber; /* NGX_HTTP_PUSHQ_LONGPOLL|... */

    ngx_http_complex_value_t    *channel;    /* NULL: $arg_channel */
    ngx_http_complex_value_t    *client;     /* NULL: $arg_name */

    ngx_uint_t                   buffer;     /* messages */
    size_t                       buffer_bytes;
    ngx_msec_t                   message_ttl;
    ngx_msec_t                   client_ttl;
    ngx_msec_t                   longpoll_timeout;
    size_t                       max_message_size;
    ngx_flag_t                   websocket_publish;
    ngx_msec_t                   websocket_ping;   /* 0: no pings */
    size_t                       websocket_max_backlog;

    pushq_limits_t               limits;     /* the above, set by merge */

    /* pushq_redis: NULL = this scope's channels live in the local store
     * only; else this worker's link (one per distinct URL) is found
     * through it with ngx_http_pushq_redis_link() */
    ngx_http_pushq_redis_conf_t *redis;
} ngx_http_pushq_loc_conf_t;


typedef struct ngx_http_pushq_sub_s    ngx_http_pushq_sub_t;
typedef struct ngx_http_pushq_group_s  ngx_http_pushq_group_t;


/*
 * The subscriber interface both transports implement (as nchan's
 * subscriber_fn_t): the registry calls notify when the store may have
 * messages for the subscriber, and shutdown when the worker exits.
 */

typedef struct {
    void                       (*notify)(ngx_http_pushq_sub_t *s);
    void                       (*shutdown)(ngx_http_pushq_sub_t *s);
} ngx_http_pushq_sub_fn_t;


struct ngx_http_pushq_sub_s {
    ngx_queue_t                  queue;      /* in group->subs */
    ngx_http_pushq_group_t      *group;      /* NULL: not registered */
    const ngx_http_pushq_sub_fn_t  *fn;
    ngx_http_request_t          *request;
    pushq_sub_t                  sub;
    /* the dispatch pass that last visited it (ngx_http_pushq_pass) */
    ngx_uint_t                   pass;
    unsigned                     open:1;     /* sub is open in the store */
    /* set by the transport when the subscriber's location has pushq_redis:
     * ngx_http_pushq_redis_kick() notifies it */
    unsigned                     redis:1;
};


/* The local subscribers of one channel (pushq_sub_channel_key). */

typedef struct ngx_http_pushq_frame_s  ngx_http_pushq_frame_t;

struct ngx_http_pushq_group_s {
    ngx_rbtree_node_t            node;       /* key: the channel key */
    ngx_queue_t                  subs;
    ngx_uint_t                   nsubs;

    /* the last WebSocket frame encoded for this channel, per format: a
     * broadcast is encoded once and shared by every local subscriber */
    ngx_http_pushq_frame_t      *frame[2];
};


/* A WebSocket frame, shared read-only by the connections sending it. */

struct ngx_http_pushq_frame_s {
    ngx_uint_t                   refs;
    uint64_t                     id;         /* message id; 0: control */
    uint64_t                     life;       /* pushq_sub_life() of it */
    size_t                       len;
    u_char                       data[1];
};


/* Worker-local state (one per process). */

typedef struct {
    pushq_store_t               *store;
    uint32_t                     owner;
    unsigned                     registered:1;
    unsigned                     exiting:1;
    unsigned                     dispatching:1;
    unsigned                     passing:1;  /* a dispatch pass is under way */
    unsigned                     again:1;    /* woken during the pass */
    unsigned                     emptied:1;  /* a group emptied in a slice */

    ngx_fd_t                    *efd;
    ngx_uint_t                   nefd;
    ngx_connection_t            *efd_conn;
    void                        *changes;
    ngx_event_t                  sweep;

    /* the dispatch pass: its number, where it is, its next slice; a
     * pass visits the groups of the channels in keys[0..nkeys) (from
     * the lists of changed channels), or every group when pass_all */
    ngx_uint_t                   pass;
    ngx_rbtree_key_t             pass_key;
    ngx_event_t                  slice;
    unsigned                     pass_all:1;
    uint64_t                    *keys;
    ngx_uint_t                   nkeys;
    ngx_uint_t                   key_index;
    uint64_t                     recovered;  /* pushq_store_recoveries() */

    ngx_rbtree_t                 groups;
    ngx_rbtree_node_t            sentinel;
} ngx_http_pushq_worker_t;


extern ngx_module_t             ngx_http_pushq_module;
extern ngx_http_pushq_worker_t  ngx_http_pushq_worker;


/* ngx_http_pushq_shm.c */
ngx_int_t ngx_http_pushq_init_zone(ngx_shm_zone_t *shm_zone, void *data);
ngx_int_t ngx_http_pushq_create_eventfds(ngx_cycle_t *cycle,
    ngx_http_pushq_main_conf_t *pmcf);
ngx_int_t ngx_http_pushq_worker_start(ngx_cycle_t *cycle,
    ngx_http_pushq_main_conf_t *pmcf);
void ngx_http_pushq_worker_stop(ngx_cycle_t *cycle);
void ngx_http_pushq_wake(uint64_t wakers, uint64_t channel_key);

/* ngx_http_pushq_changes.c */
#define NGX_HTTP_PUSHQ_CHANGES_WORKERS  32
ngx_int_t ngx_http_pushq_changes_create(ngx_cycle_t *cycle,
    ngx_http_pushq_main_conf_t *pmcf, ngx_uint_t n);
void ngx_http_pushq_changes_put(ngx_uint_t from, ngx_uint_t to,
    uint64_t key);
ngx_uint_t ngx_http_pushq_changes_take(ngx_uint_t me, uint64_t *keys,
    ngx_uint_t *n);
ngx_uint_t ngx_http_pushq_changes_room(ngx_uint_t nworkers);
#define NGX_HTTP_PUSHQ_NEWEST  ((uint64_t) -1)
ngx_int_t ngx_http_pushq_doorbell(ngx_http_pushq_sub_t *s,
    pushq_sub_kind_t kind, const char *chan, size_t chan_len,
    const pushq_limits_t *lim, uint64_t after, ngx_log_t *log);
ngx_int_t ngx_http_pushq_register(ngx_http_pushq_sub_t *s);
void ngx_http_pushq_unregister(ngx_http_pushq_sub_t *s);
void ngx_http_pushq_frame_release(ngx_http_pushq_frame_t *f);
ngx_http_pushq_frame_t *ngx_http_pushq_frame_alloc(size_t len,
    ngx_log_t *log);

/* ngx_http_pushq_util.c */
ngx_int_t ngx_http_pushq_send_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *body, size_t len);
ngx_int_t ngx_http_pushq_send_text(ngx_http_request_t *r, ngx_str_t *type,
    u_char *body, size_t len);
ngx_int_t ngx_http_pushq_error(ngx_http_request_t *r, pushq_status_t st,
    const char *why);
ngx_int_t ngx_http_pushq_get_channel(ngx_http_request_t *r,
    ngx_http_pushq_loc_conf_t *plcf, pushq_args_t *args,
    const char **why);
ngx_int_t ngx_http_pushq_get_client(ngx_http_request_t *r,
    ngx_http_pushq_loc_conf_t *plcf, pushq_args_t *args,
    const char **why);
ngx_int_t ngx_http_pushq_parse_args(ngx_http_request_t *r,
    pushq_args_t *args, const char **why);
ngx_int_t ngx_http_pushq_add_header(ngx_http_request_t *r, const char *key,
    const char *value);

/* ngx_http_pushq_redis.c
 *
 * Every worker keeps, per distinct URL, a link: one command connection
 * (hiredis async on nginx's event loop) and, in worker 0 only, one
 * subscription connection that feeds the mirror.  Lost connections are
 * retried with backoff (100 ms doubling to 5 s) and logged once per
 * outage, not per request.
 *
 * A request that sends a command must be able to go away before the reply
 * comes: it gets an op (ngx_http_pushq_redis_op_t) whose `cancelled` the
 * request's cleanup sets; the link calls `handler` for every op exactly
 * once (reply NULL and err set when the connection failed or the command
 * could not be sent), skips it when cancelled, and frees it after.
 */

typedef struct ngx_http_pushq_redis_op_s  ngx_http_pushq_redis_op_t;

typedef void (*ngx_http_pushq_redis_handler_pt)(ngx_http_pushq_redis_op_t *op,
    struct redisReply *reply, const char *err);

struct ngx_http_pushq_redis_op_s {
    ngx_http_pushq_redis_handler_pt  handler;
    void                        *data;       /* e.g. the request */
    unsigned                     cancelled:1;
};

ngx_int_t ngx_http_pushq_redis_init_worker(ngx_cycle_t *cycle,
    ngx_http_pushq_main_conf_t *pmcf);
void ngx_http_pushq_redis_exit_worker(ngx_cycle_t *cycle);
ngx_http_pushq_redis_link_t *ngx_http_pushq_redis_link(
    ngx_http_pushq_redis_conf_t *rcf);
/* Non-zero when the command connection is up (scripts loaded). */
ngx_uint_t ngx_http_pushq_redis_up(ngx_http_pushq_redis_link_t *link);
/* A new op (freed by the link after its handler ran), or NULL. */
ngx_http_pushq_redis_op_t *ngx_http_pushq_redis_op(
    ngx_http_pushq_redis_handler_pt handler, void *data);
/* Queues cmd.  NGX_ERROR, with *why set and the op freed (its handler not
 * called), when the link is down: the caller answers at once. */
ngx_int_t ngx_http_pushq_redis_send(ngx_http_pushq_redis_link_t *link,
    pushq_redis_cmd_t *cmd, ngx_http_pushq_redis_op_t *op,
    const char **why);
/* Calls notify on every local subscriber of this worker that waits on a
 * Redis-scoped channel (e.g. after the link came back up, so named
 * subscribers take again). */
void ngx_http_pushq_redis_kick(void);

/* the handlers */
ngx_int_t ngx_http_pushq_publisher_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_pushq_subscriber_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_pushq_longpoll_handler(ngx_http_request_t *r,
    ngx_http_pushq_loc_conf_t *plcf, pushq_args_t *args);
ngx_int_t ngx_http_pushq_websocket_handler(ngx_http_request_t *r,
    ngx_http_pushq_loc_conf_t *plcf, pushq_args_t *args);
void ngx_http_pushq_ws_exit(void);
ngx_int_t ngx_http_pushq_status_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_PUSHQ_MODULE_H_INCLUDED_ */
