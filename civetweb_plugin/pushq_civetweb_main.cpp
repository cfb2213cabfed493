/*
 * pushq-civetweb -- a ready CivetWeb server with pushq attached, configured
 * by one file of "name value" lines: CivetWeb's own options
 * (listening_ports, document_root, num_threads, ...) and pushq's (named as
 * pushq_civetweb_attach's options).  Logs to stderr.  Stops on SIGTERM or
 * SIGINT (waiting long-polls are answered, WebSockets closed with 1001).
 *
 * Exit codes: 0 after a signal, 1 when the server could not run, 2 for a
 * bad command line or configuration (the message names file:line).
 */

#include <civetweb.h>
#include <csignal>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "pushq_civetweb.h"
#include "src/log_line.hpp"

namespace {

const char *const pushq_option_names[] = {
    "publisher_uri", "subscriber_uri", "status_uri", "subscriber",
    "store_size", "buffer", "buffer_bytes", "message_ttl", "client_ttl",
    "longpoll_timeout", "max_message_size", "websocket_publish",
    "websocket_ping", "websocket_max_backlog", "channel", "client",
    "redis",
};

/* Applied unless the file sets them. */
const char *const civetweb_defaults[][2] = {
    {"tcp_nodelay", "1"},                  /* ~44 ms per message otherwise */
    {"enable_websocket_ping_pong", "no"},  /* pushq answers pings itself   */
};

const char usage_text[] =
    "usage: pushq-civetweb [-c] CONFIG\n"
    "       pushq-civetweb --help\n";

const char help_text[] =
    "pushq-civetweb: a CivetWeb server with pushq's long-poll and WebSocket\n"
    "push endpoints (SPEC.md), configured by one file.\n"
    "\n"
    "usage: pushq-civetweb [-c] CONFIG\n"
    "\n"
    "CONFIG holds one option per line, \"name value\" (the value is the rest\n"
    "of the line); lines starting with '#' and blank lines are ignored.\n"
    "Relative paths are relative to the current directory.  Two kinds of\n"
    "options may be mixed:\n"
    "\n"
    "  CivetWeb's own options, e.g.\n"
    "    listening_ports     127.0.0.1:8080\n"
    "    document_root       examples/chat\n"
    "    num_threads         1100     each waiting long-poll and each open\n"
    "                                 WebSocket holds one thread: set it to\n"
    "                                 the subscribers to hold + headroom\n"
    "    listen_backlog, connection_queue, request_timeout_ms, ...\n"
    "  (pushq-civetweb sets tcp_nodelay 1 unless the file says otherwise, and\n"
    "  needs enable_websocket_ping_pong no.)\n"
    "\n"
    "  pushq's options (pushq_civetweb_attach's, nginx's directives without\n"
    "  the pushq_ prefix, same value syntax):\n"
    "    publisher_uri       /pub,/send_msg/   POST/PUT publishes\n"
    "    subscriber_uri      /sub,/get_msg/    long-poll and WebSocket\n"
    "    status_uri          /status           counters (JSON, Prometheus)\n"
    "    subscriber          longpoll,websocket (default both)\n"
    "    store_size          32m     memory for channels and messages\n"
    "    buffer              1000    messages kept per channel\n"
    "    buffer_bytes        16m     bytes kept per channel\n"
    "    message_ttl         1h      how long a message is kept\n"
    "    client_ttl          5m      how long a named client is remembered\n"
    "    longpoll_timeout    30s     longest long-poll wait\n"
    "    max_message_size    64k     largest message\n"
    "    websocket_publish   on      WebSocket clients may publish\n"
    "    websocket_ping      30s     server ping interval (0: none)\n"
    "    websocket_max_backlog 1m    unsent bytes before a slow WebSocket\n"
    "                                is disconnected\n"
    "    channel             $arg_channel  channel argument, or a fixed name\n"
    "    client              $arg_name     client-name argument, or fixed\n"
    "    redis               redis://[:password@]host[:port][/db]\n"
    "                                (absent: one server)  Redis holds the\n"
    "                                ids, messages and named cursors, and\n"
    "                                every server sharing it delivers every\n"
    "                                publish; publishes answer 503 while it\n"
    "                                cannot be reached\n"
    "\n"
    "The open-file soft limit is raised to the hard limit (each held\n"
    "subscriber is a socket).\n"
    "\n"
    "Logs (CivetWeb's errors, the access log, pushq's messages) go to\n"
    "stderr.  SIGTERM or SIGINT stops the server: waiting long-polls are\n"
    "answered and WebSockets closed with 1001 first.\n"
    "\n"
    "Exit status: 0 after a signal, 1 when the server could not run, 2 for a\n"
    "bad command line or configuration (the message names FILE:LINE).\n";

/* The attached plugin, for the begin_request hook; main clears it (under
 * the exclusive lock, so no hook is still using it) before detaching. */
std::shared_mutex g_push_mu;
pushq_civetweb   *g_push = nullptr;

void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void log_line(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pushq::civetweb::vlog_line("", fmt, ap);
    va_end(ap);
}

int on_log_message(const struct mg_connection *, const char *message)
{
    log_line("[civetweb] %s", message);
    return 1;
}

int on_log_access(const struct mg_connection *, const char *message)
{
    log_line("[access] %s", message);
    return 1;
}

int on_begin_request(struct mg_connection *conn)
{
    std::shared_lock<std::shared_mutex> lk(g_push_mu);
    if (g_push == nullptr) {
        /* CivetWeb listens from mg_start on; pushq attaches just after
         * (and detaches before mg_stop).  Meanwhile: 503, not a 404. */
        static const char body[] =
            "{\"status\": false, \"error\": \"server: starting or stopping\"}";
        char head[256];
        int n = std::snprintf(head, sizeof(head),
                              "HTTP/1.1 503 Service Unavailable\r\n"
                              "Content-Type: application/json\r\n"
                              "Cache-Control: no-store\r\n"
                              "Connection: close\r\nRetry-After: 1\r\n"
                              "Content-Length: %zu\r\n\r\n",
                              sizeof(body) - 1);
        mg_write(conn, head, static_cast<size_t>(n));
        mg_write(conn, body, sizeof(body) - 1);
        return 503;
    }
    return pushq_civetweb_begin_request(g_push, conn);
}

struct config_line {
    std::string name;
    std::string value;
    int         line;
};

struct config {
    std::string               path;
    std::vector<config_line>  civetweb;
    std::vector<config_line>  pushq;
    std::map<std::string, int> lines;      /* option name -> line */
};

[[noreturn]] void config_error(const config &c, int line, const std::string &msg)
{
    if (line > 0) {
        std::fprintf(stderr, "pushq-civetweb: %s:%d: %s\n", c.path.c_str(),
                     line, msg.c_str());
    } else {
        std::fprintf(stderr, "pushq-civetweb: %s: %s\n", c.path.c_str(),
                     msg.c_str());
    }
    std::exit(2);
}

bool is_pushq_option(const std::string &name)
{
    for (const char *n : pushq_option_names) {
        if (name == n) {
            return true;
        }
    }
    return false;
}

const struct mg_option *civetweb_option(const std::string &name)
{
    for (const struct mg_option *o = mg_get_valid_options(); o->name != nullptr;
         o++) {
        if (name == o->name) {
            return o;
        }
    }
    return nullptr;
}

void check_civetweb_value(const config &c, const config_line &l,
                          const struct mg_option *o)
{
    if (o->type == MG_CONFIG_TYPE_NUMBER) {
        const char *s = l.value.c_str();
        char *end = nullptr;
        errno = 0;
        long v = std::strtol(s, &end, 10);
        if (end == s || *end != '\0' || errno != 0 || v < 0) {
            config_error(c, l.line,
                         "option \"" + l.name + "\": invalid value \""
                             + l.value + "\": must be a non-negative integer");
        }
    } else if (o->type == MG_CONFIG_TYPE_BOOLEAN
               || o->type == MG_CONFIG_TYPE_YES_NO_OPTIONAL) {
        if (l.value != "yes" && l.value != "no"
            && !(o->type == MG_CONFIG_TYPE_YES_NO_OPTIONAL
                 && l.value == "optional")) {
            config_error(c, l.line,
                         "option \"" + l.name + "\": invalid value \""
                             + l.value + "\": must be yes or no");
        }
    }
    if (l.name == "enable_websocket_ping_pong" && l.value != "no") {
        config_error(c, l.line,
                     "option \"enable_websocket_ping_pong\" must be no: pushq "
                     "answers pings and sends its own (websocket_ping)");
    }
}

config read_config(const std::string &path)
{
    config c;
    c.path = path;
    std::ifstream in(path);
    if (!in) {
        std::fprintf(stderr, "pushq-civetweb: %s: cannot open: %s\n",
                     path.c_str(), std::strerror(errno));
        std::exit(2);
    }
    std::string raw;
    int line = 0;
    while (std::getline(in, raw)) {
        line++;
        if (!raw.empty() && raw.back() == '\r') {
            raw.pop_back();
        }
        size_t b = raw.find_first_not_of(" \t");
        if (b == std::string::npos || raw[b] == '#') {
            continue;
        }
        size_t e = raw.find_first_of(" \t", b);
        std::string name = raw.substr(b, e == std::string::npos ? e : e - b);
        std::string value;
        if (e != std::string::npos) {
            size_t vb = raw.find_first_not_of(" \t", e);
            if (vb != std::string::npos) {
                size_t ve = raw.find_last_not_of(" \t");
                value = raw.substr(vb, ve - vb + 1);
            }
        }
        if (value.empty()) {
            config_error(c, line,
                         "option \"" + name
                             + "\" has no value (lines are \"name value\")");
        }
        auto seen = c.lines.find(name);
        if (seen != c.lines.end()) {
            config_error(c, line,
                         "option \"" + name + "\" is already set on line "
                             + std::to_string(seen->second));
        }
        config_line l{name, value, line};
        if (is_pushq_option(name)) {
            char err[512];
            if (pushq_civetweb_option_check(name.c_str(), value.c_str(), err,
                                            sizeof(err))
                != 0) {
                config_error(c, line, err);
            }
            c.pushq.push_back(l);
        } else if (const struct mg_option *o = civetweb_option(name)) {
            check_civetweb_value(c, l, o);
            c.civetweb.push_back(l);
        } else {
            config_error(c, line,
                         "unknown option \"" + name
                             + "\" (neither a CivetWeb option nor one of "
                               "pushq's; see pushq-civetweb --help)");
        }
        c.lines[name] = line;
    }
    return c;
}

/* The line of the option an error message talks about, if any. */
int line_of_error(const config &c, const std::string &msg)
{
    int best = 0;
    size_t best_len = 0;
    for (const auto &[name, line] : c.lines) {
        if (msg.find(name) != std::string::npos && name.size() > best_len) {
            best = line;
            best_len = name.size();
        }
    }
    if (best == 0 && (msg.find("bind") != std::string::npos
                      || msg.find("port") != std::string::npos)) {
        auto it = c.lines.find("listening_ports");
        if (it != c.lines.end()) {
            best = it->second;
        }
    }
    return best;
}

}  // namespace

