// `from:` strings of a bundle manifest -> image sources.

#include "aas_bundle/source/source.hpp"
#include "aas_bundle/util/error.hpp"

#include <fmt/format.h>

namespace aas::source {
namespace {

constexpr std::string_view docker_archive_scheme = "docker-archive:";
constexpr std::string_view oci_scheme = "oci:";

std::filesystem::path resolve(std::string_view path, const std::filesystem::path& base_dir) {
    std::filesystem::path p(path);
    return p.is_absolute() || base_dir.empty() ? p : base_dir / p;
}

} // namespace

std::unique_ptr<ImageSource> open_from(std::string_view from, const std::filesystem::path& base_dir,
                                       const ref::Reference& wanted) {
    if (from.substr(0, docker_archive_scheme.size()) == docker_archive_scheme) {
        auto path = from.substr(docker_archive_scheme.size());
        if (path.empty())
            throw UsageError(fmt::format("source \"{}\": docker-archive: needs a path, e.g. "
                                         "docker-archive:build/app.tar",
                                         from));
        return open_docker_archive(resolve(path, base_dir), wanted);
    }
    if (from.substr(0, oci_scheme.size()) == oci_scheme) {
        auto rest = from.substr(oci_scheme.size());
        std::string_view path = rest;
        std::string tag;
        // The tag follows the last ':' when what follows it holds no '/'.
        if (auto colon = rest.rfind(':');
            colon != std::string_view::npos &&
            rest.substr(colon + 1).find('/') == std::string_view::npos) {
            path = rest.substr(0, colon);
            tag = std::string(rest.substr(colon + 1));
            if (tag.empty())
                throw UsageError(fmt::format(
                    "source \"{}\": the tag after the last ':' is empty (write oci:PATH "
                    "or oci:PATH:TAG)",
                    from));
        }
        if (path.empty())
            throw UsageError(
                fmt::format("source \"{}\": oci: needs a path, e.g. oci:build/layout:1.0", from));
        return open_oci_layout(resolve(path, base_dir), std::move(tag));
    }
    throw UsageError(fmt::format(
        "source \"{}\": unknown kind of source; use docker-archive:PATH (a `docker save` "
        "tar) or oci:PATH[:TAG] (an OCI image layout folder); an image in a registry needs "
        "no from:",
        from));
}

} // namespace aas::source
