#include "aas_bundle/oci/media_types.hpp"

namespace aas::oci::media_type {

bool is_image_manifest(std::string_view mt) {
    return mt == oci_manifest || mt == docker_manifest;
}
bool is_index(std::string_view mt) {
    return mt == oci_index || mt == docker_manifest_list;
}
bool is_supported_manifest(std::string_view mt) {
    return is_image_manifest(mt) || is_index(mt);
}
bool is_schema1(std::string_view mt) {
    return mt == docker_schema1 || mt == docker_schema1_signed;
}

std::string_view manifest_accept_header() {
    return "application/vnd.oci.image.index.v1+json, "
           "application/vnd.docker.distribution.manifest.list.v2+json, "
           "application/vnd.oci.image.manifest.v1+json, "
           "application/vnd.docker.distribution.manifest.v2+json, "
           "application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.1, "
           "application/vnd.docker.distribution.manifest.v1+json;q=0.1";
}

} // namespace aas::oci::media_type
