/*
 * options.cpp -- pushq_civetweb_attach's options: named like the nginx
 * directives without the "pushq_" prefix, with the same value syntax
 * (sizes "64k", times "30s"), parsed by the core's parsers so that both
 * adapters accept exactly the same values.
 */

#include <cctype>
#include <cstdio>
#include <cstring>

#include "plugin.hpp"

namespace pushq::civetweb {

namespace {

std::string quoted(std::string_view v)
{
    return "\"" + std::string(v) + "\"";
}

std::string bad_value(std::string_view name, std::string_view value,
                      std::string_view rule)
{
    return "option " + quoted(name) + ": invalid value " + quoted(value)
           + ": " + std::string(rule);
}

bool parse_size(std::string_view name, std::string_view v, uint64_t &out,
                std::string &err)
{
    const char *why = nullptr;
    if (pushq_parse_size(v.data(), v.size(), &out, &why) != PUSHQ_OK) {
        err = bad_value(name, v, why ? why
                                     : "must be a size such as 512, 64k, 16m or 1g");
        return false;
    }
    return true;
}

bool parse_time(std::string_view name, std::string_view v, uint64_t &out,
                std::string &err)
{
    const char *why = nullptr;
    if (pushq_parse_time_ms(v.data(), v.size(), &out, &why) != PUSHQ_OK) {
        err = bad_value(name, v, why ? why
                                     : "must be a time such as 500ms, 30s, 5m, 1h or 1d");
        return false;
    }
    return true;
}

std::string_view trim(std::string_view s)
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

/* Splits on commas (and, as nginx writes lists, on spaces). */
std::vector<std::string_view> split_list(std::string_view s)
{
    std::vector<std::string_view> parts;
    size_t start = 0;
    for (size_t i = 0; i <= s.size(); i++) {
        if (i == s.size() || s[i] == ',' || s[i] == ' ' || s[i] == '\t') {
            std::string_view part = trim(s.substr(start, i - start));
            if (!part.empty()) {
                parts.push_back(part);
            }
            start = i + 1;
        }
    }
    return parts;
}

bool parse_uris(std::string_view name, std::string_view v,
                std::vector<std::string> &out, std::string &err)
{
    out.clear();
    for (std::string_view u : split_list(v)) {
        if (u.front() != '/') {
            err = bad_value(name, v, "each URI must start with '/'");
            return false;
        }
        out.emplace_back(u);
    }
    if (out.empty()) {
        err = bad_value(name, v, "must be a comma-separated list of URIs");
        return false;
    }
    return true;
}

bool parse_name_source(std::string_view name, std::string_view v,
                       pushq_arg_t which, name_source &out, std::string &err)
{
    if (v.substr(0, 5) == "$arg_" && v.size() > 5) {
        for (char c : v.substr(5)) {
            if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_'
                  || c == '-')) {
                err = bad_value(name, v, "must be $arg_<argument> or a fixed name");
                return false;
            }
        }
        out.from_arg = true;
        out.value = std::string(v.substr(5));
        return true;
    }
    char decoded[PUSHQ_NAME_MAX];
    size_t len = 0;
    const char *why = nullptr;
    if (v.empty() || v.front() == '$'
        || pushq_name_decode(which, v.data(), v.size(), decoded, &len, &why)
               != PUSHQ_OK
        || len == 0) {
        err = bad_value(name, v,
                        "must be $arg_<argument> or a fixed name of 1-64 bytes "
                        "of [A-Za-z0-9_.:-]");
        return false;
    }
    out.from_arg = false;
    out.value.assign(decoded, len);
    return true;
}

}  // namespace

