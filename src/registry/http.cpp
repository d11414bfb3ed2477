#include "http.hpp"

#include "aas_bundle/util/log.hpp"
#include "aas_bundle/util/strings.hpp"
#include "aas_bundle_version.hpp"

#include <fmt/format.h>

#include <cstring>
#include <exception>

namespace aas::registry::http {
namespace {

constexpr std::size_t max_error_body = 64u << 10;

struct Exchange {
    const Request* req;
    Response* resp;
    CURL* handle;
    bool body_started = false;
    std::exception_ptr callback_error;
    std::uint64_t upload_pos = 0;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
    auto* ex = static_cast<Exchange*>(user);
    std::string_view line(data, size * n);
    if (line.rfind("HTTP/", 0) == 0) {
        ex->resp->headers.clear(); // a new response (after 100 Continue or a proxy)
        return size * n;
    }
    auto colon = line.find(':');
    if (colon != std::string_view::npos) {
        std::string name = util::to_lower(util::trim(line.substr(0, colon)));
        ex->resp->headers[name] = std::string(util::trim(line.substr(colon + 1)));
    }
    return size * n;
}

size_t on_write(char* data, size_t size, size_t n, void* user) {
    auto* ex = static_cast<Exchange*>(user);
    std::size_t len = size * n;
    long status = 0;
    curl_easy_getinfo(ex->handle, CURLINFO_RESPONSE_CODE, &status);
    bool success = status >= 200 && status < 300;
    try {
        if (success && ex->req->on_body) {
            if (!ex->body_started && ex->req->on_start) ex->req->on_start(status, *ex->resp);
            ex->body_started = true;
            ex->req->on_body(data, len);
        } else {
            std::size_t cap = success ? ex->req->max_buffered : max_error_body;
            if (ex->resp->body.size() + len > cap) {
                if (success) throw Error(fmt::format("response body larger than {} bytes", cap));
                ex->resp->body.append(data, cap - ex->resp->body.size());
                return len; // keep reading but drop the rest of an error body
            }
            ex->body_started = true;
            ex->resp->body.append(data, len);
        }
    } catch (...) {
        ex->callback_error = std::current_exception();
        return CURL_WRITEFUNC_ERROR;
    }
    return len;
}

size_t on_read(char* buffer, size_t size, size_t n, void* user) {
    auto* ex = static_cast<Exchange*>(user);
    const Request& r = *ex->req;
    std::size_t want = size * n;
    std::size_t got = 0;
    if (r.source) {
        std::uint64_t left = r.source_length - ex->upload_pos;
        if (left < want) want = static_cast<std::size_t>(left);
        try {
            got = want ? r.source->read_at(buffer, want, r.source_offset + ex->upload_pos) : 0;
        } catch (...) {
            ex->callback_error = std::current_exception();
            return CURL_READFUNC_ABORT;
        }
    } else {
        std::uint64_t left = r.body.size() - ex->upload_pos;
        if (left < want) want = static_cast<std::size_t>(left);
        std::memcpy(buffer, r.body.data() + ex->upload_pos, want);
        got = want;
    }
    ex->upload_pos += got;
    return got;
}

int on_seek(void* user, curl_off_t offset, int origin) {
    auto* ex = static_cast<Exchange*>(user);
    if (origin != SEEK_SET) return CURL_SEEKFUNC_CANTSEEK;
    ex->upload_pos = static_cast<std::uint64_t>(offset);
    return CURL_SEEKFUNC_OK;
}

} // namespace

std::string Response::header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
}

Pool::Pool(const Options& options) : options_(options) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

Pool::~Pool() {
    for (CURL* h : free_) curl_easy_cleanup(h);
}

CURL* Pool::acquire() {
    {
        std::lock_guard lock(mutex_);
        if (!free_.empty()) {
            CURL* h = free_.back();
            free_.pop_back();
            return h;
        }
    }
    CURL* h = curl_easy_init();
    if (!h) throw Error("libcurl: cannot create a transfer handle");
    return h;
}

void Pool::release(CURL* h) {
    std::lock_guard lock(mutex_);
    free_.push_back(h);
}

Response Pool::perform(const Request& req) {
    CURL* h = acquire();
    struct Releaser {
        Pool* pool;
        CURL* h;
        ~Releaser() { pool->release(h); }
    } releaser{this, h};
    curl_easy_reset(h);

    Response resp;
    Exchange ex{&req, &resp, h};
    char errbuf[CURL_ERROR_SIZE] = {0};

    curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
    curl_easy_setopt(h, CURLOPT_USERAGENT, "aas-bundle/" AAS_BUNDLE_VERSION);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, static_cast<long>(options_.connect_timeout.count()));
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.stall_timeout.count()));
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");
    if (options_.insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!options_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str());

    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &ex);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &ex);

    struct curl_slist* headers = nullptr;
    for (const auto& hd : req.headers) headers = curl_slist_append(headers, hd.c_str());
    headers = curl_slist_append(headers, "Expect:");

    const bool has_body = req.source != nullptr || !req.body.empty();
    if (req.method == "HEAD") {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (req.method == "GET") {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (req.method == "POST" && !has_body) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
    } else if (req.method == "DELETE") {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
    } else {
        // PUT / PATCH (and POST with a body): stream the body through the read callback.
        std::uint64_t len = req.source ? req.source_length : req.body.size();
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(len));
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &ex);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, &ex);
        if (req.method != "PUT") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
        if (len == 0) headers = curl_slist_append(headers, "Content-Length: 0");
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);

    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(headers);
    if (ex.callback_error) std::rethrow_exception(ex.callback_error);
    if (rc != CURLE_OK) {
        std::string msg = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
        while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r')) msg.pop_back();
        if (rc == CURLE_OPERATION_TIMEDOUT)
            msg = fmt::format("{} (no progress for {} s, or connect timeout)", msg, options_.stall_timeout.count());
        throw TransportFailure{rc, msg, ex.body_started};
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
    long version = 0;
    curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &version);
    resp.protocol = version == CURL_HTTP_VERSION_2_0   ? "HTTP/2"
                    : version == CURL_HTTP_VERSION_1_0 ? "HTTP/1.0"
                                                       : "HTTP/1.1";
    return resp;
}

std::string resolve_url(const std::string& base, const std::string& location) {
    CURLU* u = curl_url();
    curl_url_set(u, CURLUPART_URL, base.c_str(), 0);
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, location.c_str(), 0);
    std::string out;
    char* s = nullptr;
    if (rc == CURLUE_OK && curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK) {
        out = s;
        curl_free(s);
    }
    curl_url_cleanup(u);
    if (out.empty()) throw Error(fmt::format("invalid redirect location \"{}\"", log::redact_url(location)));
    return out;
}

std::string origin_of(const std::string& url) {
    CURLU* u = curl_url();
    std::string out = url;
    if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
        char *scheme = nullptr, *host = nullptr, *port = nullptr;
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
        curl_url_get(u, CURLUPART_HOST, &host, 0);
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
        out = fmt::format("{}://{}:{}", scheme ? scheme : "", host ? util::to_lower(host) : "", port ? port : "");
        curl_free(scheme);
        curl_free(host);
        curl_free(port);
    }
    curl_url_cleanup(u);
    return out;
}

} // namespace aas::registry::http
