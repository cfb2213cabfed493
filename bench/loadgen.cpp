// pushq-loadgen: a one-thread epoll load generator for the push benchmarks
// (docs/BENCHMARKS.md).  It speaks just enough HTTP/1.1 and RFC 6455 to
// drive pushq (nginx module, pushq-civetweb) and nchan alike.
//
//   --mode ws    N WebSocket subscribers, M messages published by POST;
//   --mode lp    N long-poll subscribers (pushq: --named gives each its own
//                name; nchan: --nchan follows Last-Modified/Etag);
//   --mode idle  N WebSockets opened and held: server RSS before/after;
//   --mode pub   publishes over --conns keep-alive connections for
//                --duration seconds, no subscribers (or any URL: the
//                `return 200` ceiling).
//
// --sub-ports P1,P2,... spreads the subscribers over several servers
// (subscriber i on P[i % n]; publishing stays on --port): the Redis
// two-server run (bench/bench_redis.py).  --ready-path is then asked on
// each of them, and each must count its share of the subscribers, or all
// of them with --ready-global (a server that reports the cluster's
// count, as nchan does in its Redis mode).
//
// Every message is 64 bytes and carries "#PQ<seq>:<monotonic ns>:", so a
// subscriber checks loss, duplicates and order and measures publish ->
// receive latency whatever the framing (WebSocket frame, JSON, multipart).
// Server CPU (utime, stime) and RSS come from /proc/<pid> of --pids.
// The result is one JSON object on stdout.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr size_t payload_size = 64;
constexpr size_t marker_size = 31;  // "#PQ" + 10 digits + ':' + 16 hex + ':'

uint64_t now_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

void make_payload(char* out, uint32_t seq, uint64_t ts)
{
    char buf[payload_size + 1];
    int n = snprintf(buf, sizeof buf, "#PQ%010u:%016llx:", seq,
                     static_cast<unsigned long long>(ts));
    memset(buf + n, 'x', payload_size - size_t(n));
    memcpy(out, buf, payload_size);
}

// Calls f(seq, ts) for every marker in [p, p + n).
template <class F>
void scan_markers(const char* p, size_t n, F&& f)
{
    std::string_view s(p, n);
    size_t pos = 0;
    while ((pos = s.find("#PQ", pos)) != std::string_view::npos) {
        if (pos + marker_size > n)
            break;
        const char* m = p + pos + 3;
        uint64_t seq = 0;
        uint64_t ts = 0;
        bool ok = m[10] == ':' && m[27] == ':';
        for (int i = 0; ok && i < 10; i++) {
            if (m[i] < '0' || m[i] > '9')
                ok = false;
            else
                seq = seq * 10 + uint64_t(m[i] - '0');
        }
        for (int i = 11; ok && i < 27; i++) {
            char c = m[i];
            int v = c >= '0' && c <= '9' ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (v < 0)
                ok = false;
            else
                ts = ts * 16 + uint64_t(v);
        }
        if (ok) {
            f(uint32_t(seq), ts);
            pos += marker_size;
        } else {
            pos += 3;
        }
    }
}

struct proc_sample {
    double user_s = 0, sys_s = 0;
    long rss_kb = 0, anon_kb = 0;
};

proc_sample read_procs(const std::vector<int>& pids)
{
    proc_sample total;
    long tick = sysconf(_SC_CLK_TCK);
    for (int pid : pids) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        if (FILE* f = fopen(path, "r")) {
            char buf[2048];
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            buf[n] = 0;
            fclose(f);
            if (char* p = strrchr(buf, ')')) {
                // fields after ')': state(3) ... utime(14) stime(15)
                unsigned long ut = 0, st = 0;
                if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                           &ut, &st) == 2) {
                    total.user_s += double(ut) / double(tick);
                    total.sys_s += double(st) / double(tick);
                }
            }
        }
        snprintf(path, sizeof path, "/proc/%d/status", pid);
        if (FILE* f = fopen(path, "r")) {
            char line[256];
            while (fgets(line, sizeof line, f)) {
                long v = 0;
                if (sscanf(line, "VmRSS: %ld", &v) == 1)
                    total.rss_kb += v;
                else if (sscanf(line, "RssAnon: %ld", &v) == 1)
                    total.anon_kb += v;
            }
            fclose(f);
        }
    }
    return total;
}

