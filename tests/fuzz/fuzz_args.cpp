/*
 * fuzz_args.cpp -- libFuzzer target for query-string and form decoding:
 * pushq_args_parse, pushq_name_decode and pushq_form_get on the same
 * input.  Oracle: accepted names are 1-64 bytes of [A-Za-z0-9_.:-];
 * numbers in range; decoded form values never longer than the body; a
 * buffer of exactly the body's size always suffices.
 */

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "pushq.h"

namespace {

bool name_ok(const char *p, size_t n)
{
    if (n < 1 || n > PUSHQ_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '_' || c == '.'
              || c == ':' || c == '-'))
        {
            return false;
        }
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    std::vector<char> in(data, data + size);
    const char       *q = in.data();
    const char       *why = nullptr;
    pushq_args_t      a;

    if (pushq_args_parse(q, size, &a, &why) == PUSHQ_OK) {
        if (!name_ok(a.channel, a.channel_len)) std::abort();
        if (a.name_len != 0 && !name_ok(a.name, a.name_len)) std::abort();
        if (a.batch > PUSHQ_BATCH_MAX) std::abort();
        if (a.format > PUSHQ_FORMAT_PROMETHEUS) std::abort();
    } else if (why == nullptr) {
        std::abort();
    }

    char   name[PUSHQ_NAME_MAX];
    size_t n = 0;
    if (pushq_name_decode(PUSHQ_ARG_CHANNEL, q, size, name, &n, nullptr)
        == PUSHQ_OK && !name_ok(name, n))
    {
        std::abort();
    }
    if (pushq_name_decode(PUSHQ_ARG_NAME, q, size, name, &n, nullptr)
        == PUSHQ_OK && n != 0 && !name_ok(name, n))
    {
        std::abort();
    }

    /* form: a buffer of the body's size always suffices */
    std::vector<char> out(size);
    size_t            got = 0;
    pushq_status_t    st = pushq_form_get(q, size, "content", 7, out.data(),
                                          out.size(), &got, &why);
    if (st == PUSHQ_OK) {
        if (got > size) std::abort();
        /* and one byte less than the value fails cleanly */
        if (got > 0) {
            std::vector<char> small(got - 1);
            size_t            g2;
            if (pushq_form_get(q, size, "content", 7, small.data(),
                               small.size(), &g2, nullptr) != PUSHQ_ETOOBIG)
            {
                std::abort();
            }
        }
    } else if (st != PUSHQ_EBADARG) {
        std::abort();
    }

    uint64_t v;
    (void) pushq_parse_size(q, size, &v, nullptr);
    (void) pushq_parse_time_ms(q, size, &v, nullptr);
    return 0;
}
