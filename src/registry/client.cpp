#include "aas_bundle/registry/client.hpp"

#include "http.hpp"

#include "aas_bundle/oci/media_types.hpp"
#include "aas_bundle/util/log.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <mutex>
#include <random>
#include <thread>

namespace aas::registry {
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------
// RegistryError

static std::string error_text(const std::string& method, const std::string& url, long status,
                              const std::vector<ErrorEntry>& errors, const std::string& detail) {
    std::string s = fmt::format("{} {}: ", method, url);
    if (status == 0) {
        s += detail.empty() ? "no answer" : detail;
        return s;
    }
    s += fmt::format("HTTP {}", status);
    for (std::size_t i = 0; i < errors.size(); ++i) {
        s += i ? "; " : ": ";
        s += errors[i].code;
        if (!errors[i].message.empty()) s += ": " + errors[i].message;
    }
    if (!detail.empty()) s += " (" + detail + ")";
    return s;
}

RegistryError::RegistryError(std::string method, std::string url, long status, std::vector<ErrorEntry> errors,
                             std::string detail, bool temporary, std::chrono::seconds retry_after)
    : aas::Error(log::redact_secrets(error_text(method, url, status, errors, detail))), method_(std::move(method)),
      url_(std::move(url)), status_(status), errors_(std::move(errors)), temporary_(temporary),
      retry_after_(retry_after) {}

bool RegistryError::has_code(std::string_view code) const {
    return std::any_of(errors_.begin(), errors_.end(), [&](const ErrorEntry& e) { return e.code == code; });
}

// ---------------------------------------------------------------------------------------
// Helpers

namespace {

struct Token {
    std::string value;
    auth::Scopes scopes;
    Clock::time_point expires;
};

std::vector<ErrorEntry> parse_error_body(const std::string& body) {
    std::vector<ErrorEntry> out;
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return out;
    auto errs = j.find("errors");
    if (errs == j.end() || !errs->is_array()) return out;
    for (const auto& e : *errs) {
        if (!e.is_object()) continue;
        ErrorEntry entry;
        if (auto c = e.find("code"); c != e.end() && c->is_string()) entry.code = c->get<std::string>();
        if (auto m = e.find("message"); m != e.end() && m->is_string()) entry.message = m->get<std::string>();
        if (entry.message.size() > 300) entry.message = entry.message.substr(0, 300) + "...";
        out.push_back(std::move(entry));
    }
    return out;
}

bool is_temporary_status(long status) {
    return status == 408 || status == 429 || status >= 500;
}

// `user`: the account whose credentials were sent, "" when none were.
std::string hint_for(long status, const std::string& registry, const std::string& user) {
    switch (status) {
    case 401:
        if (!user.empty())
            return fmt::format("{} refused the credentials of user \"{}\": check the password (or token), and that "
                               "the account exists there",
                               registry, user);
        return fmt::format("authentication failed for {}: it needs credentials; give them with --username and "
                           "--password-stdin, or in the registry config (--registry-config, a credential helper)",
                           registry);
    case 403:
        return fmt::format("access denied by {}: the account may not push or pull this repository", registry);
    default:
        return {};
    }
}

std::chrono::seconds parse_retry_after(const std::string& v) {
    auto n = util::parse_u64(util::trim(v));
    if (!n) return std::chrono::seconds(0);
    return std::chrono::seconds(std::min<std::uint64_t>(*n, 300));
}

bool is_redirect(long s) {
    return s == 301 || s == 302 || s == 303 || s == 307 || s == 308;
}

} // namespace

// ---------------------------------------------------------------------------------------
// Impl

struct Client::Impl {
    std::string registry;
    Options options;
    std::string base;
    http::Pool pool{options};

    std::mutex auth_mutex;
    bool pinged = false;
    std::optional<auth::Challenge> challenge; // bearer or basic, learned from the registry
    std::vector<Token> tokens;

    Impl(std::string reg, Options opts) : registry(std::move(reg)), options(std::move(opts)) {
        std::string host = registry == "docker.io" ? "registry-1.docker.io" : registry;
        base = fmt::format("{}://{}", options.plain_http ? "http" : "https", host);
        if (options.credential) log::add_secret(options.credential->password);
    }

    std::string url(std::string_view path) const { return base + std::string(path); }

