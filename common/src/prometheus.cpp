/*
 * prometheus.cpp -- pushq_prometheus_stats and
 * pushq_prometheus_channel_stats.
 *
 * Metric names (README "Protocol"):
 *   pushq_channels, pushq_messages, pushq_message_bytes,
 *   pushq_memory_used_bytes, pushq_memory_total_bytes,
 *   pushq_subscribers{transport="longpoll"|"websocket"}, pushq_clients
 *   (gauges); pushq_published_total, pushq_delivered_total,
 *   pushq_lost_total, pushq_dropped_slow_total (counters); and per channel
 *   pushq_channel_first_id, pushq_channel_last_id, pushq_channel_messages,
 *   pushq_channel_subscribers, pushq_channel_clients with channel="...".
 */

#include "prometheus.hpp"

#include <cstdint>

#include "pushq.h"

namespace pushq {

void prometheus_label_value(writer &w, const char *p, size_t n) noexcept
{
    w.put('"');
    for (size_t i = 0; i < n; i++) {
        switch (p[i]) {
        case '\\': w.lit("\\\\"); break;
        case '"':  w.lit("\\\""); break;
        case '\n': w.lit("\\n"); break;
        default:   w.put(p[i]); break;
        }
    }
    w.put('"');
}

namespace {

void head(writer &w, const char *name, const char *type, const char *help)
    noexcept
{
    w.lit("# HELP ");
    w.str(name);
    w.put(' ');
    w.str(help);
    w.lit("\n# TYPE ");
    w.str(name);
    w.put(' ');
    w.str(type);
    w.put('\n');
}

void metric(writer &w, const char *name, const char *type, const char *help,
            uint64_t v) noexcept
{
    head(w, name, type, help);
    w.str(name);
    w.put(' ');
    w.u64(v);
    w.put('\n');
}

void channel_metric(writer &w, const char *name, const char *help,
                    const char *chan, size_t chan_len, uint64_t v) noexcept
{
    head(w, name, "gauge", help);
    w.str(name);
    w.lit("{channel=");
    prometheus_label_value(w, chan, chan_len);
    w.lit("} ");
    w.u64(v);
    w.put('\n');
}

} // namespace

} // namespace pushq

using namespace pushq;

extern "C" {

PUSHQ_API size_t pushq_prometheus_stats(char *out, size_t cap,
    const pushq_stats_t *st)
{
    writer w(out, cap);

    if (st == nullptr) {
        return 0;
    }
    metric(w, "pushq_channels", "gauge", "Channels alive.", st->channels);
    metric(w, "pushq_messages", "gauge", "Messages buffered.",
           st->messages);
    metric(w, "pushq_message_bytes", "gauge",
           "Bytes of the messages buffered.", st->message_bytes);
    metric(w, "pushq_memory_used_bytes", "gauge",
           "Bytes of the store region in use.", st->memory_used);
    metric(w, "pushq_memory_total_bytes", "gauge",
           "Bytes of the store region.", st->memory_total);
    head(w, "pushq_subscribers", "gauge",
         "Subscribers connected, by transport.");
    w.lit("pushq_subscribers{transport=\"longpoll\"} ");
    w.u64(st->subscribers_longpoll);
    w.lit("\npushq_subscribers{transport=\"websocket\"} ");
    w.u64(st->subscribers_websocket);
    w.put('\n');
    metric(w, "pushq_clients", "gauge", "Named clients alive.",
           st->clients);
    metric(w, "pushq_published_total", "counter",
           "Messages published since the store was made.", st->published);
    metric(w, "pushq_delivered_total", "counter",
           "Messages handed to subscribers since the store was made.",
           st->delivered);
    metric(w, "pushq_lost_total", "counter",
           "Messages gone before a named or cursor client got them.",
           st->lost);
    metric(w, "pushq_dropped_slow_total", "counter",
           "Subscribers disconnected for reading too slowly.",
           st->dropped_slow);
    return w.size();
}

PUSHQ_API size_t pushq_prometheus_channel_stats(char *out, size_t cap,
    const char *chan, size_t chan_len, const pushq_channel_stats_t *st)
{
    writer w(out, cap);

    if (st == nullptr) {
        return 0;
    }
    if (chan == nullptr) {
        chan_len = 0;
    }
    channel_metric(w, "pushq_channel_first_id",
                   "Id of the oldest buffered message (0: none).",
                   chan, chan_len, st->first_id);
    channel_metric(w, "pushq_channel_last_id",
                   "Id of the newest message published (0: none).",
                   chan, chan_len, st->last_id);
    channel_metric(w, "pushq_channel_messages", "Messages buffered.",
                   chan, chan_len, st->messages);
    channel_metric(w, "pushq_channel_subscribers", "Subscribers connected.",
                   chan, chan_len, st->subscribers);
    channel_metric(w, "pushq_channel_clients", "Named clients alive.",
                   chan, chan_len, st->clients);
    return w.size();
}

} // extern "C"
