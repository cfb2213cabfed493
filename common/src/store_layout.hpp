/*
 * store_layout.hpp -- the records the store keeps inside its region.
 *
 * Everything here lives in memory shared by processes that may map it at
 * different addresses, so records link to each other by offset from the
 * region's base (0 = none; offset 0 is the store header, never a record).
 * Records are plain data plus std::atomic words that lock-free readers
 * (pushq_sub_ready, pushq_sub_wait) load; std::atomic<uint64_t/uint32_t> is
 * lock-free and address-free on every target we build for, so it works
 * across processes.
 *
 * Changing any struct here changes the region layout: bump layout_version
 * so that a zone kept across an nginx reload by an older module is
 * formatted afresh instead of being misread.
 */

#ifndef PUSHQ_STORE_LAYOUT_HPP
#define PUSHQ_STORE_LAYOUT_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <pthread.h>

#include "pushq.h"
#include "arena.hpp"

namespace pushq {

inline constexpr uint64_t store_magic = 0x5453514855535030ULL; /* "0PSUHQST" */
inline constexpr uint32_t layout_version = 2;   /* 2: Redis mirror fields */

static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<uint64_t>) == 8);

/* One registered owner (an nginx worker, or a whole CivetWeb program). */
struct owner_slot {
    uint32_t  in_use_;
    int32_t   pid_;             /* 0 = never reaped                       */
    uint32_t  waker_;           /* 0..PUSHQ_MAX_WAKERS-1                  */
    uint32_t  pad_;
    uint64_t  subs_head_;       /* its subscriber records (sub_rec list)  */
    uint64_t  subs_;            /* how many                               */
};

/* The region starts with this header; the arena follows it. */
struct store_header {
    uint64_t  magic_;
    uint32_t  version_;
    uint32_t  header_size_;     /* sizeof(store_header) when formatted     */
    uint64_t  size_;            /* bytes of the region                    */

    pthread_mutex_t mutex_;     /* robust, process-shared                  */
    /* Set under the lock while a mutation is half done, cleared when the
     * structures are consistent again.  A locker that inherits the lock
     * from a dead owner (EOWNERDEAD) with dirty_ == 0 knows the state is
     * sound; with dirty_ != 0 it validates, and salvages (or, failing
     * that, resets) when the validation fails (store_recovery.cpp). */
    uint32_t  dirty_;
    uint32_t  pad0_;
    /* Bumped by every reset of the contents (not by a salvage, which keeps
     * the handles it can): sub handles remember it, so a handle that
     * predates a reset is recognised as stale. */
    std::atomic<uint64_t> generation_;
    /* Bumped by pushq_store_wake_all; waiters return when it moves. */
    std::atomic<uint32_t> wake_all_seq_;
    uint32_t  pad1_;

    uint64_t  recovered_;       /* EOWNERDEAD seen                         */
    uint64_t  resets_;          /* ... of which lost data (salvage dropped
                                   something, or everything was reset)     */
    uint64_t  next_serial_;     /* serial numbers of sub records           */

    /* counters since the store was made (kept across resets) */
    uint64_t  published_;
    uint64_t  delivered_;
    uint64_t  lost_;
    std::atomic<uint64_t> dropped_slow_;

    /* gauges */
    uint64_t  channels_;
    uint64_t  messages_;
    uint64_t  message_bytes_;
    uint64_t  clients_;
    uint64_t  subs_longpoll_;
    uint64_t  subs_websocket_;

    /* hash tables: arrays of record offsets allocated in the arena */
    uint64_t  chan_buckets_;
    uint64_t  chan_mask_;       /* bucket count - 1 (a power of two)       */
    uint64_t  client_buckets_;
    uint64_t  client_mask_;

    uint64_t  chan_list_;       /* every channel, doubly linked            */
    uint64_t  idle_head_;       /* named clients with no open subscriber,  */
    uint64_t  idle_tail_;       /* sorted by expires_ms_ (oldest first)    */

    owner_slot owners_[PUSHQ_MAX_OWNERS];
    arena_header arena_;
};

/* A channel: its message log is a ring of message offsets, so the message
 * with id i is ring[(head + i - first_id) % cap]: O(1) for any cursor. */
struct channel_rec {
    uint64_t  hnext_;           /* hash chain                              */
    uint64_t  hash_;
    uint64_t  prev_, next_;     /* store_header::chan_list_                */

