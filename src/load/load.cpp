#include "aas_bundle/load/load.hpp"
#include "aas_bundle/load/mirrors.hpp"

#include "blob_sources.hpp"

#include "aas_bundle/bundle/parts.hpp"
#include "aas_bundle/delta/inventory.hpp"
#include "aas_bundle/signing/signing.hpp"
#include "aas_bundle/oci/media_types.hpp"
#include "aas_bundle/oci/walk.hpp"
#include "aas_bundle/rewrite/rewrite.hpp"
#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/util/log.hpp"
#include "aas_bundle/util/signals.hpp"
#include "aas_bundle/util/strings.hpp"
#include "aas_bundle/verify/verify.hpp"

#include "aas_bundle/util/error.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <optional>
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


// ---------------------------------------------------------------------------------------
// The journal: what was pushed, one line each, synced, so that a re-run skips it.

class Journal {
public:
    explicit Journal(fs::path file) : file_(std::move(file)) {
        std::ifstream in(file_);
        for (std::string line; std::getline(in, line);)
            if (!line.empty()) done_.insert(line);
        fd_ = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd_ < 0) throw Error(fmt::format("opening the journal {}: {}", file_.string(), util::errno_message(errno)));
    }
    ~Journal() { ::close(fd_); }

    bool has(const std::string& entry) {
        std::lock_guard lock(mu_);
        return done_.count(entry) > 0;
    }
    void add(const std::string& entry) {
        std::lock_guard lock(mu_);
        if (!done_.insert(entry).second) return;
        std::string line = entry + "\n";
        if (::write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size()) || ::fdatasync(fd_) != 0)
            throw Error(fmt::format("writing the journal {}: {}", file_.string(), util::errno_message(errno)));
    }

private:
    fs::path file_;
    int fd_ = -1;
    std::mutex mu_;
    std::set<std::string> done_;
};

// ---------------------------------------------------------------------------------------

struct ImagePlan {
    const bundle::ImageRecord* rec = nullptr;
    std::size_t index = 0;                   ///< in bundle.json's images
    ref::Reference target;
    std::string repo;                        ///< target repository path
    std::vector<oci::RawManifest> children;  ///< pushed by digest, before the top
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
    if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@") == std::string::npos)
        return s;
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// Every value install.sh runs with goes through shell_quote; comments carry bundle text
// with control characters escaped, so that no newline can end them.
std::string install_script(const bundle::BundleDoc& doc, const std::vector<bundle::ReleaseRecord>& releases,
                           const std::string& registry, const fs::path& k8s) {
    std::string s = fmt::format(
        "#!/bin/sh\n"
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
        return fmt::format("{} cannot be reached: check the address and port, and --plain-http if it speaks HTTP", host);
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
        throw UsageError(fmt::format("--out \"{}\": give the path of a folder to write (it is created)", given.string()));
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
            fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
            if (fd_ < 0) throw UsageError(fmt::format("--out {}: cannot create the lock {}: {}", out.string(), path_.string(), util::errno_message(errno)));
            if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
                std::string who;
                char buf[64] = {};
                if (::pread(fd_, buf, sizeof buf - 1, 0) > 0) who = util::escape_control(util::trim(buf));
                ::close(fd_);
                fd_ = -1;
                throw UsageError(fmt::format("another load{} is writing {} (lock {}); wait for it to end, or stop it",
                                             who.empty() ? "" : " (process " + who + ")", out.string(),
                                             path_.string()));
            }
            // The file locked must still be the one at the path (an ending load removes it).
            struct stat a {}, b {};
            if (::fstat(fd_, &a) == 0 && ::lstat(path_.c_str(), &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
                on_signal_.emplace(path_);
                std::string pid = std::to_string(::getpid()) + "\n";
                if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
                    // the pid is informative only
                }
                return;
            }
            ::close(fd_);
            fd_ = -1;
        }
        throw UsageError(fmt::format("--out {}: the lock {} keeps changing; is another load running?", out.string(), path_.string()));
    }
    ~OutLock() {
        if (fd_ < 0) return;
        ::unlink(path_.c_str());
        ::close(fd_);
    }
    OutLock(const OutLock&) = delete;
    OutLock& operator=(const OutLock&) = delete;

