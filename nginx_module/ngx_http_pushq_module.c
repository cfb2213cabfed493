
/*
 * pushq nginx module: directives, configuration and the module's hooks.
 * The behaviour is SPEC.md's; the core is libpushq (pushq.h).
 */


#include "ngx_http_pushq_module.h"


static ngx_int_t ngx_http_pushq_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_pushq_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_pushq_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_pushq_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_pushq_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_pushq_role(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_pushq_subscriber(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_pushq_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_pushq_check_positive_msec(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_pushq_check_positive_size(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_pushq_check_shm_size(ngx_conf_t *cf, void *post,
    void *data);
static ngx_int_t ngx_http_pushq_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_pushq_init_process(ngx_cycle_t *cycle);
static void ngx_http_pushq_exit_process(ngx_cycle_t *cycle);


static char *ngx_http_pushq_check_buffer(ngx_conf_t *cf, void *post,
    void *data);

static ngx_conf_post_handler_pt  ngx_http_pushq_buffer_bounds =
    ngx_http_pushq_check_buffer;

static ngx_conf_post_handler_pt  ngx_http_pushq_positive_msec =
    ngx_http_pushq_check_positive_msec;

static ngx_conf_post_handler_pt  ngx_http_pushq_positive_size =
    ngx_http_pushq_check_positive_size;

static ngx_conf_post_handler_pt  ngx_http_pushq_shm_size_post =
    ngx_http_pushq_check_shm_size;


static ngx_command_t  ngx_http_pushq_commands[] = {

    { ngx_string("pushq_shm_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_pushq_main_conf_t, shm_size),
      &ngx_http_pushq_shm_size_post },

    { ngx_string("pushq_publisher"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_pushq_role,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_PUSHQ_PUBLISHER,
      NULL },

    { ngx_string("pushq_subscriber"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE12,
      ngx_http_pushq_subscriber,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_PUSHQ_SUBSCRIBER,
      NULL },

    { ngx_string("pushq_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_pushq_role,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_PUSHQ_STATUS,
      NULL },

    { ngx_string("pushq_channel"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pushq_loc_conf_t, channel),
      NULL },

    { ngx_string("pushq_client"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pushq_loc_conf_t, client),
      NULL },

    { ngx_string("pushq_buffer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pushq_loc_conf_t, buffer),
      &ngx_http_pushq_buffer_bounds },

    { ngx_string("pushq_buffer_bytes"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pushq_loc_conf_t, buffer_bytes),
      &ngx_http_pushq_positive_size },

    { ngx_string("pushq_message_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pushq_loc_conf_t, message_ttl),
      &ngx_http_pushq_positive_msec },

    { ngx_string("pushq_client_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pushq_loc_conf_t, client_ttl),
      &ngx_http_pushq_positive_msec },

    { ngx_string("pushq_longpoll_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pushq_loc_conf_t, longpoll_timeout),
      NULL },

    { ngx_string("pushq_max_message_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pushq_loc_conf_t, max_message_size),
      NULL },

    { ngx_string("pushq_websocket_publish"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pushq_loc_conf_t, websocket_publish),
      NULL },

    { ngx_string("pushq_websocket_ping"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pushq_loc_conf_t, websocket_ping),
      NULL },

    { ngx_string("pushq_websocket_max_backlog"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pushq_loc_conf_t, websocket_max_backlog),
      &ngx_http_pushq_positive_size },

    { ngx_string("pushq_redis"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_pushq_redis,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_pushq_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_pushq_postconfiguration,      /* postconfiguration */

    ngx_http_pushq_create_main_conf,       /* create main configuration */
    ngx_http_pushq_init_main_conf,         /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_pushq_create_loc_conf,        /* create location configuration */
    ngx_http_pushq_merge_loc_conf          /* merge location configuration */
};


ngx_module_t  ngx_http_pushq_module = {
    NGX_MODULE_V1,
    &ngx_http_pushq_module_ctx,            /* module context */
    ngx_http_pushq_commands,               /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_pushq_init_module,            /* init module */
    ngx_http_pushq_init_process,           /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_pushq_exit_process,           /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* set when any location uses pushq: only then is the zone made */
static ngx_uint_t  ngx_http_pushq_used;


static void *
ngx_http_pushq_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_pushq_main_conf_t  *pmcf;

    pmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_pushq_main_conf_t));
    if (pmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     pmcf->shm_zone = NULL;
     *     pmcf->efd = NULL;
     *     pmcf->nefd = 0;
     */

    pmcf->shm_size = NGX_CONF_UNSET_SIZE;

    if (ngx_array_init(&pmcf->redis, cf->pool, 1,
                       sizeof(ngx_http_pushq_redis_conf_t *))
        != NGX_OK)
    {
        return NULL;
    }

    ngx_http_pushq_used = 0;

    return pmcf;
}


static char *
ngx_http_pushq_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_pushq_main_conf_t *pmcf = conf;

    ngx_conf_init_size_value(pmcf->shm_size, 32 * 1024 * 1024);

    return NGX_CONF_OK;
}


static void *
ngx_http_pushq_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_pushq_loc_conf_t  *plcf;

    plcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_pushq_loc_conf_t));
    if (plcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     plcf->role = 0;
     *     plcf->limits = { 0 };
     */

    plcf->subscriber = NGX_CONF_UNSET_UINT;
    plcf->channel = NGX_CONF_UNSET_PTR;
    plcf->client = NGX_CONF_UNSET_PTR;
    plcf->buffer = NGX_CONF_UNSET_UINT;
    plcf->buffer_bytes = NGX_CONF_UNSET_SIZE;
    plcf->message_ttl = NGX_CONF_UNSET_MSEC;
    plcf->client_ttl = NGX_CONF_UNSET_MSEC;
    plcf->longpoll_timeout = NGX_CONF_UNSET_MSEC;
    plcf->max_message_size = NGX_CONF_UNSET_SIZE;
    plcf->websocket_publish = NGX_CONF_UNSET;
    plcf->websocket_ping = NGX_CONF_UNSET_MSEC;
    plcf->websocket_max_backlog = NGX_CONF_UNSET_SIZE;
    plcf->redis = NGX_CONF_UNSET_PTR;

    return plcf;
}


static char *
ngx_http_pushq_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_pushq_loc_conf_t *prev = parent;
    ngx_http_pushq_loc_conf_t *conf = child;

    ngx_conf_merge_uint_value(conf->subscriber, prev->subscriber,
                              NGX_HTTP_PUSHQ_LONGPOLL
                              |NGX_HTTP_PUSHQ_WEBSOCKET);
    ngx_conf_merge_ptr_value(conf->channel, prev->channel, NULL);
    ngx_conf_merge_ptr_value(conf->client, prev->client, NULL);
    ngx_conf_merge_uint_value(conf->buffer, prev->buffer, 1000);
    ngx_conf_merge_size_value(conf->buffer_bytes, prev->buffer_bytes,
                              16 * 1024 * 1024);
    ngx_conf_merge_msec_value(conf->message_ttl, prev->message_ttl,
                              3600 * 1000);
    ngx_conf_merge_msec_value(conf->client_ttl, prev->client_ttl,
                              300 * 1000);
    ngx_conf_merge_msec_value(conf->longpoll_timeout, prev->longpoll_timeout,
                              30 * 1000);
    ngx_conf_merge_size_value(conf->max_message_size, prev->max_message_size,
                              64 * 1024);
    ngx_conf_merge_value(conf->websocket_publish, prev->websocket_publish, 1);
    ngx_conf_merge_msec_value(conf->websocket_ping, prev->websocket_ping,
                              30 * 1000);
    ngx_conf_merge_size_value(conf->websocket_max_backlog,
                              prev->websocket_max_backlog, 1024 * 1024);
    ngx_conf_merge_ptr_value(conf->redis, prev->redis, NULL);

    conf->limits.buffer = (uint32_t) conf->buffer;
    conf->limits.buffer_bytes = conf->buffer_bytes;
    conf->limits.message_ttl_ms = conf->message_ttl;
    conf->limits.client_ttl_ms = conf->client_ttl;
    conf->limits.max_message_size = conf->max_message_size;

    return NGX_CONF_OK;
}


static const char *
ngx_http_pushq_role_name(ngx_uint_t role)
{
    switch (role) {
    case NGX_HTTP_PUSHQ_PUBLISHER:
        return "pushq_publisher";
    case NGX_HTTP_PUSHQ_SUBSCRIBER:
        return "pushq_subscriber";
    default:
        return "pushq_status";
    }
}


/* pushq_publisher; pushq_status;  (cmd->offset is the role) */

static char *
ngx_http_pushq_role(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pushq_loc_conf_t *plcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (plcf->role == cmd->offset) {
        return "is duplicate";
    }

    if (plcf->role) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" cannot be combined with \"%s\" in one "
                           "location", &cmd->name,
                           ngx_http_pushq_role_name(plcf->role));
        return NGX_CONF_ERROR;
    }

    plcf->role = cmd->offset;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    switch (cmd->offset) {
    case NGX_HTTP_PUSHQ_PUBLISHER:
        clcf->handler = ngx_http_pushq_publisher_handler;
        break;
    case NGX_HTTP_PUSHQ_SUBSCRIBER:
        clcf->handler = ngx_http_pushq_subscriber_handler;
        break;
    default:
        clcf->handler = ngx_http_pushq_status_handler;
        break;
    }

    ngx_http_pushq_used = 1;

    return NGX_CONF_OK;
}


/* pushq_subscriber [longpoll] [websocket]; */

static char *
ngx_http_pushq_subscriber(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pushq_loc_conf_t *plcf = conf;

    char        *rv;
    ngx_str_t   *value;
    ngx_uint_t   i, mask;

    value = cf->args->elts;
    mask = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "longpoll") == 0) {
            mask |= NGX_HTTP_PUSHQ_LONGPOLL;
            continue;
        }

        if (ngx_strcmp(value[i].data, "websocket") == 0) {
            mask |= NGX_HTTP_PUSHQ_WEBSOCKET;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "it must be \"longpoll\" and/or \"websocket\"",
                           &value[i], &cmd->name);
        return NGX_CONF_ERROR;
    }

    rv = ngx_http_pushq_role(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    plcf->subscriber = mask ? mask
                            : NGX_HTTP_PUSHQ_LONGPOLL|NGX_HTTP_PUSHQ_WEBSOCKET;

    return NGX_CONF_OK;
}


/*
 * pushq_redis redis://[:password@]host[:port][/db] | off;
 *
 * Parsed now (pushq_redis_url_parse says what is wrong), the host resolved
 * now to an address (a worker never resolves: hiredis would block in
 * getaddrinfo()).  The scopes naming the same Redis (host, port, password
 * and db) share one entry of the main conf's redis array, hence one link
 * per worker.
 */

static char *
ngx_http_pushq_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pushq_loc_conf_t *plcf = conf;

    ngx_str_t                     *value;
    ngx_url_t                      u;
    ngx_uint_t                     i, pick;
    const char                    *why;
    pushq_redis_url_t              url;
    ngx_http_pushq_redis_conf_t   *rcf, **rcfp;
    ngx_http_pushq_main_conf_t    *pmcf;

    if (plcf->redis != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        plcf->redis = NULL;
        return NGX_CONF_OK;
    }

    ngx_memzero(&url, sizeof(pushq_redis_url_t));
    why = NULL;

    if (pushq_redis_url_parse((const char *) value[1].data, value[1].len,
                              &url, &why)
        != PUSHQ_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid URL \"%V\" in \"%V\" directive: %s; "
                           "it must be \"redis://[:password@]host[:port]"
                           "[/db]\" or \"off\"", &value[1], &cmd->name,
                           why ? why : "not a Redis URL");
        return NGX_CONF_ERROR;
    }

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_pushq_module);

    rcfp = pmcf->redis.elts;

    for (i = 0; i < pmcf->redis.nelts; i++) {
        rcf = rcfp[i];

        if (rcf->parsed.port == url.port && rcf->parsed.db == url.db
            && ngx_strcmp(rcf->parsed.host, url.host) == 0
            && ngx_strcmp(rcf->parsed.password, url.password) == 0)
        {
            plcf->redis = rcf;
            return NGX_CONF_OK;
        }
    }

    rcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_pushq_redis_conf_t));
    if (rcf == NULL) {
        return NGX_CONF_ERROR;
    }

    rcf->url = value[1];
    rcf->parsed = url;
    rcf->index = pmcf->redis.nelts;

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.host.data = (u_char *) rcf->parsed.host;
    u.host.len = ngx_strlen(rcf->parsed.host);
    u.port = rcf->parsed.port;

    if (ngx_inet_resolve_host(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cannot resolve host \"%V\" of \"%V\" in "
                           "\"%V\" directive: %s", &u.host, &value[1],
                           &cmd->name, u.err ? u.err : "not found");
        return NGX_CONF_ERROR;
    }

    /* the first IPv4 address if any: Redis often listens on 127.0.0.1
     * only while "localhost" is ::1 first */

    pick = 0;

    for (i = 0; i < u.naddrs; i++) {
        if (u.addrs[i].sockaddr->sa_family == AF_INET) {
            pick = i;
            break;
        }
    }

    (void) ngx_sock_ntop(u.addrs[pick].sockaddr, u.addrs[pick].socklen,
                         (u_char *) rcf->addr, sizeof(rcf->addr) - 1, 0);

    rcfp = ngx_array_push(&pmcf->redis);
    if (rcfp == NULL) {
        return NGX_CONF_ERROR;
    }

    *rcfp = rcf;
    plcf->redis = rcf;

    return NGX_CONF_OK;
}


static char *
ngx_http_pushq_check_positive_msec(ngx_conf_t *cf, void *post, void *data)
{
    ngx_msec_t  *ms = data;

    if (*ms == 0) {
        return "must be more than 0";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_pushq_check_buffer(ngx_conf_t *cf, void *post, void *data)
{
    ngx_uint_t  *np = data;

    /* pushq_limits_t.buffer is 32 bits */

    if (*np < 1 || *np > 100000000) {
        return "must be between 1 and 100000000";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_pushq_check_positive_size(ngx_conf_t *cf, void *post, void *data)
{
    size_t  *sp = data;

    if (*sp == 0) {
        return "must be more than 0";
    }

    return NGX_CONF_OK;
}


/* the zone holds nginx's slab header, then the store */

static size_t
ngx_http_pushq_shm_min(void)
{
    return pushq_store_min_size() + 8 * ngx_pagesize;
}


static char *
ngx_http_pushq_check_shm_size(ngx_conf_t *cf, void *post, void *data)
{
    size_t  *sp = data;

    if (*sp < ngx_http_pushq_shm_min()) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"pushq_shm_size\" of %uz bytes is too small, "
                           "it must be at least %uz", *sp,
                           ngx_http_pushq_shm_min());
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * The store lives in one shared zone "pushq", added once the whole http
 * block is parsed (pushq_shm_size is known) and only when a location uses
 * pushq.  A reload with the same size reuses the zone and so keeps every
 * channel, message and named client.
 */

static ngx_int_t
ngx_http_pushq_postconfiguration(ngx_conf_t *cf)
{
    ngx_str_t                    name = ngx_string("pushq");
    ngx_http_pushq_main_conf_t  *pmcf;

    if (!ngx_http_pushq_used) {
        return NGX_OK;
    }

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_pushq_module);

    pmcf->shm_zone = ngx_shared_memory_add(cf, &name, pmcf->shm_size,
                                           &ngx_http_pushq_module);
    if (pmcf->shm_zone == NULL) {
        return NGX_ERROR;
    }

    pmcf->shm_zone->init = ngx_http_pushq_init_zone;
    pmcf->shm_zone->data = pmcf;

    return NGX_OK;
}


static ngx_http_pushq_main_conf_t *
ngx_http_pushq_cycle_conf(ngx_cycle_t *cycle)
{
    ngx_http_pushq_main_conf_t  *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_pushq_module);

    if (pmcf == NULL || pmcf->shm_zone == NULL) {
        return NULL;
    }

    return pmcf;
}


/* in the master (or the single process), before the workers fork */

static ngx_int_t
ngx_http_pushq_init_module(ngx_cycle_t *cycle)
{
    ngx_http_pushq_main_conf_t  *pmcf;

    pmcf = ngx_http_pushq_cycle_conf(cycle);
    if (pmcf == NULL) {
        return NGX_OK;
    }

    return ngx_http_pushq_create_eventfds(cycle, pmcf);
}


static ngx_int_t
ngx_http_pushq_init_process(ngx_cycle_t *cycle)
{
    ngx_http_pushq_main_conf_t  *pmcf;

    /* cache manager and loader processes serve no requests */

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    pmcf = ngx_http_pushq_cycle_conf(cycle);
    if (pmcf == NULL) {
        return NGX_OK;
    }

    if (ngx_http_pushq_worker_start(cycle, pmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    /* connects to every pushq_redis, without waiting */

    return ngx_http_pushq_redis_init_worker(cycle, pmcf);
}


static void
ngx_http_pushq_exit_process(ngx_cycle_t *cycle)
{
    /* first: the replies still pending may not reach freed requests */

    ngx_http_pushq_redis_exit_worker(cycle);

    ngx_http_pushq_worker_stop(cycle);
}
