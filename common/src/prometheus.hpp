/*
 * prometheus.hpp -- the status in Prometheus text exposition format 0.0.4
 * (# HELP and # TYPE per metric, counters ending in _total, label values
 * escaped: backslash, double quote and newline).
 */

#ifndef PUSHQ_PROMETHEUS_HPP
#define PUSHQ_PROMETHEUS_HPP

#include <cstddef>

#include "writer.hpp"

namespace pushq {

/* Writes p[0..n) as a label value with its quotes. */
void prometheus_label_value(writer &w, const char *p, size_t n) noexcept;

} // namespace pushq

#endif
