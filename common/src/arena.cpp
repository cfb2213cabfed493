/*
 * arena.cpp -- boundary-tag allocator with segregated, coalescing free lists
 * (see arena.hpp for the design).
 *
 * Block at offset b (16-aligned), size S (multiple of 16, >= 32):
 *   b + 0        head  = S | used
 *   b + 8        payload (allocated) / next free block offset (free)
 *   b + 16       ...                 / previous free block offset (free)
 *   b + S - 8    foot  = S | used
 * The word just before the first block is a "used" foot and the word at
 * end_ a "used" head of size 0, so coalescing needs no bounds checks.
 */

#include "arena.hpp"

#include <atomic>

namespace pushq {

namespace {

constexpr uint64_t used_bit = 1;
constexpr uint64_t mark_bit = 2;        /* salvage only; never left set */
constexpr uint64_t min_block = 32;
constexpr unsigned exact_bins = 65;     /* bins 2..64: 32..1024 bytes */

inline uint64_t tag_size(uint64_t t) noexcept { return t & ~uint64_t(15); }
inline bool tag_used(uint64_t t) noexcept { return (t & used_bit) != 0; }

inline unsigned log2_floor(uint64_t v) noexcept
{
    return 63u - static_cast<unsigned>(__builtin_clzll(v));
}

} // namespace

size_t arena::block_size(size_t n) noexcept
{
    /* head + foot = 16 bytes; room for the two free-list links */
    uint64_t s = (static_cast<uint64_t>(n) + 16 + 15) & ~uint64_t(15);
    return s < min_block ? min_block : s;
}

unsigned arena::bin_of(uint64_t size) noexcept
{
    if (size <= 1024) {
        return static_cast<unsigned>(size / 16);
    }
    unsigned b = log2_floor(size) + 55;     /* 1040..2047 -> 65 */
    return b < arena_bins ? b : arena_bins - 1;
}

void arena::set_tags(uint64_t b, uint64_t size, bool used) const noexcept
{
    uint64_t t = size | (used ? used_bit : 0);
    head(b) = t;
    foot(b, size) = t;
}

void arena::push_free(uint64_t b, uint64_t size) noexcept
{
    unsigned bin = bin_of(size);
    uint64_t first = h_->bins_[bin];
    next_free(b) = first;
    prev_free(b) = 0;
    if (first != 0) {
        prev_free(first) = b;
    }
    h_->bins_[bin] = b;
    h_->bin_map_[bin / 64] |= uint64_t(1) << (bin % 64);
}

void arena::unlink_free(uint64_t b, uint64_t size) noexcept
{
    unsigned bin = bin_of(size);
    uint64_t n = next_free(b), p = prev_free(b);
    if (p != 0) {
        next_free(p) = n;
    } else {
        h_->bins_[bin] = n;
        if (n == 0) {
            h_->bin_map_[bin / 64] &= ~(uint64_t(1) << (bin % 64));
        }
    }
    if (n != 0) {
        prev_free(n) = p;
    }
}

void arena::format(uint64_t begin, uint64_t end) noexcept
{
    for (auto &w : h_->bin_map_) w = 0;
    for (auto &w : h_->bins_) w = 0;
    uint64_t first = begin + 16;
    uint64_t last = (end - 16) & ~uint64_t(15);
    h_->begin_ = first;
    h_->end_ = last;
    h_->used_ = 0;
    h_->allocations_ = 0;
    /* prologue foot and epilogue head: "used", size 0 */
    *reinterpret_cast<uint64_t *>(base_ + first - 8) = used_bit;
    *reinterpret_cast<uint64_t *>(base_ + last) = used_bit;
    set_tags(first, last - first, false);
    push_free(first, last - first);
}

uint64_t arena::alloc(size_t n) noexcept
{
    if (n > (uint64_t(1) << 48)) {
        return 0;
    }
    uint64_t want = block_size(n);
    unsigned bin = bin_of(want);
    uint64_t b = 0;

    if (bin >= exact_bins) {
        /* a power-of-two bin holds mixed sizes: first fit */
        for (uint64_t c = h_->bins_[bin]; c != 0; c = next_free(c)) {
            if (tag_size(head(c)) >= want) {
                b = c;
                break;
            }
        }
    } else {
        b = h_->bins_[bin];
    }
    if (b == 0) {
        /* any block of a larger bin fits: lowest non-empty one */
        for (unsigned i = bin + 1; i < arena_bins;) {
            unsigned w = i / 64;
            uint64_t m = h_->bin_map_[w] & (~uint64_t(0) << (i % 64));
            if (m != 0) {
                b = h_->bins_[w * 64 +
                              static_cast<unsigned>(__builtin_ctzll(m))];
                break;
            }
            i = (w + 1) * 64;
        }
    }
    if (b == 0) {
        return 0;
    }

    uint64_t size = tag_size(head(b));
    unlink_free(b, size);
    if (size - want >= min_block) {
        uint64_t rest = b + want;
        set_tags(rest, size - want, false);
        push_free(rest, size - want);
        size = want;
        /* the remainder's head is in memory before b's head shrinks: a
         * process dying here leaves the heads a whole chain (rebuild()) */
        std::atomic_signal_fence(std::memory_order_seq_cst);
    }
    set_tags(b, size, true);
    h_->used_ += size;
    h_->allocations_++;
    return b + 8;
}

void arena::free(uint64_t off) noexcept
{
    if (off == 0) {
        return;
    }
    uint64_t b = off - 8;
    uint64_t size = tag_size(head(b));
    h_->used_ -= size;
    h_->allocations_--;

    uint64_t prev_tag = *reinterpret_cast<uint64_t *>(base_ + b - 8);
    if (!tag_used(prev_tag)) {
        uint64_t ps = tag_size(prev_tag);
        b -= ps;
        unlink_free(b, ps);
        size += ps;
    }
    uint64_t next_tag = head(b + size);
    if (!tag_used(next_tag)) {
        uint64_t ns = tag_size(next_tag);
        unlink_free(b + size, ns);
        size += ns;
    }
    set_tags(b, size, false);
    push_free(b, size);
}

bool arena::fits_after_free(const uint64_t *offs, size_t n, size_t want)
    const noexcept
{
    uint64_t need = block_size(want);
    auto in_set = [&](uint64_t block) {
        uint64_t payload = block + 8;
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (offs[mid] < payload) lo = mid + 1; else hi = mid;
        }
        return lo < n && offs[lo] == payload;
    };
    for (size_t i = 0; i < n; i++) {
        uint64_t b = offs[i] - 8;
        uint64_t start = b, end = b + tag_size(head(b));
        /* grow left over free blocks and blocks about to be freed */
        for (;;) {
            uint64_t t = *reinterpret_cast<uint64_t *>(base_ + start - 8);
            uint64_t s = tag_size(t);
            if (s == 0 || (tag_used(t) && !in_set(start - s))) {
                break;
            }
            start -= s;
        }
        for (;;) {
            uint64_t t = head(end);
            uint64_t s = tag_size(t);
            if (s == 0 || (tag_used(t) && !in_set(end))) {
                break;
            }
            end += s;
        }
        if (end - start >= need) {
            return true;
        }
    }
    return false;
}

