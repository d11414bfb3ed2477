#pragma once
// Image sources: where pack reads an image's manifests and blobs from.
//
//   registry         a registry reference, read through registry::Client (mirrors are the
//                    caller's business: it passes the client of the host to read from)
//   docker-archive:  a tar written by `docker save`, in either layout:
//                      classic   manifest.json [{Config, RepoTags, Layers}], <id>.json
//                                configs and <id>/layer.tar uncompressed layers;
//                      OCI       (Docker 25+) oci-layout, index.json and blobs/sha256/…
//                                beside manifest.json; read as an OCI layout.
//                    A classic archive has no registry manifest: one is synthesised, an OCI
//                    image manifest whose config is the archive's config file (media type
//                    application/vnd.oci.image.config.v1+json) and whose layers are the
//                    archive's uncompressed layer tars (application/vnd.oci.image.layer.v1.tar,
//                    digest = diff_id), serialised deterministically: the same archive gives
//                    the same manifest digest on every run and every machine.
//                    The tar may be gzip- or zstd-compressed (read through libarchive).
//   oci:             an OCI image layout folder; `oci:PATH:TAG` picks the index.json entry
//                    whose org.opencontainers.image.ref.name is TAG (or whose
//                    io.containerd.image.name is TAG); `oci:PATH` needs exactly one entry.
//   oci-archive:     a tar of an OCI image layout, read in place like docker-archive:.
//
// Every manifest returned has the exact bytes the source holds (or the synthesised bytes);
// every blob streamed is verified against its descriptor's size and digest, and a mismatch
// is an error naming the source, the blob digest and what differs. The methods of a source
// may be called from several threads at once.

#include "aas_bundle/oci/manifest.hpp"
#include "aas_bundle/ref/reference.hpp"
#include "aas_bundle/registry/client.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace aas::source {

class ImageSource {
public:
    virtual ~ImageSource() = default;

    /// Where the image is read from, for messages: "127.0.0.1:5000/bitnami/mongodb:6.0.3",
    /// "docker-archive:/abs/path/x.tar", "oci:/abs/path:2.1.0".
    virtual std::string describe() const = 0;

    /// The top manifest of the image (an image manifest or an index), exact bytes.
    virtual oci::RawManifest top() = 0;

    /// A manifest by digest (a child of an index); verified against `digest`.
    virtual oci::RawManifest manifest(const oci::Digest& digest) = 0;

    /// Streams a blob into `sink`, verifying size and digest. `on_bytes` is called as
    /// bytes arrive (may be empty). Throws aas::Error naming the source and the blob.
    virtual void fetch_blob(const oci::Descriptor& blob, registry::BlobSink& sink,
                            const registry::ByteCallback& on_bytes) = 0;
};

/// A registry source: `client` talks to the host to read from (the reference's own
/// registry or its mirror), `repository` and `identifier` (tag or digest) name the image
/// there. The client must outlive the source.
std::unique_ptr<ImageSource> open_registry(registry::Client& client, std::string repository, std::string identifier);

/// A `docker save` archive. `wanted` picks the image among the archive's RepoTags (an
/// archive with one image needs no match; one with several must hold `wanted`'s tag,
/// compared as normalised references, e.g. "shop/app:2.1" equals
/// "docker.io/shop/app:2.1"). Throws aas::Error naming the archive and what is missing.
/// An archive with oci-layout and index.json is read as an OCI layout: the entry whose
/// io.containerd.image.name or org.opencontainers.image.ref.name names `wanted` (a bare
/// ref.name is compared with `wanted`'s tag), else through manifest.json's RepoTags. The
/// exact bytes of a classic archive's synthesised manifest are given in docker_archive.cpp.
/// `strict` (the image was named, docker-archive:PATH:REF): an archive of one image must
/// hold `wanted` too.
std::unique_ptr<ImageSource> open_docker_archive(const std::filesystem::path& archive, const ref::Reference& wanted,
                                                 bool strict = false);

/// An OCI image layout folder; `tag` empty means the layout must hold exactly one image.
std::unique_ptr<ImageSource> open_oci_layout(const std::filesystem::path& layout, std::string tag);

/// A tar (optionally gzip- or zstd-compressed) of an OCI image layout, as `podman save
/// --format oci-archive`, buildah and `skopeo copy … oci-archive:` write; `tag` as for
/// open_oci_layout.
std::unique_ptr<ImageSource> open_oci_archive(const std::filesystem::path& archive, std::string tag);

/// Opens the source a bundle manifest's `from` names (PATH relative to `base_dir` unless
/// absolute), split at the first ':' as containers/image (skopeo, podman) does, so that
/// the name may hold '/' and ':' and a PATH cannot hold ':':
///   "docker-archive:PATH[:REF]"  REF (a reference, "localhost/x/y:2.0") picks the image
///                                among the archive's RepoTags; without it `wanted` does
///   "oci:PATH[:NAME]"            NAME is an index.json entry's ref.name ("1.0",
///                                "localhost/x/y:2.0", "docker.io/shop/a:1.0")
///   "oci-archive:PATH[:NAME]"    the same, in a tar
/// An empty NAME ("oci:dir:") is a usage error. A plain reference is not handled here (the
/// caller opens a registry). Throws aas::UsageError for an unknown scheme or an empty path.
/// Whether `from` names a file source ("docker-archive:", "oci:", "oci-archive:") that
/// open_from() opens, rather than a registry reference.
bool is_file_source(std::string_view from);

std::unique_ptr<ImageSource> open_from(std::string_view from, const std::filesystem::path& base_dir,
                                       const ref::Reference& wanted);

} // namespace aas::source