double self_cpu_s()
{
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
           + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct options {
    std::string host = "127.0.0.1";
    int port = 0;
    std::string mode = "ws";
    std::string sub_path = "/sub?channel=bench";
    std::string pub_path = "/pub?channel=bench";
    std::string ready_path;
    int subs = 0;
    int msgs = 0;
    double rate = 0;
    int conns = 8;
    double duration = 5;
    double hold = 0;
    double settle = 2;
    double timeout = 120;
    bool named = false;
    bool nchan = false;
    int batch = 0;
    int parallel = 200;
    int pipeline = 1;
    std::vector<int> pids;
    std::vector<int> sub_ports;  // empty: subscribers on --port
    bool ready_global = false;
};

enum class role { sub_ws, sub_lp, pub };
enum class state { closed, connecting, wait_head, open };

struct conn {
    int fd = -1;
    const sockaddr_in* addr = nullptr;  // where it connects
    role r = role::pub;
    state s = state::closed;
    int idx = 0;
    int retries = 0;
    std::string out;
    size_t out_off = 0;
    std::string in;
    std::string last_modified, etag;  // nchan long-poll cursor
    bool done = false;
    bool counted = false;             // in connecting_ (connect or handshake)
    bool ready_counted = false;       // in subs_ready_
    std::deque<uint64_t> sent;        // pub: requests awaiting their answers
    uint64_t sent_ns = 0;             // pub: when the last one was sent
    uint32_t max_seq = 0;
    uint32_t uniq = 0;
};

struct http_resp {
    int status = 0;
    bool close = false;
    std::string body, last_modified, etag;
};

bool header_is(std::string_view line, std::string_view name, std::string_view& value)
{
    if (line.size() <= name.size() || line[name.size()] != ':')
        return false;
    for (size_t i = 0; i < name.size(); i++)
        if (tolower(static_cast<unsigned char>(line[i])) != name[i])
            return false;
    value = line.substr(name.size() + 1);
    while (!value.empty() && value.front() == ' ')
        value.remove_prefix(1);
    return true;
}

// 1: one complete response taken off the front of `in`; 0: need more; -1: bad.
int parse_http(std::string& in, http_resp& r)
{
    size_t he = in.find("\r\n\r\n");
    if (he == std::string::npos)
        return in.size() > 65536 ? -1 : 0;
    std::string_view head(in.data(), he);
    if (head.size() < 12 || head.substr(0, 5) != "HTTP/")
        return -1;
    r = http_resp{};
    r.status = atoi(in.c_str() + 9);
    long clen = -1;
    bool chunked = false;
    size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos && pos < head.size()) {
        size_t next = head.find("\r\n", pos + 2);
        std::string_view line = head.substr(pos + 2, (next == std::string_view::npos
                                                      ? head.size() : next) - pos - 2);
        std::string_view v;
        if (header_is(line, "content-length", v))
            clen = atol(std::string(v).c_str());
        else if (header_is(line, "transfer-encoding", v))
            chunked = v.find("chunked") != std::string_view::npos;
        else if (header_is(line, "connection", v))
            r.close = v.find("close") != std::string_view::npos;
        else if (header_is(line, "last-modified", v))
            r.last_modified = v;
        else if (header_is(line, "etag", v))
            r.etag = v;
        pos = next;
    }
    size_t body = he + 4;
    if (chunked) {
        size_t p = body;
        std::string out;
        for (;;) {
            size_t le = in.find("\r\n", p);
            if (le == std::string::npos)
                return 0;
            unsigned long sz = strtoul(in.c_str() + p, nullptr, 16);
            p = le + 2;
            if (sz == 0) {
                size_t te = in.find("\r\n", p);  // no trailers expected
                if (te == std::string::npos)
                    return 0;
                p = te + 2;
                break;
            }
            if (in.size() < p + sz + 2)
                return 0;
            out.append(in, p, sz);
            p += sz + 2;
        }
        r.body = std::move(out);
        in.erase(0, p);
        return 1;
    }
    if (clen < 0)
        clen = 0;
    if (in.size() < body + size_t(clen))
        return 0;
    r.body.assign(in, body, size_t(clen));
    in.erase(0, body + size_t(clen));
    return 1;
}