    // A warning to the caller (Options::on_warning), if it listens.
    void warn(const std::string& text) const {
        if (options.on_warning) options.on_warning(text);
    }
    // The warning that `what` failed with `e` and is retried (retry `n`) after `delay`.
    void warn_retry(const std::string& what, const RegistryError& e, int n, std::chrono::milliseconds delay) const {
        warn(fmt::format("{}: {} (retry {} of {} in {:.1f} s)", what, e.what(), n, options.max_attempts - 1,
                         static_cast<double>(delay.count()) / 1000.0));
    }

    // -- retries ------------------------------------------------------------------------
    std::chrono::milliseconds backoff(int attempt, std::chrono::seconds retry_after) const {
        thread_local std::mt19937 rng{std::random_device{}()};
        double base_ms =
            static_cast<double>(options.base_delay.count()) * static_cast<double>(1u << std::min(attempt - 1, 10));
        base_ms = std::min(base_ms, static_cast<double>(options.max_delay.count()));
        std::uniform_real_distribution<double> jitter(0.5, 1.0);
        auto ms = std::chrono::milliseconds(static_cast<long long>(base_ms * jitter(rng)));
        auto ra = std::chrono::duration_cast<std::chrono::milliseconds>(retry_after);
        return std::max(ms, ra);
    }

    template <typename F> auto with_retries(const std::string& what, F&& fn) {
        for (int attempt = 1;; ++attempt) {
            try {
                return fn(attempt);
            } catch (const RegistryError& e) {
                if (!e.temporary() || attempt >= options.max_attempts) {
                    if (e.temporary() && options.max_attempts > 1)
                        throw RegistryError(e.method(), e.url(), e.status(), e.errors(),
                                            fmt::format("gave up after {} attempts{}", attempt,
                                                        e.status() == 0 ? ": " + std::string(e.what()) : ""),
                                            false);
                    throw;
                }
                auto delay = backoff(attempt, e.retry_after());
                warn_retry(what, e, attempt, delay);
                std::this_thread::sleep_for(delay);
            }
        }
    }

    // -- one exchange, following redirects -------------------------------------------------
    http::Response follow(http::Request req) {
        for (int hops = 0;; ++hops) {
            http::Response resp;
            try {
                resp = pool.perform(req);
            } catch (const http::TransportFailure& f) {
                log::debug("{} {} -> {}", req.method, log::redact_url(req.url), f.message);
                throw RegistryError(req.method, log::redact_url(req.url), 0, {}, f.message, true);
            }
            log::debug("{} {} -> {} ({})", req.method, log::redact_url(req.url), resp.status, resp.protocol);
            if (!is_redirect(resp.status)) return resp;
            std::string loc = resp.header("location");
            if (loc.empty() || hops >= 5) return resp;
            std::string next = http::resolve_url(req.url, loc);
            if (http::origin_of(next) != http::origin_of(req.url)) {
                // Never send the registry's credentials to another host (blob storage).
                req.headers.erase(std::remove_if(req.headers.begin(), req.headers.end(),
                                                 [](const std::string& h) {
                                                     return util::iequals(h.substr(0, 14), "authorization:");
                                                 }),
                                  req.headers.end());
            }
            log::debug("{} {} redirected to {}", req.method, log::redact_url(req.url), log::redact_url(next));
            if (resp.status == 303) req.method = "GET";
            req.url = next;
        }
    }

    RegistryError error_from(const http::Request& req, const http::Response& resp, std::string detail = {}) {
        auto errors = parse_error_body(resp.body);
        if (detail.empty())
            detail = hint_for(resp.status, registry, options.credential ? options.credential->username : "");
        std::chrono::seconds ra = parse_retry_after(resp.header("retry-after"));
        return RegistryError(req.method, log::redact_url(req.url), resp.status, std::move(errors), detail,
                             is_temporary_status(resp.status), ra);
    }

    // -- auth -------------------------------------------------------------------------------
    void ensure_pinged() {
        {
            std::lock_guard lock(auth_mutex);
            if (pinged) return;
        }
        with_retries(fmt::format("contacting {}", registry), [&](int) {
            http::Request req;
            req.url = url("/v2/");
            auto resp = follow(req);
            if (resp.status == 401) {
                learn_challenge(resp);
            } else if (resp.status == 404) {
                throw RegistryError("GET", log::redact_url(req.url), 404, {},
                                    fmt::format("{} does not serve the registry API (/v2/)", registry), false);
            } else if (resp.status < 200 || resp.status >= 300) {
                throw error_from(req, resp);
            }
            std::lock_guard lock(auth_mutex);
            pinged = true;
            return 0;
        });
    }