bool arena::is_block(uint64_t off, size_t len) const noexcept
{
    if (off < h_->begin_ + 8 || off >= h_->end_ || ((off - 8) & 15) != 0) {
        return false;
    }
    uint64_t b = off - 8;
    uint64_t t = head(b), s = tag_size(t);
    return tag_used(t) && s >= block_size(len) && s <= h_->end_ - b &&
           (foot(b, s) & ~mark_bit) == (t & ~mark_bit);
}

void arena::mark(uint64_t off) noexcept
{
    uint64_t b = off - 8;
    uint64_t s = tag_size(head(b));
    head(b) |= mark_bit;
    foot(b, s) |= mark_bit;
    marks_++;
}

void arena::unmark(uint64_t off) noexcept
{
    uint64_t b = off - 8;
    uint64_t s = tag_size(head(b));
    head(b) &= ~mark_bit;
    foot(b, s) &= ~mark_bit;
    marks_--;
}

bool arena::marked(uint64_t off) const noexcept
{
    return (head(off - 8) & mark_bit) != 0;
}

bool arena::free_unmarked() noexcept
{
    uint64_t cleared = 0;
    for (uint64_t b = h_->begin_; b < h_->end_;) {
        uint64_t t = head(b), s = tag_size(t);
        uint64_t next = b + s;
        /* A block freed here may merge with a free block after it; that
         * block's old head stays readable ("free", its size), so the walk
         * still steps over it correctly. */
        if (tag_used(t)) {
            if (t & mark_bit) {
                head(b) = t & ~mark_bit;
                foot(b, s) = t & ~mark_bit;
                cleared++;
            } else {
                free(b + 8);
            }
        }
        b = next;
    }
    bool all = cleared == marks_;
    marks_ = 0;
    return all;
}