private:
    fs::path path_;
    int fd_ = -1;
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
            base.kind == "inventory"
                ? fmt::format(", registry {}{}", util::escape_control(base.registry),
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

// 3. Pushing: every blob the registry lacks, from the bundle (at its offset, hashed on
// the way), or streamed already during the pass; mounts into the other repositories;
// then the manifests, children before indexes, tops under their tag. Throws aas::Error
// listing every failed transfer (what was pushed stays valid: a re-run goes on).
struct PushContext {
    const Options& o;
    registry::Client& client;
    Journal& journal;
    std::vector<ImagePlan>& plans;
    const verify::Report& report;
    const std::string& host;
    Result& result;
    std::mutex& mu;
    std::vector<std::string>& failures;
    std::function<void(registry::PushOutcome, std::uint64_t)> count;
    const AssumedPlan& assumed;
};

void push_images(const PushContext& c) {
    const Options& o = c.o;
    auto& plans = c.plans;
    auto& result = c.result;
    auto& mu = c.mu;
    auto& failures = c.failures;
    const auto& count = c.count;
    const std::string& host = c.host;
    auto say = [&](const std::string& s) {
        if (o.events.line) o.events.line(s);
    };
    if (!failures.empty()) {
        std::string msg = fmt::format("{} blob uploads failed while the bundle was read; what was pushed stays valid, "
                                      "run the same command again to go on:",
                                      failures.size());
        for (const auto& f : failures) msg += "\n  " + f;
        throw Error(msg);
    }
    // The bundle file, for the blobs verify skipped (a plain .tar in one file).
    util::Fd bundle_fd;
    std::map<oci::Digest, verify::Deferred> deferred;
    for (const auto& d : c.report.deferred) deferred.emplace(d.digest, d);
    if (!deferred.empty()) {
        auto loc = bundle::locate(o.bundle);
        bundle_fd = util::Fd(::open(loc.whole.c_str(), O_RDONLY | O_CLOEXEC));
        if (!bundle_fd) throw Error(fmt::format("reading {}: {}", loc.whole.string(), util::errno_message(errno)));
    }
    // Where a blob's bytes come from; null when they need not move (the registry has it).
    auto source_of = [&](const oci::Descriptor& d, const std::string& repo) -> std::unique_ptr<registry::BlobSource> {
        auto it = deferred.find(d.digest);
        if (it != deferred.end())
            return std::make_unique<detail::RangeSource>(bundle_fd.get(), it->second.offset, it->second.size, d.digest,
                                                         fmt::format("blob {}", d.digest.str()));
        if (c.client.blob_exists(repo, d.digest)) return nullptr;
        throw Error("not read from the bundle, and not in the registry (a streamed upload that failed?); run the "
                    "same command again");
    };
    // 4. Blobs: each distinct blob uploaded once, then mounted where else it is needed.
    struct BlobNeed {
        oci::Descriptor desc;
        std::vector<std::string> repos;
        std::vector<std::size_t> users; ///< indexes in `plans` of the images that need it
    };
    std::map<oci::Digest, BlobNeed> needs;
    std::uint64_t total = 0;
    // A delta's assumed blobs are not in the bundle: each is in the repository that needs it
    // already, or mounted there from where find_assumed saw it.
    struct AssumedMount {
        oci::Descriptor desc;
        std::string repo, from;
    };
    std::vector<AssumedMount> assumed_mounts;
    for (const auto& p : plans)
        for (const auto& b : p.blobs) {
            auto a = c.assumed.find(b.digest);
            if (a == c.assumed.end()) continue;
            auto at = a->second.find(p.repo);
            if (at == a->second.end()) throw Error(fmt::format("assumed blob {} was not looked for in {}", b.digest.str(), p.repo));
            if (at->second.empty()) continue;
            if (std::none_of(assumed_mounts.begin(), assumed_mounts.end(),
                             [&](const AssumedMount& m) { return m.desc.digest == b.digest && m.repo == p.repo; }))
                assumed_mounts.push_back({b, p.repo, at->second});
        }
    for (std::size_t pi = 0; pi < plans.size(); ++pi) {
        const auto& p = plans[pi];
        for (const auto& b : p.blobs) {
            if (c.assumed.count(b.digest)) continue;
            auto& n = needs[b.digest];
            if (n.repos.empty()) {
                n.desc = b;
                total += static_cast<std::uint64_t>(b.size);
            }
            if (std::find(n.repos.begin(), n.repos.end(), p.repo) == n.repos.end()) n.repos.push_back(p.repo);
            if (std::find(n.users.begin(), n.users.end(), pi) == n.users.end()) n.users.push_back(pi);
        }
    }
    if (o.events.phase) o.events.phase("push", total);
    // Where each image stands: bytes of its blobs in the registry, blobs still to push;
    // it is done when its manifests are pushed.
    struct Track {
        std::uint64_t total = 0, done = 0;
        std::size_t missing = 0;
        bool started = false, finished = false, failed = false;
    };
    std::vector<Track> track(plans.size());
    std::mutex track_mu;
    for (std::size_t pi = 0; pi < plans.size(); ++pi)
        for (const auto& b : plans[pi].blobs) {
            if (c.assumed.count(b.digest)) continue;
            track[pi].total += static_cast<std::uint64_t>(b.size);
            ++track[pi].missing;
        }
    auto report_image = [&](std::size_t pi) { // with track_mu held
        if (!o.events.image) return;
        const auto& t = track[pi];
        util::ImageProgress ev;
        ev.ref = plans[pi].rec->ref;
        ev.target = plans[pi].target.str();
        ev.state = t.failed     ? util::ImageState::failed
                   : t.finished ? util::ImageState::done
                   : t.started  ? util::ImageState::active
                                : util::ImageState::waiting;
        ev.done = std::min(t.done, t.total);
        ev.total = t.total;
        ev.moved_nothing = t.finished && !t.started;
        o.events.image(ev);
    };
    {
        std::lock_guard lock(track_mu);
        for (std::size_t pi = 0; pi < plans.size(); ++pi) report_image(pi);
    }
    // `moved`: bytes sent for the blob; `whole`: the blob is now in the registry.
    auto blob_news = [&](const BlobNeed& n, std::uint64_t moved, bool whole, bool sent) {
        std::lock_guard lock(track_mu);
        for (auto u : n.users) {
            auto& t = track[u];
            if (sent) t.started = true;
            t.done += moved;
            if (whole) {
                if (t.missing > 0) --t.missing;
                if (t.missing == 0) t.done = t.total;
            }
            report_image(u);
        }
    };
    auto run_pool = [&](std::size_t items, const std::function<void(std::size_t)>& fn) {
        std::atomic<std::size_t> next{0};
        auto worker = [&] {
            for (std::size_t i; (i = next++) < items;) fn(i);
        };
        std::vector<std::jthread> pool;
        int n = std::clamp<int>(o.jobs, 1, std::max<int>(1, static_cast<int>(items)));
        for (int i = 0; i < n; ++i) pool.emplace_back(worker);
    };
    std::vector<std::string> damaged; // blobs whose bundle bytes do not match their digest
    // Image by image, in the bundle's order, so that images finish one after another.
    std::vector<const BlobNeed*> order;
    {
        std::set<oci::Digest> seen;
        for (const auto& p : plans)
            for (const auto& b : p.blobs)
                if (!c.assumed.count(b.digest) && seen.insert(b.digest).second) order.push_back(&needs.at(b.digest));
    }
    run_pool(order.size(), [&](std::size_t i) {
        const auto& n = *order[i];
        const std::string& repo = n.repos.front();
        std::string entry = fmt::format("blob {} {}", repo, n.desc.digest.str());
        try {
            auto size = static_cast<std::uint64_t>(n.desc.size);
            if (c.journal.has(entry)) {
                count(registry::PushOutcome::skipped, 0);
                if (o.events.bytes) o.events.bytes(size);
                blob_news(n, size, true, false);
                return;
            }
            auto src = source_of(n.desc, repo);
            if (!src) {
                count(registry::PushOutcome::skipped, 0);
                c.journal.add(entry);
                if (o.events.bytes) o.events.bytes(size);
                blob_news(n, size, true, false);
                return;
            }
            std::uint64_t sent = 0;
            auto out = c.client.push_blob(repo, n.desc, *src, [&](std::uint64_t k) {
                if (o.events.bytes) o.events.bytes(k);
                sent += k;
                blob_news(n, k, false, true);
            });
            if (out == registry::PushOutcome::skipped && o.events.bytes) o.events.bytes(size);
            c.journal.add(entry);
            count(out, size);
            blob_news(n, sent >= size ? 0 : size - sent, true, out == registry::PushOutcome::uploaded);
            if (o.events.blob)
                o.events.blob(fmt::format("blob {} ({}) to {}: {}", n.desc.digest.short_str(), util::human_bytes(size), repo,
                                          out == registry::PushOutcome::uploaded  ? "uploaded"
                                          : out == registry::PushOutcome::mounted ? "mounted"
                                                                                  : "already there"));
        } catch (const std::exception& e) {
            {
                std::lock_guard lock(track_mu);
                for (auto u : n.users) {
                    track[u].failed = true;
                    report_image(u);
                }
            }
            std::lock_guard lock(mu);
            if (dynamic_cast<const detail::Damaged*>(&e)) damaged.push_back(e.what());
            else failures.push_back(fmt::format("blob {} to {}/{}: {}", n.desc.digest.str(), host, repo, e.what()));
        }
    });
    if (!damaged.empty()) {
        std::string msg = fmt::format("{} failed verification; nothing was loaded: no manifest and no tag was pushed "
                                      "(blobs uploaded before the damage was found are content-addressed data that "
                                      "nothing names):",
                                      o.bundle.string());
        for (const auto& d : damaged) msg += "\n  " + d;
        throw Error(msg);
    }
    std::vector<std::pair<const BlobNeed*, std::string>> mounts;
    for (const auto* n : order)
        for (std::size_t k = 1; k < n->repos.size(); ++k) mounts.emplace_back(n, n->repos[k]);
    if (failures.empty()) {
        run_pool(mounts.size(), [&](std::size_t i) {
            const auto& [n, repo] = mounts[i];
            std::string entry = fmt::format("blob {} {}", repo, n->desc.digest.str());
            try {
                if (c.journal.has(entry) || c.client.blob_exists(repo, n->desc.digest)) {
                    count(registry::PushOutcome::skipped, 0);
                } else if (c.client.mount_blob(repo, n->desc, n->repos.front())) {
                    count(registry::PushOutcome::mounted, 0);
                } else {
                    auto src = source_of(n->desc, repo);
                    if (!src) throw Error("not in the registry's repository it was pushed to, and not read from the bundle");
                    count(c.client.push_blob(repo, n->desc, *src), static_cast<std::uint64_t>(n->desc.size));
                }
                c.journal.add(entry);
            } catch (const std::exception& e) {
                std::lock_guard lock(mu);
                failures.push_back(fmt::format("blob {} to {}/{}: {}", n->desc.digest.str(), host, repo, e.what()));
            }
        });
    }
    if (failures.empty()) {
        run_pool(assumed_mounts.size(), [&](std::size_t i) {
            const auto& m = assumed_mounts[i];
            std::string entry = fmt::format("blob {} {}", m.repo, m.desc.digest.str());
            try {
                if (c.journal.has(entry) || c.client.blob_exists(m.repo, m.desc.digest)) {
                    count(registry::PushOutcome::skipped, 0);
                } else if (c.client.mount_blob(m.repo, m.desc, m.from)) {
                    count(registry::PushOutcome::mounted, 0);
                } else {
                    throw Error(fmt::format("the registry would not mount it from {} (a delta's assumed blob is not "
                                            "in the bundle, so it cannot be uploaded instead)",
                                            m.from));
                }
                c.journal.add(entry);
            } catch (const std::exception& e) {
                std::lock_guard lock(mu);
                failures.push_back(fmt::format("assumed blob {} to {}/{}: {}", m.desc.digest.str(), host, m.repo, e.what()));
            }
        });
    }
    if (!failures.empty()) {
        std::string msg = fmt::format("{} of {} blob transfers failed; what was pushed stays valid, run the same "
                                      "command again to go on:",
                                      failures.size(), order.size() + mounts.size() + assumed_mounts.size());
        for (const auto& f : failures) msg += "\n  " + f;
        throw Error(msg);
    }

    // Manifests: children by digest, then the top under its tag (or digest and digest tag).
    for (const auto& p : plans) {
        auto put = [&](const oci::RawManifest& m, const std::string& id) {
            std::string entry = fmt::format("manifest {} {} {}", p.repo, id, m.digest.str());
            if (c.journal.has(entry)) {
                ++result.manifests_skipped;
                return;
            }
            auto have = c.client.head_manifest(p.repo, id);
            if (have && have->digest == m.digest) {
                ++result.manifests_skipped;
            } else {
                c.client.put_manifest(p.repo, id, m);
                ++result.manifests_pushed;
            }
            c.journal.add(entry);
        };
        for (const auto& child : p.children) put(child, child.digest.str());
        if (p.target.has_tag()) {
            put(p.top, p.target.tag());
        } else {
            put(p.top, p.top.digest.str());
            put(p.top, digest_tag(p.top.digest.str()));
        }
        {
            std::lock_guard lock(track_mu);
            auto pi = static_cast<std::size_t>(&p - plans.data());
            track[pi].finished = true;
            track[pi].done = track[pi].total;
            if (o.events.image) report_image(pi);
            else say(fmt::format("pushed {} -> {}", p.rec->ref, p.target.str()));
        }
        result.images.push_back({p.rec->ref, p.target.str(), p.top.digest, p.top.media_type});
    }
}

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
                throw UsageError(fmt::format("--registry \"{}\": the prefix is not a repository path: {}{}", registry,
                                             why,
                                             util::to_lower(prefix) != prefix
                                                 ? fmt::format("; did you mean \"{}/{}\"?", host, util::to_lower(prefix))
                                                 : ""));
}

} // namespace

