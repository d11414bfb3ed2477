#pragma once
// Internal: one HTTP exchange over a pooled libcurl easy handle.
//
// No retries, no auth, no redirects here: the caller (client.cpp) decides. Response bodies
// are streamed to `on_body` only for 2xx answers; other answers keep up to 64 KiB of body
// for the error message.

#include "aas_bundle/registry/client.hpp"

#include <curl/curl.h>

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace aas::registry::http {

struct Request {
    std::string method = "GET";
    std::string url;
    std::vector<std::string> headers; ///< "Name: value"
    // Body: either `body` or a range of `source`.
    std::string body;
    const BlobSource* source = nullptr;
    std::uint64_t source_offset = 0;
    std::uint64_t source_length = 0;
    /// Streaming receiver for 2xx bodies; when empty the body is buffered (capped).
    std::function<void(const char*, std::size_t)> on_body;
    std::size_t max_buffered = 4u << 20;
    /// Called once with the status and headers of a 2xx answer, before its first body byte.
    std::function<void(long status, const struct Response&)> on_start;
};

struct Response {
    long status = 0;
    std::map<std::string, std::string> headers; ///< lower-case names; last value wins
    std::string body;                           ///< buffered body (or error body)
    std::string protocol;                       ///< "HTTP/1.1", "HTTP/2"
    std::string header(const std::string& lower_name) const;
};

/// Thrown when no HTTP answer came (connection refused, reset, TLS failure, timeout).
struct TransportFailure {
    CURLcode code;
    std::string message;
    bool body_started; ///< some response body had been delivered before the failure
};

class Pool {
public:
    explicit Pool(const Options& options);
    ~Pool();
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

    /// Performs `req`; throws TransportFailure when no complete answer came, or what
    /// `on_body` throws.
    Response perform(const Request& req);

private:
    CURL* acquire();
    void release(CURL* h);

    const Options& options_;
    std::mutex mutex_;
    std::vector<CURL*> free_;
};

/// Resolves `location` (absolute or relative) against `base`.
std::string resolve_url(const std::string& base, const std::string& location);
/// "scheme://host:port" of an absolute URL (default ports made explicit).
std::string origin_of(const std::string& url);

} // namespace aas::registry::http