    // Returns true when a usable challenge was found; adds the scopes it asks for to
    // `asked` when given.
    bool learn_challenge(const http::Response& resp, auth::Scopes* asked = nullptr) {
        auto challenges = auth::parse_www_authenticate(resp.header("www-authenticate"));
        if (asked)
            for (const auto& c : challenges)
                if (auto sc = c.params.find("scope"); sc != c.params.end()) asked->add(sc->second);
        std::lock_guard lock(auth_mutex);
        for (const auto& c : challenges) {
            if (c.scheme == "bearer" && c.params.count("realm")) {
                challenge = c;
                return true;
            }
        }
        for (const auto& c : challenges) {
            if (c.scheme == "basic") {
                challenge = c;
                return true;
            }
        }
        return false;
    }

    // Caller holds auth_mutex.
    std::string fetch_token_locked(const auth::Scopes& scopes) {
        const auto& params = challenge->params;
        std::string realm = params.at("realm");
        std::string token_url = realm + (realm.find('?') == std::string::npos ? "?" : "&");
        bool first = true;
        auto add = [&](const std::string& k, const std::string& v) {
            token_url += (first ? "" : "&") + k + "=" + util::url_encode(v);
            first = false;
        };
        if (auto it = params.find("service"); it != params.end()) add("service", it->second);
        for (const auto& s : scopes.strings()) add("scope", s);

        auto resp = with_retries(fmt::format("getting a token for {}", registry), [&](int) {
            http::Request req;
            req.url = token_url;
            req.max_buffered = 1u << 20;
            if (options.credential)
                req.headers.push_back("Authorization: " + auth::basic_authorization(*options.credential));
            auto r = follow(req);
            if (r.status == 401 || r.status == 403) {
                throw RegistryError("GET", log::redact_url(token_url), r.status, parse_error_body(r.body),
                                    options.credential
                                        ? fmt::format("the token server of {} refused the credentials of user \"{}\"",
                                                      registry, options.credential->username)
                                        : fmt::format("the token server of {} requires credentials: give them with "
                                                      "--username and --password-stdin, or in the registry config",
                                                      registry),
                                    false);
            }
            if (r.status != 200) throw error_from(req, r, "token request failed");
            return r;
        });
        auto j = nlohmann::json::parse(resp.body, nullptr, false);
        std::string value;
        long long expires_in = 60;
        if (j.is_object()) {
            if (auto t = j.find("token"); t != j.end() && t->is_string()) value = t->get<std::string>();
            if (value.empty())
                if (auto t = j.find("access_token"); t != j.end() && t->is_string()) value = t->get<std::string>();
            if (auto e = j.find("expires_in"); e != j.end() && e->is_number_integer())
                expires_in = std::max<long long>(e->get<long long>(), 10);
        }
        if (value.empty())
            throw RegistryError("GET", log::redact_url(token_url), 200, {},
                                "the token server's answer has neither \"token\" nor \"access_token\"", false);
        log::add_secret(value);
        tokens.push_back(Token{value, scopes, Clock::now() + std::chrono::seconds(expires_in - 5)});
        return value;
    }

    // The Authorization header to send for `scopes`, or empty for anonymous.
    std::string authorization_for(const auth::Scopes& scopes, bool force_new_token) {
        std::lock_guard lock(auth_mutex);
        if (!challenge) return {};
        if (challenge->scheme == "basic") {
            return options.credential ? auth::basic_authorization(*options.credential) : std::string();
        }
        auto now = Clock::now();
        tokens.erase(std::remove_if(tokens.begin(), tokens.end(), [&](const Token& t) { return t.expires <= now; }),
                     tokens.end());
        if (!force_new_token) {
            for (const auto& t : tokens)
                if (t.scopes.covers(scopes)) return "Bearer " + t.value;
        }
        return "Bearer " + fetch_token_locked(scopes);
    }

