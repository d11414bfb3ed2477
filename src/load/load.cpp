#include "aas_bundle/load/load.hpp"
#include "aas_bundle/load/mirrors.hpp"

#include "blob_sources.hpp"

#include "aas_bundle/bundle/parts.hpp"
#include "aas_bundle/delta/inventory.hpp"
#include "aas_bundle/oci/media_types.hpp"
#include "aas_bundle/oci/walk.hpp"
#include "aas_bundle/rewrite/rewrite.hpp"
#include "aas_bundle/signing/signing.hpp"
#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/util/log.hpp"
#include "aas_bundle/util/parallel.hpp"
#include "aas_bundle/util/progress.hpp"
#include "aas_bundle/util/signals.hpp"
#include "aas_bundle/util/strings.hpp"
#include "aas_bundle/verify/verify.hpp"

#include "aas_bundle/util/error.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace aas::load {
namespace fs = std::filesystem;

namespace {

// Streamed uploads (a .tar.zst or a split bundle): this much kept behind the upload (a
// rewind within it is served again; an older one fails the blob, and a re-run goes on from
// the journal), this much read ahead of it, this many at once.
constexpr std::size_t stream_keep = 2u << 20;
constexpr std::size_t stream_ahead = 4u << 20;
constexpr std::size_t stream_jobs = 2;
constexpr int stream_passes = 3; // further passes for streamed uploads that failed
// Hash buffers of load's pass (verify's default is 16 MiB): with the uploads' windows,
// load's memory stays what it was when it extracted the bundle instead.
constexpr std::size_t stream_hash_buffers = 2u << 20;

using delta::split_registry;

// ---------------------------------------------------------------------------------------
// The journal: what was pushed, one line each, synced, so that a re-run skips it.

class Journal {
public:
    explicit Journal(fs::path file) : file_(std::move(file)) {
        std::ifstream in(file_);
        for (std::string line; std::getline(in, line);)
            if (!line.empty()) done_.insert(line);
        fd_ = util::Fd(::open(file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
        if (!fd_) throw Error(fmt::format("opening the journal {}: {}", file_.string(), util::errno_message(errno)));
    }
    bool has(const std::string& entry) {
        std::lock_guard lock(mu_);
        return done_.count(entry) > 0;
    }
    void add(const std::string& entry) {
        std::lock_guard lock(mu_);
        if (!done_.insert(entry).second) return;
        std::string line = entry + "\n";
        if (::write(fd_.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
            ::fdatasync(fd_.get()) != 0)
            throw Error(fmt::format("writing the journal {}: {}", file_.string(), util::errno_message(errno)));
    }

private:
    fs::path file_;
    util::Fd fd_;
    std::mutex mu_;
    std::set<std::string> done_;
};

// ---------------------------------------------------------------------------------------

struct ImagePlan {
    const bundle::ImageRecord* rec = nullptr;
    std::size_t index = 0; ///< in bundle.json's images
    ref::Reference target;
    std::string repo;                       ///< target repository path
    std::vector<oci::RawManifest> children; ///< pushed by digest, before the top
    oci::RawManifest top;
    std::vector<oci::Descriptor> blobs;
};

using ManifestFn = std::function<oci::RawManifest(const oci::Digest&, const std::string& media_type)>;

// Each image's graph (oci::walk) from the verified manifests. `stored`: the blobs the
// bundle holds. A foreign layer it does not hold (by design, see oci::is_foreign) is not
// pushed: the registry takes the manifest without it.
void plan_graph(const ManifestFn& manifest, ImagePlan& p, const std::set<oci::Digest>& stored) {
    auto g = oci::walk(p.top, [&](const oci::Descriptor& c) { return manifest(c.digest, c.media_type); });
    p.children = std::move(g.children);
    p.blobs = std::move(g.blobs);
    for (const auto& b : g.foreign)
        if (stored.count(b.digest)) p.blobs.push_back(b);
}

std::string shell_quote(const std::string& s) {
    if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@") ==
                          std::string::npos)
        return s;
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// Every value install.sh runs with goes through shell_quote; comments carry bundle text
// with control characters escaped, so that no newline can end them.
std::string install_script(const bundle::BundleDoc& doc, const std::vector<bundle::ReleaseRecord>& releases,
                           const std::string& registry, const fs::path& k8s) {
    std::string s =
        fmt::format("#!/bin/sh\n"
                    "# Installs the bundle's releases with every image from the private registry.\n"
                    "# bundle: {}\n"
                    "# registry: {}\n"
                    "# Written by aas-bundle load: run it from anywhere on the machine that reaches the cluster\n"
                    "# (kubectl and helm configured). Re-running it upgrades the releases in place.\n"
                    "set -eu\n"
                    "cd \"$(dirname \"$0\")\"\n\n",
                    util::escape_control(doc.name + " " + doc.version), util::escape_control(registry));
    if (fs::exists(k8s / "namespaces.yaml")) s += "kubectl apply -f k8s/namespaces.yaml\n";
    for (const auto& m : doc.plain_manifests) s += fmt::format("kubectl apply -f {}\n", shell_quote("k8s/" + m));
    for (const auto& r : releases) {
        s += fmt::format("\necho {}\nhelm upgrade --install {} {} --namespace {} --create-namespace",
                         shell_quote("== " + r.name), shell_quote(r.name), shell_quote("k8s/" + r.chart),
                         shell_quote(r.namespace_));
        for (const auto& v : r.values) s += fmt::format(" \\\n    --values {}", shell_quote("k8s/" + v));
        s += "\n";
    }
    return s;
}

// What to do about a failed preflight, by what the registry said.
std::string preflight_hint(const registry::RegistryError& e, const std::string& host, const std::string& prefix) {
    const std::string what = e.what();
    if (e.status() == 0) {
        if (what.find("SSL") != std::string::npos || what.find("certificate") != std::string::npos)
            return "the registry's certificate is not trusted: pass --ca-file with its CA (or --insecure to test)";
        return fmt::format("{} cannot be reached: check the address and port, and --plain-http if it speaks HTTP",
                           host);
    }
    if (e.status() == 401)
        return fmt::format("{} refused the credentials: give --username and --password-stdin, or an auths entry in "
                           "--registry-config",
                           host);
    if (e.status() == 403)
        return fmt::format("the account may not push to {}{}: on Harbor the project '{}' must exist and the account "
                           "needs developer rights in it",
                           host, prefix.empty() ? "" : "/" + prefix, prefix.empty() ? "(first path part)" : prefix);
    if (e.status() == 404 || e.has_code("NAME_UNKNOWN"))
        return fmt::format("the repository does not exist and cannot be created: create the project '{}' on the "
                           "registry first",
                           prefix.empty() ? "(first path part)" : prefix);
    return "check the registry's logs; run again when it is fixed (nothing was pushed)";
}

// The bundle manifest of the rewritten folder (JSON strings are valid YAML scalars), so
// that `aas-bundle images -f DIR/bundle.yaml` checks the result, airgap values included.
std::string output_manifest(const bundle::BundleDoc& doc, const std::vector<bundle::ReleaseRecord>& releases) {
    auto q = [](const std::string& v) { return nlohmann::json(v).dump(); };
    std::string s = "# The rewritten deployment, written by aas-bundle load: every image from the private\n"
                    "# registry. Check it with: aas-bundle images -f bundle.yaml\n";
    s += fmt::format("apiVersion: aas-bundle/v1\nkind: Bundle\nname: {}\nversion: {}\nk8s: k8s\n", q(doc.name),
                     q(doc.version));
    if (!releases.empty()) s += "releases:\n";
    for (const auto& r : releases) {
        s += fmt::format("  - name: {}\n    chart: {}\n    namespace: {}\n", q(r.name), q(r.chart), q(r.namespace_));
        if (!r.values.empty()) {
            s += "    values:\n";
            for (const auto& v : r.values) s += fmt::format("      - {}\n", q(v));
        }
    }
    if (!doc.plain_manifests.empty()) {
        s += "manifests:\n";
        for (const auto& m : doc.plain_manifests) s += fmt::format("  - {}\n", q(m));
    }
    return s;
}

// The marker load writes into every output folder: the only proof that a folder at --out
// may be replaced.
constexpr const char* marker_name = ".aas-load";

bool is_previous_output(const fs::path& dir) {
    struct stat st {};
    return ::lstat((dir / marker_name).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// --out without trailing slashes ("new/" -> "new"), checked before the bundle is read:
// a symlink, a file or a folder that is not load's own output is refused.
fs::path checked_out(const fs::path& given) {
    std::string s = given.string();
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    if (s.empty() || s == "/" || s == "." || s == "..")
        throw UsageError(
            fmt::format("--out \"{}\": give the path of a folder to write (it is created)", given.string()));
    fs::path out(s);
    struct stat st {};
    if (::lstat(out.c_str(), &st) != 0) {
        if (errno != ENOENT) throw UsageError(fmt::format("--out {}: {}", s, util::errno_message(errno)));
        return out;
    }
    if (S_ISLNK(st.st_mode))
        throw UsageError(fmt::format("--out {} is a symlink; give the folder's own path (load replaces what it "
                                     "writes, and never through a link)",
                                     s));
    if (!S_ISDIR(st.st_mode))
        throw UsageError(fmt::format("--out {} exists and is not a folder; give a new folder", s));
    if (!fs::is_empty(out) && !is_previous_output(out))
        throw UsageError(fmt::format("--out {} exists and is not the output of an earlier load (it has no {} "
                                     "marker); nothing in it was touched: give a new folder",
                                     s, marker_name));
    return out;
}

// A lock file beside the output, held for the whole load: a second load into the same
// folder is refused while the first runs, naming it.
class OutLock {
public:
    explicit OutLock(const fs::path& out) : path_(out.string() + ".aas-load.lock") {
        for (int attempt = 0; attempt < 8; ++attempt) {
            fd_ = util::Fd(::open(path_.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
            if (!fd_)
                throw UsageError(fmt::format("--out {}: cannot create the lock {}: {}", out.string(), path_.string(),
                                             util::errno_message(errno)));
            if (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
                std::string who;
                char buf[64] = {};
                if (util::pread_retrying(fd_.get(), buf, sizeof buf - 1, 0) > 0)
                    who = util::escape_control(util::trim(buf));
                fd_.reset();
                throw UsageError(fmt::format("another load{} is writing {} (lock {}); wait for it to end, or stop it",
                                             who.empty() ? "" : " (process " + who + ")", out.string(),
                                             path_.string()));
            }
            // The file locked must still be the one at the path (an ending load removes it).
            struct stat a {
            }, b{};
            if (::fstat(fd_.get(), &a) == 0 && ::lstat(path_.c_str(), &b) == 0 && a.st_ino == b.st_ino &&
                a.st_dev == b.st_dev) {
                on_signal_.emplace(path_);
                std::string pid = std::to_string(::getpid()) + "\n";
                if (::ftruncate(fd_.get(), 0) != 0 || ::pwrite(fd_.get(), pid.data(), pid.size(), 0) < 0) {
                    // the pid is informative only
                }
                return;
            }
            fd_.reset();
        }
        throw UsageError(fmt::format("--out {}: the lock {} keeps changing; is another load running?", out.string(),
                                     path_.string()));
    }
    ~OutLock() {
        if (fd_) ::unlink(path_.c_str()); // then fd_ closes
    }
    OutLock(const OutLock&) = delete;
    OutLock& operator=(const OutLock&) = delete;

private:
    fs::path path_;
    util::Fd fd_;
    std::optional<util::RemoveOnSignal> on_signal_;
};

// A delta's assumed blobs, found before anything is pushed: for each blob and each target
// repository that needs it, "" when that repository holds it, else the repository of this
// registry to mount it from.
using AssumedPlan = std::map<oci::Digest, std::map<std::string, std::string>>;

// Looks for every assumed blob (HEAD only: nothing is uploaded or mounted here). Throws
// aas::Error naming every blob found nowhere: its size, the images that need it, its base.
AssumedPlan find_assumed(registry::Client& client, const bundle::BundleDoc& doc, const std::vector<ImagePlan>& plans,
                         const std::string& registry, Result& result) {
    AssumedPlan out;
    std::map<std::pair<std::string, oci::Digest>, bool> asked;
    auto has = [&](const std::string& repo, const oci::Digest& d) {
        auto [it, fresh] = asked.emplace(std::make_pair(repo, d), false);
        if (fresh) it->second = client.blob_exists(repo, d);
        return it->second;
    };
    std::vector<std::string> all_repos;
    for (const auto& p : plans)
        if (std::find(all_repos.begin(), all_repos.end(), p.repo) == all_repos.end()) all_repos.push_back(p.repo);
    std::vector<std::string> missing;
    std::uint64_t missing_bytes = 0;
    for (const auto& a : doc.assumed) {
        ++result.assumed_blobs;
        result.assumed_bytes += static_cast<std::uint64_t>(a.size);
        std::vector<std::string> needing;
        for (const auto& p : plans)
            if (std::find(a.images.begin(), a.images.end(), p.rec->ref) != a.images.end() &&
                std::find(needing.begin(), needing.end(), p.repo) == needing.end())
                needing.push_back(p.repo);
        std::vector<std::string> candidates = a.repositories;
        candidates.insert(candidates.end(), all_repos.begin(), all_repos.end());
        std::string from; // a repository that holds it, found once for every needing one
        bool lost = false;
        for (const auto& repo : needing) {
            if (has(repo, a.digest)) {
                out[a.digest][repo] = "";
                ++result.assumed_present;
                continue;
            }
            if (from.empty())
                for (const auto& c : candidates) {
                    if (c == repo || ref::Reference::try_parse("x.invalid/" + c) == std::nullopt) continue;
                    if (has(c, a.digest)) {
                        from = c;
                        break;
                    }
                }
            if (from.empty()) {
                lost = true;
                break;
            }
            out[a.digest][repo] = from;
            ++result.assumed_mounts;
        }
        if (!lost) continue;
        const auto& base = doc.base.at(a.base);
        missing_bytes += static_cast<std::uint64_t>(a.size);
        std::string imgs;
        for (const auto& i : a.images) imgs += (imgs.empty() ? "" : ", ") + util::escape_control(i);
        missing.push_back(fmt::format(
            "blob {} ({}), needed by {}: assumed from base {} ({} {}{}), but not in {} (asked: {})", a.digest.str(),
            util::human_bytes(static_cast<std::uint64_t>(a.size)), imgs, a.base, base.kind, base.sha256.str(),
            base.kind == "inventory" ? fmt::format(", registry {}{}", util::escape_control(base.registry),
                                                   base.prefix.empty() ? "" : "/" + util::escape_control(base.prefix))
                                     : std::string(),
            registry, fmt::format("{}", fmt::join(needing, ", "))));
    }
    if (!missing.empty()) {
        std::string msg = fmt::format(
            "this delta bundle assumes {} blob{} ({}) that {} does not hold; nothing was pushed. Load the bundle it "
            "is a delta against into this registry first, or pack a full bundle (without --have):",
            missing.size(), missing.size() == 1 ? "" : "s", util::human_bytes(missing_bytes), registry);
        for (const auto& m : missing) msg += "\n  " + m;
        throw Error(msg);
    }
    return out;
}

// ---------------------------------------------------------------------------------------
// What the phases of one load share.

std::string blob_entry(const std::string& repo, const oci::Digest& digest) {
    return fmt::format("blob {} {}", repo, digest.str());
}

struct State {
    explicit State(const Options& options) : o(options) {
        auto [h, p] = split_registry(options.registry);
        host = h;
        prefix = p;
    }

    const Options& o;
    std::string host, prefix;               ///< of --registry
    std::optional<registry::Client> client; ///< none in a dry run (unless it checks a delta)
    std::optional<Journal> journal;         ///< none in a dry run
    std::vector<ImagePlan> plans;           ///< one per image of bundle.json, in its order
    AssumedPlan assumed;                    ///< a delta: where each assumed blob is (find_assumed)
    bool all_present = false;               ///< the registry holds every image (a re-load)
    bool v2 = false;                        ///< a format v2 bundle
    Result result;
    std::mutex mu;                     ///< guards the counters of `result` and `failures`
    std::vector<std::string> failures; ///< blob transfers that failed

    void say(const std::string& line) const {
        if (o.events.line) o.events.line(line);
    }
    void count(registry::PushOutcome out, std::uint64_t size) {
        std::lock_guard lock(mu);
        if (out == registry::PushOutcome::uploaded) {
            ++result.blobs_uploaded;
            result.bytes_uploaded += size;
        } else if (out == registry::PushOutcome::mounted) {
            ++result.blobs_mounted;
        } else {
            ++result.blobs_skipped;
        }
    }
    /// "blob DIGEST to HOST/REPO: WHY", the line of a failed transfer.
    std::string blob_failure(const oci::Digest& digest, const std::string& repo, const char* why) const {
        return fmt::format("blob {} to {}/{}: {}", digest.str(), host, repo, why);
    }
    void fail(std::string line) {
        std::lock_guard lock(mu);
        failures.push_back(std::move(line));
    }
};

// 3. Pushing: every blob the registry lacks, from the bundle (at its offset, hashed on
// the way), or streamed already during the pass; mounts into the other repositories;
// then the manifests, children before indexes, tops under their tag. Throws aas::Error
// listing every failed transfer (what was pushed stays valid: a re-run goes on).
class Pusher {
public:
    Pusher(State& s, const verify::Report& report)
        : s_(s), o_(s.o), client_(*s.client), journal_(*s.journal), report_(report),
          tracker_(util::ImageTracks::DoneWhen::finished, o_.events.image) {}

    void run() {
        throw_stream_failures();
        open_deferred();
        plan_assumed_mounts();
        plan_blobs();
        if (o_.events.phase) o_.events.phase("push", total_);
        track_images();
        tracker_.report_all();
        util::parallel_for(order_.size(), jobs(), [&](std::size_t i) { push_first(*order_[i]); });
        throw_damaged();
        if (s_.failures.empty())
            util::parallel_for(mounts_.size(), jobs(),
                               [&](std::size_t i) { place_also(*mounts_[i].first, mounts_[i].second); });
        if (s_.failures.empty())
            util::parallel_for(assumed_mounts_.size(), jobs(),
                               [&](std::size_t i) { mount_assumed(assumed_mounts_[i]); });
        throw_failures();
        for (std::size_t pi = 0; pi < s_.plans.size(); ++pi) push_manifests(pi);
    }

private:
    struct BlobNeed {
        oci::Descriptor desc;
        std::vector<std::string> repos; ///< the first is pushed to, the others mount from it
        std::vector<std::size_t> users; ///< indexes in `plans` of the images that need it
    };
    // A delta's assumed blob, mounted into `repo` from where find_assumed saw it.
    struct AssumedMount {
        oci::Descriptor desc;
        std::string repo, from;
    };

    unsigned jobs() const { return static_cast<unsigned>(std::max(o_.jobs, 1)); }

    // Each image's blobs to push (a delta's assumed ones are in place already).
    void track_images() {
        for (const auto& p : s_.plans) {
            std::uint64_t total = 0;
            std::size_t missing = 0;
            for (const auto& b : p.blobs) {
                if (s_.assumed.count(b.digest)) continue;
                total += static_cast<std::uint64_t>(b.size);
                ++missing;
            }
            tracker_.add(p.rec->ref, p.target.str(), total, 0, missing);
        }
    }

    void throw_stream_failures() const {
        if (s_.failures.empty()) return;
        std::string msg = fmt::format("{} blob uploads failed while the bundle was read; what was pushed stays valid, "
                                      "run the same command again to go on:",
                                      s_.failures.size());
        for (const auto& f : s_.failures) msg += "\n  " + f;
        throw Error(msg);
    }

    // The bundle file, for the blobs verify skipped (a plain .tar in one file).
    void open_deferred() {
        for (const auto& d : report_.deferred) deferred_.emplace(d.digest, d);
        if (!deferred_.empty()) bundle_fd_ = util::open_for_reading(bundle::locate(o_.bundle).whole);
    }

    // A delta's assumed blobs are not in the bundle: each is in the repository that needs it
    // already, or mounted there from where find_assumed saw it.
    void plan_assumed_mounts() {
        for (const auto& p : s_.plans)
            for (const auto& b : p.blobs) {
                auto a = s_.assumed.find(b.digest);
                if (a == s_.assumed.end()) continue;
                auto at = a->second.find(p.repo);
                if (at == a->second.end())
                    throw Error(fmt::format("assumed blob {} was not looked for in {}", b.digest.str(), p.repo));
                if (at->second.empty()) continue;
                if (std::none_of(assumed_mounts_.begin(), assumed_mounts_.end(),
                                 [&](const AssumedMount& m) { return m.desc.digest == b.digest && m.repo == p.repo; }))
                    assumed_mounts_.push_back({b, p.repo, at->second});
            }
    }

    // Each distinct blob of the bundle: uploaded once, image by image in the bundle's order
    // (so that images finish one after another), then mounted where else it is needed.
    void plan_blobs() {
        for (std::size_t pi = 0; pi < s_.plans.size(); ++pi) {
            const auto& p = s_.plans[pi];
            for (const auto& b : p.blobs) {
                if (s_.assumed.count(b.digest)) continue;
                auto& n = needs_[b.digest];
                if (n.repos.empty()) {
                    n.desc = b;
                    total_ += static_cast<std::uint64_t>(b.size);
                    order_.push_back(&n);
                }
                if (std::find(n.repos.begin(), n.repos.end(), p.repo) == n.repos.end()) n.repos.push_back(p.repo);
                if (std::find(n.users.begin(), n.users.end(), pi) == n.users.end()) n.users.push_back(pi);
            }
        }
        for (const auto* n : order_)
            for (std::size_t k = 1; k < n->repos.size(); ++k) mounts_.emplace_back(n, n->repos[k]);
    }

    // The bytes of a blob the registry lacks: from the bundle at its offset, hashed on the
    // way (only a plain .tar's blobs were left there by the pass).
    std::unique_ptr<registry::BlobSource> source_of(const oci::Descriptor& d) const {
        auto it = deferred_.find(d.digest);
        if (it == deferred_.end())
            throw Error("not read from the bundle, and not in the registry (a streamed upload that failed?); run the "
                        "same command again");
        return std::make_unique<detail::RangeSource>(bundle_fd_.get(), it->second.offset, it->second.size, d.digest,
                                                     fmt::format("blob {}", d.digest.str()));
    }

    // A blob into the first repository that needs it: nothing when the journal or the
    // registry has it, else uploaded from the bundle.
    void push_first(const BlobNeed& n) {
        const std::string& repo = n.repos.front();
        const auto size = static_cast<std::uint64_t>(n.desc.size);
        std::string entry = blob_entry(repo, n.desc.digest);
        try {
            if (journal_.has(entry)) {
                s_.count(registry::PushOutcome::skipped, 0);
                arrived_untouched(n);
                return;
            }
            if (client_.place_blob(repo, n.desc)) {
                s_.count(registry::PushOutcome::skipped, 0);
                journal_.add(entry);
                arrived_untouched(n);
                // A streamed blob (uploaded during the pass) says nothing more here.
                if (deferred_.count(n.desc.digest)) blob_line(n, repo, "already there");
                return;
            }
            auto src = source_of(n.desc);
            std::uint64_t sent = 0;
            client_.upload_blob(repo, n.desc, *src, [&](std::uint64_t k) {
                if (o_.events.bytes) o_.events.bytes(k);
                sent += k;
                tracker_.blob_news(n.users, k, false, true);
            });
            journal_.add(entry);
            s_.count(registry::PushOutcome::uploaded, size);
            tracker_.blob_news(n.users, sent >= size ? 0 : size - sent, true, true);
            blob_line(n, repo, "uploaded");
        } catch (const std::exception& e) {
            tracker_.failed(n.users);
            if (dynamic_cast<const detail::Damaged*>(&e)) {
                std::lock_guard lock(s_.mu);
                damaged_.push_back(e.what());
            } else {
                s_.fail(s_.blob_failure(n.desc.digest, repo, e.what()));
            }
        }
    }

    // A blob in the registry without bytes moving: its whole size counts as done.
    void arrived_untouched(const BlobNeed& n) {
        const auto size = static_cast<std::uint64_t>(n.desc.size);
        if (o_.events.bytes) o_.events.bytes(size);
        tracker_.blob_news(n.users, size, true, false);
    }

    void blob_line(const BlobNeed& n, const std::string& repo, const char* what) const {
        if (o_.events.blob)
            o_.events.blob(fmt::format("blob {} ({}) to {}: {}", n.desc.digest.short_str(),
                                       util::human_bytes(static_cast<std::uint64_t>(n.desc.size)), repo, what));
    }

    void throw_damaged() const {
        if (damaged_.empty()) return;
        std::string msg = fmt::format("{} failed verification; nothing was loaded: no manifest and no tag was pushed "
                                      "(blobs uploaded before the damage was found are content-addressed data that "
                                      "nothing names):",
                                      o_.bundle.string());
        for (const auto& d : damaged_) msg += "\n  " + d;
        throw Error(msg);
    }

    // A blob into another repository that needs it: mounted from the first one, else
    // uploaded from the bundle.
    void place_also(const BlobNeed& n, const std::string& repo) {
        std::string entry = blob_entry(repo, n.desc.digest);
        try {
            if (journal_.has(entry)) {
                s_.count(registry::PushOutcome::skipped, 0);
            } else if (auto placed = client_.place_blob(repo, n.desc, {n.repos.front()})) {
                s_.count(*placed, 0);
            } else {
                client_.upload_blob(repo, n.desc, *source_of(n.desc));
                s_.count(registry::PushOutcome::uploaded, static_cast<std::uint64_t>(n.desc.size));
            }
            journal_.add(entry);
        } catch (const std::exception& e) {
            s_.fail(s_.blob_failure(n.desc.digest, repo, e.what()));
        }
    }

    void mount_assumed(const AssumedMount& m) {
        std::string entry = blob_entry(m.repo, m.desc.digest);
        try {
            if (journal_.has(entry)) {
                s_.count(registry::PushOutcome::skipped, 0);
            } else if (auto placed = client_.place_blob(m.repo, m.desc, {m.from})) {
                s_.count(*placed, 0);
            } else {
                throw Error(fmt::format("the registry would not mount it from {} (a delta's assumed blob is not "
                                        "in the bundle, so it cannot be uploaded instead)",
                                        m.from));
            }
            journal_.add(entry);
        } catch (const std::exception& e) {
            s_.fail("assumed " + s_.blob_failure(m.desc.digest, m.repo, e.what()));
        }
    }

    void throw_failures() const {
        if (s_.failures.empty()) return;
        std::string msg = fmt::format("{} of {} blob transfers failed; what was pushed stays valid, run the same "
                                      "command again to go on:",
                                      s_.failures.size(), order_.size() + mounts_.size() + assumed_mounts_.size());
        for (const auto& f : s_.failures) msg += "\n  " + f;
        throw Error(msg);
    }

    // Image `pi`'s manifests: children by digest, then the top under its tag (or digest
    // and digest tag); each only when the registry does not hold it under that name.
    void push_manifests(std::size_t pi) {
        const auto& p = s_.plans[pi];
        auto put = [&](const oci::RawManifest& m, const std::string& id) {
            std::string entry = fmt::format("manifest {} {} {}", p.repo, id, m.digest.str());
            if (journal_.has(entry)) {
                ++s_.result.manifests_skipped;
                return;
            }
            auto have = client_.head_manifest(p.repo, id);
            if (have && have->digest == m.digest) {
                ++s_.result.manifests_skipped;
            } else {
                client_.put_manifest(p.repo, id, m);
                ++s_.result.manifests_pushed;
            }
            journal_.add(entry);
        };
        for (const auto& child : p.children) put(child, child.digest.str());
        if (p.target.has_tag()) {
            put(p.top, p.target.tag());
        } else {
            put(p.top, p.top.digest.str());
            put(p.top, digest_tag(p.top.digest.str()));
        }
        tracker_.finish(pi);
        if (!o_.events.image) s_.say(fmt::format("pushed {} -> {}", p.rec->ref, p.target.str()));
        s_.result.images.push_back({p.rec->ref, p.target.str(), p.top.digest, p.top.media_type});
    }

    State& s_;
    const Options& o_;
    registry::Client& client_;
    Journal& journal_;
    const verify::Report& report_;
    util::ImageTracks tracker_; ///< each image's push, for Events::image: done when its manifests are
    std::map<oci::Digest, verify::Deferred> deferred_;
    util::Fd bundle_fd_;
    std::map<oci::Digest, BlobNeed> needs_;
    std::vector<const BlobNeed*> order_; ///< image by image, in the bundle's order
    std::vector<std::pair<const BlobNeed*, std::string>> mounts_;
    std::vector<AssumedMount> assumed_mounts_;
    std::uint64_t total_ = 0;
    std::vector<std::string> damaged_; ///< blobs whose bundle bytes do not match their digest
};

} // namespace

std::string digest_tag(const std::string& digest) {
    auto colon = digest.find(':');
    return digest.substr(0, colon) + "-" + digest.substr(colon + 1);
}

ref::Reference target_for(const ref::Reference& source, const std::string& registry, bool flatten) {
    auto [host, prefix] = split_registry(registry);
    if (host.empty()) throw UsageError(fmt::format("--registry \"{}\": expected HOST[:PORT][/PREFIX]", registry));
    ref::validate_registry(host);
    std::string path = source.repository();
    if (flatten) path = path.substr(path.rfind('/') + 1);
    std::string s = host + "/" + (prefix.empty() ? "" : prefix + "/") + path;
    if (source.has_tag()) s += ":" + source.tag();
    if (source.has_digest()) s += "@" + source.digest();
    try {
        return ref::Reference::parse(s);
    } catch (const Error& e) {
        throw UsageError(fmt::format("{} cannot go to {}: {}", source.str(), registry, e.what()));
    }
}

namespace {

void check_registry(const std::string& registry) {
    if (registry.find("://") != std::string::npos)
        throw UsageError(fmt::format("--registry \"{}\": give HOST[:PORT][/PREFIX] without a scheme (TLS is the "
                                     "default; --plain-http for HTTP)",
                                     registry));
    if (registry.find('@') != std::string::npos)
        throw UsageError(fmt::format("--registry: give HOST[:PORT][/PREFIX] without credentials (use --username and "
                                     "--password-stdin)"));
    auto [host, prefix] = split_registry(registry);
    if (host.empty()) throw UsageError(fmt::format("--registry \"{}\": expected HOST[:PORT][/PREFIX]", registry));
    ref::validate_registry(host);
    // Every prefix part must be a repository path component (lower case, as registries require).
    if (!prefix.empty())
        for (const auto& part : util::split(prefix, '/'))
            if (auto why = ref::path_component_error(part); !why.empty())
                throw UsageError(
                    fmt::format("--registry \"{}\": the prefix is not a repository path: {}{}", registry, why,
                                util::to_lower(prefix) != prefix
                                    ? fmt::format("; did you mean \"{}/{}\"?", host, util::to_lower(prefix))
                                    : ""));
}

// Every check of the options, before the bundle is opened; returns the output folder.
fs::path checked_options(const Options& o) {
    if (o.key.empty() && !o.skip_signature)
        throw UsageError("load needs the signer's public key (--key NAME.pub) to check the bundle's signature; "
                         "--insecure-skip-signature loads a bundle whose origin is not checked");
    if (o.out.empty()) throw UsageError("load needs an output folder (--out DIR)");
    check_registry(o.registry);
    if (!o.inventory_key.empty()) {
        try {
            signing::sign(o.inventory_key, "check"); // a public key is refused before the bundle is read
        } catch (const Error& e) {
            throw UsageError(fmt::format("--inventory-key {}: {} (the inventory is signed with the offline side's "
                                         "PRIVATE key)",
                                         o.inventory_key.string(), e.what()));
        }
    }
    return checked_out(o.out);
}

bool is_k8s(const std::string& name) {
    return name == bundle::k8s_dir || name.rfind("k8s/", 0) == 0;
}

// A folder removed with everything in it when this goes (a dry run's private folder).
class RemoveWhenDone {
public:
    explicit RemoveWhenDone(fs::path path) : path_(std::move(path)) {}
    ~RemoveWhenDone() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    RemoveWhenDone(const RemoveWhenDone&) = delete;
    RemoveWhenDone& operator=(const RemoveWhenDone&) = delete;

private:
    fs::path path_;
};

// What the pass hands each blob's bytes to (verify::Options::on_blob); empty: not wanted.
using BlobFeed = std::function<void(const char*, std::size_t)>;

// Streamed uploads (a .tar.zst or a split bundle): each blob the registry lacks goes up on
// its own thread, fed by the pass while it decodes the blob; at most `stream_jobs` at once.
class StreamedUploads {
public:
    using Upload = std::function<void(detail::StreamSource& source)>;

    /// Starts `upload` on its own thread once fewer than `stream_jobs` run (joining the
    /// oldest); returns the feed of its source.
    BlobFeed start(std::uint64_t size, std::string label, Upload upload) {
        while (running_.size() >= stream_jobs) running_.pop_front(); // joins the oldest
        auto& r = running_.emplace_back();
        r.source = std::make_unique<detail::StreamSource>(size, stream_ahead, stream_keep, std::move(label));
        auto* src = r.source.get();
        r.thread = std::jthread([src, up = std::move(upload)] { up(*src); });
        return [src](const char* data, std::size_t n) {
            if (data)
                src->put(data, n);
            else
                src->close();
        };
    }
    /// The pass stopped early: no more bytes come, every upload ends (failing).
    void abandon() {
        for (auto& r : running_) r.source->abandon();
        join();
    }
    /// Waits for every upload to end.
    void join() { running_.clear(); }

private:
    struct Running {
        std::unique_ptr<detail::StreamSource> source;
        std::jthread thread;
    };
    std::deque<Running> running_;
};

// One load: the options, the work folder and what the phases share; run() is the order of
// work the header describes, one member function a phase.
class Loader {
public:
    explicit Loader(const Options& options) : o_(options), out_dir_(checked_options(options)), s_(options) {
        if (!o_.dry_run) out_lock_.emplace(out_dir_);
        open_work_folder();
        if (!o_.dry_run) {
            s_.client.emplace(s_.host, o_.registry_options);
            s_.journal.emplace(work_ / "journal");
        }
    }

    Result run() {
        // 1. The pass over the bundle (after bundle.json: plan_targets, preflight,
        // check_assumed), blobs streamed to the registry as it goes; each image's graph.
        verify_and_stream();
        plan_graphs();
        // 2. The rewrite of the k8s folder; a dry run ends here.
        auto rw = plan_rewrite();
        if (o_.dry_run) return dry_run_result(rw);
        // 3. Every blob the registry lacks, the mounts, then the manifests.
        push();
        // 4. The output folder (install.sh, mirrors, the inventory), put in place.
        write_output(rw);
        return std::move(s_.result);
    }

private:
    // 0. The work folder beside the output (a dry run's: a private temporary folder), with
    // an empty `bundle` folder for the k8s files the pass extracts.
    void open_work_folder() {
        if (o_.dry_run) {
            dry_folder_.emplace([] { return util::make_private_dir("aas-load-dry-"); });
            work_ = dry_folder_->path();
            dry_cleanup_.emplace(work_);
        } else {
            work_ = fs::path(out_dir_.string() + ".aas-load");
            struct stat st {};
            if (::lstat(work_.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
                throw UsageError(fmt::format("{} (load's work folder for --out {}) exists and is not a folder; remove "
                                             "it",
                                             work_.string(), out_dir_.string()));
            fs::create_directories(work_);
        }
        root_ = work_ / "bundle";
        remove_extracted_.emplace(o_.dry_run ? work_ : root_);
        remove_staged_.emplace(work_ / "out");
        std::error_code ec;
        fs::remove_all(root_, ec);
        fs::create_directory(root_);
    }

    // Nothing of a bundle that failed is kept; the work folder goes too, unless it holds a
    // journal.
    void drop_extracted() {
        std::error_code ec;
        fs::remove_all(root_, ec);
        fs::remove(work_, ec);
    }

    // What every pass over the bundle is given.
    verify::Options pass_options() const {
        verify::Options vo;
        vo.bundle = o_.bundle;
        vo.key = o_.skip_signature ? fs::path() : o_.key;
        vo.buffer_bytes = stream_hash_buffers; // the streamed uploads' windows hold the rest
        return vo;
    }

    // 1. One pass over the bundle, with verify's checks in its trust order. Only k8s/ is
    // written to disk (the work folder; a dry run's private temporary folder). Blobs never
    // are: in a plain .tar that is one file, config and layer blobs are skipped by seeking
    // and their offsets noted, to be read (and hashed) by the uploads, several at once; in
    // a .tar.zst or a split bundle, each blob goes to the registry as it is decoded.
    void verify_and_stream() {
        s_.say(fmt::format("verifying {}", o_.bundle.string()));
        verify::Options vo = pass_options();
        vo.progress = o_.events.bytes;
        vo.extract_to = root_;
        vo.extract = is_k8s;
        vo.on_header = [this](const verify::Report& rep) { after_header(rep); };
        vo.defer_blobs = !o_.dry_run;
        vo.on_blob = [this](const bundle::BlobRecord& b) { return stream_blob(b); };
        vo.stop_before = [this](const std::string& name) { return s_.all_present && s_.v2 && !is_k8s(name); };
        if (o_.events.phase) o_.events.phase("verify", 0);
        report_ = read_bundle(vo);
        if (!report_.ok() || !report_.doc) {
            drop_extracted();
            std::string msg = fmt::format("{} failed verification; nothing was loaded{}:", o_.bundle.string(),
                                          s_.result.blobs_uploaded ? " (blobs uploaded while it was read are harmless "
                                                                     "content-addressed data: no manifest names them)"
                                                                   : "");
            for (const auto& p : report_.problems) msg += "\n  " + util::escape_control(p.message);
            throw Error(msg);
        }
        for (auto& p : s_.plans) p.rec = &report_.doc->images[p.index]; // the report's own copy
        stream_again();
    }

    // One pass; every streamed upload has ended when it returns.
    verify::Report read_bundle(const verify::Options& vo) {
        verify::Report report;
        try {
            report = verify::verify(vo);
        } catch (...) {
            uploads_.abandon();
            drop_extracted();
            throw;
        }
        uploads_.join();
        return report;
    }

    // Streamed uploads that failed (a reset the registry kept less of than the window
    // behind the upload): up to `stream_passes` more passes over the bundle, each streaming
    // only those blobs (the bundle is read once per pass, in order). What still fails is a
    // failed transfer.
    void stream_again() {
        for (int pass = 2; !stream_failed_.empty() && pass <= 1 + stream_passes; ++pass) {
            s_.say(fmt::format("{} blob uploads failed while the bundle was read; reading it again for them (pass {})",
                               stream_failed_.size(), pass));
            auto again = std::move(stream_failed_);
            stream_failed_.clear();
            verify::Options vo = pass_options();
            vo.on_blob = [&](const bundle::BlobRecord& b) -> BlobFeed {
                if (!again.count(b.digest)) return {};
                return stream_blob(b);
            };
            auto rep = read_bundle(vo);
            if (!rep.ok() || !rep.doc || rep.bundle_json_digest != report_.bundle_json_digest) {
                drop_extracted();
                throw Error(fmt::format("{} changed while it was being loaded (a further pass over it did not "
                                        "verify); nothing was loaded: copy it again",
                                        o_.bundle.string()));
            }
        }
        for (auto& [d, msg] : stream_failed_) s_.failures.push_back(msg);
    }

    // Right after bundle.json (authenticated): targets, collisions under --flatten, the
    // registry's preflight, and whether it holds every image already (one HEAD each).
    void after_header(const verify::Report& rep) {
        if (!o_.skip_signature && rep.signature != verify::Signature::valid)
            throw Error(fmt::format("{} is not signed by {}; nothing was loaded", o_.bundle.string(), o_.key.string()));
        plan_targets(*rep.doc);
        s_.v2 = rep.doc->format == bundle::format_name;
        s_.result.delta = rep.doc->is_delta();
        if (o_.dry_run) {
            if (s_.result.delta) dry_check_assumed(*rep.doc);
            return;
        }
        preflight();
        if (s_.result.delta && !s_.all_present) check_assumed(*rep.doc);
    }

    // Each image's target, refusing two images that would share a name.
    void plan_targets(const bundle::BundleDoc& doc) {
        std::map<std::string, const bundle::ImageRecord*> seen; // target name:tag (or @digest) -> image
        for (const auto& rec : doc.images) {
            ImagePlan p;
            p.rec = &rec;
            p.index = s_.plans.size();
            p.target = target_for(ref::Reference::parse(rec.ref), o_.registry, o_.flatten);
            p.repo = p.target.repository();
            auto key = p.target.has_tag() ? p.target.without_digest().str() : p.target.str();
            auto [it, fresh] = seen.emplace(key, &rec);
            if (!fresh && it->second->digest != rec.digest)
                throw UsageError(fmt::format("{} and {} would both be {}{}; nothing was loaded", it->second->ref,
                                             rec.ref, key,
                                             o_.flatten ? ": this bundle cannot be loaded with --flatten" : ""));
            s_.plans.push_back(std::move(p));
        }
    }

    // The registry answers and accepts the credentials; unless it holds every image already,
    // a test upload to the first target repository is made (then cancelled).
    void preflight() {
        s_.say(fmt::format("checking {}", o_.registry));
        try {
            s_.client->ping();
            s_.all_present = registry_holds_every_image();
            if (!s_.all_present && !s_.plans.empty()) s_.client->check_push(s_.plans.front().repo);
        } catch (const registry::RegistryError& e) {
            throw Error(fmt::format("preflight of {} failed, nothing was pushed: {}\n  {}", o_.registry, e.what(),
                                    preflight_hint(e, s_.host, s_.prefix)));
        }
        if (s_.all_present)
            s_.say(fmt::format("{} holds every image of the bundle already{}", o_.registry,
                               s_.v2 ? ": reading only the k8s folder" : ""));
    }

    // One HEAD per image (two for an image by digest: its digest and its digest tag).
    bool registry_holds_every_image() {
        if (s_.plans.empty()) return false;
        for (const auto& p : s_.plans) {
            auto has = [&](const std::string& id) {
                auto got = s_.client->head_manifest(p.repo, id);
                return got && got->digest == p.rec->digest;
            };
            if (!(p.target.has_tag() ? has(p.target.tag())
                                     : has(p.rec->digest.str()) && has(digest_tag(p.rec->digest.str()))))
                return false;
        }
        return true;
    }

    // A delta: every assumed blob must be in the registry before anything is pushed.
    void check_assumed(const bundle::BundleDoc& doc) {
        s_.say(fmt::format("checking the {} blobs this delta bundle assumes", doc.assumed.size()));
        try {
            s_.assumed = find_assumed(*s_.client, doc, s_.plans, o_.registry, s_.result);
        } catch (const registry::RegistryError& e) {
            throw Error(fmt::format("asking {} for the blobs this delta bundle assumes failed, nothing was pushed: "
                                    "{}\n  {}",
                                    o_.registry, e.what(), preflight_hint(e, s_.host, s_.prefix)));
        }
        const auto& r = s_.result;
        s_.say(fmt::format("{} assumed blobs ({}): {} in place, {} to mount from another repository", r.assumed_blobs,
                           util::human_bytes(r.assumed_bytes), r.assumed_present, r.assumed_mounts));
    }

    // A delta's dry run asks the registry for its assumptions (HEAD only).
    void dry_check_assumed(const bundle::BundleDoc& doc) {
        s_.client.emplace(s_.host, o_.registry_options);
        try {
            s_.client->ping();
        } catch (const registry::RegistryError& e) {
            throw Error(fmt::format("{} cannot be asked for the blobs this delta bundle assumes: {}\n  {}", o_.registry,
                                    e.what(), preflight_hint(e, s_.host, s_.prefix)));
        }
        s_.say(fmt::format("checking the {} blobs this delta bundle assumes in {}", doc.assumed.size(), o_.registry));
        s_.assumed = find_assumed(*s_.client, doc, s_.plans, o_.registry, s_.result);
    }

    // The pass's hook for a blob it decodes (a .tar.zst or a split bundle): one the
    // registry lacks (one HEAD: place_blob) is uploaded (upload_blob) on its own thread,
    // fed as it is read. A failure is noted for a further pass.
    BlobFeed stream_blob(const bundle::BlobRecord& b) {
        if (o_.dry_run || s_.all_present) return {};
        const ImagePlan* p = first_user(b);
        if (!p) return {}; // no image uses it: verify reports what is wrong
        std::string entry = blob_entry(p->repo, b.digest);
        oci::Descriptor desc{b.media_type, b.digest, b.size, {}, {}, {}};
        auto size = static_cast<std::uint64_t>(b.size);
        try {
            if (s_.journal->has(entry) || s_.client->place_blob(p->repo, desc)) {
                s_.journal->add(entry);
                s_.count(registry::PushOutcome::skipped, 0);
                return {};
            }
        } catch (const std::exception& e) {
            stream_failed(desc.digest, p->repo, e.what());
            return {};
        }
        return uploads_.start(size, fmt::format("blob {}", b.digest.str()),
                              [this, desc, repo = p->repo, entry, size](detail::StreamSource& src) {
                                  try {
                                      s_.client->upload_blob(repo, desc, src, [this](std::uint64_t k) {
                                          if (o_.events.bytes) o_.events.bytes(k);
                                      });
                                      s_.journal->add(entry);
                                      s_.count(registry::PushOutcome::uploaded, size);
                                  } catch (const std::exception& e) {
                                      src.abandon();
                                      stream_failed(desc.digest, repo, e.what());
                                  }
                              });
    }

    const ImagePlan* first_user(const bundle::BlobRecord& b) const {
        for (const auto& ref : b.images)
            for (const auto& p : s_.plans)
                if (p.rec->ref == ref) return &p;
        return nullptr;
    }

    void stream_failed(const oci::Digest& digest, const std::string& repo, const char* why) {
        std::lock_guard lock(s_.mu);
        stream_failed_[digest] = s_.blob_failure(digest, repo, why);
    }

    // The verified bundle.json, and each image's manifests (the verified bytes the pass
    // kept) and blobs.
    void plan_graphs() {
        for (const auto& w : report_.warnings) s_.result.warnings.push_back(w);
        const bundle::BundleDoc& doc = *report_.doc;
        s_.say(fmt::format("verified {} {}: {} images, {} blobs{}{}", util::escape_control(doc.name),
                           util::escape_control(doc.version), doc.images.size(), doc.blobs.size(),
                           o_.skip_signature ? " (signature NOT checked)" : ", signed by " + report_.signer,
                           report_.stopped_on_request ? " (the k8s folder; the registry holds the images)" : ""));
        if (o_.dry_run || s_.all_present) return;
        std::set<oci::Digest> stored;
        for (const auto& b : doc.blobs) stored.insert(b.digest);
        auto manifest = [&](const oci::Digest& d, const std::string& media_type) {
            auto it = report_.manifests.find(d);
            if (it == report_.manifests.end())
                throw Error(fmt::format("manifest {} was not read from the bundle", d.str()));
            return oci::RawManifest::from_bytes(it->second, media_type);
        };
        for (auto& p : s_.plans) {
            p.top = manifest(p.rec->digest, p.rec->media_type);
            plan_graph(manifest, p, stored);
        }
    }

    // 2. The rewrite, planned before anything is pushed.
    rewrite::Plan plan_rewrite() {
        std::vector<rewrite::ImageTarget> targets;
        for (const auto& p : s_.plans) targets.push_back({p.rec->ref, p.target, p.rec->sites});
        auto rw = rewrite::plan(root_, targets, report_.doc->releases);
        for (const auto& w : rw.warnings) s_.result.warnings.push_back(w);
        for (const auto& c : rw.changes) s_.result.changed_files.push_back(c.path);
        return rw;
    }

    Result dry_run_result(const rewrite::Plan& rw) {
        for (const auto& p : s_.plans) {
            s_.result.planned_pushes.push_back(fmt::format("{} -> {}", p.rec->ref, p.target.str()));
            s_.result.images.push_back({p.rec->ref, p.target.str(), p.rec->digest, p.rec->media_type});
        }
        for (const auto& c : rw.changes) s_.result.diff += rewrite::unified_diff(c);
        return std::move(s_.result);
    }

    // 3. Push (a re-load: nothing to push, every image is there by digest).
    void push() {
        if (s_.all_present) {
            note_present();
            return;
        }
        try {
            Pusher(s_, report_).run();
        } catch (...) {
            std::error_code ec;
            fs::remove_all(root_, ec); // the k8s folder read; the journal stays for a re-run
            throw;
        }
    }

    void note_present() {
        for (const auto& p : s_.plans) {
            s_.result.manifests_skipped += 1;
            s_.result.images.push_back({p.rec->ref, p.target.str(), p.rec->digest, p.rec->media_type});
            if (o_.events.image) {
                util::ImageProgress ev;
                ev.ref = p.rec->ref;
                ev.target = p.target.str();
                ev.state = util::ImageState::done;
                ev.moved_nothing = true;
                o_.events.image(ev);
            } else {
                s_.say(fmt::format("present {} -> {}", p.rec->ref, p.target.str()));
            }
        }
    }

    // 4. The output folder, staged in the work folder and renamed into place last.
    void write_output(const rewrite::Plan& rw) {
        const bundle::BundleDoc& doc = *report_.doc;
        fs::path staged = work_ / "out";
        std::error_code ec;
        fs::remove_all(staged, ec);
        fs::create_directories(staged);
        fs::copy(root_ / "k8s", staged / "k8s", fs::copy_options::recursive | fs::copy_options::copy_symlinks);
        rewrite::apply(staged, rw);
        util::write_file_atomic(staged / "images.lock.json", images_lock());
        util::write_file_atomic(staged / "install.sh", install_script(doc, rw.releases, o_.registry, staged / "k8s"),
                                fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                    fs::perms::others_read | fs::perms::others_exec);
        util::write_file_atomic(staged / "bundle.yaml", output_manifest(doc, rw.releases));
        write_inventory(staged);
        write_mirrors(staged);
        nlohmann::ordered_json marker = {{"written_by", "aas-bundle load"}, {"bundle", bundle_json()}};
        util::write_file_atomic(staged / marker_name, marker.dump(2) + "\n");
        put_in_place(staged);
        fs::remove_all(work_, ec);
    }

    nlohmann::ordered_json bundle_json() const {
        const bundle::BundleDoc& doc = *report_.doc;
        return {{"name", doc.name}, {"version", doc.version}, {"bundle_json", report_.bundle_json_digest.str()}};
    }

    std::string images_lock() const {
        nlohmann::ordered_json lock = {
            {"bundle", bundle_json()}, {"registry", o_.registry}, {"images", nlohmann::ordered_json::array()}};
        for (const auto& img : s_.result.images)
            lock["images"].push_back({{"source", img.source},
                                      {"target", img.target},
                                      {"digest", img.digest.str()},
                                      {"media_type", img.media_type}});
        return lock.dump(2) + "\n";
    }

    // What the registry now holds for these images (for `pack --have`), from the verified
    // bundle.json: every image is in, so nothing needs asking.
    void write_inventory(const fs::path& staged) {
        const bundle::BundleDoc& doc = *report_.doc;
        std::vector<delta::Placed> placed;
        for (const auto& p : s_.plans)
            placed.push_back(
                {p.rec, p.repo, p.target.has_tag() ? std::optional<std::string>(p.target.tag()) : std::nullopt});
        // Dated as the bundle (not the load), so that loading it again writes the same folder.
        auto inv =
            delta::after_load(doc, placed, o_.registry,
                              {{"bundle", report_.bundle_json_digest, doc.name + " " + doc.version}}, doc.created);
        delta::write(staged / "inventory.json", inv, o_.inventory_key);
        s_.result.inventory = out_dir_ / "inventory.json";
    }

    void write_mirrors(const fs::path& staged) {
        if (o_.flatten) {
            s_.result.warnings.push_back("--flatten: no registry mirror configuration was written (a mirror keeps "
                                         "the repository path, which --flatten changes)");
            return;
        }
        std::set<std::string> upstreams;
        for (const auto& p : s_.plans) upstreams.insert(ref::Reference::parse(p.rec->ref).registry());
        MirrorOptions mo{o_.registry, o_.registry_options.plain_http, o_.registry_options.insecure,
                         o_.registry_options.ca_file};
        for (const auto& f : mirror_files({upstreams.begin(), upstreams.end()}, mo)) {
            fs::create_directories((staged / f.path).parent_path());
            util::write_file_atomic(staged / f.path, f.text);
        }
    }

    // The staged folder becomes --out (an earlier output is replaced).
    void put_in_place(const fs::path& staged) {
        if (fs::exists(fs::symlink_status(out_dir_))) {
            fs::path old = out_dir_.string() + fmt::format(".old-{}", ::getpid());
            fs::rename(out_dir_, old);
            fs::rename(staged, out_dir_);
            std::error_code ec;
            fs::remove_all(old, ec);
        } else {
            if (auto parent = out_dir_.parent_path(); !parent.empty()) fs::create_directories(parent);
            fs::rename(staged, out_dir_);
        }
    }

    const Options& o_;
    const fs::path out_dir_;
    std::optional<OutLock> out_lock_;
    std::optional<util::RemoveOnSignal> dry_folder_; // registered as it is made: no signal can leave it behind
    fs::path work_, root_;
    std::optional<RemoveWhenDone> dry_cleanup_;
    std::optional<util::RemoveOnSignal> remove_extracted_, remove_staged_;
    State s_;
    verify::Report report_;
    std::map<oci::Digest, std::string> stream_failed_; ///< streamed uploads that failed: their failure
    StreamedUploads uploads_;                          ///< last: its threads use the above
};

} // namespace

Result load(const Options& o) {
    return Loader(o).run();
}

} // namespace aas::load
