/*
 * pushq_civetweb.hpp -- a thin C++ wrapper of pushq_civetweb.h for
 * CivetServer users.  Header-only; link libpushq_civetweb.a, libpushq.a,
 * -lcivetweb -lcrypto -lpthread -lstdc++ as for the C API.
 *
 *     CivetServer server(cw_options);
 *     pushq::civet_push push(server, {
 *         {"publisher_uri", "/pub"},
 *         {"subscriber_uri", "/sub"},
 *         {"status_uri", "/status"},
 *     });                                 // throws std::runtime_error
 *     push.publish("news", "hello");      // server-side event
 *     ...                                 // ~civet_push detaches; destroy
 *                                         // it before the CivetServer
 */

#ifndef PUSHQ_CIVETWEB_HPP
#define PUSHQ_CIVETWEB_HPP

#include <CivetServer.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pushq_civetweb.h"

namespace pushq {

class civet_push {
public:
    using option_list = std::vector<std::pair<std::string, std::string>>;

    /* Attaches to server's context; throws std::runtime_error with the
     * attach error (naming the bad option). */
    civet_push(CivetServer &server, const option_list &options)
        /* CivetServer hands out its context as const; attach registers
         * handlers on it, as CivetServer::addHandler does. */
        : civet_push(const_cast<struct mg_context *>(server.getContext()),
                     options)
    {
    }

    civet_push(struct mg_context *ctx, const option_list &options)
    {
        std::vector<const char *> argv;
        for (const auto &[name, value] : options) {
            argv.push_back(name.c_str());
            argv.push_back(value.c_str());
        }
        argv.push_back(nullptr);
        char err[512] = "";
        p_ = pushq_civetweb_attach(ctx, argv.data(), err, sizeof(err));
        if (p_ == nullptr) {
            throw std::runtime_error(std::string("pushq: ") + err);
        }
    }

    ~civet_push() { pushq_civetweb_detach(p_); }

    civet_push(const civet_push &) = delete;
    civet_push &operator=(const civet_push &) = delete;

    /* Publishes from the program itself; returns the message id, throws
     * std::runtime_error on a bad channel, too large a message or a full
     * store. */
    uint64_t publish(std::string_view channel, std::string_view msg,
                     bool binary = false)
    {
        uint64_t id = 0;
        char err[256] = "";
        if (pushq_civetweb_publish(p_, channel.data(), channel.size(),
                                   msg.data(), msg.size(), binary ? 1 : 0,
                                   &id, err, sizeof(err))
            != 0) {
            throw std::runtime_error(std::string("pushq: ") + err);
        }
        return id;
    }

    /* For a CivetCallbacks::begin_request (see pushq_civetweb.h). */
    int begin_request(struct mg_connection *conn)
    {
        return pushq_civetweb_begin_request(p_, conn);
    }

    struct pushq_civetweb *handle() const { return p_; }

private:
    struct pushq_civetweb *p_ = nullptr;
};

}  // namespace pushq

#endif /* PUSHQ_CIVETWEB_HPP */
