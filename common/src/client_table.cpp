/*
 * client_table.cpp -- named clients: (channel, name) -> last delivered id.
 *
 * One record per name and channel, found through a hash table keyed by
 * both; all of a name's connections share its cursor, so each message goes
 * to one of them (SPEC "Two connections with the same name share one
 * queue").  Publish never looks at clients: a client's backlog is just
 * "ids after my cursor" in the channel's log.
 *
 * A client with no open subscriber sits on the idle list, sorted by the
 * time it expires (its last close + client_ttl); sweep forgets from the
 * head while expired, so expiry costs O(expired), not O(clients).  With
 * one client_ttl for all locations the insert is O(1) (it goes at the
 * tail); mixed ttls walk back from the tail.  client_ttl 0 forgets the name
 * as soon as its last subscriber closes (at the next sweep or open).
 */

#include "store.hpp"

#include <atomic>
#include <cstring>
#include <new>

namespace pushq {

uint64_t store::hash_client(uint64_t chan_off, const char *name,
    size_t len) noexcept
{
    uint64_t h = hash_name(name, len) ^ (chan_off * 0x9e3779b97f4a7c15ULL);
    return h ^ (h >> 31);
}

client_rec *store::find_client(uint64_t chan_off, const char *name,
    size_t len, uint64_t hash) noexcept
{
    uint64_t *b = at<uint64_t>(h_->client_buckets_);
    for (uint64_t o = b[hash & h_->client_mask_]; o != 0;) {
        client_rec *cl = at<client_rec>(o);
        if (cl->hash_ == hash && cl->channel_ == chan_off &&
            cl->name_len_ == len && std::memcmp(cl->name(), name, len) == 0)
        {
            return cl;
        }
        o = cl->hnext_;
    }
    return nullptr;
}

client_rec *store::create_client(channel_rec *c, const char *name,
    size_t len, uint64_t hash, uint64_t cursor) noexcept
{
    uint64_t o = arena_.alloc(sizeof(client_rec) + len);
    if (o == 0) {
        return nullptr;
    }
    void *p = base_ + o;
    std::memset(p, 0, sizeof(client_rec));
    client_rec *cl = static_cast<client_rec *>(p);
    new (&cl->cursor_) std::atomic<uint64_t>(cursor);
    cl->hash_ = hash;
    cl->channel_ = off(c);
    cl->name_len_ = static_cast<uint32_t>(len);
    std::memcpy(cl->name(), name, len);

    uint64_t *b = at<uint64_t>(h_->client_buckets_) + (hash &
                                                       h_->client_mask_);
    cl->hnext_ = *b;
    /* linked only once initialised, also as seen by a crash salvage */
    std::atomic_signal_fence(std::memory_order_seq_cst);
    *b = o;
    c->clients_++;
    h_->clients_++;
    /* open_subs_ == 0: the caller opens a subscriber in the same mutation
     * (or forgets the client again) */
    return cl;
}

void store::forget_client(client_rec *cl, uint64_t now_ms) noexcept
{
    (void) now_ms;
    uint64_t o = off(cl);
    if (cl->idle_) {
        idle_remove(cl);
    }
    uint64_t *link = at<uint64_t>(h_->client_buckets_) + (cl->hash_ &
                                                          h_->client_mask_);
    while (*link != 0 && *link != o) {
        link = &at<client_rec>(*link)->hnext_;
    }
    if (*link == o) {
        *link = cl->hnext_;
    }
    channel_rec *c = at<channel_rec>(cl->channel_);
    c->clients_--;
    h_->clients_--;
    cl->name_len_ = 0;
    arena_.free(o);
}

void store::idle_insert(client_rec *cl) noexcept
{
    uint64_t o = off(cl);
    uint64_t after = h_->idle_tail_;
    while (after != 0 && at<client_rec>(after)->expires_ms_ > cl->expires_ms_) {
        after = at<client_rec>(after)->idle_prev_;
    }
    cl->idle_prev_ = after;
    if (after != 0) {
        client_rec *a = at<client_rec>(after);
        cl->idle_next_ = a->idle_next_;
        a->idle_next_ = o;
    } else {
        cl->idle_next_ = h_->idle_head_;
        h_->idle_head_ = o;
    }
    if (cl->idle_next_ != 0) {
        at<client_rec>(cl->idle_next_)->idle_prev_ = o;
    } else {
        h_->idle_tail_ = o;
    }
    cl->idle_ = 1;
}

void store::idle_remove(client_rec *cl) noexcept
{
    if (cl->idle_prev_ != 0) {
        at<client_rec>(cl->idle_prev_)->idle_next_ = cl->idle_next_;
    } else {
        h_->idle_head_ = cl->idle_next_;
    }
    if (cl->idle_next_ != 0) {
        at<client_rec>(cl->idle_next_)->idle_prev_ = cl->idle_prev_;
    } else {
        h_->idle_tail_ = cl->idle_prev_;
    }
    cl->idle_prev_ = 0;
    cl->idle_next_ = 0;
    cl->idle_ = 0;
}

size_t store::expire_clients(uint64_t now_ms) noexcept
{
    size_t n = 0;
    while (h_->idle_head_ != 0) {
        client_rec *cl = at<client_rec>(h_->idle_head_);
        if (cl->expires_ms_ > now_ms) {
            break;
        }
        forget_client(cl, now_ms);
        n++;
    }
    return n;
}

} // namespace pushq
