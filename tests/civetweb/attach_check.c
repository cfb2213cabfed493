/*
 * attach_check.c -- runs pushq_civetweb_attach on a real CivetWeb context
 * with the options given on the command line, for tests/civetweb.
 *
 *   attach_check PORT [--ping-pong] [name value]...
 *
 * Prints "attached" (then detaches, exit 0) or "error: <sentence>" (exit 1).
 * --ping-pong starts CivetWeb with enable_websocket_ping_pong yes.
 */

#include <stdio.h>
#include <string.h>

#include <civetweb.h>

#include "pushq_civetweb.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [--ping-pong] [name value]...\n",
                argv[0]);
        return 2;
    }
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%s", argv[1]);
    int first = 2;
    const char *ping_pong = "no";
    if (argc > 2 && strcmp(argv[2], "--ping-pong") == 0) {
        ping_pong = "yes";
        first = 3;
    }
    const char *cw[] = {"listening_ports", listen, "num_threads", "4",
                        "enable_websocket_ping_pong", ping_pong, NULL};
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof(cb));
    struct mg_context *ctx = mg_start(&cb, NULL, cw);
    if (ctx == NULL) {
        fprintf(stderr, "cannot start CivetWeb on %s\n", listen);
        return 2;
    }
    const char *opts[64];
    int n = 0;
    for (int i = first; i < argc && n < 62; i++) {
        opts[n++] = argv[i];
    }
    opts[n] = NULL;
    char err[512] = "";
    struct pushq_civetweb *p = pushq_civetweb_attach(ctx, opts, err,
                                                     sizeof(err));
    int rc;
    if (p != NULL) {
        printf("attached\n");
        pushq_civetweb_detach(p);
        rc = 0;
    } else {
        printf("error: %s\n", err);
        rc = 1;
    }
    mg_stop(ctx);
    return rc;
}
