// `from:` strings of a bundle manifest -> image sources.

#include "aas_bundle/source/source.hpp"
#include "aas_bundle/util/error.hpp"

#include <fmt/format.h>

#include <optional>

namespace aas::source {
namespace {

constexpr std::string_view docker_archive_scheme = "docker-archive:";
constexpr std::string_view oci_archive_scheme = "oci-archive:";
constexpr std::string_view oci_scheme = "oci:";

std::filesystem::path resolve(std::string_view path, const std::filesystem::path& base_dir) {
    std::filesystem::path p(path);
    return p.is_absolute() || base_dir.empty() ? p : base_dir / p;
}

// "PATH[:REF]" split at the first ':', as containers/image (skopeo, podman) does: REF may
// hold '/' and ':' ("oci:dir:localhost/x/y:2.0"); a PATH cannot hold ':'.
std::pair<std::string_view, std::string> split_path_ref(std::string_view from, std::string_view scheme,
                                                        const char* example) {
    auto rest = from.substr(scheme.size());
    auto colon = rest.find(':');
    std::string_view path = rest.substr(0, colon);
    std::string ref = colon == std::string_view::npos ? std::string() : std::string(rest.substr(colon + 1));
    if (path.empty()) throw UsageError(fmt::format("source \"{}\": {} needs a path, e.g. {}", from, scheme, example));
    if (colon != std::string_view::npos && ref.empty())
        throw UsageError(fmt::format("source \"{}\": the name after ':' is empty (write {}PATH or {}PATH:NAME)", from,
                                     scheme, scheme));
    return {path, ref};
}

bool starts_with(std::string_view s, std::string_view p) {
    return s.substr(0, p.size()) == p;
}

} // namespace

bool is_file_source(std::string_view from) {
    return starts_with(from, docker_archive_scheme) || starts_with(from, oci_archive_scheme) ||
           starts_with(from, oci_scheme);
}

std::unique_ptr<ImageSource> open_from(std::string_view from, const std::filesystem::path& base_dir,
                                       const ref::Reference& wanted) {
    if (starts_with(from, docker_archive_scheme)) {
        auto [path, name] = split_path_ref(from, docker_archive_scheme, "docker-archive:build/app.tar");
        if (name.empty()) return open_docker_archive(resolve(path, base_dir), wanted);
        std::optional<ref::Reference> picked;
        try {
            picked = ref::Reference::parse(name);
        } catch (const Error& e) {
            throw UsageError(fmt::format("source \"{}\": \"{}\" is not an image reference to pick from the "
                                         "archive: {}",
                                         from, name, e.what()));
        }
        return open_docker_archive(resolve(path, base_dir), *picked, true);
    }
    if (starts_with(from, oci_archive_scheme)) {
        auto [path, name] = split_path_ref(from, oci_archive_scheme, "oci-archive:build/app.tar:1.0");
        return open_oci_archive(resolve(path, base_dir), std::move(name));
    }
    if (starts_with(from, oci_scheme)) {
        auto [path, name] = split_path_ref(from, oci_scheme, "oci:build/layout:1.0");
        return open_oci_layout(resolve(path, base_dir), std::move(name));
    }
    throw UsageError(
        fmt::format("source \"{}\": unknown kind of source; use docker-archive:PATH[:REF] (a `docker save` or "
                    "`podman save` tar), oci:PATH[:NAME] (an OCI image layout folder) or oci-archive:PATH[:NAME] "
                    "(a tar of one); an image in a registry needs no from:",
                    from));
}

} // namespace aas::source