class loadgen {
public:
    explicit loadgen(options o) : o_(std::move(o)) {}
    int run();

private:
    options o_;
    int ep_ = -1;
    sockaddr_in addr_{};
    std::vector<sockaddr_in> sub_addrs_;  // subscriber i: [i % size]
    std::vector<std::unique_ptr<conn>> subs_;
    std::vector<std::unique_ptr<conn>> pubs_;
    int connecting_ = 0;
    int next_to_open_ = 0;
    int subs_ready_ = 0;
    int subs_done_ = 0;
    std::vector<uint8_t> seen_;
    std::vector<uint32_t> lat_us_;
    std::vector<uint32_t> pub_lat_us_;
    uint64_t uniq_ = 0, dup_ = 0, reorder_ = 0, bad_ = 0;
    uint64_t pub_ok_ = 0, pub_err_ = 0, closed_ = 0, connect_err_ = 0;
    uint64_t http_err_ = 0;
    uint32_t next_seq_ = 1;
    uint64_t t0_ = 0, last_delivery_ = 0, last_progress_ = 0;
    bool publishing_ = false;
    uint64_t pub_end_ = 0;

    void open_conn(conn& c);
    void close_conn(conn& c, bool rst);
    void on_event(conn& c, uint32_t ev);
    void on_connected(conn& c);
    void flush(conn& c);
    void process(conn& c);
    void process_ws(conn& c);
    void process_http(conn& c);
    void send_lp_request(conn& c);
    void on_marker(conn& c, uint32_t seq, uint64_t ts, uint64_t now);
    void pub_tick(uint64_t now);
    void send_publish(conn& c, uint64_t now);
    void open_more();
    void poll_once(int timeout_ms);
    bool wait_ready();
    void uncount(conn& c)
    {
        if (c.counted) {
            c.counted = false;
            connecting_--;
        }
    }
};

void loadgen::open_conn(conn& c)
{
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
        perror("socket");
        exit(2);
    }
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c.in.clear();
    c.out.clear();
    c.out_off = 0;
    c.s = state::connecting;
    if (!c.counted) {
        c.counted = true;
        connecting_++;
    }
    const sockaddr_in* a = c.addr ? c.addr : &addr_;
    int rc = connect(c.fd, reinterpret_cast<const sockaddr*>(a), sizeof *a);
    if (rc < 0 && errno != EINPROGRESS) {
        perror("connect");
        exit(2);
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP;
    ev.data.ptr = &c;
    epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
}

void loadgen::close_conn(conn& c, bool rst)
{
    if (c.fd < 0)
        return;
    uncount(c);
    if (rst) {
        linger l{1, 0};
        setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    c.fd = -1;
    c.s = state::closed;
}

void loadgen::flush(conn& c)
{
    while (c.out_off < c.out.size()) {
        ssize_t n = send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                         MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            return;  // the read side sees the error
        }
        c.out_off += size_t(n);
    }
    c.out.clear();
    c.out_off = 0;
}

void loadgen::send_lp_request(conn& c)
{
    std::string path = o_.sub_path;
    if (o_.named)
        path += "&name=b" + std::to_string(c.idx);
    if (o_.batch > 0)
        path += "&batch=" + std::to_string(o_.batch);
    c.out += "GET " + path + " HTTP/1.1\r\nHost: " + o_.host + "\r\n";
    if (o_.nchan && !c.last_modified.empty())
        c.out += "If-Modified-Since: " + c.last_modified + "\r\n";
    if (o_.nchan && !c.etag.empty())
        c.out += "If-None-Match: " + c.etag + "\r\n";
    c.out += "\r\n";
    flush(c);
}

void loadgen::on_connected(conn& c)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
        connect_err_++;
        close_conn(c, true);
        if (++c.retries <= 5)
            open_conn(c);
        return;
    }
    switch (c.r) {
    case role::sub_ws:
        c.s = state::wait_head;  // still counted in connecting_
        c.out = "GET " + o_.sub_path + " HTTP/1.1\r\nHost: " + o_.host
                + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n";
        flush(c);
        break;
    case role::sub_lp:
        uncount(c);
        c.s = state::open;
        if (!c.done) {
            send_lp_request(c);
            if (!c.ready_counted) {
                c.ready_counted = true;
                subs_ready_++;
            }
        }
        break;
    case role::pub:
        uncount(c);
        c.s = state::open;
        if (!c.out.empty())
            flush(c);
        break;
    }
}