    std::atomic<uint64_t> last_id_;   /* newest id given (0 = none)        */
    uint64_t  count_;           /* buffered messages: ids
                                   last_id - count + 1 .. last_id          */
    uint64_t  bytes_;           /* their payload bytes                     */
    uint64_t  ring_;            /* offset of uint64_t[ring_cap_]           */
    uint64_t  ring_cap_;        /* 0 or a power of two                     */
    uint64_t  ring_head_;       /* index of the oldest buffered message    */

    uint64_t  ttl_ms_;          /* message_ttl of the last publisher/opener */
    uint64_t  touched_ms_;      /* last publish or subscriber close      */

    uint64_t  subs_;            /* open subscribers                        */
    uint64_t  clients_;         /* named clients (open or within ttl)      */
    uint64_t  wakers_;          /* bit i: waker_subs_[i] != 0              */

    std::atomic<uint32_t> seq_;       /* +1 per publish (futex word)       */
    std::atomic<uint32_t> waiters_;   /* threads in pushq_sub_wait         */

    /* Redis mirror (pushq_store_mirror).  epoch_: the Redis life the
     * local channel mirrors (0 = none: local only, or not mirrored yet).
     * incarnation_: +1 each time the local ids begin again (a new epoch);
     * a sub handle remembers it (sw_incarnation), and an anonymous one
     * from an older incarnation starts again at life_start_.  life_start_:
     * the id before the local life's first one (0, or where the first
     * mirrored message of a channel found it): positions below it are
     * raised to it, never counted lost. */
    uint64_t  epoch_;
    std::atomic<uint64_t> incarnation_;
    std::atomic<uint64_t> life_start_;  /* <= last_id_                     */

    uint32_t  waker_subs_[PUSHQ_MAX_WAKERS];
    uint32_t  name_len_;
    char      name_[PUSHQ_NAME_MAX];
};

struct message_rec {
    uint64_t  id_;
    uint64_t  expires_ms_;
    uint64_t  len_;
    uint32_t  flags_;
    uint32_t  pad_;
    /* payload follows */
    unsigned char *data() noexcept {
        return reinterpret_cast<unsigned char *>(this + 1);
    }
};

/* A named client (name, channel): one cursor shared by all of the name's
 * connections.  Never touched by publish. */
struct client_rec {
    uint64_t  hnext_;
    uint64_t  hash_;
    uint64_t  channel_;         /* channel_rec offset (pins the channel)   */
    std::atomic<uint64_t> cursor_;    /* last id delivered to the name     */
    uint64_t  open_subs_;
    uint64_t  ttl_ms_;          /* client_ttl from the last open           */
    uint64_t  expires_ms_;      /* valid when open_subs_ == 0              */
    uint64_t  idle_prev_, idle_next_;
    uint32_t  idle_;            /* on the idle list                        */
    uint32_t  name_len_;
    /* name bytes follow */
    char *name() noexcept { return reinterpret_cast<char *>(this + 1); }
};

inline constexpr uint64_t sub_magic = 0x5355425245433031ULL;

/* One open subscriber, on its owner's list. */
struct sub_rec {
    uint64_t  magic_;
    uint64_t  serial_;          /* equals the handle's: detects stale use  */
    uint64_t  channel_;
    uint64_t  client_;          /* 0 = anonymous                           */
    uint64_t  prev_, next_;     /* owner_slot::subs_head_ list             */
    uint32_t  owner_;
    uint32_t  kind_;
};

/* a + b, saturating: a configured ttl of "forever" (UINT64_MAX) must not
 * wrap around into "already expired". */
inline uint64_t add_ms(uint64_t a, uint64_t b) noexcept
{
    return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

/* pushq_sub_t's private words. */
enum sub_word : unsigned {
    sw_rec = 0,                 /* sub_rec offset; 0 = closed              */
    sw_serial = 1,
    sw_channel = 2,
    sw_client = 3,
    sw_pos = 4,                 /* anonymous: last id handed out           */
    sw_flags = 5,
    sw_generation = 6,
    sw_incarnation = 7,         /* channel_rec::incarnation_ at the position */
    sw_spare = sw_incarnation   /* the last word (was spare; tests use it) */
};
inline constexpr uint64_t sub_flag_reset = 1;
/* pushq_sub_open_at: positions may run ahead of the local newest id (the
 * mirror lags behind Redis) and nothing skipped counts as lost. */
inline constexpr uint64_t sub_flag_at = 2;

} // namespace pushq

#endif
