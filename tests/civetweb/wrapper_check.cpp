// wrapper_check.cpp -- the C++ wrapper (pushq_civetweb.hpp) on a real
// CivetServer, for tests/civetweb: attach, a bad option, publish, detach.
//
//   wrapper_check PORT     prints "ok" and exits 0, or the failure and 1

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "pushq_civetweb.hpp"

int main(int argc, char **argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    std::vector<std::string> cw = {"listening_ports",
                                   std::string("127.0.0.1:") + argv[1],
                                   "num_threads", "4"};
    CivetServer server(cw);

    try {
        pushq::civet_push bad(server, {{"publisher_uri", "/p"},
                                       {"buffer", "lots"}});
        std::puts("a bad option was accepted");
        return 1;
    } catch (const std::runtime_error &e) {
        if (std::string(e.what()).find("buffer") == std::string::npos) {
            std::printf("error does not name the option: %s\n", e.what());
            return 1;
        }
    }

    pushq::civet_push push(server, {{"publisher_uri", "/pub"},
                                    {"subscriber_uri", "/sub"},
                                    {"status_uri", "/status"}});
    uint64_t a = push.publish("news", "one");
    uint64_t b = push.publish("news", std::string("\x00\x01", 2), true);
    if (a != 1 || b != 2) {
        std::printf("ids %llu %llu, want 1 2\n", (unsigned long long)a,
                    (unsigned long long)b);
        return 1;
    }
    try {
        push.publish("bad/channel", "x");
        std::puts("a bad channel was accepted");
        return 1;
    } catch (const std::runtime_error &) {
    }
    std::puts("ok");
    return 0;
}
