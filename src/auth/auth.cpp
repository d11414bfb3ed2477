#include "aas_bundle/auth/auth.hpp"

#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/util/log.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>

#include <cctype>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>

namespace aas::auth {
namespace fs = std::filesystem;

std::string basic_authorization(const Credential& c) {
    return "Basic " + util::base64_encode(c.username + ":" + c.password);
}

// "https://index.docker.io/v1/" -> "docker.io"; "http://host:5000/x" -> "host:5000".
static std::string normalize_key(std::string_view key) {
    std::string_view k = key;
    if (auto p = k.find("://"); p != std::string_view::npos) k.remove_prefix(p + 3);
    if (auto p = k.find('/'); p != std::string_view::npos) k = k.substr(0, p);
    std::string host = util::to_lower(k);
    if (host == "index.docker.io" || host == "registry-1.docker.io") host = "docker.io";
    return host;
}

DockerConfig DockerConfig::load(const fs::path& path) {
    std::string text = util::read_file(path, 4u << 20);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        throw Error(fmt::format("registry config {}: invalid JSON at byte {}", path.string(), e.byte));
    }
    DockerConfig cfg;
    if (!j.is_object()) throw Error(fmt::format("registry config {}: not a JSON object", path.string()));
    auto valid_helper = [&](const std::string& name, const std::string& field) {
        // The suffix of a program name: no path, no shell.
        bool ok = !name.empty() && name.size() <= 64;
        for (char c : name)
            ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
        if (!ok)
            throw Error(fmt::format("registry config {}: {} \"{}\" is not a credential helper name (the NAME of "
                                    "docker-credential-NAME)",
                                    path.string(), field, util::escape_control(name)));
        return name;
    };
    if (auto cs = j.find("credsStore"); cs != j.end() && cs->is_string() && !cs->get<std::string>().empty())
        cfg.creds_store_ = valid_helper(cs->get<std::string>(), "credsStore");
    if (auto ch = j.find("credHelpers"); ch != j.end() && ch->is_object())
        for (const auto& [host, name] : ch->items())
            if (name.is_string())
                cfg.cred_helpers_[normalize_key(host)] =
                    valid_helper(name.get<std::string>(), "credHelpers[\"" + host + "\"]");
    auto auths = j.find("auths");
    if (auths == j.end()) return cfg;
    if (!auths->is_object()) throw Error(fmt::format("registry config {}: \"auths\" is not an object", path.string()));
    for (const auto& [key, entry] : auths->items()) {
        if (!entry.is_object()) continue;
        Credential c;
        if (auto a = entry.find("auth"); a != entry.end() && a->is_string() && !a->get<std::string>().empty()) {
            auto decoded = util::base64_decode(a->get<std::string>());
            auto colon = decoded ? decoded->find(':') : std::string::npos;
            if (!decoded || colon == std::string::npos)
                throw Error(fmt::format("registry config {}: auths[\"{}\"].auth is not base64 of \"user:password\"",
                                        path.string(), key));
            c.username = decoded->substr(0, colon);
            c.password = decoded->substr(colon + 1);
        } else {
            if (auto u = entry.find("username"); u != entry.end() && u->is_string()) c.username = u->get<std::string>();
            if (auto p = entry.find("password"); p != entry.end() && p->is_string()) c.password = p->get<std::string>();
        }
        if (c.username.empty() && c.password.empty()) continue;
        log::add_secret(c.password);
        cfg.entries_[normalize_key(key)] = c;
    }
    return cfg;
}

DockerConfig DockerConfig::load_default() {
    fs::path p;
    if (const char* d = std::getenv("DOCKER_CONFIG"); d && *d) {
        p = fs::path(d) / "config.json";
    } else if (const char* h = std::getenv("HOME"); h && *h) {
        p = fs::path(h) / ".docker" / "config.json";
    }
    std::error_code ec;
    if (p.empty() || !fs::exists(p, ec)) return {};
    return load(p);
}

std::string DockerConfig::helper_for(std::string_view registry) const {
    if (auto h = cred_helpers_.find(normalize_key(registry)); h != cred_helpers_.end()) return h->second;
    return creds_store_;
}