    // One authenticated exchange: on 401, learns the challenge, widens the scopes it names
    // and tries once more.
    http::Response send(http::Request req, auth::Scopes scopes) {
        ensure_pinged();
        const auto base_headers = req.headers;
        auto attach = [&](bool fresh) {
            req.headers = base_headers;
            std::string authz = authorization_for(scopes, fresh);
            if (!authz.empty()) req.headers.push_back("Authorization: " + authz);
        };
        attach(false);
        auto resp = follow(req);
        if (resp.status != 401) return resp;
        if (!learn_challenge(resp, &scopes)) return resp;
        attach(true);
        return follow(req);
    }

    static auth::Scopes pull_scope(std::string_view repo) {
        auth::Scopes s;
        s.add_repository(repo, "pull");
        return s;
    }
    /// Cancels the blob upload a 202 answer to `req` opened (DELETE of its Location); a
    /// registry that will not is only logged: an abandoned upload expires by itself.
    void cancel_upload(const http::Request& req, const http::Response& resp, const auth::Scopes& scopes,
                       const std::string& what) {
        auto loc = resp.header("location");
        if (loc.empty()) return;
        http::Request del;
        del.method = "DELETE";
        del.url = http::resolve_url(req.url, loc);
        try {
            send(del, scopes);
        } catch (const RegistryError& e) {
            log::debug("{}: cancelling the upload: {}", what, e.what());
        }
    }

    static auth::Scopes push_scope(std::string_view repo) {
        auth::Scopes s;
        s.add_repository(repo, "pull,push");
        return s;
    }

    /// The upload of upload_blob (the blob is known to be missing): a session opened with
    /// POST, the bytes sent in PATCH chunks, closed with PUT ?digest=. A failed request is
    /// retried (at most options.max_attempts failures in a row) after asking the registry how
    /// much the session holds (GET of its URL); a PUT the registry refuses as not matching
    /// starts a fresh session (at most twice).
    struct BlobUpload {
        Impl& d;
        std::string_view repository;
        const BlobSource& source;
        const ByteCallback& on_bytes;
        const std::string& what;
        const std::string digest;
        const std::uint64_t size;
        const auth::Scopes scopes = push_scope(repository);
        std::string location;
        std::uint64_t offset = 0;
        int failures = 0;
        int restarts = 0;

        PushOutcome run() {
            location = start();
            for (;;) {
                try {
                    send_chunks();
                    if (auto done = close()) return *done;
                } catch (const RegistryError& e) {
                    note_failure(e);
                    resume();
                }
            }
        }

        std::string location_of(const http::Request& req, const http::Response& resp) const {
            std::string loc = resp.header("location");
            if (loc.empty())
                throw RegistryError(req.method, log::redact_url(req.url), resp.status, {},
                                    "no Location header in the answer", true);
            return http::resolve_url(req.url, loc);
        }

        // Starts an upload session; returns its URL.
        std::string start() {
            return d.with_retries(what, [&](int) -> std::string {
                http::Request req;
                req.method = "POST";
                req.url = d.url(fmt::format("/v2/{}/blobs/uploads/", repository));
                auto resp = d.send(req, scopes);
                if (resp.status != 202) throw d.error_from(req, resp);
                return location_of(req, resp);
            });
        }

        // Called while `e` is being handled: rethrows it when it is not temporary or the
        // failures in a row reach the limit; otherwise waits the back-off.
        void note_failure(const RegistryError& e) {
            if (!e.temporary() || ++failures >= d.options.max_attempts) throw;
            auto delay = d.backoff(failures, e.retry_after());
            d.warn_retry(what, e, failures, delay);
            std::this_thread::sleep_for(delay);
        }

        // PATCHes the bytes from `offset` to the end, a chunk at a time.
        void send_chunks() {
            while (offset < size) {
                std::uint64_t len = std::min<std::uint64_t>(d.options.chunk_size, size - offset);
                http::Request req;
                req.method = "PATCH";
                req.url = location;
                req.headers.push_back("Content-Type: application/octet-stream");
                req.headers.push_back(fmt::format("Content-Range: {}-{}", offset, offset + len - 1));
                req.source = &source;
                req.source_offset = offset;
                req.source_length = len;
                auto resp = d.send(req, scopes);
                if (resp.status != 202) {
                    auto err = d.error_from(req, resp);
                    // The upload is out of step with the registry (a chunk it half received,
                    // or libcurl resending on a fresh connection): ask where it stands.
                    if (resp.status == 404 || resp.status == 416 || err.has_code("BLOB_UPLOAD_INVALID") ||
                        err.has_code("BLOB_UPLOAD_UNKNOWN"))
                        throw RegistryError(err.method(), err.url(), err.status(), err.errors(),
                                            "the upload is out of step with the registry", true);
                    throw err;
                }
                location = location_of(req, resp);
                offset += len;
                failures = 0;
                if (on_bytes) on_bytes(len);
            }
        }

