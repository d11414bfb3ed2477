#pragma once
// pack: the online side of the air gap. Finds every image a bundle manifest's charts
// need (discovery), reads each from its registry (through a mirror when one is set), a
// `docker save` archive or an OCI layout, keeps every verified blob in a cache, and writes
// one signed bundle (docs/bundle-format.md) atomically, whole or in parts.
//
// Order of work: pack() runs these phases one after the other (src/pack/pack.cpp, one
// member function of its Packer each):
//   1. discover: discovery; invalid references and unresolved placeholders become failures;
//   2. read manifests: every image's manifests are fetched and verified, `jobs` at a time,
//      platforms chosen (below), before any layer: the tar's layout is then known; list
//      blobs: every blob once, with the images that use it; leave out assumed: with `have`
//      (a delta), every layer a base lists with the same digest and size is taken out here:
//      it is neither downloaded nor stored, only listed in bundle.json's `assumed`;
//   3. plan downloads: every blob the cache cannot give (its own files, or a reference into
//      a plain .tar an earlier pack wrote) is to be downloaded, image by image, `jobs` at a
//      time, hashed while it streams; download into the cache: configs, and every blob of
//      a .tar.zst or split bundle (renamed there only when the digest matches); a plain
//      .tar's layers are downloaded in step 4, straight to their place in the bundle
//      (BundleWriter::reserve), written once;
//   4. when nothing failed: describe the bundle (bundle.json: images, blobs, the k8s
//      folder's files), write the archive: bundle.json and its signature, k8s/ first
//      (format v2), the layout, the blobs from memory (manifests), the cache or an earlier
//      bundle (hashed again on the way) and the downloads of a plain .tar (on a thread of
//      their own while the cached copies are written), to temporary files; commit: they
//      are renamed into place last, and the cache then notes where the new bundle holds
//      each layer it downloaded.
// Every failure of step 2 and 3 (and of a plain .tar's downloads) is collected; pack then
// throws PackError listing them all and writes nothing at the output name. The cache keeps
// what was verified, so a re-run downloads only what is missing.
//
// Platforms: with none requested, every image is stored whole. With platforms requested,
// an index reached through a tag is narrowed: one matching platform stores that
// platform's image manifest (bytes as served; the bundle records the index digest it came
// from), several store a new index listing only them (recorded as `filtered_index`);
// when they are every entry of the index, nothing is dropped and it is stored as served. An
// index referenced by digest is always stored whole, with every platform, so the digest
// the values pin stays valid.

#include "aas_bundle/bundle/format.hpp"
#include "aas_bundle/bundle/writer.hpp"
#include "aas_bundle/delta/inventory.hpp"
#include "aas_bundle/discovery/discovery.hpp"
#include "aas_bundle/oci/platform.hpp"
#include "aas_bundle/registry/client.hpp"
#include "aas_bundle/util/progress.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace aas::pack {

/// Progress callbacks, called from worker threads (each may be empty).
struct Events {
    std::function<void(const std::string& line)> line;                              ///< one line of news
    std::function<void(const std::string& phase, std::uint64_t total_bytes)> phase; ///< a phase starts
    std::function<void(std::uint64_t bytes)> bytes;    ///< bytes moved in the current phase
    std::function<void(const std::string& line)> blob; ///< one line per blob downloaded (detail)
    /// One image's download, in the "download" phase: every image once waiting (or done when
    /// the cache has it all), then as its blobs move, then done or failed.
    std::function<void(const util::ImageProgress& image)> image;
};

struct Options {
    std::filesystem::path manifest_file;
    std::filesystem::path k8s_override;   ///< replaces the manifest's k8s folder when set
    std::filesystem::path output;         ///< "bundles/x.tar.zst"; zstd when it ends in .zst
    std::filesystem::path key;            ///< Ed25519 private key (PEM)
    bool allow_unsigned = false;          ///< required to pack without `key`
    std::vector<oci::Platform> platforms; ///< overrides the manifest's when not empty
    std::vector<discovery::Class> classes{discovery::Class::required, discovery::Class::test,
                                          discovery::Class::optional};
    /// Also pack discovery's "possible" images (image-like values outside image fields,
    /// e.g. a literal `--sidecar=ghcr.io/x/y:1` argument) that their registry holds, as
    /// optional; the others are listed as warnings. Without it every possible image is
    /// listed (file:line) at the end.
    bool include_possible = false;
    int jobs = 4;
    std::uint64_t split_size = 0;
    std::filesystem::path cache_dir;            ///< required: verified blobs kept between runs
    std::map<std::string, std::string> mirrors; ///< registry -> HOST[:PORT][/PREFIX], over the manifest's
    /// Client options for a registry host (TLS, credentials, retries).
    std::function<registry::Options(const std::string& host)> registry_options;
    int zstd_level = 3;
    std::int64_t created = -1; ///< seconds since the epoch; -1: $SOURCE_DATE_EPOCH or now
    /// A delta bundle (`pack --have`): every layer one of these lists with the same digest
    /// and size is left out of the bundle and recorded in bundle.json's `assumed` (with the
    /// first base that lists it); manifests and configs are always stored. Each becomes one
    /// entry of bundle.json's `base`, in this order.
    std::vector<delta::Have> have;
    Events events;
};

/// One image (or discovery problem) that kept the bundle from being written.
struct Failure {
    std::string image; ///< the reference, or the value as written for invalid ones
    std::string where; ///< "FILE:LINE values.path" or the manifest entry
    std::string reason;
};

class PackError : public aas::Error {
public:
    explicit PackError(std::vector<Failure> failures);
    const std::vector<Failure>& failures() const { return failures_; }

private:
    std::vector<Failure> failures_;
};

struct Result {
    bundle::WriteResult written;
    bundle::BundleDoc doc;
    std::uint64_t bytes_stored = 0;     ///< blob bytes in the bundle (each blob once)
    std::uint64_t bytes_referenced = 0; ///< blob bytes summed over images (shared blobs counted per image)
    std::uint64_t bytes_saved = 0;      ///< bytes_referenced minus the config and layer bytes stored
    std::uint64_t bytes_downloaded = 0; ///< blob bytes read from sources in this run
    std::uint64_t bytes_cached = 0;     ///< blob bytes the cache already had
    std::size_t blobs_downloaded = 0, blobs_cached = 0;
    std::uint64_t bytes_assumed = 0; ///< layer bytes left out because a base lists them
    std::size_t blobs_assumed = 0;
    std::vector<std::string> warnings;
};

/// Packs as described above. Throws PackError when images failed, manifest::ManifestError
/// for an invalid manifest, aas::UsageError for bad options, aas::Error otherwise.
Result pack(const Options& options);

/// The cache folder used when none is given: $XDG_CACHE_HOME/aas-bundle, else
/// ~/.cache/aas-bundle.
std::filesystem::path default_cache_dir();

} // namespace aas::pack
