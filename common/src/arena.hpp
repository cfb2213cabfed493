/*
 * arena.hpp -- a general-purpose allocator inside a caller's memory region.
 *
 * The store keeps everything (channels, message bodies that may be many
 * megabytes, named clients, subscriber records) in one fixed region that
 * several processes map, possibly at different addresses.  So the arena
 * works with offsets from the region's base, never pointers, and keeps all
 * of its own state (arena_header) inside the region too.
 *
 * Design: boundary tags + segregated free lists, coalescing on free.
 *  - A block is [head: size|flags][payload ...][foot: size|flags]; sizes are
 *    multiples of 16 bytes, blocks start 16-aligned, the payload is
 *    8-aligned (enough for every record, including 64-bit atomics).
 *  - A free block keeps the offsets of its free-list neighbours in its
 *    payload, so a free block costs nothing outside itself.
 *  - Bins: one exact bin per 16 bytes up to 1 KiB (names, records,
 *    small messages: the common case, O(1) both ways), then one bin per
 *    power of two.  A bitmap of non-empty bins finds the next fitting bin
 *    in a couple of instructions.  Allocation fails only when no free block
 *    is large enough (first fit in the request's own bin, then any block of
 *    a larger bin), so "full" means full, not fragmented bookkeeping.
 *  - Freeing merges with free neighbours at once, so the arena never holds
 *    two adjacent free blocks and big messages can reuse the space of many
 *    small ones.
 *  - Failure is a return value (0), never an exception and never a partial
 *    change: callers allocate everything they need before mutating.
 */

#ifndef PUSHQ_ARENA_HPP
#define PUSHQ_ARENA_HPP

#include <cstddef>
#include <cstdint>

namespace pushq {

inline constexpr unsigned arena_bins = 128;

/* Lives inside the region (part of the store header). */
struct arena_header {
    uint64_t  begin_;                 /* offset of the first block          */
    uint64_t  end_;                   /* offset of the epilogue tag         */
    uint64_t  used_;                  /* bytes in allocated blocks, tags
                                         included                           */
    uint64_t  allocations_;           /* allocated blocks                   */
    uint64_t  bin_map_[arena_bins / 64];
    uint64_t  bins_[arena_bins];      /* first free block of each bin, 0 =
                                         empty                              */
};

/* A process-local view of an arena: the region's base + its header.
 * Not thread safe: the store's lock serialises every call. */
class arena {
public:
    arena(char *base, arena_header *h) noexcept : base_(base), h_(h) {}

    /* Formats [begin, end) of the region (offsets from base) as one free
     * block.  begin must be 16-aligned and end - begin >= 64. */
    void format(uint64_t begin, uint64_t end) noexcept;

    /* Offset of an n-byte, 8-aligned payload, or 0 when no free block is
     * large enough.  n == 0 is allowed. */
    uint64_t alloc(size_t n) noexcept;

    /* Returns a payload got from alloc (0 is ignored). */
    void free(uint64_t off) noexcept;

    /* Payload bytes usable at off (>= the n asked for). */
    size_t usable(uint64_t off) const noexcept;

    template <typename T> T *at(uint64_t off) const noexcept {
        return reinterpret_cast<T *>(base_ + off);
    }
    char *base() const noexcept { return base_; }

    uint64_t used() const noexcept { return h_->used_; }
    uint64_t capacity() const noexcept { return h_->end_ - h_->begin_; }
    uint64_t allocations() const noexcept { return h_->allocations_; }

    /* Walks every block and every free list and returns true when they
     * agree (tags match, no two free neighbours, every free block listed
     * once in its bin, used_ adds up).  O(blocks); for tests and for
     * deciding whether a store can be kept after a crash. */
    bool check() const noexcept;

    /* True when freeing the n payloads offs[] (sorted ascending, distinct,
     * all allocated) would leave a free block that alloc(want) could use.
     * Changes nothing: lets a caller free only when it will help. */
    bool fits_after_free(const uint64_t *offs, size_t n, size_t want) const
        noexcept;

    /* ---- crash salvage (store_recovery.cpp): mark what is reachable,
     * then free every allocated block that is not.  Marks live in a spare
     * bit of the block's tags; check() fails while any is set. ---- */

    /* True when off is the payload of an allocated block of at least
     * len bytes (tags agree), so a record can be read there. */
    bool is_block(uint64_t off, size_t len) const noexcept;
    void mark(uint64_t off) noexcept;
    void unmark(uint64_t off) noexcept;
    bool marked(uint64_t off) const noexcept;
    /* Frees every allocated block that is not marked and clears the marks.
     * Returns false when a mark was found off the chain of blocks (a
     * record trusted at a stale address: the caller must not keep it). */
    bool free_unmarked() noexcept;

    /* After a crash inside alloc/free: rebuilds the free lists, feet and
     * counters from the chain of block heads (alloc writes the remainder's
     * tags before shrinking the block, free writes a merged block's head
     * first, so the heads always partition the arena).  False when they do
     * not; then nothing can be trusted. */
    bool rebuild() noexcept;

    /* Bytes of region a payload of n bytes really takes (tags, rounding). */
    static size_t block_size(size_t n) noexcept;

private:
    uint64_t &head(uint64_t b) const noexcept {
        return *reinterpret_cast<uint64_t *>(base_ + b);
    }
    uint64_t &foot(uint64_t b, uint64_t size) const noexcept {
        return *reinterpret_cast<uint64_t *>(base_ + b + size - 8);
    }
    uint64_t &next_free(uint64_t b) const noexcept {
        return *reinterpret_cast<uint64_t *>(base_ + b + 8);
    }
    uint64_t &prev_free(uint64_t b) const noexcept {
        return *reinterpret_cast<uint64_t *>(base_ + b + 16);
    }
    void set_tags(uint64_t b, uint64_t size, bool used) const noexcept;
    void push_free(uint64_t b, uint64_t size) noexcept;
    void unlink_free(uint64_t b, uint64_t size) noexcept;
    static unsigned bin_of(uint64_t size) noexcept;

    char          *base_;
    arena_header  *h_;
    uint64_t       marks_ = 0;      /* mark() - unmark(), this view only */
};

} // namespace pushq

#endif
