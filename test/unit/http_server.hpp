#pragma once
// A tiny HTTP/1.1 server on 127.0.0.1 for unit tests of the registry client and what uses
// it: one connection at a time, each request answered by a handler and the connection
// closed. Not a registry: a test's handler answers what its client asks.

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace aas::testing {

class HttpServer {
public:
    struct Request {
        std::string method;
        std::string target; ///< path and query, as sent
        std::string body;
    };
    struct Response {
        int status = 200;
        std::vector<std::pair<std::string, std::string>> headers;
        std::string body;
    };
    /// Called on the server's thread, one request at a time.
    using Handler = std::function<Response(const Request&)>;

    explicit HttpServer(Handler handler) : handler_(std::move(handler)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(fd_, 16) == 0);
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
        port_ = ntohs(addr.sin_port);
        thread_ = std::jthread([this] { serve(); });
    }
    ~HttpServer() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    /// "127.0.0.1:PORT", a registry name for registry::Client (with Options::plain_http).
    std::string host() const { return "127.0.0.1:" + std::to_string(port_); }

private:
    void serve() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0) continue;
            int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (conn < 0) continue;
            Request req;
            if (read_request(conn, req)) write_response(conn, req.method, handler_(req));
            ::close(conn);
        }
    }

    // The request line, the headers (only Content-Length matters) and the body.
    static bool read_request(int conn, Request& req) {
        std::string data;
        std::size_t end;
        while ((end = data.find("\r\n\r\n")) == std::string::npos)
            if (!read_more(conn, data)) return false;
        std::string head = data.substr(0, end);
        std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return std::tolower(c); });
        std::size_t length = 0;
        if (auto cl = head.find("\r\ncontent-length:"); cl != std::string::npos)
            length = std::stoul(head.substr(cl + 17, head.find("\r\n", cl + 2) - cl - 17));
        while (data.size() < end + 4 + length)
            if (!read_more(conn, data)) return false;
        auto sp1 = data.find(' ');
        auto sp2 = data.find(' ', sp1 + 1);
        req.method = data.substr(0, sp1);
        req.target = data.substr(sp1 + 1, sp2 - sp1 - 1);
        req.body = data.substr(end + 4, length);
        return true;
    }

    static bool read_more(int conn, std::string& data) {
        char buf[4096];
        auto n = ::recv(conn, buf, sizeof buf, 0);
        if (n <= 0) return false;
        data.append(buf, static_cast<std::size_t>(n));
        return true;
    }

    static void write_response(int conn, const std::string& method, const Response& resp) {
        std::string out = "HTTP/1.1 " + std::to_string(resp.status) + " X\r\nConnection: close\r\n";
        out += "Content-Length: " + std::to_string(resp.body.size()) + "\r\n";
        for (const auto& [name, value] : resp.headers) out += name + ": " + value + "\r\n";
        out += "\r\n";
        if (method != "HEAD") out += resp.body;
        for (std::size_t sent = 0; sent < out.size();) {
            auto n = ::send(conn, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) return;
            sent += static_cast<std::size_t>(n);
        }
    }

    Handler handler_;
    int fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::jthread thread_;
};

} // namespace aas::testing
