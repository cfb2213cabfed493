/*
 * log_line.hpp -- one line on stderr, "<UTC time> <prefix><message>":
 * the plugin's own messages (prefix "pushq: ": its background thread has
 * no CivetWeb connection to log through) and pushq-civetweb's (CivetWeb's
 * error and access logs, its own start and stop).
 */

#ifndef PUSHQ_CIVETWEB_LOG_LINE_HPP
#define PUSHQ_CIVETWEB_LOG_LINE_HPP

#include <cstdarg>

namespace pushq::civetweb {

void vlog_line(const char *prefix, const char *fmt, va_list ap);

}  // namespace pushq::civetweb

#endif
