/*
 * embed.c -- a CivetWeb application that embeds pushq.
 *
 *   pushq-embed-example PORT
 *
 * Serves /pub, /sub (long-poll and WebSocket) and /status from pushq, and
 * one handler of its own, /app/notify?channel=C&text=T, that pushes T to
 * channel C from C code with pushq_civetweb_publish (no HTTP publish
 * involved): the way an application sends server-side events.
 * Stops on SIGTERM or SIGINT.
 *
 * Build: cc embed.c libpushq_civetweb.a libpushq.a -lcivetweb -lcrypto
 *        -lpthread -lstdc++
 */

#define _POSIX_C_SOURCE 200809L

#include <civetweb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pushq_civetweb.h"

/* GET /app/notify?channel=C&text=T -> publishes T on C. */
static int notify_handler(struct mg_connection *conn, void *cbdata)
{
    struct pushq_civetweb *push = cbdata;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *q = ri->query_string ? ri->query_string : "";
    char channel[65], text[1024], err[256], body[128];
    uint64_t id = 0;

    if (mg_get_var(q, strlen(q), "channel", channel, sizeof(channel)) < 0) {
        strcpy(channel, "default");
    }
    if (mg_get_var(q, strlen(q), "text", text, sizeof(text)) < 0) {
        mg_send_http_error(conn, 400, "text: missing");
        return 400;
    }
    if (pushq_civetweb_publish(push, channel, strlen(channel), text,
                               strlen(text), 0, &id, err, sizeof(err)) != 0) {
        mg_send_http_error(conn, 400, "%s", err);
        return 400;
    }
    snprintf(body, sizeof(body), "{\"published\": %llu}",
             (unsigned long long)id);
    mg_send_http_ok(conn, "application/json", (long long)strlen(body));
    mg_write(conn, body, strlen(body));
    return 200;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%s", argv[1]);

    /* Signals are taken by sigwait; CivetWeb's threads inherit the mask. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    /* 1. Start CivetWeb as usual.  Each waiting long-poll and each open
     *    WebSocket holds one thread: size num_threads for them.
     *    tcp_nodelay avoids ~44 ms of Nagle delay per small message;
     *    pushq needs enable_websocket_ping_pong left at "no". */
    const char *cw_options[] = {
        "listening_ports", listen,
        "num_threads", "64",
        "tcp_nodelay", "1",
        NULL
    };
    struct mg_callbacks callbacks;
    memset(&callbacks, 0, sizeof(callbacks));
    struct mg_context *ctx = mg_start(&callbacks, NULL, cw_options);
    if (ctx == NULL) {
        fprintf(stderr, "cannot start CivetWeb on %s\n", listen);
        return 1;
    }

    /* 2. Attach pushq: one call. */
    const char *push_options[] = {
        "publisher_uri", "/pub",
        "subscriber_uri", "/sub",
        "status_uri", "/status",
        "longpoll_timeout", "20s",
        "store_size", "16m",
        NULL
    };
    char err[256];
    struct pushq_civetweb *push =
        pushq_civetweb_attach(ctx, push_options, err, sizeof(err));
    if (push == NULL) {
        fprintf(stderr, "pushq: %s\n", err);
        mg_stop(ctx);
        return 1;
    }

    /* 3. The application's own handlers may publish directly. */
    mg_set_request_handler(ctx, "/app/notify", notify_handler, push);
    fprintf(stderr, "embed example: listening on %s\n", listen);

    int sig = 0;
    sigwait(&stop, &sig);

    /* 4. Detach before mg_stop: waiting long-polls are answered and
     *    WebSockets closed with 1001. */
    mg_set_request_handler(ctx, "/app/notify", NULL, NULL);
    pushq_civetweb_detach(push);
    mg_stop(ctx);
    fprintf(stderr, "embed example: stopped\n");
    return 0;
}
