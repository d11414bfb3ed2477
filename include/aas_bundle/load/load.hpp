#pragma once
// load: the offline side of the air gap. Verifies a bundle, pushes every image into the
// private registry with its digests, and writes the k8s folder with every image value
// pointing there, plus images.lock.json and install.sh.
//
// Order of work (load(); in src/load/load.cpp, the Loader's constructor is step 0 and its
// run() the others: verify_and_stream and plan_graphs, plan_rewrite, push, write_output):
//   0. the options, before the bundle is opened: --registry, --out (refused when it is a
//      file, a symlink, or a folder without load's `.aas-load` marker), the lock beside
//      it (OUT.aas-load.lock, refusing a second load into the same folder), the work
//      folder beside the output (OUT.aas-load; a dry run's: a private mkdtemp folder);
//   1. one pass over the bundle with verify's checks (signature and every hash): with a
//      key, a bad signature stops it after bundle.json. Right after bundle.json: the
//      target names and --flatten collisions, the registry's preflight (it answers, TLS
//      and credentials are accepted), and one HEAD per image: when the registry holds
//      every image's manifest under its tag already, a format v2 bundle is read no
//      further than its k8s folder (a re-load). Otherwise a test upload to the first
//      target repository is made (then cancelled). A delta bundle (bundle.json
//      `assumed`): then, before any upload or mount, every assumed blob is looked for in
//      the registry: HEAD in each target repository that needs it, else in the
//      repositories its entry names and the other target repositories of the bundle (to
//      be mounted from there in step 3). Any blob found nowhere fails the load there,
//      naming it, its size, the images that need it and its base; nothing is pushed. A
//      dry run makes the same check.
//      Only k8s/ is written to disk, into the work folder (OUT.aas-load/bundle), through
//      util::SafeTree. Blobs never touch the disk: a plain .tar in one file has its
//      config and layer blobs' offsets noted (step 3 reads them); a .tar.zst or a split
//      bundle has each blob the registry lacks (one HEAD) streamed to it while it is
//      decoded (two at once), its hash checked by the pass as always. Streamed uploads
//      that failed are streamed again from up to three further passes over the bundle.
//      Then each image's graph is planned from the manifests the pass verified;
//   2. the rewrite is planned (rewrite::plan) from the verified k8s folder; a dry run
//      ends here;
//   3. push (nothing of it when the pass failed): each distinct blob not yet there is
//      uploaded once, read from the bundle at its offset and hashed on the way (a byte
//      that differs fails it before the registry completes it), several at once; then
//      mounted into every other repository that needs it, and a delta's assumed blobs
//      into the repositories that lack them; manifests (the verified bytes the pass kept)
//      go byte for byte, children before indexes, tops under their tag (or digest), only
//      when every blob is in. A bundle found damaged leaves no manifest and no tag; blobs
//      uploaded before are content-addressed data that nothing names. A journal in the
//      work folder records what is done, so a re-run after a failure or kill -9 goes on
//      from there and uploads nothing twice;
//   4. the k8s folder is rewritten and written with images.lock.json, install.sh,
//      bundle.yaml (the manifest of the rewritten folder) and the registry mirror files
//      to OUT.aas-load/out, plus inventory.json (what the registry now holds for these
//      images, from the verified bundle.json: delta::after_load; signed with
//      `inventory_key`); the folder is renamed to OUT only when all of the above
//      succeeded. The work folder is removed after a successful load.
//
// Scratch disk: the k8s folder, the journal and the output, whatever the images weigh.
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
    std::function<void(const std::string& line)> blob; ///< one line per blob pushed (detail)
    /// One image's push, in the "push" phase: every image once waiting, then as its blobs
    /// move, then done when its manifests are pushed, or failed. When set, it replaces the
    /// "pushed REF -> TARGET" line (the event carries the target).
    std::function<void(const util::ImageProgress& image)> image;
};

struct Options {
    std::filesystem::path bundle; ///< a bundle file, its parts index or first part
    std::string registry;         ///< HOST[:PORT][/PREFIX]
    std::filesystem::path key;    ///< Ed25519 public key
    bool skip_signature = false;  ///< --insecure-skip-signature: integrity only
    std::filesystem::path out;    ///< output folder
    int jobs = 4;
    bool dry_run = false;
    bool flatten = false;
    /// Ed25519 PRIVATE key that signs OUT/inventory.json (OUT/inventory.json.sig); empty:
    /// the inventory is written unsigned.
    std::filesystem::path inventory_key;
    registry::Options registry_options;
    Events events;
};

/// Where one image went.
struct Pushed {
    std::string source; ///< logical reference in the bundle
    std::string target; ///< full target reference
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
    /// A delta bundle: the blobs it assumes, how many the target repository that needs them
    /// held already, how many are (or, dry run, would be) mounted from another repository.
    bool delta = false;
    std::size_t assumed_blobs = 0, assumed_present = 0, assumed_mounts = 0;
    std::uint64_t assumed_bytes = 0;
    std::filesystem::path inventory; ///< OUT/inventory.json (empty in a dry run)
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