bool parse_option(std::string_view name, std::string_view value, options &o,
                  std::string &err)
{
    std::string_view v = trim(value);

    if (name == "publisher_uri") {
        return parse_uris(name, v, o.publisher_uris, err);
    }
    if (name == "subscriber_uri") {
        return parse_uris(name, v, o.subscriber_uris, err);
    }
    if (name == "status_uri") {
        return parse_uris(name, v, o.status_uris, err);
    }
    if (name == "subscriber") {
        bool lp = false, ws = false;
        for (std::string_view t : split_list(v)) {
            if (t == "longpoll") {
                lp = true;
            } else if (t == "websocket") {
                ws = true;
            } else {
                err = bad_value(name, v,
                                "must be longpoll, websocket or "
                                "longpoll,websocket");
                return false;
            }
        }
        if (!lp && !ws) {
            err = bad_value(name, v,
                            "must be longpoll, websocket or longpoll,websocket");
            return false;
        }
        o.longpoll = lp;
        o.websocket = ws;
        return true;
    }
    if (name == "store_size") {
        if (!parse_size(name, v, o.store_size, err)) {
            return false;
        }
        if (o.store_size < pushq_store_min_size()) {
            err = bad_value(name, v,
                            "is below the smallest store ("
                                + std::to_string(pushq_store_min_size())
                                + " bytes)");
            return false;
        }
        return true;
    }
    if (name == "buffer") {
        uint64_t n = 0;
        bool ok = !v.empty() && v.size() <= 10;
        for (char c : v) {
            ok = ok && c >= '0' && c <= '9';
            if (ok) {
                n = n * 10 + static_cast<uint64_t>(c - '0');
            }
        }
        if (!ok || n == 0 || n > 100000000ull) {
            err = bad_value(name, v,
                            "must be an integer between 1 and 100000000 "
                            "(messages)");
            return false;
        }
        o.limits.buffer = static_cast<uint32_t>(n);
        return true;
    }
    if (name == "buffer_bytes") {
        return parse_size(name, v, o.limits.buffer_bytes, err);
    }
    if (name == "message_ttl") {
        return parse_time(name, v, o.limits.message_ttl_ms, err);
    }
    if (name == "client_ttl") {
        return parse_time(name, v, o.limits.client_ttl_ms, err);
    }
    if (name == "longpoll_timeout") {
        return parse_time(name, v, o.longpoll_timeout_ms, err);
    }
    if (name == "max_message_size") {
        return parse_size(name, v, o.limits.max_message_size, err);
    }
    if (name == "websocket_publish") {
        if (v == "on") {
            o.websocket_publish = true;
        } else if (v == "off") {
            o.websocket_publish = false;
        } else {
            err = bad_value(name, v, "must be on or off");
            return false;
        }
        return true;
    }
    if (name == "websocket_ping") {
        return parse_time(name, v, o.websocket_ping_ms, err);
    }
    if (name == "websocket_max_backlog") {
        return parse_size(name, v, o.websocket_max_backlog, err);
    }
    if (name == "channel") {
        return parse_name_source(name, v, PUSHQ_ARG_CHANNEL, o.channel, err);
    }
    if (name == "client") {
        return parse_name_source(name, v, PUSHQ_ARG_NAME, o.client, err);
    }
    if (name == "redis") {
        const char *why = nullptr;
        pushq_redis_url_t url{};
        if (pushq_redis_url_parse(v.data(), v.size(), &url, &why)
            != PUSHQ_OK) {
            /* The value may carry a password: name the rule, not it. */
            err = "option \"redis\": invalid value: "
                  + std::string(why ? why
                                    : "must be "
                                      "redis://[:password@]host[:port][/db]");
            return false;
        }
        o.redis = url;
        o.has_redis = true;
        return true;
    }

    err = "unknown option " + quoted(name)
          + " (known: publisher_uri, subscriber_uri, status_uri, subscriber, "
            "store_size, buffer, buffer_bytes, message_ttl, client_ttl, "
            "longpoll_timeout, max_message_size, websocket_publish, "
            "websocket_ping, websocket_max_backlog, channel, client, redis)";
    return false;
}

bool parse_options(const char **opts, options &o, std::string &err)
{
    pushq_limits_default(&o.limits);

    if (opts != nullptr) {
        for (size_t i = 0; opts[i] != nullptr; i += 2) {
            if (opts[i + 1] == nullptr) {
                err = "option " + quoted(opts[i]) + " has no value (options "
                      "are name, value pairs ending in NULL)";
                return false;
            }
            if (!parse_option(opts[i], opts[i + 1], o, err)) {
                return false;
            }
        }
    }

    if (o.publisher_uris.empty() && o.subscriber_uris.empty()
        && o.status_uris.empty()) {
        err = "no location given: set at least one of the options "
              "\"publisher_uri\", \"subscriber_uri\" or \"status_uri\"";
        return false;
    }

    /* One URI, one role: CivetWeb keeps one handler per URI. */
    std::map<std::string, const char *> seen;
    const std::pair<const char *, const std::vector<std::string> *> lists[] = {
        {"publisher_uri", &o.publisher_uris},
        {"subscriber_uri", &o.subscriber_uris},
        {"status_uri", &o.status_uris},
    };
    for (const auto &[opt, list] : lists) {
        for (const std::string &u : *list) {
            auto [it, fresh] = seen.emplace(u, opt);
            if (!fresh) {
                err = "option " + quoted(opt) + ": URI " + quoted(u)
                      + " is already used by option " + quoted(it->second);
                return false;
            }
        }
    }
    return true;
}

}  // namespace pushq::civetweb

extern "C" int pushq_civetweb_option_check(const char *name,
                                           const char *value, char *error,
                                           size_t error_size)
{
    try {
        pushq::civetweb::options o;
        pushq_limits_default(&o.limits);
        std::string err;
        if (name == nullptr || value == nullptr) {
            err = "option name and value must not be NULL";
        } else if (pushq::civetweb::parse_option(name, value, o, err)) {
            return 0;
        }
        if (error != nullptr && error_size > 0) {
            std::snprintf(error, error_size, "%s", err.c_str());
        }
    } catch (...) {
        if (error != nullptr && error_size > 0) {
            std::snprintf(error, error_size, "out of memory");
        }
    }
    return -1;
}
