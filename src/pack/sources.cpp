#include "sources.hpp"

namespace aas::pack {

std::unique_ptr<source::ImageSource> Sources::open(const ref::Reference& ref, const std::string& from) {
    if (source::is_file_source(from)) return source::open_from(from, base_, ref);
    ref::Reference at = from.empty() ? ref : ref::Reference::parse(from);
    std::string host = at.registry();
    std::string repo = at.repository();
    if (auto it = mirrors_.find(host); it != mirrors_.end()) {
        const std::string& m = it->second;
        auto slash = m.find('/');
        host = m.substr(0, slash);
        if (slash != std::string::npos) repo = m.substr(slash + 1) + "/" + repo;
    }
    return source::open_registry(client(host), repo, at.has_digest() ? at.digest() : at.tag());
}

registry::Client& Sources::client(const std::string& host) {
    std::lock_guard lock(mu_);
    auto& c = clients_[host];
    if (!c) {
        auto opts = options_.registry_options ? options_.registry_options(host) : registry::Options{};
        c = std::make_unique<registry::Client>(host, opts);
    }
    return *c;
}

} // namespace aas::pack