bool arena::rebuild() noexcept
{
    uint64_t begin = h_->begin_, end = h_->end_;
    if (begin >= end || (begin & 15) != 0 || (end & 15) != 0) {
        return false;
    }
    for (uint64_t b = begin; b < end;) {
        uint64_t s = tag_size(head(b));
        if (s < min_block || s > end - b) {
            return false;
        }
        b += s;
    }
    *reinterpret_cast<uint64_t *>(base_ + begin - 8) = used_bit;
    *reinterpret_cast<uint64_t *>(base_ + end) = used_bit;
    for (auto &w : h_->bin_map_) w = 0;
    for (auto &w : h_->bins_) w = 0;
    h_->used_ = 0;
    h_->allocations_ = 0;
    for (uint64_t b = begin; b < end;) {
        uint64_t t = head(b), s = tag_size(t);
        if (tag_used(t)) {
            set_tags(b, s, true);
            h_->used_ += s;
            h_->allocations_++;
        } else {
            while (b + s < end && !tag_used(head(b + s))) {
                s += tag_size(head(b + s));
            }
            set_tags(b, s, false);
            push_free(b, s);
        }
        b += s;
    }
    return check();
}

size_t arena::usable(uint64_t off) const noexcept
{
    return tag_size(head(off - 8)) - 16;
}

bool arena::check() const noexcept
{
    uint64_t begin = h_->begin_, end = h_->end_;
    if (begin >= end || (begin & 15) != 0 || (end & 15) != 0) {
        return false;
    }
    if (*reinterpret_cast<uint64_t *>(base_ + begin - 8) != used_bit ||
        *reinterpret_cast<uint64_t *>(base_ + end) != used_bit)
    {
        return false;
    }

    uint64_t used = 0, allocs = 0, free_blocks = 0;
    bool prev_free_block = false;
    for (uint64_t b = begin; b < end;) {
        uint64_t t = head(b), s = tag_size(t);
        if (s < min_block || b + s > end || foot(b, s) != t ||
            (t & 14) != 0)
        {
            return false;
        }
        if (tag_used(t)) {
            used += s;
            allocs++;
            prev_free_block = false;
        } else {
            if (prev_free_block) {
                return false;           /* should have been coalesced */
            }
            prev_free_block = true;
            free_blocks++;
        }
        b += s;
    }
    if (used != h_->used_ || allocs != h_->allocations_) {
        return false;
    }

    uint64_t listed = 0;
    for (unsigned bin = 0; bin < arena_bins; bin++) {
        bool bit = (h_->bin_map_[bin / 64] >> (bin % 64)) & 1;
        if (bit != (h_->bins_[bin] != 0)) {
            return false;
        }
        uint64_t prev = 0;
        for (uint64_t c = h_->bins_[bin]; c != 0; c = next_free(c)) {
            if (c < begin || c >= end || (c & 15) != 0 ||
                tag_used(head(c)) || bin_of(tag_size(head(c))) != bin ||
                prev_free(c) != prev || ++listed > free_blocks)
            {
                return false;
            }
            prev = c;
        }
    }
    return listed == free_blocks;
}

} // namespace pushq
