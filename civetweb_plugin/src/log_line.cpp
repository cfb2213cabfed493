/*
 * log_line.cpp -- see log_line.hpp.
 */

#include "log_line.hpp"

#include <cstdio>
#include <ctime>

#include "plugin.hpp"

namespace pushq::civetweb {

void vlog_line(const char *prefix, const char *fmt, va_list ap)
{
    /* snprintf, not strftime: strftime may call tzset(), which races
     * with CivetWeb's localtime() in its access log. */
    char ts[64];
    time_t t = time(nullptr);
    struct tm tm;
    gmtime_r(&t, &tm);
    std::snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02dZ",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                  tm.tm_min, tm.tm_sec);
    char msg[2048];
    std::vsnprintf(msg, sizeof(msg), fmt, ap);
    /* one fprintf: lines of different threads do not interleave */
    std::fprintf(stderr, "%s %s%s\n", ts, prefix, msg);
    std::fflush(stderr);
}

void log_line(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog_line("pushq: ", fmt, ap);
    va_end(ap);
}

}  // namespace pushq::civetweb
