// The verify pass's symlinks (checker.hpp): each one resolved against the whole tree, as
// extraction will leave it.

#include "checker.hpp"

#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>

namespace aas::verify::detail {

// Where the symlink `link` leads in the final tree: its target taken component by
// component from the link's folder, every symlink met on the way expanded in turn (as the
// kernel does), at most 40 of them. `escaped` is set when the walk climbs above the
// bundle's root; the result is the path reached ("" for the root).
std::string Checker::resolve(const std::string& link, int& hops, bool& escaped) const {
    std::vector<std::string> cur = util::split(link, '/');
    cur.pop_back(); // the link's folder
    auto joined = [&] {
        std::string out;
        for (const auto& c : cur) out += (out.empty() ? "" : "/") + c;
        return out;
    };
    std::function<void(const std::string&)> walk = [&](const std::string& target) {
        if (!target.empty() && target.front() == '/') {
            escaped = true;
            return;
        }
        for (const auto& c : util::split(target, '/')) {
            if (escaped || hops > 40) return;
            if (c.empty() || c == ".") continue;
            if (c == "..") {
                if (cur.empty()) {
                    escaped = true;
                    return;
                }
                cur.pop_back();
                continue;
            }
            cur.push_back(c);
            auto it = tree_.find(joined());
            if (it != tree_.end() && it->second.first == TarEntry::Type::symlink) {
                if (++hops > 40) return;
                cur.pop_back();
                walk(it->second.second);
            }
        }
    };
    auto it = tree_.find(link);
    walk(it == tree_.end() ? std::string() : it->second.second);
    return joined();
}

// Symlinks checked against the whole tree, as extraction will leave it: no entry lies
// beneath a symlink, and every symlink, followed through the others, ends inside k8s/.
void Checker::tree_check() {
    for (const auto& [name, node] : tree_) {
        if (node.first != TarEntry::Type::symlink) continue;
        auto below = tree_.lower_bound(name + "/");
        if (below != tree_.end() && below->first.rfind(name + "/", 0) == 0)
            add(SIZE_MAX, "refused", below->first,
                fmt::format("entry \"{}\" refused: its path goes through the symlink \"{}\" (-> \"{}\")", below->first,
                            name, node.second));
        int hops = 0;
        bool escaped = false;
        auto to = resolve(name, hops, escaped);
        if (hops > 40)
            add(SIZE_MAX, "refused", name,
                fmt::format("entry \"{}\" refused: the symlink (-> \"{}\") does not resolve: more than 40 symlinks "
                            "in a row (a loop)",
                            name, node.second));
        else if (escaped || (to != bundle::k8s_dir && to.rfind("k8s/", 0) != 0))
            add(SIZE_MAX, "refused", name,
                fmt::format("entry \"{}\" refused: the symlink (-> \"{}\"), followed through the other symlinks, "
                            "leads to {}, outside k8s/",
                            name, node.second,
                            escaped      ? "above the bundle's root"
                            : to.empty() ? "the bundle's root"
                                         : "\"" + to + "\""));
    }
}
} // namespace aas::verify::detail