int main(int argc, char **argv)
{
    std::string path;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::fputs(help_text, stdout);
            return 0;
        }
        if (a == "-c" && i + 1 < argc && path.empty()) {
            path = argv[++i];
        } else if (!a.empty() && a[0] != '-' && path.empty()) {
            path = a;
        } else {
            std::fprintf(stderr, "pushq-civetweb: unexpected argument \"%s\"\n%s",
                         a.c_str(), usage_text);
            return 2;
        }
    }
    if (path.empty()) {
        std::fprintf(stderr, "pushq-civetweb: no configuration file given\n%s"
                             "(try pushq-civetweb --help)\n", usage_text);
        return 2;
    }

    mg_init_library(0);
    config c = read_config(path);

    /* Every held subscriber is a socket: raise the soft open-file limit
     * (often 1024) to the hard one, as nginx's worker_rlimit_nofile
     * would. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);

    std::vector<const char *> cw;
    for (const config_line &l : c.civetweb) {
        cw.push_back(l.name.c_str());
        cw.push_back(l.value.c_str());
    }
    for (const auto &d : civetweb_defaults) {
        if (c.lines.find(d[0]) == c.lines.end()) {
            cw.push_back(d[0]);
            cw.push_back(d[1]);
        }
    }
    cw.push_back(nullptr);

    /* Signals are taken by sigwait below; CivetWeb's threads inherit the
     * mask, so they never run a handler. */
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);

    struct mg_callbacks cb;
    std::memset(&cb, 0, sizeof(cb));
    cb.log_message = on_log_message;
    cb.log_access = on_log_access;
    cb.begin_request = on_begin_request;

    struct mg_init_data init;
    std::memset(&init, 0, sizeof(init));
    init.callbacks = &cb;
    init.configuration_options = cw.data();
    char errtext[512] = "";
    struct mg_error_data errdata;
    std::memset(&errdata, 0, sizeof(errdata));
    errdata.text = errtext;
    errdata.text_buffer_size = sizeof(errtext);

    struct mg_context *ctx = mg_start2(&init, &errdata);
    if (ctx == nullptr) {
        std::string msg = errtext[0] ? errtext : "CivetWeb failed to start";
        int line = line_of_error(c, msg);
        if (line > 0) {
            config_error(c, line, "CivetWeb: " + msg);
        }
        std::fprintf(stderr, "pushq-civetweb: CivetWeb failed to start: %s\n",
                     msg.c_str());
        return 1;
    }

    std::vector<const char *> po;
    for (const config_line &l : c.pushq) {
        po.push_back(l.name.c_str());
        po.push_back(l.value.c_str());
    }
    po.push_back(nullptr);
    char err[512] = "";
    pushq_civetweb *p = pushq_civetweb_attach(ctx, po.data(), err, sizeof(err));
    if (p == nullptr) {
        mg_stop(ctx);
        config_error(c, line_of_error(c, err), err);
    }
    {
        std::unique_lock<std::shared_mutex> lk(g_push_mu);
        g_push = p;
    }

    struct mg_server_port ports[8];
    int n = mg_get_server_ports(ctx, 8, ports);
    std::string listening;
    for (int i = 0; i < n; i++) {
        listening += (i ? ", " : "") + std::to_string(ports[i].port);
    }
    const char *docroot = mg_get_option(ctx, "document_root");
    const char *threads = mg_get_option(ctx, "num_threads");
    log_line("pushq-civetweb: CivetWeb %s listening on port %s, %s threads, "
             "%llu open files, document_root %s",
             mg_version(), listening.c_str(), threads ? threads : "?",
             static_cast<unsigned long long>(rl.rlim_cur),
             docroot && *docroot ? docroot : "(none)");

    int sig = 0;
    sigwait(&stop_set, &sig);
    log_line("pushq-civetweb: %s: detaching pushq and stopping",
             sig == SIGTERM ? "SIGTERM" : "SIGINT");
    {
        std::unique_lock<std::shared_mutex> lk(g_push_mu);
        g_push = nullptr;
    }
    pushq_civetweb_detach(p);
    mg_stop(ctx);
    mg_exit_library();
    log_line("pushq-civetweb: stopped");
    return 0;
}