void loadgen::on_event(conn& c, uint32_t ev)
{
    if (c.s == state::connecting) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        on_connected(c);
        if (c.fd < 0 || c.s == state::connecting)
            return;
    }
    if (ev & EPOLLOUT)
        flush(c);
    bool eof = false;
    for (;;) {
        char buf[65536];
        ssize_t n = recv(c.fd, buf, sizeof buf, 0);
        if (n > 0) {
            c.in.append(buf, size_t(n));
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            eof = true;
        if (n < 0 && errno == EINTR)
            continue;
        break;
    }
    if (!c.in.empty())
        process(c);
    if (c.fd < 0)
        return;
    if (eof) {
        bool was_head = c.s == state::wait_head;
        close_conn(c, true);
        if (c.r == role::sub_ws) {
            if (!c.done) {
                closed_++;
                if (was_head && ++c.retries <= 5)
                    open_conn(c);  // refused handshake under load: try again
            }
        } else if (c.r == role::sub_lp) {
            if (!c.done)
                open_conn(c);  // keep-alive closed by the server: reconnect
        } else {
            pub_err_ += c.sent.size();
            c.sent.clear();
            open_conn(c);
        }
    }
}

void loadgen::on_marker(conn& c, uint32_t seq, uint64_t ts, uint64_t now)
{
    if (seq == 0 || seq > uint32_t(o_.msgs)) {
        bad_++;
        return;
    }
    size_t bit = size_t(c.idx) * size_t(o_.msgs) + (seq - 1);
    if (seen_[bit]) {
        dup_++;
        return;
    }
    seen_[bit] = 1;
    uniq_++;
    c.uniq++;
    if (seq < c.max_seq)
        reorder_++;
    else
        c.max_seq = seq;
    lat_us_.push_back(uint32_t(std::min<uint64_t>((now - ts) / 1000, UINT32_MAX)));
    last_delivery_ = now;
    last_progress_ = now;
    if (c.uniq == uint32_t(o_.msgs)) {
        c.done = true;
        subs_done_++;
    }
}

void loadgen::process(conn& c)
{
    if (c.r == role::sub_ws)
        process_ws(c);
    else
        process_http(c);
}

