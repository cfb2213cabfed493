/*
 * pushq_civetweb.h -- attach pushq's push endpoints to a running CivetWeb
 * server (libcivetweb 1.15, mg_* C API).
 *
 *     const char *opts[] = {
 *         "publisher_uri",  "/send_msg/",
 *         "subscriber_uri", "/get_msg/",
 *         "status_uri",     "/pushq_status",
 *         NULL
 *     };
 *     char err[256];
 *     struct pushq_civetweb *p =
 *         pushq_civetweb_attach(ctx, opts, err, sizeof(err));
 *     if (p == NULL) { fprintf(stderr, "pushq: %s\n", err); ... }
 *     ...
 *     pushq_civetweb_detach(p);      before mg_stop(ctx)
 *
 * Options are name/value strings named like the nginx directives without
 * the "pushq_" prefix, with the same value syntax ("30s", "64k"); see the
 * README's options table.
 */

#ifndef PUSHQ_CIVETWEB_H
#define PUSHQ_CIVETWEB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mg_context;
struct pushq_civetweb;

/* Registers the handlers for the URIs in `options` on ctx and creates the
 * store (option "store_size", default 32m, in heap memory).  `options` is a
 * NULL-terminated list of name, value pairs.  On a bad or unknown option,
 * or when CivetWeb lacks WebSocket support (mg_check_feature(16)), returns
 * NULL and writes a sentence naming the option into error (error_size
 * bytes, NUL-terminated).  Call from any thread after mg_start. */
struct pushq_civetweb *pushq_civetweb_attach(struct mg_context *ctx,
                                             const char **options,
                                             char *error, size_t error_size);

/* Answers every waiting long-poll, closes every WebSocket with 1001, removes
 * the handlers and frees everything.  Returns once no handler thread is
 * inside pushq any more.  Call before mg_stop(ctx). */
void pushq_civetweb_detach(struct pushq_civetweb *p);

/* Publishes a message from the embedding program itself (no HTTP), with the
 * limits of the options given at attach.  binary: non-zero for a binary
 * message.  Returns 0 and the message id in *id (may be NULL), or -1 with a
 * sentence in error.  Any thread. */
int pushq_civetweb_publish(struct pushq_civetweb *p,
                           const char *channel, size_t channel_len,
                           const void *msg, size_t len, int binary,
                           uint64_t *id, char *error, size_t error_size);

/* --- Additions (additive to the ABI above) ----------------------------- */

struct mg_connection;

/* Checks one option as attach would (name and value, NUL-terminated):
 * returns 0, or -1 with the same sentence attach would give in error.
 * For programs that read options from a file and want to name the line. */
int pushq_civetweb_option_check(const char *name, const char *value,
                                char *error, size_t error_size);

/* Optional: call from CivetWeb's begin_request callback (before CivetWeb
 * looks at the request).  CivetWeb 1.15 answers a WebSocket upgrade with a
 * missing key or a version other than 13 itself, in plain text, before any
 * handler of ours runs; with this hook such a request to one of p's
 * subscriber URIs gets SPEC.md's JSON error (426 with
 * Sec-WebSocket-Version: 13, or 400/405) instead.  Returns the HTTP status
 * it answered with (> 0: return it from begin_request), or 0 when the
 * request is not pushq's to answer here (return 0 so CivetWeb goes on).
 * pushq-civetweb installs it. */
int pushq_civetweb_begin_request(struct pushq_civetweb *p,
                                 struct mg_connection *conn);

#ifdef __cplusplus
}
#endif

#endif /* PUSHQ_CIVETWEB_H */
