#include "aas_bundle/load/mirrors.hpp"

#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/fs.hpp"

#include <cctype>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace aas::load {

namespace {

// TOML and YAML basic strings share JSON's escapes for what a registry name can hold.
std::string q(const std::string& s) {
    return nlohmann::json(s).dump();
}

// containerd's server for an upstream: Docker Hub's API is registry-1.docker.io.
std::string upstream_server(const std::string& u) {
    return u == "docker.io" ? "https://registry-1.docker.io" : "https://" + u;
}

} // namespace

std::vector<MirrorFile> mirror_files(const std::vector<std::string>& upstreams, const MirrorOptions& o) {
    auto slash = o.registry.find('/');
    std::string host = o.registry.substr(0, slash);
    std::string prefix = slash == std::string::npos ? "" : o.registry.substr(slash + 1);
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    const std::string scheme = o.plain_http ? "http" : "https";
    const bool with_ca = !o.ca_file.empty();
    std::vector<MirrorFile> out;
    std::string ca;
    if (with_ca) ca = util::read_file(o.ca_file, 1u << 20);

    const std::string header =
        fmt::format("# Written by aas-bundle load: pull these registries' images from {}.\n", o.registry);
    // containerd: one hosts.toml per upstream.
    for (const auto& u : upstreams) {
        // A folder name: host[:port] as references allow, never "." or ".." (the names
        // come from the bundle).
        bool plain = !u.empty() && u.front() != '.' && u.find("..") == std::string::npos;
        for (char ch : u)
            plain = plain && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-' || ch == ':');
        if (!plain) throw Error(fmt::format("registry \"{}\" cannot name a configuration folder", u));
        std::string dir = "registries/containerd/certs.d/" + u;
        std::string t = header + fmt::format("server = {}\n\n", q(upstream_server(u)));
        t += fmt::format("[host.{}]\n",
                         q(fmt::format("{}://{}{}", scheme, host, prefix.empty() ? "" : "/v2/" + prefix)));
        t += "  capabilities = [\"pull\", \"resolve\"]\n";
        if (!prefix.empty()) t += "  override_path = true\n";
        if (o.insecure) t += "  skip_verify = true\n";
        if (with_ca) {
            t += fmt::format("  ca = {}\n", q("/etc/containerd/certs.d/" + u + "/ca.crt"));
            out.push_back({dir + "/ca.crt", ca});
        }
        out.push_back({dir + "/hosts.toml", t});
    }
    // CRI-O, podman, skopeo: containers-registries.conf v2.
    std::string c = header;
    if (with_ca)
        c += fmt::format("# The CA: copy registries/containers/certs.d/{0}/ca.crt to /etc/containers/certs.d/{0}/\n",
                         host);
    for (const auto& u : upstreams) {
        c += fmt::format("\n[[registry]]\nprefix = {0}\nlocation = {0}\n\n[[registry.mirror]]\nlocation = {1}\n", q(u),
                         q(o.registry));
        if (o.plain_http || o.insecure) c += "insecure = true\n";
    }
    out.push_back({"registries/registries.conf.d/50-aas-bundle.conf", c});
    if (with_ca) out.push_back({"registries/containers/certs.d/" + host + "/ca.crt", ca});
    // RKE2 and k3s.
    std::string y = header + "mirrors:\n";
    for (const auto& u : upstreams) {
        y += fmt::format("  {}:\n    endpoint:\n      - {}\n", q(u), q(fmt::format("{}://{}", scheme, host)));
        if (!prefix.empty()) y += fmt::format("    rewrite:\n      \"^(.*)$\": {}\n", q(prefix + "/$1"));
    }
    if (with_ca || o.insecure) {
        y += fmt::format("configs:\n  {}:\n    tls:\n", q(host));
        if (with_ca) y += "      ca_file: /etc/rancher/aas-bundle/ca.crt  # copy registries/rancher/ca.crt there\n";
        if (o.insecure) y += "      insecure_skip_verify: true\n";
        if (with_ca) out.push_back({"registries/rancher/ca.crt", ca});
    }
    out.push_back({"registries/registries.yaml", y});
    return out;
}

} // namespace aas::load