void loadgen::process_ws(conn& c)
{
    if (c.s == state::wait_head) {
        size_t he = c.in.find("\r\n\r\n");
        if (he == std::string::npos)
            return;
        if (c.in.compare(0, 12, "HTTP/1.1 101") != 0) {
            http_err_++;
            fprintf(stderr, "loadgen: handshake refused: %.80s\n", c.in.c_str());
            close_conn(c, true);
            c.done = true;
            return;
        }
        c.in.erase(0, he + 4);
        c.s = state::open;
        uncount(c);
        if (!c.ready_counted) {
            c.ready_counted = true;
            subs_ready_++;
        }
    }
    uint64_t now = now_ns();
    size_t p = 0;
    const auto* b = reinterpret_cast<const unsigned char*>(c.in.data());
    size_t n = c.in.size();
    while (n - p >= 2) {
        unsigned op = b[p] & 0x0f;
        bool masked = b[p + 1] & 0x80;
        uint64_t len = b[p + 1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (n - p < 4)
                break;
            len = (uint64_t(b[p + 2]) << 8) | b[p + 3];
            h = 4;
        } else if (len == 127) {
            if (n - p < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | b[p + 2 + i];
            h = 10;
        }
        if (masked)
            h += 4;
        if (n - p < h + len)
            break;
        const char* payload = c.in.data() + p + h;
        if (op == 1 || op == 2 || op == 0) {
            scan_markers(payload, len, [&](uint32_t seq, uint64_t ts) {
                on_marker(c, seq, ts, now);
            });
        } else if (op == 9) {  // ping -> pong (masked with a zero key)
            std::string f;
            f += char(0x8a);
            f += char(0x80 | (len < 126 ? len : 0));
            f.append(4, '\0');
            if (len < 126)
                f.append(payload, len);
            c.out += f;
            flush(c);
        } else if (op == 8) {
            if (!c.done)
                closed_++;
            c.done = true;
            p = n;
            c.in.clear();
            close_conn(c, true);
            return;
        }
        p += h + len;
    }
    c.in.erase(0, p);
}

void loadgen::process_http(conn& c)
{
    for (;;) {
        http_resp r;
        int rc = parse_http(c.in, r);
        if (rc == 0)
            return;
        if (rc < 0) {
            http_err_++;
            close_conn(c, true);
            return;
        }
        uint64_t now = now_ns();
        if (c.r == role::pub) {
            uint64_t sent = c.sent.empty() ? now : c.sent.front();
            if (!c.sent.empty())
                c.sent.pop_front();
            if (r.status >= 200 && r.status < 300) {
                pub_ok_++;
                pub_lat_us_.push_back(uint32_t((now - sent) / 1000));
            } else {
                pub_err_++;
                if (pub_err_ < 5)
                    fprintf(stderr, "loadgen: publish answered %d: %.100s\n",
                            r.status, r.body.c_str());
            }
            if (r.close) {
                pub_err_ += c.sent.size();  // pipelined after a close
                c.sent.clear();
                close_conn(c, false);
                open_conn(c);
                return;
            }
            if (c.in.empty())
                pub_tick(now);
        } else {
            if (r.status == 200) {
                scan_markers(r.body.data(), r.body.size(),
                             [&](uint32_t seq, uint64_t ts) { on_marker(c, seq, ts, now); });
            } else if (r.status != 304 && r.status != 408) {
                http_err_++;
                if (http_err_ < 5)
                    fprintf(stderr, "loadgen: long-poll answered %d: %.100s\n",
                            r.status, r.body.c_str());
            }
            if (!r.last_modified.empty())
                c.last_modified = r.last_modified;
            if (!r.etag.empty())
                c.etag = r.etag;
            if (c.done) {
                close_conn(c, true);
                return;
            }
            if (r.close) {
                close_conn(c, false);
                open_conn(c);
                return;
            }
            send_lp_request(c);
        }
    }
}

void loadgen::send_publish(conn& c, uint64_t now)
{
    char payload[payload_size];
    make_payload(payload, next_seq_, now);
    next_seq_++;
    c.out += "POST " + o_.pub_path + " HTTP/1.1\r\nHost: " + o_.host
             + "\r\nContent-Type: text/plain\r\nContent-Length: 64\r\n\r\n";
    c.out.append(payload, payload_size);
    c.sent_ns = now;
    c.sent.push_back(now);  // the caller flushes
}

void loadgen::pub_tick(uint64_t now)
{
    if (!publishing_)
        return;
    for (auto& cp : pubs_) {
        conn& c = *cp;
        if (c.s != state::open)
            continue;
        if (o_.mode == "pub") {
            // --pipeline requests in flight per connection; sent together
            while (now < pub_end_ && c.sent.size() < size_t(o_.pipeline)) {
                if (next_seq_ > 999999999)
                    next_seq_ = 1;
                send_publish(c, now);
            }
            flush(c);
            continue;
        }
        // one publisher connection; with --pipeline K up to K publishes in
        // flight on it (HTTP/1.1 pipelining: the server handles them in order)
        bool sent = false;
        while (c.sent.size() < size_t(o_.pipeline) && next_seq_ <= uint32_t(o_.msgs)) {
            if (o_.rate > 0) {
                uint64_t due = t0_ + uint64_t(double(next_seq_ - 1) * 1e9 / o_.rate);
                if (now < due)
                    break;
            }
            send_publish(c, now);
            sent = true;
        }
        if (sent)
            flush(c);
    }
}

void loadgen::open_more()
{
    while (next_to_open_ < int(subs_.size()) && connecting_ < o_.parallel) {
        open_conn(*subs_[size_t(next_to_open_)]);
        next_to_open_++;
    }
}

void loadgen::poll_once(int timeout_ms)
{
    epoll_event evs[512];
    int n = epoll_wait(ep_, evs, 512, timeout_ms);
    for (int i = 0; i < n; i++)
        on_event(*static_cast<conn*>(evs[i].data.ptr), evs[i].events);
    open_more();
    pub_tick(now_ns());
}

// Blocking GET of --ready-path until it reports >= subs subscribers
// ("subscribers": N in pushq's JSON, "subscribers: N" in nchan's text); with
// several --sub-ports, until each reports its share (or all, --ready-global).
long get_subscribers(const sockaddr_in& addr, const options& o)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    long count = -1;
    if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
        std::string req = "GET " + o.ready_path + " HTTP/1.1\r\nHost: " + o.host
                          + "\r\nAccept: text/plain\r\nConnection: close\r\n\r\n";
        send(fd, req.data(), req.size(), MSG_NOSIGNAL);
        std::string in;
        char buf[4096];
        ssize_t k;
        while ((k = recv(fd, buf, sizeof buf, 0)) > 0)
            in.append(buf, size_t(k));
        size_t p = in.find("subscribers");
        if (p != std::string::npos) {
            p += 11;
            while (p < in.size() && (in[p] == '"' || in[p] == ':' || in[p] == ' '))
                p++;
            if (p < in.size() && isdigit(static_cast<unsigned char>(in[p])))
                count = atol(in.c_str() + p);
        }
    }
    ::close(fd);
    return count;
}

