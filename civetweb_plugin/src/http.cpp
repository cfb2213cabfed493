/*
 * http.cpp -- small HTTP helpers over CivetWeb's C API: answers, JSON
 * errors, query arguments, URI matching, and finding a connection's socket
 * (for disconnect detection and for cutting off a slow WebSocket).
 */

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <strings.h>

#include "plugin.hpp"

namespace pushq::civetweb {

bool query_arg_raw(const char *query, std::string_view name,
                   std::string_view &out)
{
    if (query == nullptr) {
        return false;
    }
    std::string_view q(query);
    while (!q.empty()) {
        size_t amp = q.find('&');
        std::string_view pair = q.substr(0, amp);
        size_t eq = pair.find('=');
        std::string_view key = pair.substr(0, eq);
        if (key == name) {
            out = eq == std::string_view::npos ? std::string_view()
                                               : pair.substr(eq + 1);
            return true;
        }
        if (amp == std::string_view::npos) {
            break;
        }
        q.remove_prefix(amp + 1);
    }
    return false;
}

std::string json_error(const char *why)
{
    return json_build([&](char *b, size_t cap) {
        return pushq_json_error(b, cap, why ? why : "error");
    });
}

namespace {

/* RFC 7231 IMF-fixdate with gmtime_r: CivetWeb's own Date header uses
 * gmtime(), which is not thread-safe (ThreadSanitizer reports it against
 * CivetWeb's localtime() in the access log). */
void http_date(char out[40])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri",
                                    "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr",
                                       "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"};
    time_t t = time(nullptr);
    struct tm tm;
    gmtime_r(&t, &tm);
    std::snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                  days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
                  tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

}  // namespace

void send_answer(mg_connection *conn, int status, const char *content_type,
                 const std::string &body, const char *extra_name,
                 const char *extra_value)
{
    char len[32];
    char date[40];
    std::snprintf(len, sizeof(len), "%zu", body.size());
    http_date(date);
    mg_response_header_start(conn, status);
    mg_response_header_add(conn, "Date", date, -1);
    mg_response_header_add(conn, "Content-Type", content_type, -1);
    mg_response_header_add(conn, "Content-Length", len, -1);
    mg_response_header_add(conn, "Cache-Control", "no-store", -1);
    if (extra_name != nullptr) {
        mg_response_header_add(conn, extra_name, extra_value, -1);
    }
    mg_response_header_send(conn);
    const mg_request_info *ri = mg_get_request_info(conn);
    if (!body.empty() && std::strcmp(ri->request_method, "HEAD") != 0) {
        mg_write(conn, body.data(), body.size());
    }
}

int send_error(mg_connection *conn, pushq_status_t st, const char *why,
               const char *allow)
{
    int status = pushq_status_http(st);
    std::string body = json_error(why);
    if (status == 405 && allow != nullptr) {
        send_answer(conn, status, "application/json", body, "Allow", allow);
    } else if (status == 426) {
        send_answer(conn, status, "application/json", body,
                    "Sec-WebSocket-Version", "13");
    } else {
        send_answer(conn, status, "application/json", body);
    }
    return status;
}

int send_error_raw(mg_connection *conn, pushq_status_t st, const char *why,
                   const char *allow)
{
    static const std::pair<int, const char *> reasons[] = {
        {400, "Bad Request"},        {404, "Not Found"},
        {405, "Method Not Allowed"}, {413, "Payload Too Large"},
        {426, "Upgrade Required"},   {500, "Internal Server Error"},
        {503, "Service Unavailable"},
    };
    int status = pushq_status_http(st);
    const char *reason = "Error";
    for (const auto &[code, text] : reasons) {
        if (code == status) {
            reason = text;
        }
    }
    std::string body = json_error(why);
    std::string head = "HTTP/1.1 " + std::to_string(status) + " " + reason
                       + "\r\nContent-Type: application/json\r\n"
                         "Cache-Control: no-store\r\n"
                         "Connection: close\r\nContent-Length: "
                       + std::to_string(body.size()) + "\r\n";
    if (status == 405 && allow != nullptr) {
        head += std::string("Allow: ") + allow + "\r\n";
    }
    if (status == 426) {
        head += "Sec-WebSocket-Version: 13\r\n";
    }
    head += "\r\n" + body;
    mg_write(conn, head.data(), head.size());
    return status;
}

