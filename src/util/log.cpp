#include "aas_bundle/util/log.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <vector>

namespace aas::log {
namespace {

std::atomic<Level> g_level{Level::info};
std::mutex g_mutex;
std::vector<std::string> g_secrets; // guarded by g_mutex

} // namespace

void set_level(Level l) {
    g_level = l;
}
Level level() {
    return g_level;
}

void add_secret(std::string secret) {
    if (secret.size() < 3) return; // too short to redact without mangling ordinary text
    std::lock_guard lock(g_mutex);
    g_secrets.push_back(std::move(secret));
}

static std::string redact_locked(std::string_view text) {
    std::string out(text);
    for (const auto& s : g_secrets) {
        std::size_t pos = 0;
        while ((pos = out.find(s, pos)) != std::string::npos) {
            out.replace(pos, s.size(), "***");
            pos += 3;
        }
    }
    return out;
}

std::string redact_secrets(std::string_view text) {
    std::lock_guard lock(g_mutex);
    return redact_locked(text);
}

std::string redact_url(std::string_view url) {
    std::string out(url);
    // user info: scheme://user:pass@host
    auto scheme_end = out.find("://");
    if (scheme_end != std::string::npos) {
        auto host_start = scheme_end + 3;
        auto path_start = out.find_first_of("/?#", host_start);
        auto at = out.rfind('@', path_start == std::string::npos ? out.size() : path_start);
        if (at != std::string::npos && at >= host_start) out.replace(host_start, at - host_start + 1, "***@");
    }
    auto q = out.find('?');
    if (q != std::string::npos) {
        static constexpr std::string_view secret_keys[] = {
            "token",     "access_token", "x-amz-signature", "x-amz-credential", "x-amz-security-token", "sig",
            "signature", "password",     "_state"};
        std::string rebuilt = out.substr(0, q + 1);
        std::string_view query(out);
        query.remove_prefix(q + 1);
        bool first = true;
        while (!query.empty()) {
            auto amp = query.find('&');
            std::string_view part = query.substr(0, amp);
            auto eq = part.find('=');
            std::string key(part.substr(0, eq));
            std::string lower_key;
            for (char c : key) lower_key.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
            if (!first) rebuilt.push_back('&');
            first = false;
            bool secret = false;
            for (auto k : secret_keys) secret = secret || lower_key == k;
            if (secret && eq != std::string_view::npos) {
                rebuilt += key + "=***";
            } else {
                rebuilt += std::string(part);
            }
            if (amp == std::string_view::npos) break;
            query.remove_prefix(amp + 1);
        }
        out = rebuilt;
    }
    std::lock_guard lock(g_mutex);
    return redact_locked(out);
}

void write(Level l, std::string_view message) {
    static constexpr const char* prefix[] = {"error: ", "warning: ", "", "debug: "};
    std::lock_guard lock(g_mutex);
    std::string line = redact_locked(message);
    std::fprintf(stderr, "%s%s\n", prefix[static_cast<int>(l)], line.c_str());
    std::fflush(stderr);
}

} // namespace aas::log