bool loadgen::wait_ready()
{
    uint64_t deadline = now_ns() + 10'000'000'000ull;
    size_t n = sub_addrs_.size();
    while (now_ns() < deadline) {
        bool all = true;
        for (size_t i = 0; i < n && all; i++) {
            // subscribers on this server: indices i, i + n, i + 2n, ...
            long share = o_.ready_global || n == 1
                             ? o_.subs
                             : (o_.subs / long(n)) + (long(i) < o_.subs % long(n) ? 1 : 0);
            all = get_subscribers(sub_addrs_[i], o_) >= share;
        }
        if (all)
            return true;
        // keep the WebSockets served (pings) while waiting
        poll_once(50);
    }
    return false;
}

uint32_t percentile(std::vector<uint32_t>& v, double q)
{
    if (v.empty())
        return 0;
    size_t k = std::min(v.size() - 1, size_t(q * double(v.size())));
    std::nth_element(v.begin(), v.begin() + long(k), v.end());
    return v[k];
}

int loadgen::run()
{
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(uint16_t(o_.port));
    inet_pton(AF_INET, o_.host.c_str(), &addr_.sin_addr);
    if (o_.sub_ports.empty()) {
        sub_addrs_.push_back(addr_);
    } else {
        for (int p : o_.sub_ports) {
            sockaddr_in a = addr_;
            a.sin_port = htons(uint16_t(p));
            sub_addrs_.push_back(a);
        }
    }
    ep_ = epoll_create1(EPOLL_CLOEXEC);

    bool idle = o_.mode == "idle";
    bool pubmode = o_.mode == "pub";
    role sr = o_.mode == "lp" ? role::sub_lp : role::sub_ws;
    int nsubs = pubmode ? 0 : o_.subs;
    if (pubmode)
        o_.msgs = 0;
    for (int i = 0; i < nsubs; i++) {
        auto c = std::make_unique<conn>();
        c->r = sr;
        c->idx = i;
        c->addr = &sub_addrs_[size_t(i) % sub_addrs_.size()];
        subs_.push_back(std::move(c));
    }
    seen_.assign(size_t(nsubs) * size_t(std::max(o_.msgs, 0)), 0);
    lat_us_.reserve(seen_.size());

    proc_sample before_connect = read_procs(o_.pids);
    uint64_t start = now_ns();
    uint64_t deadline = start + uint64_t(o_.timeout * 1e9);

    // Phase 1: subscribers connect (at most --parallel handshakes at once).
    open_more();
    int last_ready = 0;
    uint64_t last_ready_ns = now_ns();
    while (subs_ready_ < nsubs && now_ns() < deadline) {
        poll_once(50);
        if (subs_ready_ != last_ready) {
            last_ready = subs_ready_;
            last_ready_ns = now_ns();
        } else if (now_ns() - last_ready_ns > 10'000'000'000ull) {
            fprintf(stderr, "loadgen: only %d of %d subscribers connected "
                            "(none more in 10 s)\n", subs_ready_, nsubs);
            break;
        }
        int failed = 0;
        for (auto& c : subs_)
            failed += c->done && c->fd < 0;
        if (subs_ready_ + failed >= nsubs && connecting_ == 0)
            break;
    }
    double connect_s = double(now_ns() - start) / 1e9;
    bool ready = true;
    if (!o_.ready_path.empty() && nsubs > 0)
        ready = wait_ready();
    else if (sr == role::sub_lp)
        for (uint64_t e = now_ns() + 500'000'000ull; now_ns() < e;)
            poll_once(50);

    proc_sample after_connect{};
    if (idle) {
        for (uint64_t e = now_ns() + uint64_t(o_.settle * 1e9); now_ns() < e;)
            poll_once(50);
        after_connect = read_procs(o_.pids);
        for (uint64_t e = now_ns() + uint64_t(o_.hold * 1e9); now_ns() < e;)
            poll_once(100);
    }

    // Phase 2: publish and receive.
    proc_sample srv0 = read_procs(o_.pids);
    double self0 = self_cpu_s();
    t0_ = now_ns();
    last_progress_ = t0_;
    last_delivery_ = t0_;
    if (!idle) {
        int npub = pubmode ? o_.conns : 1;
        for (int i = 0; i < npub; i++) {
            auto c = std::make_unique<conn>();
            c->r = role::pub;
            pubs_.push_back(std::move(c));
            open_conn(*pubs_.back());
        }
        publishing_ = true;
        pub_end_ = t0_ + uint64_t(o_.duration * 1e9);
        for (;;) {
            uint64_t now = now_ns();
            if (now >= deadline)
                break;
            if (pubmode) {
                bool busy = false;
                for (auto& c : pubs_)
                    busy |= !c->sent.empty();
                if (now >= pub_end_ && !busy)
                    break;
            } else {
                bool all_sent = next_seq_ > uint32_t(o_.msgs);
                bool busy = false;
                for (auto& c : pubs_)
                    busy |= !c->sent.empty();
                if (all_sent && !busy && subs_done_ + int(closed_) >= nsubs)
                    break;
                if (all_sent && !busy && now - last_progress_ > 5'000'000'000ull)
                    break;  // nothing arrived for 5 s: the rest is lost
                if (pub_ok_ + pub_err_ > 0)
                    last_progress_ = std::max(last_progress_, pubs_[0]->sent_ns);
            }
            int wait = 50;
            if (o_.rate > 0 && next_seq_ <= uint32_t(o_.msgs)) {
                uint64_t due = t0_ + uint64_t(double(next_seq_ - 1) * 1e9 / o_.rate);
                wait = due > now ? int((due - now) / 1000000) : 0;
                wait = std::min(wait, 50);
            }
            poll_once(wait);
        }
    }
    uint64_t t_end = pubmode ? now_ns() : std::max(last_delivery_, t0_ + 1);
    double self1 = self_cpu_s();
    proc_sample srv1 = read_procs(o_.pids);
    double wall = double(now_ns() - t0_) / 1e9;
    double span = double(t_end - t0_) / 1e9;

    uint64_t expected = uint64_t(nsubs) * uint64_t(std::max(o_.msgs, 0));
    uint64_t lost = expected - uniq_;
    double su = srv1.user_s - srv0.user_s;
    double ss = srv1.sys_s - srv0.sys_s;
    bool ok = !idle && !pubmode
                  ? (lost == 0 && dup_ == 0 && reorder_ == 0 && bad_ == 0 && pub_err_ == 0)
                  : (subs_ready_ == nsubs);
    if (pubmode)
        ok = pub_err_ == 0 && pub_ok_ > 0;

    printf("{\"mode\": \"%s\", \"subs\": %d, \"msgs\": %d, \"rate\": %g, "
           "\"ok\": %s, \"ready\": %s, \"subs_ready\": %d, \"connect_s\": %.3f, "
           "\"expected\": %llu, \"delivered\": %llu, \"lost\": %llu, \"dup\": %llu, "
           "\"reorder\": %llu, \"bad\": %llu, \"closed_by_server\": %llu, "
           "\"connect_err\": %llu, \"http_err\": %llu, "
           "\"pub_ok\": %llu, \"pub_err\": %llu, \"span_s\": %.4f, \"wall_s\": %.4f, "
           "\"deliveries_per_s\": %.1f, \"pubs_per_s\": %.1f, "
           "\"lat_p50_us\": %u, \"lat_p99_us\": %u, \"lat_max_us\": %u, "
           "\"pub_lat_p50_us\": %u, \"pub_lat_p99_us\": %u, "
           "\"own_cpu_s\": %.3f, \"own_cpu_pct\": %.1f, "
           "\"srv_user_s\": %.3f, \"srv_sys_s\": %.3f, "
           "\"srv_user_us_per_delivery\": %.4f, \"srv_sys_us_per_delivery\": %.4f, "
           "\"srv_cpu_us_per_pub\": %.3f, "
           "\"rss_before_kb\": %ld, \"rss_after_kb\": %ld, "
           "\"anon_before_kb\": %ld, \"anon_after_kb\": %ld, "
           "\"rss_per_conn_b\": %.0f, \"anon_per_conn_b\": %.0f}\n",
           o_.mode.c_str(), nsubs, o_.msgs, o_.rate, ok ? "true" : "false",
           ready ? "true" : "false", subs_ready_, connect_s,
           static_cast<unsigned long long>(expected), static_cast<unsigned long long>(uniq_),
           static_cast<unsigned long long>(lost), static_cast<unsigned long long>(dup_),
           static_cast<unsigned long long>(reorder_), static_cast<unsigned long long>(bad_),
           static_cast<unsigned long long>(closed_),
           static_cast<unsigned long long>(connect_err_),
           static_cast<unsigned long long>(http_err_),
           static_cast<unsigned long long>(pub_ok_), static_cast<unsigned long long>(pub_err_),
           span, wall, span > 0 ? double(uniq_) / span : 0.0,
           wall > 0 ? double(pub_ok_) / wall : 0.0,
           percentile(lat_us_, 0.5), percentile(lat_us_, 0.99),
           lat_us_.empty() ? 0u : *std::max_element(lat_us_.begin(), lat_us_.end()),
           percentile(pub_lat_us_, 0.5), percentile(pub_lat_us_, 0.99),
           self1 - self0, wall > 0 ? 100.0 * (self1 - self0) / wall : 0.0, su, ss,
           uniq_ ? su * 1e6 / double(uniq_) : 0.0, uniq_ ? ss * 1e6 / double(uniq_) : 0.0,
           pub_ok_ ? (su + ss) * 1e6 / double(pub_ok_) : 0.0,
           before_connect.rss_kb, after_connect.rss_kb, before_connect.anon_kb,
           after_connect.anon_kb,
           idle && subs_ready_ ? double(after_connect.rss_kb - before_connect.rss_kb) * 1024.0 / subs_ready_
                         : 0.0,
           idle && subs_ready_
               ? double(after_connect.anon_kb - before_connect.anon_kb) * 1024.0 / subs_ready_
               : 0.0);
    fflush(stdout);
    for (auto& c : subs_) {
        c->done = true;
        close_conn(*c, true);
    }
    for (auto& c : pubs_)
        close_conn(*c, false);
    return ok ? 0 : 1;
}

[[noreturn]] void usage()
{
    fprintf(stderr,
            "usage: pushq-loadgen --port P [--host 127.0.0.1] --mode ws|lp|idle|pub\n"
            "  [--subs N] [--msgs M] [--rate R/s (0 = as fast as possible)]\n"
            "  [--sub-path /sub?channel=c] [--pub-path /pub?channel=c]\n"
            "  [--ready-path /status?channel=c] [--named] [--nchan] [--batch K]\n"
            "  [--conns 8 --duration S] (pub) [--pipeline K: publishes in flight per connection]\n"
            "  [--hold S --settle S] (idle)\n"
            "  [--pids 1,2] [--parallel 200] [--timeout S]\n"
            "  [--sub-ports P1,P2 [--ready-global]] (subscribers over several servers)\n");
    exit(2);
}

}  // namespace

