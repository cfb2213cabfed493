/*
 * form.cpp -- one field of an application/x-www-form-urlencoded body (the
 * seed's POST /send_msg/ with field "content").  The first occurrence of
 * the field wins, as for query arguments.
 */

#include "form.hpp"

#include <cstring>

#include "pushq.h"
#include "status.hpp"
#include "urlencoded.hpp"

using namespace pushq;

extern "C" PUSHQ_API pushq_status_t pushq_form_get(const char *body,
    size_t len, const char *field, size_t field_len, char *out, size_t cap,
    size_t *out_len, const char **why)
{
    url_field f;

    if ((body == nullptr && len != 0) || field == nullptr
        || out_len == nullptr || (out == nullptr && cap != 0))
    {
        return report(fail::internal, why);
    }

    url_fields fields(body, len);

    while (fields.next(&f)) {
        if (!url_decoded_equals(f.name, f.name_len, field, field_len)) {
            continue;
        }
        size_t n = url_decode(out, cap, f.value, f.value_len);
        if (n == static_cast<size_t>(-1)) {
            return report(fail::form_too_big, why);
        }
        *out_len = n;
        return PUSHQ_OK;
    }
    if (field_len == 7 && std::memcmp(field, "content", 7) == 0) {
        return report(fail::form_content_missing, why);
    }
    return report(fail::form_field_missing, why);
}
