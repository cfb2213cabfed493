/*
 * json.cpp -- the JSON answers (SPEC.md "Publish", "Long-poll subscribe",
 * "Status", "Errors").
 */

#include "json.hpp"

#include "base64.hpp"
#include "pushq.h"

namespace pushq {

namespace {

constexpr char hex_[] = "0123456789abcdef";

/* Length of the valid UTF-8 sequence starting at p[i], or 0. */
size_t utf8_seq(const unsigned char *p, size_t n, size_t i) noexcept
{
    unsigned char c = p[i];
    size_t        need;
    unsigned char lo = 0x80, hi = 0xBF;

    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (n - i - 1 < need) {
        return 0;
    }
    if (p[i + 1] < lo || p[i + 1] > hi) {
        return 0;
    }
    for (size_t k = 2; k <= need; k++) {
        if (p[i + k] < 0x80 || p[i + k] > 0xBF) {
            return 0;
        }
    }
    return need + 1;
}

void u_escape(writer &w, unsigned v) noexcept
{
    char e[6] = {'\\', 'u', hex_[v >> 12 & 15], hex_[v >> 8 & 15],
                 hex_[v >> 4 & 15], hex_[v & 15]};
    w.put(e, 6);
}

/* "msg": "<text>" or base64 of the bytes. */
void json_msg_value(writer &w, const pushq_json_msg_t *m) noexcept
{
    const unsigned char *d = static_cast<const unsigned char *>(m->data);
    size_t               n = m->data == nullptr ? 0 : m->len;

    if (!m->binary) {
        json_string(w, d, n);
        return;
    }
    size_t b = base64_encoded_len(n);
    w.put('"');
    if (char *p = w.reserve(b)) {
        base64_encode(p, d, n);
    }
    w.put('"');
}

void lost_reset(writer &w, uint64_t lost, int reset) noexcept
{
    if (lost != 0) {
        w.lit(", \"lost\": ");
        w.u64(lost);
    }
    if (reset) {
        w.lit(", \"reset\": true");
    }
}

} // namespace

void json_string(writer &w, const void *data, size_t n) noexcept
{
    const unsigned char *p = static_cast<const unsigned char *>(data);
    size_t               i = 0, run = 0;

    w.put('"');
    while (i < n) {
        unsigned char c = p[i];

        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
            i++;
            continue;                   /* plain ASCII: copied in a run */
        }
        w.put(reinterpret_cast<const char *>(p + run), i - run);

        if (c < 0x80) {
            switch (c) {
            case '"':  w.lit("\\\""); break;
            case '\\': w.lit("\\\\"); break;
            case '\b': w.lit("\\b"); break;
            case '\f': w.lit("\\f"); break;
            case '\n': w.lit("\\n"); break;
            case '\r': w.lit("\\r"); break;
            case '\t': w.lit("\\t"); break;
            default:   u_escape(w, c); break;     /* 00-1F, 7F */
            }
            i++;
        } else {
            size_t k = utf8_seq(p, n, i);
            if (k == 0) {
                u_escape(w, 0xFFFD);    /* not UTF-8: replacement char */
                i++;
            } else if (k == 3 && c == 0xE2 && p[i + 1] == 0x80
                       && (p[i + 2] == 0xA8 || p[i + 2] == 0xA9))
            {
                u_escape(w, p[i + 2] == 0xA8 ? 0x2028 : 0x2029);
                i += 3;
            } else {
                w.put(reinterpret_cast<const char *>(p + i), k);
                i += k;
            }
        }
        run = i;
    }
    w.put(reinterpret_cast<const char *>(p + run), n - run);
    w.put('"');
}

} // namespace pushq

using namespace pushq;

