#pragma once
// load: the offline side of the air gap. Verifies a bundle, pushes every image into the
// private registry with its digests, and writes the k8s folder with every image value
// pointing there, plus images.lock.json and install.sh.
//
// Order of work:
//   0. the options, before the bundle is opened: --registry, --out (refused when it is a
//      file, a symlink, or a folder without load's `.aas-load` marker), the lock beside
//      it (OUT.aas-load.lock, refusing a second load into the same folder);
//   1. verify (signature and every hash, as `aas-bundle verify`); with a key, a bad
//      signature stops it after bundle.json; target names and --flatten collisions are
//      checked right after bundle.json; a bundle that fails is not loaded at all;
//   2. in the same pass, the bundle's images/ and k8s/ are extracted into a work folder
//      beside the output (OUT.aas-load/), through util::SafeTree (never following a
//      symlink), used only when the whole bundle verified (a dry run extracts k8s/ only,
//      into a private mkdtemp folder);
//   3. preflight: the registry answers, TLS and credentials are accepted, and a test
//      upload to the first target repository is allowed (then cancelled);
//   4. blobs: each distinct blob is uploaded once (skipped when the target has it), then
//      mounted into every other repository that needs it; manifests go byte for byte,
//      children before indexes, tops under their tag (or digest). A journal in the work
//      folder records what is done, so a re-run after a failure or kill -9 goes on from
//      there and uploads nothing twice;
//   5. the k8s folder is rewritten (rewrite::plan) and written with images.lock.json,
//      install.sh and bundle.yaml (the manifest of the rewritten folder) to OUT.aas-load/out, which is renamed to OUT only when all of the above
//      succeeded. The work folder is removed after a successful load.
//
// Target names: HOST[:PORT][/PREFIX]/<source repository path>:<tag>
//   docker.io/bitnami/mongodb:6.0.3        -> REG/PREFIX/bitnami/mongodb:6.0.3
//   gcr.io/knative-releases/x/queue@sha256:… -> REG/PREFIX/knative-releases/x/queue@sha256:…
// `flatten` keeps only the last path component (REG/PREFIX/mongodb:6.0.3) and refuses two
// images that would share a repository and tag. A reference with a digest and no tag is
// pushed by digest and also tagged `sha256-<hex>` (the digest's hex), so that registries
// that garbage-collect untagged manifests keep it.

#include "aas_bundle/bundle/format.hpp"
#include "aas_bundle/ref/reference.hpp"
#include "aas_bundle/registry/client.hpp"
#include "aas_bundle/util/progress.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace aas::load {

struct Events {
    std::function<void(const std::string& line)> line;
    std::function<void(const std::string& phase, std::uint64_t total_bytes)> phase;
    std::function<void(std::uint64_t bytes)> bytes;
    std::function<void(const std::string& line)> blob;       ///< one line per blob pushed (detail)
    /// One image's push, in the "push" phase: every image once waiting, then as its blobs
    /// move, then done when its manifests are pushed, or failed. When set, it replaces the
    /// "pushed REF -> TARGET" line (the event carries the target).
    std::function<void(const util::ImageProgress& image)> image;
};

struct Options {
    std::filesystem::path bundle;       ///< a bundle file, its parts index or first part
    std::string registry;               ///< HOST[:PORT][/PREFIX]
    std::filesystem::path key;          ///< Ed25519 public key
    bool skip_signature = false;        ///< --insecure-skip-signature: integrity only
    std::filesystem::path out;          ///< output folder
    int jobs = 4;
    bool dry_run = false;
    bool flatten = false;
    registry::Options registry_options;
    Events events;
};

/// Where one image went.
struct Pushed {
    std::string source;      ///< logical reference in the bundle
    std::string target;      ///< full target reference
    oci::Digest digest;
    std::string media_type;
};

struct Result {
    std::vector<Pushed> images;
    std::size_t blobs_uploaded = 0, blobs_skipped = 0, blobs_mounted = 0;
    std::size_t manifests_pushed = 0, manifests_skipped = 0;
    std::uint64_t bytes_uploaded = 0;
    std::vector<std::string> changed_files;  ///< k8s files rewritten (or that would be, dry run)
    std::string diff;                        ///< unified diff of every change (dry run)
    std::vector<std::string> planned_pushes; ///< dry run: "SOURCE -> TARGET"
    std::vector<std::string> warnings;
};

/// The target of `source` in `registry` (HOST[:PORT][/PREFIX]) as the header describes.
/// Throws aas::UsageError for an invalid registry or a name the target cannot hold.
ref::Reference target_for(const ref::Reference& source, const std::string& registry, bool flatten);

/// The stable tag given to images that have only a digest: "sha256-<hex>".
std::string digest_tag(const std::string& digest);

/// Loads as described above. Throws aas::Error (verification failures list every
/// problem; registry failures say what to do), aas::UsageError for bad options.
Result load(const Options& options);

} // namespace aas::load
