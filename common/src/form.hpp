/*
 * form.hpp -- application/x-www-form-urlencoded bodies: pushq_form_get
 * (declared in pushq.h) finds one field; the decoding itself is
 * urlencoded.hpp's.
 */

#ifndef PUSHQ_FORM_HPP
#define PUSHQ_FORM_HPP

#include "pushq.h"

#endif