        // PUTs the digest to close the session: the outcome, or nullopt when a fresh session
        // was started instead.
        std::optional<PushOutcome> close() {
            http::Request req;
            req.method = "PUT";
            req.url =
                location + (location.find('?') == std::string::npos ? "?" : "&") + "digest=" + util::url_encode(digest);
            auto resp = d.send(req, scopes);
            if (resp.status == 201 || resp.status == 204) {
                if (auto h = resp.header("docker-content-digest"); !h.empty() && h != digest)
                    throw Error(fmt::format("{}: the registry stored it as {}", what, h));
                return PushOutcome::uploaded;
            }
            auto err = d.error_from(req, resp);
            if ((err.has_code("DIGEST_INVALID") || err.has_code("SIZE_INVALID") ||
                 err.has_code("BLOB_UPLOAD_INVALID") || err.has_code("BLOB_UPLOAD_UNKNOWN")) &&
                restarts < 2) {
                // The registry's copy differs from ours (a retried chunk was appended twice):
                // start a fresh upload.
                d.warn(fmt::format("{}: {}; starting the upload again", what, err.what()));
                ++restarts;
                location = start();
                offset = 0;
                return std::nullopt;
            }
            throw err;
        }

        // Called while a failure is being handled: asks the registry how much it has, and
        // resumes from there (or from a fresh session when it no longer knows this one).
        void resume() {
            http::Request req;
            req.url = location;
            http::Response resp;
            try {
                resp = d.send(req, scopes);
            } catch (const RegistryError& e2) {
                note_failure(e2);
                return;
            }
            if (resp.status == 204) {
                std::string range = resp.header("range"); // "0-LAST"
                auto dash = range.find('-');
                auto last = dash == std::string::npos ? std::nullopt
                                                      : util::parse_u64(std::string_view(range).substr(dash + 1));
                offset = (last && *last > 0) ? *last + 1 : 0;
                if (offset > size) offset = 0;
                if (!resp.header("location").empty()) location = location_of(req, resp);
                log::debug("{}: resuming at byte {}", what, offset);
            } else {
                location = start();
                offset = 0;
            }
        }
    };
};

// ---------------------------------------------------------------------------------------
// Client

Client::Client(std::string registry, Options options)
    : impl_(std::make_unique<Impl>(std::move(registry), std::move(options))) {}
Client::~Client() = default;

const std::string& Client::registry() const {
    return impl_->registry;
}
const Options& Client::options() const {
    return impl_->options;
}
std::string Client::base_url() const {
    return impl_->base;
}

void Client::ping() {
    impl_->ensure_pinged();
}

oci::RawManifest Client::get_manifest(std::string_view repository, std::string_view reference) {
    auto& d = *impl_;
    std::string what = fmt::format("pulling manifest {}/{}:{}", d.registry, repository, reference);
    return d.with_retries(what, [&](int) {
        http::Request req;
        req.url = d.url(fmt::format("/v2/{}/manifests/{}", repository, reference));
        req.headers.push_back(fmt::format("Accept: {}", oci::media_type::manifest_accept_header()));
        req.max_buffered = 4u << 20;
        auto resp = d.send(req, Impl::pull_scope(repository));
        if (resp.status != 200) throw d.error_from(req, resp);
        oci::RawManifest m;
        try {
            m = oci::RawManifest::from_bytes(std::move(resp.body), resp.header("content-type"));
        } catch (const Error& e) {
            throw Error(fmt::format("{}: {}", what, e.what()));
        }
        if (reference.rfind("sha256:", 0) == 0 || reference.rfind("sha512:", 0) == 0) {
            auto want = oci::Digest::parse(reference);
            auto got = want.algorithm() == m.digest.algorithm() ? m.digest : oci::Digest::of(m.bytes, want.algorithm());
            if (got != want)
                throw Error(fmt::format("{}: the registry sent a manifest whose digest is {}, not the one asked for",
                                        what, got.str()));
        }
        if (auto h = resp.header("docker-content-digest"); !h.empty() && h.rfind("sha256:", 0) == 0) {
            if (h != m.digest.str())
                throw Error(fmt::format("{}: Docker-Content-Digest {} does not match the manifest's digest {}", what, h,
                                        m.digest.str()));
        }
        return m;
    });
}

std::optional<oci::Descriptor> Client::head_manifest(std::string_view repository, std::string_view reference) {
    auto& d = *impl_;
    return d.with_retries(
        fmt::format("checking manifest {}/{}:{}", d.registry, repository, reference),
        [&](int) -> std::optional<oci::Descriptor> {
            http::Request req;
            req.method = "HEAD";
            req.url = d.url(fmt::format("/v2/{}/manifests/{}", repository, reference));
            req.headers.push_back(fmt::format("Accept: {}", oci::media_type::manifest_accept_header()));
            auto resp = d.send(req, Impl::pull_scope(repository));
            if (resp.status == 404) return std::nullopt;
            if (resp.status != 200) throw d.error_from(req, resp);
            std::string digest = resp.header("docker-content-digest");
            if (digest.empty()) {
                auto m = get_manifest(repository, reference);
                return oci::Descriptor{m.media_type, m.digest, static_cast<std::int64_t>(m.bytes.size())};
            }
            oci::Descriptor desc;
            std::string ct = resp.header("content-type");
            desc.media_type = ct.substr(0, ct.find(';'));
            desc.digest = oci::Digest::parse(digest);
            desc.size = static_cast<std::int64_t>(util::parse_u64(resp.header("content-length")).value_or(0));
            return desc;
        });
}

void Client::put_manifest(std::string_view repository, std::string_view reference, const oci::RawManifest& m) {
    auto& d = *impl_;
    std::string what =
        fmt::format("pushing manifest {} to {}/{}:{}", m.digest.short_str(), d.registry, repository, reference);
    d.with_retries(what, [&](int) {
        http::Request req;
        req.method = "PUT";
        req.url = d.url(fmt::format("/v2/{}/manifests/{}", repository, reference));
        req.headers.push_back("Content-Type: " + m.media_type);
        req.body = m.bytes;
        auto resp = d.send(req, Impl::push_scope(repository));
        if (resp.status != 201 && resp.status != 200) throw d.error_from(req, resp);
        if (auto h = resp.header("docker-content-digest"); !h.empty() && h != m.digest.str())
            throw Error(fmt::format("{}: the registry stored it as {} (the manifest was changed)", what, h));
        return 0;
    });
}

bool Client::blob_exists(std::string_view repository, const oci::Digest& digest) {
    auto& d = *impl_;
    return d.with_retries(fmt::format("checking blob {} in {}/{}", digest.short_str(), d.registry, repository),
                          [&](int) {
                              http::Request req;
                              req.method = "HEAD";
                              req.url = d.url(fmt::format("/v2/{}/blobs/{}", repository, digest.str()));
                              auto resp = d.send(req, Impl::pull_scope(repository));
                              if (resp.status == 200) return true;
                              if (resp.status == 404) return false;
                              throw d.error_from(req, resp);
                          });
}

void Client::fetch_blob(std::string_view repository, const oci::Descriptor& blob, BlobSink& sink,
                        const ByteCallback& on_bytes) {
    auto& d = *impl_;
    std::string what = fmt::format("pulling blob {} from {}/{}", blob.digest.short_str(), d.registry, repository);
    oci::Hasher hasher(blob.digest.algorithm());
    std::uint64_t received = 0;
    const auto expected = static_cast<std::uint64_t>(blob.size);
    sink.reset();
    d.with_retries(what, [&](int) {
        http::Request req;
        req.url = d.url(fmt::format("/v2/{}/blobs/{}", repository, blob.digest.str()));
        if (received > 0) req.headers.push_back(fmt::format("Range: bytes={}-", received));
        req.on_start = [&](long status, const http::Response& r) {
            if (received > 0 && status == 206) {
                std::string cr = r.header("content-range"); // "bytes START-END/TOTAL"
                auto sp = cr.find(' ');
                auto dash = cr.find('-');
                auto start = (sp != std::string::npos && dash != std::string::npos)
                                 ? util::parse_u64(std::string_view(cr).substr(sp + 1, dash - sp - 1))
                                 : std::nullopt;
                if (start && *start == received) return;
            }
            if (received > 0) log::debug("{}: the registry did not resume; restarting from byte 0", what);
            received = 0;
            hasher.reset();
            sink.reset();
        };
        req.on_body = [&](const char* data, std::size_t n) {
            if (received + n > expected)
                throw Error(
                    fmt::format("{}: the registry sent more than the {} bytes the descriptor gives", what, expected));
            sink.write(data, n);
            hasher.update(data, n);
            received += n;
            if (on_bytes) on_bytes(n);
        };
        auto resp = d.send(req, Impl::pull_scope(repository));
        if (resp.status == 404) throw d.error_from(req, resp, "blob unknown to the registry");
        if (resp.status != 200 && resp.status != 206) throw d.error_from(req, resp);
        if (received == 0 && expected == 0) return 0; // empty blob: no body callback ran
        if (received != expected)
            throw RegistryError("GET", log::redact_url(req.url), resp.status, {},
                                fmt::format("short body: {} of {} bytes", received, expected), true);
        return 0;
    });
    auto got = hasher.finish();
    if (got != blob.digest)
        throw Error(fmt::format("{}: content hash mismatch: the bytes received hash to {}", what, got.str()));
}

bool Client::mount_blob(std::string_view repository, const oci::Descriptor& blob, std::string_view from_repository) {
    auto& d = *impl_;
    auth::Scopes scopes = Impl::push_scope(repository);
    scopes.add_repository(from_repository, "pull");
    std::string what = fmt::format("mounting blob {} from {}/{} into {}", blob.digest.short_str(), d.registry,
                                   from_repository, repository);
    return d.with_retries(what, [&](int) {
        http::Request req;
        req.method = "POST";
        req.url = d.url(fmt::format("/v2/{}/blobs/uploads/?mount={}&from={}", repository, blob.digest.str(),
                                    util::url_encode(from_repository)));
        auto resp = d.send(req, scopes);
        if (resp.status == 201) return true;
        if (resp.status != 202) throw d.error_from(req, resp);
        d.cancel_upload(req, resp, scopes, what); // an ordinary upload was opened instead
        return false;
    });
}

void Client::check_push(std::string_view repository) {
    auto& d = *impl_;
    auth::Scopes scopes = Impl::push_scope(repository);
    std::string what = fmt::format("checking that {}/{} accepts pushes", d.registry, repository);
    d.with_retries(what, [&](int) {
        http::Request req;
        req.method = "POST";
        req.url = d.url(fmt::format("/v2/{}/blobs/uploads/", repository));
        auto resp = d.send(req, scopes);
        if (resp.status != 202) throw d.error_from(req, resp);
        d.cancel_upload(req, resp, scopes, what);
        return true;
    });
}

std::optional<PushOutcome> Client::place_blob(std::string_view repository, const oci::Descriptor& blob,
                                              const std::vector<std::string>& mount_from) {
    if (blob_exists(repository, blob.digest)) return PushOutcome::skipped;
    for (const auto& from : mount_from)
        if (from != repository && mount_blob(repository, blob, from)) return PushOutcome::mounted;
    return std::nullopt;
}

void Client::upload_blob(std::string_view repository, const oci::Descriptor& blob, const BlobSource& source,
                         const ByteCallback& on_bytes) {
    auto& d = *impl_;
    const std::string digest = blob.digest.str();
    std::string what = fmt::format("pushing blob {} to {}/{}", blob.digest.short_str(), d.registry, repository);
    const std::uint64_t size = source.size();
    if (size != static_cast<std::uint64_t>(blob.size))
        throw Error(fmt::format("{}: the source holds {} bytes, the descriptor says {}", what, size, blob.size));
    Impl::BlobUpload{d, repository, source, on_bytes, what, digest, size}.run();
}

PushOutcome Client::push_blob(std::string_view repository, const oci::Descriptor& blob, const BlobSource& source,
                              const ByteCallback& on_bytes) {
    if (auto placed = place_blob(repository, blob)) return *placed;
    upload_blob(repository, blob, source, on_bytes);
    return PushOutcome::uploaded;
}

} // namespace aas::registry
