#pragma once
// Internal to the verify module: the Checker, one streaming pass over a bundle's tar
// stream (bundle/reader.hpp) that fills a Report. Its parts, in the order of the pass:
//   checker.cpp  reading: bundle.json and its signature first, then every entry checked
//                against bundle.json (refused, unlisted, of the wrong type, size or mode)
//                and hashed on the HashPool, accepted ones extracted (extractor.hpp);
//                at the end the hashes, and what is missing
//   tree.cpp     the symlinks, resolved against the whole tree as extraction leaves it
//   layout.cpp   the OCI layout: images/index.json and every image's graph against
//                bundle.json's images and blobs

#include "extractor.hpp"
#include "hashpool.hpp"

#include "aas_bundle/bundle/format.hpp"
#include "aas_bundle/bundle/reader.hpp"
#include "aas_bundle/oci/manifest.hpp"
#include "aas_bundle/verify/verify.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aas::verify::detail {

inline constexpr std::uint64_t max_signature = 1024;
inline constexpr std::uint64_t entry_overhead = 8u << 10; // headers (pax included) allowed per entry

/// A manifest or index media type (read as one, not only hashed).
bool is_manifest_type(std::string_view mt);

/// One entry whose content is being hashed.
struct Hashed {
    std::size_t seq;
    HashPool::Job* job;
    bool blob;
    std::string subject; // digest or path
    std::string label;   // "blob sha256:… (layer of …)" or the path
    oci::Digest expect;
    bool retain = false;
    std::string data; // retained bytes (manifests, index.json)
};

/// One entry of images/index.json: an image's top descriptor, its name, where it is listed.
struct ImageRoot {
    oci::Descriptor d;
    std::string ref;
    std::string parent;
};

class Checker {
public:
    Checker(Report& rep, std::string name, const Options& o) : rep_(rep), name_(std::move(name)), o_(o), out_(o) {}

    void run(const bundle::ReadFn& read, const bundle::SkipFn& skip = {});

private:
    using TarReader = bundle::TarReader;
    using TarEntry = bundle::TarEntry;

    void add(std::size_t seq, std::string kind, std::string subject, std::string message) {
        problems_.push_back({seq, {std::move(kind), std::move(subject), std::move(message)}});
    }
    std::string blob_label(const bundle::BlobRecord& b) const;

    // checker.cpp
    void read_entries(TarReader& tr);
    std::string read_small(TarReader& tr, std::uint64_t limit);
    void header_entries(TarReader& tr, TarEntry& pending, bool& have_pending);
    void check_signature(const std::string& json, const std::optional<std::string>& sig);
    void index_doc();
    void entry(TarReader& tr, const TarEntry& e);
    bool refused(TarReader& tr, const TarEntry& e, const std::string& at);
    void blob_entry(TarReader& tr, const TarEntry& e, const oci::Digest& d);
    void file_entry(TarReader& tr, const TarEntry& e, const std::string& at);
    void hash(TarReader& tr, const TarEntry& e, bool blob, std::string subject, std::string label, oci::Digest expect,
              bool retain, unsigned mode, const std::function<void(const char*, std::size_t)>& sink = {});
    void finish_hashes();
    void completeness();

    // tree.cpp
    void tree_check();
    std::string resolve(const std::string& link, int& hops, bool& escaped) const;

    // layout.cpp
    void layout();
    std::optional<std::vector<ImageRoot>> image_roots();
    bool listed(const oci::Descriptor& d, const std::string& ref, const std::string& parent, bool as_manifest,
                std::set<oci::Digest>& assumed_used);
    std::optional<oci::RawManifest> verified_manifest(const oci::Descriptor& d, const std::string& ref,
                                                      const std::string& parent);
    void walk_image(const ImageRoot& root, std::set<oci::Digest>& seen, std::set<oci::Digest>& assumed_used);

    Report& rep_;
    std::string name_;
    const Options& o_;
    Extractor out_;
    std::vector<std::pair<std::size_t, Problem>> problems_;
    std::size_t seq_ = 0;
    std::unique_ptr<HashPool> pool_;
    std::deque<Hashed> hashed_;
    std::uint64_t retained_ = 0;

    const bundle::BundleDoc* doc_ = nullptr;
    std::map<oci::Digest, const bundle::BlobRecord*> blobs_;
    std::map<oci::Digest, const bundle::AssumedRecord*> assumed_; // a delta's blobs not stored
    std::map<std::string, const bundle::FileRecord*> files_;
    std::set<oci::Digest> blobs_seen_;
    std::set<std::string> files_seen_;
    std::map<std::string, std::uint64_t> names_; // name -> offset, for duplicates
    /// Accepted entries (listed, of the listed type): type and symlink target, the tree
    /// that symlinks are resolved against.
    std::map<std::string, std::pair<TarEntry::Type, std::string>> tree_;
    std::map<oci::Digest, std::string> manifests_; // verified manifest bytes
    std::optional<std::string> index_json_;        // verified images/index.json
    std::set<oci::Digest> blobs_ok_;               // present with the right content
    bundle::Decoder* decoder_ = nullptr;
    std::uint64_t tr_limit_base_ = 0;
};

} // namespace aas::verify::detail
