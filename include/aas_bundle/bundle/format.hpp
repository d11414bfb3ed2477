#pragma once
// The bundle format: names of the archive's entries and the bundle.json document.
// docs/bundle-format.md is the full specification; in short:
//
//   BUNDLE     := TAR | ZSTD(TAR) | PARTS            (zstd is detected by its magic bytes)
//   TAR        := "bundle.json" ["bundle.json.sig"] K8S LAYOUT   entries in this order (v2;
//                 v1, still read, has LAYOUT before K8S)
//   LAYOUT     := "images/" "images/oci-layout" "images/index.json"
//                 "images/blobs/" "images/blobs/sha256/" BLOB*    blobs sorted by digest
//   BLOB       := "images/blobs/sha256/<hex>"        content whose sha256 is <hex>
//   K8S        := "k8s/" ENTRY*                      the shipped k8s folder, sorted by path
//
// bundle.json lists every entry but itself and its signature: blobs under "blobs", every
// other file, folder and symlink under "files", each with its size and sha256. The
// signature is raw Ed25519 over the exact bytes of bundle.json.

#include "aas_bundle/oci/digest.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aas::bundle {

/// The format pack writes: k8s/ right after the signature, so that a reader that needs only
/// the k8s folder (a re-load) stops there, even in a .tar.zst.
inline constexpr std::string_view format_name = "aas-bundle/v2";
/// The first format, still read: the layout before k8s/.
inline constexpr std::string_view format_v1 = "aas-bundle/v1";
inline constexpr std::string_view bundle_json_path = "bundle.json";
inline constexpr std::string_view signature_path = "bundle.json.sig";
inline constexpr std::string_view layout_dir = "images";
inline constexpr std::string_view layout_file_path = "images/oci-layout";
inline constexpr std::string_view index_json_path = "images/index.json";
inline constexpr std::string_view k8s_dir = "k8s";
/// bundle.json larger than this is refused by readers.
inline constexpr std::uint64_t max_bundle_json = 64u << 20;

/// "images/blobs/sha256/<hex>".
std::string blob_path(const oci::Digest& d);

/// One value a joined reference is built from (discovery::Part): which part of the
/// reference its text is, where it is written, and where its text starts in the reference.
struct PartRecord {
    std::string part; ///< registry | repository | tag | digest
    std::string file; ///< relative to the bundle root: a values file or a chart file
    int line = 0;
    std::string values_path; ///< release-level values path ("" for a chart file's value)
    std::string file_key;    ///< a chart file's value: its key path in that file
    std::string written;     ///< its text, as in the reference and in the file
    std::size_t at = 0;      ///< offset of that text in SiteRecord::reference
};

/// One values site an image fills (from discovery), for load to rewrite.
struct SiteRecord {
    std::string release;
    std::string chart;
    std::string file; ///< relative to the bundle root ("k8s/environments/…")
    int line = 0;
    std::string values_path;
    std::string written; ///< the value as written there, when it differs from the reference
    std::string template_file;
    int template_line = 0;
    std::string cls; ///< class of this site
    /// A reference joined from values that are not one value or one map's: the reference as
    /// rendered and every value it is built from (both optional in bundle.json).
    std::string reference;
    std::vector<PartRecord> parts;
};

struct ImageRecord {
    std::string ref;    ///< logical reference, normalised ("docker.io/bitnami/mongodb:6.0.3")
    std::string source; ///< where it was read from ("127.0.0.1:5000/…", "docker-archive:…")
    oci::Digest digest; ///< digest of the top manifest stored
    std::string media_type;
    std::int64_t size = 0; ///< bytes of the top manifest
    std::vector<std::string> platforms;
    /// Set when a platform's image was taken out of an index: the index's digest. The
    /// stored top manifest is then that image (one platform) or a filtered index.
    std::optional<oci::Digest> index_digest;
    bool filtered_index = false;  ///< the top is an index written by pack (several platforms kept)
    std::string cls;              ///< required | test | optional
    std::uint64_t blob_bytes = 0; ///< config and layer bytes this image references
    std::vector<SiteRecord> sites;
};

