#pragma once
// Media types of OCI and Docker manifests, indexes and layers.

#include <string_view>

namespace aas::oci::media_type {

inline constexpr std::string_view oci_manifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view oci_index = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view oci_config = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view oci_layer_gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view oci_layer_zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view oci_layer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view docker_manifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view docker_manifest_list = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view docker_config = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view docker_layer = "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view docker_foreign_layer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
inline constexpr std::string_view docker_schema1 = "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view docker_schema1_signed = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// An image manifest (OCI or Docker schema 2).
bool is_image_manifest(std::string_view mt);
/// An index (OCI image index or Docker manifest list).
bool is_index(std::string_view mt);
/// Any of the four supported manifest kinds.
bool is_supported_manifest(std::string_view mt);
/// Docker schema 1 (refused with a clear error everywhere).
bool is_schema1(std::string_view mt);

/// The `Accept` header for manifest requests: the four supported types first, then the
/// schema 1 types so that a registry holding only schema 1 answers with it and we can
/// refuse clearly instead of getting a 404.
std::string_view manifest_accept_header();

} // namespace aas::oci::media_type
