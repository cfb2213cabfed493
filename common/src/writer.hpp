/*
 * writer.hpp -- an output into a caller buffer of fixed capacity that
 * counts what it would need: the pattern behind every pushq_json_* and
 * pushq_prometheus_* writer ("returns the bytes written, or the bytes it
 * would need if that is more than cap").  Bytes past cap are counted, not
 * written; a result over cap tells the caller to retry with that much.
 */

#ifndef PUSHQ_WRITER_HPP
#define PUSHQ_WRITER_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace pushq {

class writer {
public:
    writer(char *out, size_t cap) noexcept
        : out_(out), cap_(out == nullptr ? 0 : cap) {}

    void put(char c) noexcept
    {
        if (len_ < cap_) {
            out_[len_] = c;
        }
        len_++;
    }

    void put(const char *p, size_t n) noexcept
    {
        if (n == 0) {
            return;                     /* p may be NULL then */
        }
        if (len_ < cap_) {
            size_t room = cap_ - len_;
            std::memcpy(out_ + len_, p, n < room ? n : room);
        }
        len_ += n;
    }

    template <size_t N>
    void lit(const char (&s)[N]) noexcept { put(s, N - 1); }

    void str(const char *s) noexcept { put(s, std::strlen(s)); }

    void u64(uint64_t v) noexcept
    {
        char   tmp[20];
        size_t n = 0;
        do {
            tmp[sizeof(tmp) - ++n] = static_cast<char>('0' + v % 10);
            v /= 10;
        } while (v != 0);
        put(tmp + sizeof(tmp) - n, n);
    }

    /* Room for n more bytes at the current position, or NULL. */
    char *reserve(size_t n) noexcept
    {
        if (len_ <= cap_ && cap_ - len_ >= n) {
            char *p = out_ + len_;
            len_ += n;
            return p;
        }
        len_ += n;
        return nullptr;
    }

    size_t size() const noexcept { return len_; }

private:
    char   *out_;
    size_t  cap_;
    size_t  len_ = 0;
};

} // namespace pushq

#endif