extern "C" {

PUSHQ_API size_t pushq_json_message(char *out, size_t cap,
    const pushq_json_msg_t *m)
{
    writer w(out, cap);

    if (m == nullptr) {
        return 0;
    }
    w.lit("{\"status\": true, \"msg\": ");
    json_msg_value(w, m);
    w.lit(", \"id\": ");
    w.u64(m->id);
    w.lit(", \"channel\": ");
    json_string(w, m->channel, m->channel == nullptr ? 0 : m->channel_len);
    if (m->binary) {
        w.lit(", \"encoding\": \"base64\"");
    }
    lost_reset(w, m->lost, m->reset);
    w.put('}');
    return w.size();
}

PUSHQ_API size_t pushq_json_batch(char *out, size_t cap,
    const pushq_json_msg_t *msgs, size_t n)
{
    writer w(out, cap);

    if (msgs == nullptr || n == 0) {
        /* nothing to hand out: the batch form of the timeout answer */
        return pushq_json_timeout(out, cap, 1, 0, 0);
    }
    w.lit("{\"status\": true, \"msgs\": [");
    for (size_t i = 0; i < n; i++) {
        if (i != 0) {
            w.lit(", ");
        }
        w.lit("{\"id\": ");
        w.u64(msgs[i].id);
        w.lit(", \"msg\": ");
        json_msg_value(w, &msgs[i]);
        if (msgs[i].binary) {
            w.lit(", \"encoding\": \"base64\"");
        }
        w.put('}');
    }
    w.lit("], \"id\": ");
    w.u64(msgs[n - 1].id);
    w.lit(", \"channel\": ");
    json_string(w, msgs[0].channel,
                msgs[0].channel == nullptr ? 0 : msgs[0].channel_len);
    lost_reset(w, msgs[0].lost, msgs[0].reset);
    w.put('}');
    return w.size();
}

PUSHQ_API size_t pushq_json_timeout(char *out, size_t cap, int batch,
    uint64_t lost, int reset)
{
    writer w(out, cap);

    w.lit("{\"status\": false, \"msg\": \"\"");
    if (batch) {
        w.lit(", \"msgs\": []");
    }
    lost_reset(w, lost, reset);
    w.put('}');
    return w.size();
}

PUSHQ_API size_t pushq_json_published(char *out, size_t cap,
    const pushq_publish_result_t *r, const char *chan, size_t chan_len)
{
    writer w(out, cap);

    if (r == nullptr) {
        return 0;
    }
    w.lit("{\"status\": true, \"id\": ");
    w.u64(r->id);
    w.lit(", \"channel\": ");
    json_string(w, chan, chan == nullptr ? 0 : chan_len);
    w.lit(", \"subscribers\": ");
    w.u64(r->subscribers);
    w.put('}');
    return w.size();
}

PUSHQ_API size_t pushq_json_error(char *out, size_t cap, const char *why)
{
    writer w(out, cap);

    if (why == nullptr) {
        why = "internal error";
    }
    w.lit("{\"status\": false, \"error\": ");
    json_string(w, why, std::strlen(why));
    w.put('}');
    return w.size();
}

PUSHQ_API size_t pushq_json_stats(char *out, size_t cap,
    const pushq_stats_t *st)
{
    writer w(out, cap);

    if (st == nullptr) {
        return 0;
    }
    w.lit("{\"channels\": ");
    w.u64(st->channels);
    w.lit(", \"messages\": ");
    w.u64(st->messages);
    w.lit(", \"message_bytes\": ");
    w.u64(st->message_bytes);
    w.lit(", \"memory\": {\"used\": ");
    w.u64(st->memory_used);
    w.lit(", \"total\": ");
    w.u64(st->memory_total);
    w.lit("}, \"subscribers\": {\"longpoll\": ");
    w.u64(st->subscribers_longpoll);
    w.lit(", \"websocket\": ");
    w.u64(st->subscribers_websocket);
    w.lit("}, \"clients\": ");
    w.u64(st->clients);
    w.lit(", \"published\": ");
    w.u64(st->published);
    w.lit(", \"delivered\": ");
    w.u64(st->delivered);
    w.lit(", \"lost\": ");
    w.u64(st->lost);
    w.lit(", \"dropped_slow\": ");
    w.u64(st->dropped_slow);
    w.put('}');
    return w.size();
}

PUSHQ_API size_t pushq_json_channel_stats(char *out, size_t cap,
    const char *chan, size_t chan_len, const pushq_channel_stats_t *st)
{
    writer w(out, cap);

    if (st == nullptr) {
        return 0;
    }
    w.lit("{\"channel\": ");
    json_string(w, chan, chan == nullptr ? 0 : chan_len);
    w.lit(", \"first_id\": ");
    w.u64(st->first_id);
    w.lit(", \"last_id\": ");
    w.u64(st->last_id);
    w.lit(", \"messages\": ");
    w.u64(st->messages);
    w.lit(", \"subscribers\": ");
    w.u64(st->subscribers);
    w.lit(", \"clients\": ");
    w.u64(st->clients);
    w.put('}');
    return w.size();
}

} // extern "C"