int main(int argc, char** argv)
{
    options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc)
                usage();
            return argv[++i];
        };
        if (a == "--host") o.host = val();
        else if (a == "--port") o.port = atoi(val().c_str());
        else if (a == "--mode") o.mode = val();
        else if (a == "--sub-path") o.sub_path = val();
        else if (a == "--pub-path") o.pub_path = val();
        else if (a == "--ready-path") o.ready_path = val();
        else if (a == "--subs") o.subs = atoi(val().c_str());
        else if (a == "--msgs") o.msgs = atoi(val().c_str());
        else if (a == "--rate") o.rate = atof(val().c_str());
        else if (a == "--conns") o.conns = atoi(val().c_str());
        else if (a == "--duration") o.duration = atof(val().c_str());
        else if (a == "--hold") o.hold = atof(val().c_str());
        else if (a == "--settle") o.settle = atof(val().c_str());
        else if (a == "--timeout") o.timeout = atof(val().c_str());
        else if (a == "--batch") o.batch = atoi(val().c_str());
        else if (a == "--parallel") o.parallel = atoi(val().c_str());
        else if (a == "--pipeline") o.pipeline = std::max(1, atoi(val().c_str()));
        else if (a == "--named") o.named = true;
        else if (a == "--nchan") o.nchan = true;
        else if (a == "--ready-global") o.ready_global = true;
        else if (a == "--sub-ports") {
            std::string v = val();
            for (char* p = v.data(); *p;) {
                o.sub_ports.push_back(int(strtol(p, &p, 10)));
                if (*p == ',') p++;
                else if (*p) usage();
            }
        }
        else if (a == "--pids") {
            std::string v = val();
            for (char* p = v.data(); *p;) {
                o.pids.push_back(int(strtol(p, &p, 10)));
                if (*p == ',') p++;
                else if (*p) usage();
            }
        } else usage();
    }
    if (o.port <= 0 || (o.mode != "ws" && o.mode != "lp" && o.mode != "idle" && o.mode != "pub"))
        usage();
    return loadgen(std::move(o)).run();
}
