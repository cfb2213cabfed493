/*
 * fuzz_args.cpp -- libFuzzer target for query-string and form decoding:
 * pushq_args_parse, pushq_name_decode and pushq_form_get on the same
 * input.  Oracle: accepted names are 1-64 bytes of [A-Za-z0-9_.:-];
 * numbers in range; decoded form values never longer than the body; a
 * buffer of exactly the body's size always suffices; the form field
 * equals what an independent reference decoder finds.
 */

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
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

int hexv(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reference x-www-form-urlencoded decoding, written independently. */
std::string ref_decode(const std::string &s)
{
    std::string o;
    for (size_t i = 0; i < s.size(); i++) {
        if (s[i] == '+') {
            o += ' ';
        } else if (s[i] == '%' && i + 2 < s.size()
                   && hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0)
        {
            o += static_cast<char>(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
            i += 2;
        } else {
            o += s[i];
        }
    }
    return o;
}

/* The first field named `want` (decoded), or false. */
bool ref_field(const std::string &body, const std::string &want,
               std::string *value)
{
    size_t start = 0;
    while (start <= body.size()) {
        size_t amp = body.find('&', start);
        if (amp == std::string::npos) amp = body.size();
        std::string f = body.substr(start, amp - start);
        start = amp + 1;
        if (f.empty()) continue;
        size_t eq = f.find('=');
        std::string name = f.substr(0, eq);
        std::string val = eq == std::string::npos ? "" : f.substr(eq + 1);
        if (ref_decode(name) == want) {
            *value = ref_decode(val);
            return true;
        }
    }
    return false;
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
    std::string ref;
    bool        found = ref_field(std::string(q, size), "content", &ref);
    if ((st == PUSHQ_OK) != found) std::abort();
    if (st == PUSHQ_OK) {
        if (got > size) std::abort();
        if (std::string(out.data(), got) != ref) std::abort();
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