bool media_type_is(const char *header, std::string_view type)
{
    if (header == nullptr) {
        return false;
    }
    while (*header == ' ' || *header == '\t') {
        header++;
    }
    if (strncasecmp(header, type.data(), type.size()) != 0) {
        return false;
    }
    char next = header[type.size()];
    return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

bool uri_matches(const std::vector<std::string> &uris, const char *uri)
{
    if (uri == nullptr) {
        return false;
    }
    size_t len = std::strlen(uri);
    for (const std::string &u : uris) {
        if (u.size() == len && u == uri) {
            return true;
        }
    }
    for (const std::string &u : uris) {
        if (u.size() < len && uri[u.size()] == '/'
            && std::memcmp(u.data(), uri, u.size()) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- the connection's socket ------------------------------------------- */

namespace {

bool sock_ports(int fd, uint16_t &peer, uint16_t &local, in_addr &peer_addr)
{
    sockaddr_storage ss{};
    socklen_t sl = sizeof(ss);
    if (getpeername(fd, reinterpret_cast<sockaddr *>(&ss), &sl) != 0
        || ss.ss_family != AF_INET) {
        return false;
    }
    const auto *sin = reinterpret_cast<const sockaddr_in *>(&ss);
    peer = ntohs(sin->sin_port);
    peer_addr = sin->sin_addr;
    sl = sizeof(ss);
    if (getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &sl) != 0
        || ss.ss_family != AF_INET) {
        return false;
    }
    local = ntohs(reinterpret_cast<const sockaddr_in *>(&ss)->sin_port);
    return true;
}

int local_port(int fd)
{
    sockaddr_storage ss{};
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &sl) != 0
        || ss.ss_family != AF_INET) {
        return -1;
    }
    return ntohs(reinterpret_cast<const sockaddr_in *>(&ss)->sin_port);
}

bool listening(int fd)
{
    int on = 0;
    socklen_t sl = sizeof(on);
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &sl) != 0
           || on != 0;
}

uint64_t port_key(in_addr peer_addr, uint16_t peer, uint16_t local)
{
    return (static_cast<uint64_t>(ntohl(peer_addr.s_addr)) << 32)
           | (static_cast<uint64_t>(peer) << 16) | local;
}

}  // namespace

bool fd_finder::matches(int fd, const mg_request_info *ri)
{
    uint16_t peer = 0, local = 0;
    in_addr addr{};
    if (!sock_ports(fd, peer, local, addr)) {
        return false;
    }
    char text[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &addr, text, sizeof(text)) == nullptr) {
        return false;
    }
    return peer == ri->remote_port && local == ri->server_port
           && std::strcmp(text, ri->remote_addr) == 0;
}

bool fd_finder::rescan(uint16_t server_port)
{
    /* mu_ held.  CivetWeb's threads accept and close sockets meanwhile
     * (ThreadSanitizer reports fstat against them); harmless: an fd is
     * only ever used after matches() confirmed it is the connection's
     * own socket, from the handler thread that keeps it open. */
    by_ports_.clear();
    bool reset_found = false;
    DIR *d = opendir("/proc/self/fd");
    if (d == nullptr) {
        return false;
    }
    int self = dirfd(d);
    while (dirent *e = readdir(d)) {
        char *end = nullptr;
        long fd = std::strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != '\0' || fd == self) {
            continue;
        }
        struct stat st{};
        if (fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) {
            continue;
        }
        uint16_t peer = 0, local = 0;
        in_addr addr{};
        errno = 0;
        if (sock_ports(static_cast<int>(fd), peer, local, addr)) {
            by_ports_[port_key(addr, peer, local)] = static_cast<int>(fd);
        } else if (!reset_found && errno == ENOTCONN
                   && local_port(static_cast<int>(fd)) == server_port
                   && !listening(static_cast<int>(fd))) {
            reset_found = true;
        }
    }
    closedir(d);
    return reset_found;
}

int fd_finder::find(const mg_request_info *ri, bool *gone)
{
    *gone = false;
    in_addr addr{};
    if (inet_pton(AF_INET, ri->remote_addr, &addr) != 1) {
        return -1;      /* not IPv4: cannot be found (nor known gone) */
    }
    uint64_t key = port_key(addr, static_cast<uint16_t>(ri->remote_port),
                            static_cast<uint16_t>(ri->server_port));
    std::lock_guard<std::mutex> lk(mu_);
    auto it = by_ports_.find(key);
    if (it != by_ports_.end() && matches(it->second, ri)) {
        return it->second;
    }
    /* A miss: a new connection, or the cached fd was reused.  One scan
     * also indexes every other connection accepted meanwhile, so a burst
     * of N connections costs few scans. */
    bool reset_seen = rescan(static_cast<uint16_t>(ri->server_port));
    it = by_ports_.find(key);
    if (it != by_ports_.end() && matches(it->second, ri)) {
        return it->second;
    }
    /* Not among the connected sockets.  The handler thread keeps its
     * socket open, so for an IPv4 TCP connection this means the socket is
     * no longer connected (getpeername: ENOTCONN, the peer reset it)
     * -- provided some socket on the server port is in that state. */
    *gone = reset_seen;
    return -1;
}

bool peer_gone(int fd)
{
    if (fd < 0) {
        return false;
    }
    pollfd pfd{};
    pfd.fd = fd;
    pfd.events = POLLRDHUP;
    if (poll(&pfd, 1, 0) <= 0) {
        return false;
    }
    return (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

}  // namespace pushq::civetweb