Result load(const Options& o) {
    auto say = [&](const std::string& s) {
        if (o.events.line) o.events.line(s);
    };
    // Every check of the options first, before the bundle is opened.
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
    const fs::path out_dir = checked_out(o.out);
    const auto [host_part, prefix_part] = split_registry(o.registry);
    const std::string host = host_part, prefix = prefix_part; // lambdas capture these (clang 14)
    std::optional<OutLock> out_lock;
    if (!o.dry_run) out_lock.emplace(out_dir);

    // 1. One pass over the bundle, with verify's checks in its trust order. Only k8s/ is
    // written to disk (the work folder; a dry run's private temporary folder). Blobs never
    // are: in a plain .tar that is one file, config and layer blobs are skipped by seeking
    // and their offsets noted, to be read (and hashed) by the uploads, several at once; in
    // a .tar.zst or a split bundle, each blob goes to the registry as it is decoded.
    fs::path work;
    std::optional<util::RemoveOnSignal> dry_folder; // registered as it is made: no signal can leave it behind
    if (o.dry_run) {
        dry_folder.emplace([] { return util::make_private_dir("aas-load-dry-"); });
        work = dry_folder->path();
    } else {
        work = fs::path(out_dir.string() + ".aas-load");
        struct stat st {};
        if (::lstat(work.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
            throw UsageError(fmt::format("{} (load's work folder for --out {}) exists and is not a folder; remove it",
                                         work.string(), out_dir.string()));
        fs::create_directories(work);
    }
    const fs::path root = work / "bundle";
    struct Cleanup {
        fs::path p;
        bool on;
        ~Cleanup() {
            std::error_code ec;
            if (on) fs::remove_all(p, ec);
        }
    } dry_cleanup{work, o.dry_run};
    util::RemoveOnSignal remove_extracted(o.dry_run ? work : root);
    util::RemoveOnSignal remove_staged(work / "out");
    {
        std::error_code ec;
        fs::remove_all(root, ec);
        fs::create_directory(root);
    }

    Result result;
    std::vector<ImagePlan> plans;
    std::optional<registry::Client> client;
    std::optional<Journal> journal;
    if (!o.dry_run) {
        client.emplace(host, o.registry_options);
        journal.emplace(work / "journal");
    }
    bool all_present = false, v2 = false;
    AssumedPlan assumed_plan; // a delta: where each assumed blob is (find_assumed)

    // Counters, shared by the uploads.
    std::mutex mu;
    std::vector<std::string> failures;
    auto count = [&](registry::PushOutcome out, std::uint64_t size) {
        std::lock_guard lock(mu);
        if (out == registry::PushOutcome::uploaded) {
            ++result.blobs_uploaded;
            result.bytes_uploaded += size;
        } else if (out == registry::PushOutcome::mounted) {
            ++result.blobs_mounted;
        } else {
            ++result.blobs_skipped;
        }
    };

    // Right after bundle.json (authenticated): targets, collisions under --flatten, the
    // registry's preflight, and whether it holds every image already (one HEAD each).
    auto on_header = [&](const verify::Report& rep) {
        if (!o.skip_signature && rep.signature != verify::Signature::valid)
            throw Error(fmt::format("{} is not signed by {}; nothing was loaded", o.bundle.string(), o.key.string()));
        std::map<std::string, const bundle::ImageRecord*> seen; // target name:tag (or @digest) -> image
        for (const auto& rec : rep.doc->images) {
            ImagePlan p;
            p.rec = &rec;
            p.index = plans.size();
            p.target = target_for(ref::Reference::parse(rec.ref), o.registry, o.flatten);
            p.repo = p.target.repository();
            auto key = p.target.has_tag() ? p.target.without_digest().str() : p.target.str();
            auto [it, fresh] = seen.emplace(key, &rec);
            if (!fresh && it->second->digest != rec.digest)
                throw UsageError(fmt::format("{} and {} would both be {}{}; nothing was loaded", it->second->ref,
                                             rec.ref, key,
                                             o.flatten ? ": this bundle cannot be loaded with --flatten" : ""));
            plans.push_back(std::move(p));
        }
        v2 = rep.doc->format == bundle::format_name;
        result.delta = rep.doc->is_delta();
        if (o.dry_run) {
            if (!result.delta) return;
            // A delta's dry run asks the registry for its assumptions (HEAD only).
            client.emplace(host, o.registry_options);
            try {
                client->ping();
            } catch (const registry::RegistryError& e) {
                throw Error(fmt::format("{} cannot be asked for the blobs this delta bundle assumes: {}\n  {}",
                                        o.registry, e.what(), preflight_hint(e, host, prefix)));
            }
            say(fmt::format("checking the {} blobs this delta bundle assumes in {}", rep.doc->assumed.size(), o.registry));
            assumed_plan = find_assumed(*client, *rep.doc, plans, o.registry, result);
            return;
        }
        say(fmt::format("checking {}", o.registry));
        try {
            client->ping();
            all_present = !plans.empty();
            for (const auto& p : plans) {
                auto has = [&](const std::string& id) {
                    auto got = client->head_manifest(p.repo, id);
                    return got && got->digest == p.rec->digest;
                };
                if (!(p.target.has_tag() ? has(p.target.tag())
                                         : has(p.rec->digest.str()) && has(digest_tag(p.rec->digest.str())))) {
                    all_present = false;
                    break;
                }
            }
            if (!all_present && !plans.empty()) client->check_push(plans.front().repo);
        } catch (const registry::RegistryError& e) {
            throw Error(fmt::format("preflight of {} failed, nothing was pushed: {}\n  {}", o.registry, e.what(),
                                    preflight_hint(e, host, prefix)));
        }
        if (all_present)
            say(fmt::format("{} holds every image of the bundle already{}", o.registry,
                            v2 ? ": reading only the k8s folder" : ""));
        // A delta: every assumed blob must be in the registry before anything is pushed.
        if (result.delta && !all_present) {
            say(fmt::format("checking the {} blobs this delta bundle assumes", rep.doc->assumed.size()));
            try {
                assumed_plan = find_assumed(*client, *rep.doc, plans, o.registry, result);
            } catch (const registry::RegistryError& e) {
                throw Error(fmt::format("asking {} for the blobs this delta bundle assumes failed, nothing was pushed: "
                                        "{}\n  {}",
                                        o.registry, e.what(), preflight_hint(e, host, prefix)));
            }
            say(fmt::format("{} assumed blobs ({}): {} in place, {} to mount from another repository",
                            result.assumed_blobs, util::human_bytes(result.assumed_bytes), result.assumed_present,
                            result.assumed_mounts));
        }
    };

    // Streamed uploads (a .tar.zst or a split bundle): at most `stream_jobs` at once.
    struct Upload {
        std::unique_ptr<detail::StreamSource> src;
        std::jthread thread;
    };
    std::deque<Upload> uploads;
    // Streamed uploads that failed (a reset the registry kept less of than the window
    // behind the upload): pushed again from a further pass over the bundle.
    std::map<oci::Digest, std::string> stream_failed;
    auto repo_for = [&](const bundle::BlobRecord& b) -> const ImagePlan* {
        for (const auto& ref : b.images)
            for (const auto& p : plans)
                if (p.rec->ref == ref) return &p;
        return nullptr;
    };
    auto on_blob = [&](const bundle::BlobRecord& b) -> std::function<void(const char*, std::size_t)> {
        if (o.dry_run || all_present) return {};
        const ImagePlan* p = repo_for(b);
        if (!p) return {}; // no image uses it: verify reports what is wrong
        std::string entry = fmt::format("blob {} {}", p->repo, b.digest.str());
        oci::Descriptor desc{b.media_type, b.digest, b.size, {}, {}, {}};
        auto size = static_cast<std::uint64_t>(b.size);
        try {
            if (journal->has(entry) || client->blob_exists(p->repo, b.digest)) {
                journal->add(entry);
                count(registry::PushOutcome::skipped, 0);
                return {};
            }
        } catch (const std::exception& e) {
            std::lock_guard lock(mu);
            stream_failed[b.digest] = fmt::format("blob {} to {}/{}: {}", b.digest.str(), host, p->repo, e.what());
            return {};
        }
        while (uploads.size() >= stream_jobs) uploads.pop_front(); // joins the oldest
        auto& up = uploads.emplace_back();
        up.src = std::make_unique<detail::StreamSource>(size, stream_ahead, stream_keep,
                                                        fmt::format("blob {}", b.digest.str()));
        auto* src = up.src.get();
        std::string repo = p->repo;
        up.thread = std::jthread([&, src, desc, repo, entry, size] {
            try {
                auto out = client->push_blob(repo, desc, *src, [&](std::uint64_t k) {
                    if (o.events.bytes) o.events.bytes(k);
                });
                journal->add(entry);
                count(out, size);
            } catch (const std::exception& e) {
                src->abandon();
                std::lock_guard lock(mu);
                stream_failed[desc.digest] = fmt::format("blob {} to {}/{}: {}", desc.digest.str(), host, repo, e.what());
            }
        });
        return [src](const char* data, std::size_t n) {
            if (data) src->put(data, n);
            else src->close();
        };
    };

    say(fmt::format("verifying {}", o.bundle.string()));
    verify::Options vo;
    vo.bundle = o.bundle;
    vo.key = o.skip_signature ? fs::path() : o.key;
    vo.progress = o.events.bytes;
    vo.extract_to = root;
    vo.extract = [&](const std::string& name) { return name == bundle::k8s_dir || name.rfind("k8s/", 0) == 0; };
    vo.on_header = on_header;
    vo.defer_blobs = !o.dry_run;
    vo.on_blob = on_blob;
    vo.buffer_bytes = stream_hash_buffers; // the streamed uploads' windows hold the rest
    vo.stop_before = [&](const std::string& name) {
        return all_present && v2 && name != bundle::k8s_dir && name.rfind("k8s/", 0) != 0;
    };
    if (o.events.phase) o.events.phase("verify", 0);
    verify::Report report;
    auto drop_extracted = [&] {
        std::error_code ec;
        fs::remove_all(root, ec); // nothing of a bundle that failed is kept
        fs::remove(work, ec);     // the work folder too, unless it holds a journal
    };
    try {
        report = verify::verify(vo);
    } catch (...) {
        for (auto& u : uploads) u.src->abandon();
        uploads.clear();
        drop_extracted();
        throw;
    }
    uploads.clear(); // every streamed upload ends
    if (!report.ok() || !report.doc) {
        drop_extracted();
        std::string msg = fmt::format("{} failed verification; nothing was loaded{}:", o.bundle.string(),
                                      result.blobs_uploaded ? " (blobs uploaded while it was read are harmless "
                                                              "content-addressed data: no manifest names them)"
                                                            : "");
        for (const auto& p : report.problems) msg += "\n  " + util::escape_control(p.message);
        throw Error(msg);
    }
    // Streamed uploads that failed: up to `stream_passes` more passes over the bundle,
    // each streaming only those blobs (the bundle is read once per pass, in order).
    for (int pass = 2; !stream_failed.empty() && pass <= 1 + stream_passes; ++pass) {
        say(fmt::format("{} blob uploads failed while the bundle was read; reading it again for them (pass {})",
                        stream_failed.size(), pass));
        auto again = std::move(stream_failed);
        stream_failed.clear();
        verify::Options vo2;
        vo2.bundle = o.bundle;
        vo2.key = vo.key;
        vo2.buffer_bytes = stream_hash_buffers;
        vo2.on_blob = [&](const bundle::BlobRecord& b) -> std::function<void(const char*, std::size_t)> {
            if (!again.count(b.digest)) return {};
            return on_blob(b);
        };
        verify::Report rep2;
        try {
            rep2 = verify::verify(vo2);
        } catch (...) {
            for (auto& u : uploads) u.src->abandon();
            uploads.clear();
            drop_extracted();
            throw;
        }
        uploads.clear();
        if (!rep2.ok() || !rep2.doc || rep2.bundle_json_digest != report.bundle_json_digest) {
            drop_extracted();
            throw Error(fmt::format("{} changed while it was being loaded (a further pass over it did not verify); "
                                    "nothing was loaded: copy it again",
                                    o.bundle.string()));
        }
    }
    for (auto& [d, msg] : stream_failed) failures.push_back(msg);
    for (const auto& w : report.warnings) result.warnings.push_back(w);
    const bundle::BundleDoc& doc = *report.doc;
    const std::string doc_id = report.bundle_json_digest.str();
    for (auto& p : plans) p.rec = &doc.images[p.index]; // the report's own copy
    say(fmt::format("verified {} {}: {} images, {} blobs{}{}", util::escape_control(doc.name),
                    util::escape_control(doc.version), doc.images.size(), doc.blobs.size(),
                    o.skip_signature ? " (signature NOT checked)" : ", signed by " + report.signer,
                    report.stopped_on_request ? " (the k8s folder; the registry holds the images)" : ""));
    std::set<oci::Digest> stored;
    for (const auto& b : doc.blobs) stored.insert(b.digest);

    // Each image's manifests (the verified bytes the pass kept) and blobs.
    if (!o.dry_run && !all_present) {
        auto manifest = [&](const oci::Digest& d, const std::string& media_type) {
            auto it = report.manifests.find(d);
            if (it == report.manifests.end())
                throw Error(fmt::format("manifest {} was not read from the bundle", d.str()));
            return oci::RawManifest::from_bytes(it->second, media_type);
        };
        for (auto& p : plans) {
            p.top = manifest(p.rec->digest, p.rec->media_type);
            plan_graph(manifest, p, stored);
        }
    }

    // 2. The rewrite, planned before anything is pushed (a dry run shows it and ends here).
    std::vector<rewrite::ImageTarget> targets;
    for (const auto& p : plans) targets.push_back({p.rec->ref, p.target, p.rec->sites});
    auto rw = rewrite::plan(root, targets, doc.releases);
    for (const auto& w : rw.warnings) result.warnings.push_back(w);
    for (const auto& c : rw.changes) result.changed_files.push_back(c.path);

    if (o.dry_run) {
        for (const auto& p : plans) {
            result.planned_pushes.push_back(fmt::format("{} -> {}", p.rec->ref, p.target.str()));
            result.images.push_back({p.rec->ref, p.target.str(), p.rec->digest, p.rec->media_type});
        }
        for (const auto& c : rw.changes) result.diff += rewrite::unified_diff(c);
        return result;
    }

    // 3. Push (a re-load: nothing to push, every image is there by digest).
    if (all_present) {
        for (const auto& p : plans) {
            result.manifests_skipped += 1;
            result.images.push_back({p.rec->ref, p.target.str(), p.rec->digest, p.rec->media_type});
            if (o.events.image) {
                util::ImageProgress ev;
                ev.ref = p.rec->ref;
                ev.target = p.target.str();
                ev.state = util::ImageState::done;
                ev.moved_nothing = true;
                o.events.image(ev);
            } else {
                say(fmt::format("present {} -> {}", p.rec->ref, p.target.str()));
            }
        }
    } else {
        try {
            push_images(PushContext{o, *client, *journal, plans, report, host, result, mu, failures, count, assumed_plan});
        } catch (...) {
            std::error_code ec;
            fs::remove_all(root, ec); // the k8s folder read; the journal stays for a re-run
            throw;
        }
    }

    // 4. The output folder, renamed into place last.
    fs::path staged = work / "out";
    std::error_code ec;
    fs::remove_all(staged, ec);
    fs::create_directories(staged);
    fs::copy(root / "k8s", staged / "k8s", fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    rewrite::apply(staged, rw);
    nlohmann::ordered_json lock = {{"bundle", {{"name", doc.name}, {"version", doc.version}, {"bundle_json", doc_id}}},
                                   {"registry", o.registry},
                                   {"images", nlohmann::ordered_json::array()}};
    for (const auto& img : result.images)
        lock["images"].push_back(
            {{"source", img.source}, {"target", img.target}, {"digest", img.digest.str()}, {"media_type", img.media_type}});
    util::write_file_atomic(staged / "images.lock.json", lock.dump(2) + "\n");
    util::write_file_atomic(staged / "install.sh", install_script(doc, rw.releases, o.registry, staged / "k8s"),
                            fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                fs::perms::others_read | fs::perms::others_exec);
    util::write_file_atomic(staged / "bundle.yaml", output_manifest(doc, rw.releases));
    // What the registry now holds for these images (for `pack --have`), from the verified
    // bundle.json: every image is in, so nothing needs asking.
    {
        std::vector<delta::Placed> placed;
        for (const auto& p : plans)
            placed.push_back({p.rec, p.repo, p.target.has_tag() ? std::optional<std::string>(p.target.tag()) : std::nullopt});
        // Dated as the bundle (not the load), so that loading it again writes the same folder.
        auto inv = delta::after_load(doc, placed, o.registry,
                                     {{"bundle", report.bundle_json_digest, doc.name + " " + doc.version}}, doc.created);
        delta::write(staged / "inventory.json", inv, o.inventory_key);
        result.inventory = out_dir / "inventory.json";
    }
    if (o.flatten) {
        result.warnings.push_back("--flatten: no registry mirror configuration was written (a mirror keeps the "
                                  "repository path, which --flatten changes)");
    } else {
        std::set<std::string> upstreams;
        for (const auto& p : plans) upstreams.insert(ref::Reference::parse(p.rec->ref).registry());
        MirrorOptions mo{o.registry, o.registry_options.plain_http, o.registry_options.insecure,
                         o.registry_options.ca_file};
        for (const auto& f : mirror_files({upstreams.begin(), upstreams.end()}, mo)) {
            fs::create_directories((staged / f.path).parent_path());
            util::write_file_atomic(staged / f.path, f.text);
        }
    }
    nlohmann::ordered_json marker = {{"written_by", "aas-bundle load"},
                                     {"bundle", {{"name", doc.name}, {"version", doc.version}, {"bundle_json", doc_id}}}};
    util::write_file_atomic(staged / marker_name, marker.dump(2) + "\n");
    if (fs::exists(fs::symlink_status(out_dir))) {
        fs::path old = out_dir.string() + fmt::format(".old-{}", ::getpid());
        fs::rename(out_dir, old);
        fs::rename(staged, out_dir);
        fs::remove_all(old, ec);
    } else {
        if (auto parent = out_dir.parent_path(); !parent.empty()) fs::create_directories(parent);
        fs::rename(staged, out_dir);
    }
    fs::remove_all(work, ec);
    return result;
}

} // namespace aas::load