std::optional<Credential> DockerConfig::find(std::string_view registry, std::vector<std::string>& warnings) const {
    if (auto helper = helper_for(registry); !helper.empty()) {
        // Docker Hub's server name in helpers is its v1 URL.
        std::string server =
            normalize_key(registry) == "docker.io" ? "https://index.docker.io/v1/" : std::string(registry);
        try {
            if (auto c = run_credential_helper(helper, server)) return c;
        } catch (const HelperNotFound& e) {
            warnings.push_back(fmt::format("{}; using the auths entries", e.what()));
        }
    }
    auto it = entries_.find(normalize_key(registry));
    if (it == entries_.end()) return std::nullopt;
    return it->second;
}

std::vector<Challenge> parse_www_authenticate(std::string_view h) {
    std::vector<Challenge> out;
    std::size_t i = 0;
    auto skip_ws = [&] {
        while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i;
    };
    auto is_token_char = [](char c) { return c > 32 && c < 127 && c != '=' && c != ',' && c != '"' && c != ' '; };
    while (i < h.size()) {
        skip_ws();
        while (i < h.size() && h[i] == ',') {
            ++i;
            skip_ws();
        }
        std::size_t start = i;
        while (i < h.size() && is_token_char(h[i])) ++i;
        if (i == start) break;
        Challenge c;
        c.scheme = util::to_lower(h.substr(start, i - start));
        // auth-params: name=value pairs separated by commas, until the next scheme token.
        for (;;) {
            skip_ws();
            std::size_t save = i;
            std::size_t ks = i;
            while (i < h.size() && is_token_char(h[i])) ++i;
            std::string key = util::to_lower(h.substr(ks, i - ks));
            skip_ws();
            if (key.empty() || i >= h.size() || h[i] != '=') {
                i = save; // a new challenge starts here (or the end)
                break;
            }
            ++i;
            skip_ws();
            std::string value;
            if (i < h.size() && h[i] == '"') {
                ++i;
                while (i < h.size() && h[i] != '"') {
                    if (h[i] == '\\' && i + 1 < h.size()) ++i;
                    value.push_back(h[i++]);
                }
                if (i < h.size()) ++i; // closing quote
            } else {
                while (i < h.size() && h[i] != ',' && h[i] != ' ' && h[i] != '\t') value.push_back(h[i++]);
            }
            c.params[key] = value;
            skip_ws();
            if (i < h.size() && h[i] == ',') ++i;
        }
        out.push_back(std::move(c));
    }
    return out;
}

void Scopes::add(std::string_view scope_string) {
    for (const auto& one : util::split(scope_string, ' ')) {
        if (one.empty()) continue;
        // type:name:actions where name may contain ':' (a registry port); actions follow the last ':'.
        auto last = one.rfind(':');
        auto first = one.find(':');
        if (first == std::string::npos || last == first) continue;
        std::string resource = one.substr(0, last);
        for (const auto& a : util::split(std::string_view(one).substr(last + 1), ',')) {
            if (a.empty()) continue;
            auto& acts = actions_[resource];
            if (std::find(acts.begin(), acts.end(), a) == acts.end()) acts.push_back(a);
            std::sort(acts.begin(), acts.end());
        }
    }
}

void Scopes::add_repository(std::string_view repository, std::string_view actions) {
    add(fmt::format("repository:{}:{}", repository, actions));
}

bool Scopes::covers(const Scopes& other) const {
    for (const auto& [res, acts] : other.actions_) {
        auto it = actions_.find(res);
        if (it == actions_.end()) return false;
        for (const auto& a : acts)
            if (std::find(it->second.begin(), it->second.end(), a) == it->second.end()) return false;
    }
    return true;
}

std::vector<std::string> Scopes::strings() const {
    std::vector<std::string> out;
    for (const auto& [res, acts] : actions_) {
        std::string s = res + ":";
        for (std::size_t i = 0; i < acts.size(); ++i) s += (i ? "," : "") + acts[i];
        out.push_back(s);
    }
    return out;
}

std::string Scopes::key() const {
    std::string k;
    for (const auto& s : strings()) k += s + " ";
    return k;
}

} // namespace aas::auth