/// The object bundle.json holds for `img`, as compact JSON (every field, the same keys
/// and order), so that other outputs (inspect --json) carry exactly what the bundle says.
std::string image_json(const ImageRecord& img);

struct BlobRecord {
    oci::Digest digest;
    std::int64_t size = 0;
    std::string media_type;
    std::string kind;                ///< index | manifest | config | layer
    std::vector<std::string> images; ///< references of the images that use it
};

struct FileRecord {
    std::string path;       ///< archive path ("k8s/charts/x/values.yaml", "images/index.json")
    std::string type;       ///< file | dir | symlink
    unsigned mode = 0;      ///< permission bits
    std::uint64_t size = 0; ///< files only
    oci::Digest sha256;     ///< files only
    std::string target;     ///< symlinks only
};

struct ReleaseRecord {
    std::string name;
    std::string chart;
    std::string namespace_;
    std::vector<std::string> values;
};

/// What a delta bundle is a delta against (bundle.json `base`, docs/bundle-format.md).
struct BaseRecord {
    std::string kind;     ///< inventory | bundle
    oci::Digest sha256;   ///< of the inventory file, or of the old bundle's bundle.json
    std::string registry; ///< inventory only: the registry it describes (host[:port])
    std::string prefix;   ///< inventory only: its prefix ("" for none)
};

/// A layer a delta bundle does not store because its base says the target registry holds it
/// (bundle.json `assumed`). Never also in `blobs`; referenced by the manifests of `images`.
struct AssumedRecord {
    oci::Digest digest;
    std::int64_t size = 0;
    std::string media_type;
    std::vector<std::string> images;       ///< references of the images in this bundle that need it
    std::size_t base = 0;                  ///< index into BundleDoc::base
    std::vector<std::string> repositories; ///< where the base says it lives in the target registry
};

struct BundleDoc {
    std::string format{format_name};
    std::string name;
    std::string version;
    std::string tool;    ///< "aas-bundle 0.1.0"
    std::string created; ///< RFC 3339 UTC
    std::string signer;  ///< fingerprint of the signing key, "" when unsigned
    std::vector<std::string> platforms;
    std::vector<ReleaseRecord> releases;
    std::vector<std::string> plain_manifests;
    std::vector<ImageRecord> images;
    std::vector<BlobRecord> blobs;
    std::vector<FileRecord> files;
    /// Delta bundles only (both empty in a full bundle): what it is a delta against, and
    /// every layer it assumes present in the target registry instead of storing it.
    std::vector<BaseRecord> base;
    std::vector<AssumedRecord> assumed;

    bool is_delta() const { return !base.empty(); }
    /// Bytes of every assumed blob.
    std::uint64_t assumed_bytes() const;

    /// Deterministic JSON (fixed key order, 2-space indent, trailing newline).
    std::string to_json() const;
    /// Parses and validates (format, digests, paths); throws aas::Error naming `where` and
    /// the field that is wrong. `base` and `assumed` are checked as hostile input: both or
    /// neither; an assumed blob that is also stored, listed twice, needed by no image of the
    /// bundle, or whose base index is out of range is an error naming the entry.
    static BundleDoc parse(std::string_view json, const std::string& where);
};

/// JSON read from a bundle (bundle.json, manifests, indexes, the parts index) nesting
/// deeper than this is refused before it is parsed.
inline constexpr std::size_t max_json_depth = 64;

/// A field of bundle.json that a reader must not act on.
struct FieldProblem {
    std::string field;   ///< "releases[0].name"
    std::string message; ///< a full sentence, untrusted text escaped
};

/// What in `doc` is unsafe to use even when it is authentic: control characters in the
/// name, version or references; release names that are not Helm release names and
/// namespaces that are not DNS-1123 labels; chart, values, manifest and site paths that
/// leave k8s/; file modes with setuid, setgid or sticky bits. Empty when all is well.
std::vector<FieldProblem> field_problems(const BundleDoc& doc);

/// RFC 3339 UTC ("2026-11-29T13:00:00Z") of seconds since the epoch.
std::string rfc3339(std::int64_t epoch_seconds);

} // namespace aas::bundle
