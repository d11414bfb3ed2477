#include "aas_bundle/pack/pack.hpp"

#include "aas_bundle/manifest/manifest.hpp"
#include "aas_bundle/oci/media_types.hpp"
#include "aas_bundle/oci/walk.hpp"
#include "aas_bundle/signing/signing.hpp"
#include "aas_bundle/source/source.hpp"
#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/util/signals.hpp"
#include "aas_bundle/util/log.hpp"
#include "aas_bundle/util/strings.hpp"
#include "aas_bundle_version.hpp"

#include "aas_bundle/util/error.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <set>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace aas::pack {
namespace fs = std::filesystem;

PackError::PackError(std::vector<Failure> failures)
    : aas::Error([&] {
          std::string msg = fmt::format("{} image{} could not be packed; nothing was written:", failures.size(),
                                        failures.size() == 1 ? "" : "s");
          for (const auto& f : failures) {
              msg += fmt::format("\n  {}", f.image);
              if (!f.where.empty()) msg += fmt::format(" ({})", f.where);
              msg += ": " + f.reason;
          }
          return msg;
      }()),
      failures_(std::move(failures)) {}

fs::path default_cache_dir() {
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "aas-bundle";
    if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache" / "aas-bundle";
    return fs::temp_directory_path() / "aas-bundle-cache";
}

namespace {


// ---------------------------------------------------------------------------------------
// Sources: one registry client per host, one source per image (sources may be read from
// several threads at once, see source.hpp).

class Sources {
public:
    Sources(const Options& o, std::map<std::string, std::string> mirrors, fs::path base)
        : options_(o), mirrors_(std::move(mirrors)), base_(std::move(base)) {}

    /// Opens where `img` is read from; `from` is the manifest's source, or "".
    std::unique_ptr<source::ImageSource> open(const ref::Reference& ref, const std::string& from) {
        if (source::is_file_source(from)) return source::open_from(from, base_, ref);
        ref::Reference at = from.empty() ? ref : ref::Reference::parse(from);
        std::string host = at.registry();
        std::string repo = at.repository();
        if (auto it = mirrors_.find(host); it != mirrors_.end()) {
            const std::string& m = it->second;
            auto slash = m.find('/');
            host = m.substr(0, slash);
            if (slash != std::string::npos) repo = m.substr(slash + 1) + "/" + repo;
        }
        return source::open_registry(client(host), repo, at.has_digest() ? at.digest() : at.tag());
    }

private:
    registry::Client& client(const std::string& host) {
        std::lock_guard lock(mu_);
        auto& c = clients_[host];
        if (!c) {
            auto opts = options_.registry_options ? options_.registry_options(host) : registry::Options{};
            c = std::make_unique<registry::Client>(host, opts);
        }
        return *c;
    }

    const Options& options_;
    std::map<std::string, std::string> mirrors_;
    fs::path base_;
    std::mutex mu_;
    std::map<std::string, std::unique_ptr<registry::Client>> clients_;
};

// ---------------------------------------------------------------------------------------
// Planning: what each image stores.

struct Planned {
    const discovery::Image* img = nullptr;
    std::string ref;
    std::unique_ptr<source::ImageSource> src;
    oci::RawManifest top;
    std::vector<oci::RawManifest> children;  ///< manifests an index lists (nested ones too)
    std::vector<oci::Descriptor> blobs;      ///< config and layers, each once
    std::vector<std::string> platforms;
    std::optional<oci::Digest> index_digest;
    bool filtered = false;
    bool failed = false;
    bool possible = false; ///< one of discovery's possible images (--include-possible)
};

// What `top` needs (oci::walk): the manifests it lists, its config and layers; foreign
// layers are said, not packed.
void add_graph(Planned& p, const oci::RawManifest& top, std::vector<std::string>& warnings) {
    auto g = oci::walk(top, [&](const oci::Descriptor& c) { return p.src->manifest(c.digest); });
    for (const auto& b : g.foreign)
        warnings.push_back(fmt::format("{}: layer {} is a non-distributable foreign layer ({}); it is not packed",
                                       p.ref, b.digest.str(), b.urls.front()));
    for (const auto& b : g.blobs)
        if (std::none_of(p.blobs.begin(), p.blobs.end(), [&](const auto& x) { return x.digest == b.digest; }))
            p.blobs.push_back(b);
    for (auto& c : g.children) p.children.push_back(std::move(c));
    p.platforms.insert(p.platforms.end(), g.platforms.begin(), g.platforms.end());
}

// The top manifest of `p` and what it needs, narrowed to `platforms` as the header says.
void plan_image(Planned& p, const ref::Reference& ref, const std::vector<oci::Platform>& platforms,
                std::vector<std::string>& warnings) {
    p.top = p.src->top();
    if (ref.has_digest() && p.top.digest.str() != ref.digest())
        throw Error(fmt::format("{} has digest {}, not the {} the reference pins", p.src->describe(),
                                p.top.digest.str(), ref.digest()));
    auto parsed = oci::parse(p.top);
    const auto* idx = std::get_if<oci::Index>(&parsed);
    if (!idx || platforms.empty() || ref.has_digest()) {
        add_graph(p, p.top, warnings);
        return;
    }
    auto picked = oci::pick_platforms(*idx, platforms, "index " + p.top.digest.short_str());
    // Several platforms that are every entry: nothing to drop, so the index is kept as
    // served (same bytes, same digest), as with no platform asked for.
    if (picked.size() > 1 && picked.size() == idx->manifests.size()) {
        add_graph(p, p.top, warnings);
        return;
    }
    p.index_digest = p.top.digest;
    if (picked.size() == 1) {
        auto raw = p.src->manifest(picked.front()->digest);
        if (!std::holds_alternative<oci::ImageManifest>(oci::parse(raw)))
            throw Error(fmt::format("the entry for {} in its index is itself an index", picked.front()->platform->str()));
        add_graph(p, raw, warnings);
        p.platforms.push_back(picked.front()->platform->str());
        p.top = std::move(raw);
        return;
    }
    // Several platforms: a new index with only their entries, in the original order.
    auto doc = nlohmann::ordered_json::parse(p.top.bytes);
    nlohmann::ordered_json kept = nlohmann::ordered_json::array();
    std::set<std::string> want;
    for (const auto* d : picked) want.insert(d->digest.str());
    for (const auto& e : doc["manifests"])
        if (e.contains("digest") && want.count(e["digest"].get<std::string>())) kept.push_back(e);
    doc["manifests"] = kept;
    std::string media_type = p.top.media_type;
    p.top = oci::RawManifest::from_bytes(doc.dump(3), media_type);
    p.filtered = true;
    add_graph(p, p.top, warnings);
}

// Platforms of a single image, from its config in the cache ("linux/amd64").
std::optional<std::string> config_platform(const fs::path& file) {
    try {
        auto j = nlohmann::json::parse(util::read_file(file, 4u << 20), nullptr, false);
        if (!j.is_object() || !j.contains("os") || !j.contains("architecture")) return std::nullopt;
        oci::Platform p{j.value("os", ""), j.value("architecture", ""), j.value("variant", ""), {}};
        return p.str();
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

// ---------------------------------------------------------------------------------------
// The cache: CACHE/blobs/<alg>/<hex>, each renamed into place only after its digest
// matched. Downloads in progress are ".tmp-PID-…" files beside them.

class Cache {
public:
    explicit Cache(fs::path root) : dir_(std::move(root) / "blobs") {
        std::error_code ec;
        fs::create_directories(dir_ / "sha256", ec);
        fs::create_directories(dir_ / "sha512", ec);
        if (ec) throw Error(fmt::format("creating the cache folder {}: {}", dir_.string(), ec.message()));
        // Downloads of processes that are gone.
        for (const char* alg : {"sha256", "sha512"}) {
            for (const auto& e : fs::directory_iterator(dir_ / alg, ec)) {
                auto name = e.path().filename().string();
                if (name.rfind(".tmp-", 0) != 0) continue;
                long pid = std::strtol(name.c_str() + 5, nullptr, 10);
                if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) fs::remove(e.path(), ec);
            }
        }
    }

    fs::path path(const oci::Digest& d) const {
        return dir_ / (d.algorithm() == oci::Algorithm::sha256 ? "sha256" : "sha512") / d.hex();
    }

    /// A blob's bytes the cache can give: its own file, or a reference into a bundle an
    /// earlier pack wrote (a plain .tar's blobs are written there once, not into the cache).
    /// Either is hashed again when it goes into the bundle.
    struct Located {
        util::Fd fd;
        std::uint64_t offset = 0;
        std::string where; ///< for messages
        bool ref = false;
    };
    std::optional<Located> locate(const oci::Descriptor& d) const {
        auto size = static_cast<std::uint64_t>(d.size);
        auto open_at = [&](const fs::path& file, std::uint64_t offset) -> std::optional<Located> {
            util::Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
            struct stat st {};
            if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
                static_cast<std::uint64_t>(st.st_size) < offset + size)
                return std::nullopt;
            return Located{std::move(fd), offset, file.string(), false};
        };
        if (auto own = open_at(path(d.digest), 0); own && ::lseek(own->fd.get(), 0, SEEK_END) == d.size) return own;
        auto note = ref_note(d.digest);
        if (!note || note->size != size) return std::nullopt;
        auto in = open_at(note->bundle, note->offset);
        if (in) {
            in->where = fmt::format("{} at byte {}", in->where, in->offset);
            in->ref = true;
        }
        return in;
    }
    bool has(const oci::Descriptor& d) const { return locate(d).has_value(); }

    /// Notes that `bundle` (absolute) holds the blob at `offset`. Not synced: a note lost
    /// or cut by a power loss is ignored, and every one is hashed again on use.
    void add_ref(const oci::Digest& d, const fs::path& bundle, std::uint64_t offset, std::uint64_t size) const {
        auto file = ref_path(d);
        std::error_code ec;
        fs::create_directories(file.parent_path(), ec);
        nlohmann::ordered_json j = {{"bundle", bundle.string()}, {"offset", offset}, {"size", size}};
        util::write_file_atomic(file, j.dump() + "\n", fs::perms::owner_read | fs::perms::owner_write |
                                                           fs::perms::group_read | fs::perms::others_read,
                                /*durable=*/false);
    }

    /// The note add_ref() left for `d`, when there is a well-formed one.
    struct RefNote {
        fs::path bundle;
        std::uint64_t offset = 0, size = 0;
    };
    std::optional<RefNote> ref_note(const oci::Digest& d) const {
        std::string text;
        try {
            text = util::read_file(ref_path(d), 64u << 10);
        } catch (const Error&) {
            return std::nullopt;
        }
        auto j = nlohmann::json::parse(text, nullptr, false);
        if (!j.is_object() || !j.contains("bundle") || !j["bundle"].is_string() || !j.contains("offset") ||
            !j["offset"].is_number_unsigned() || !j.contains("size") || !j["size"].is_number_unsigned())
            return std::nullopt;
        return RefNote{j["bundle"].get<std::string>(), j["offset"].get<std::uint64_t>(), j["size"].get<std::uint64_t>()};
    }

    /// Downloads `d` through `fetch` into the cache.
    void fill(const oci::Descriptor& d, const std::function<void(registry::BlobSink&)>& fetch) {
        auto final_path = path(d.digest);
        std::string tmpl = (final_path.parent_path() / fmt::format(".tmp-{}-{}-XXXXXX", ::getpid(), d.digest.hex())).string();
        int fd = ::mkstemp(tmpl.data());
        if (fd < 0) throw Error(fmt::format("creating a file in the cache {}: {}", final_path.parent_path().string(), util::errno_message(errno)));
        util::RemoveOnSignal on_signal(tmpl); // a download in progress is not kept on SIGINT/SIGTERM
        struct Sink : registry::BlobSink {
            int fd;
            std::string name;
            void write(const char* p, std::size_t n) override {
                while (n > 0) {
                    ssize_t w = ::write(fd, p, n);
                    if (w < 0) {
                        if (errno == EINTR) continue;
                        throw Error(fmt::format("writing {}: {}", name, util::errno_message(errno)));
                    }
                    p += w;
                    n -= static_cast<std::size_t>(w);
                }
            }
            void reset() override {
                if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) < 0)
                    throw Error(fmt::format("truncating {}: {}", name, util::errno_message(errno)));
            }
        } sink;
        sink.fd = fd;
        sink.name = tmpl;
        try {
            fetch(sink); // verifies size and digest while streaming
            if (::fchmod(fd, 0644) != 0 || ::fsync(fd) != 0) throw Error(fmt::format("writing {}: {}", tmpl, util::errno_message(errno)));
            if (::close(fd) != 0) {
                fd = -1;
                throw Error(fmt::format("writing {}: {}", tmpl, util::errno_message(errno)));
            }
            fd = -1;
            if (::rename(tmpl.c_str(), final_path.c_str()) != 0)
                throw Error(fmt::format("renaming {} into the cache: {}", tmpl, util::errno_message(errno)));
        } catch (...) {
            if (fd >= 0) ::close(fd);
            ::unlink(tmpl.c_str());
            throw;
        }
    }

    void drop(const oci::Digest& d) const {
        ::unlink(path(d).c_str());
        ::unlink(ref_path(d).c_str());
    }

private:
    fs::path ref_path(const oci::Digest& d) const {
        return dir_.parent_path() / "refs" / (d.algorithm() == oci::Algorithm::sha256 ? "sha256" : "sha512") / d.hex();
    }
    fs::path dir_;
};

// ---------------------------------------------------------------------------------------
// The k8s folder: every entry, sorted, with its hash; symlinks must stay inside.

struct K8sEntry {
    bundle::FileRecord rec;
    fs::path source;
    std::int64_t mtime = 0;
};

std::int64_t mtime_of(const struct stat& st) { return static_cast<std::int64_t>(st.st_mtim.tv_sec); }

oci::Digest hash_file(const fs::path& p, std::uint64_t& size) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(fmt::format("reading {}: {}", p.string(), util::errno_message(errno)));
    oci::Hasher h;
    std::vector<char> buf(1u << 20);
    size = 0;
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            auto e = util::errno_message(errno);
            ::close(fd);
            throw Error(fmt::format("reading {}: {}", p.string(), e));
        }
        if (n == 0) break;
        h.update(buf.data(), static_cast<std::size_t>(n));
        size += static_cast<std::uint64_t>(n);
    }
    ::close(fd);
    return h.finish();
}

// `root` empty: an images-only manifest; the bundle gets an empty k8s/ folder.
std::vector<K8sEntry> scan_k8s(const fs::path& root) {
    std::vector<K8sEntry> out;
    if (root.empty()) {
        out.push_back({{std::string(bundle::k8s_dir), "dir", 0755, 0, {}, {}}, {}, -1});
        return out;
    }
    struct stat st {};
    if (::stat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        throw UsageError(fmt::format("the k8s folder {} is not a folder", root.string()));
    out.push_back({{std::string(bundle::k8s_dir), "dir", st.st_mode & 0777u, 0, {}, {}}, root, mtime_of(st)});
    std::vector<std::string> problems;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::none, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) throw Error(fmt::format("reading the k8s folder {}: {}", root.string(), ec.message()));
        const auto& p = it->path();
        auto rel = p.lexically_relative(root).generic_string(); // fs::relative would follow symlinks
        std::string arc = std::string(bundle::k8s_dir) + "/" + rel;
        if (::lstat(p.c_str(), &st) != 0) throw Error(fmt::format("reading {}: {}", p.string(), util::errno_message(errno)));
        K8sEntry e;
        e.source = p;
        e.mtime = mtime_of(st);
        e.rec.path = arc;
        e.rec.mode = st.st_mode & 0777u;
        if (S_ISDIR(st.st_mode)) {
            e.rec.type = "dir";
        } else if (S_ISREG(st.st_mode)) {
            e.rec.type = "file";
            e.rec.sha256 = hash_file(p, e.rec.size);
        } else if (S_ISLNK(st.st_mode)) {
            e.rec.type = "symlink";
            e.rec.target = fs::read_symlink(p).string();
            fs::path resolved = (fs::path(rel).parent_path() / e.rec.target).lexically_normal();
            auto first = resolved.empty() ? std::string() : resolved.begin()->string();
            if (fs::path(e.rec.target).is_absolute() || first == "..") {
                problems.push_back(fmt::format("{}: symlink to {} points outside the k8s folder; replace it with the "
                                               "file it points to",
                                               p.string(), e.rec.target));
                continue;
            }
        } else {
            problems.push_back(fmt::format("{}: not a regular file, folder or symlink (a device, FIFO or socket); "
                                           "remove it from the k8s folder",
                                           p.string()));
            continue;
        }
        out.push_back(std::move(e));
    }
    if (!problems.empty()) {
        std::string msg = "the k8s folder cannot be shipped as it is:";
        for (const auto& pr : problems) msg += "\n  " + pr;
        throw UsageError(msg);
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.rec.path < b.rec.path; });
    return out;
}

std::int64_t creation_time(std::int64_t given) {
    if (given >= 0) return given;
    if (const char* s = std::getenv("SOURCE_DATE_EPOCH"); s && *s) {
        if (auto v = util::parse_u64(s)) return static_cast<std::int64_t>(*v);
        throw UsageError(fmt::format("SOURCE_DATE_EPOCH=\"{}\" is not a number of seconds", s));
    }
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string site_where(const discovery::Site& s) {
    std::string w = fmt::format("{}:{}", s.file, s.line);
    if (!s.values_path.empty()) w += " " + s.values_path;
    return w;
}

bool is_zst(const fs::path& p) {
    auto n = p.filename().string();
    return n.size() > 4 && n.compare(n.size() - 4, 4, ".zst") == 0;
}

} // namespace

Result pack(const Options& o) {
    if (o.key.empty() && !o.allow_unsigned)
        throw UsageError("pack needs a signing key (--key NAME.key, made with 'aas-bundle keygen'); "
                         "give --unsigned to write a bundle that cannot be authenticated");
    if (o.cache_dir.empty()) throw UsageError("pack needs a cache folder");
    if (o.output.empty()) throw UsageError("pack needs an output path (-o)");
    auto say = [&](const std::string& s) {
        if (o.events.line) o.events.line(s);
    };
    std::string signer;
    if (!o.key.empty()) signer = signing::fingerprint(o.key); // fails early on a bad key

    auto m = manifest::load(o.manifest_file);
    fs::path k8s = o.k8s_override.empty() ? m.k8s : o.k8s_override;
    if (struct stat st {}; !k8s.empty() && (::stat(k8s.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)))
        throw UsageError(fmt::format("the k8s folder {} is not a folder", k8s.string())); // before any download
    auto platforms = o.platforms.empty() ? m.platforms : o.platforms;
    auto mirrors = m.mirrors;
    for (const auto& [k, v] : o.mirrors) mirrors[k] = v;

    Result result;
    std::vector<Failure> failures;
    auto found = discovery::discover(m, o.k8s_override);
    for (const auto& e : found.errors)
        failures.push_back({"(invalid reference)", fmt::format("{}:{} {}", e.file, e.line, e.values_path), e.message});
    for (const auto& u : found.unresolved)
        failures.push_back({u.target, fmt::format("{}:{} {}", u.file, u.line, u.values_path), u.message});
    result.warnings = found.warnings;

    // Values that look like images outside any image field (discovery's "possible"): with
    // include_possible they are packed when their registry has them; else listed at the end.
    std::map<std::string, std::vector<const discovery::Possible*>> possible_refs;
    for (const auto& p : found.possible) {
        auto r = ref::Reference::try_parse(p.value);
        if (!r) continue;
        bool known = std::any_of(found.images.begin(), found.images.end(),
                                 [&](const discovery::Image& i) { return i.ref.str() == r->str(); });
        if (!known) possible_refs[r->str()].push_back(&p);
    }
    auto possible_where = [&](const std::string& ref) {
        const auto& ps = possible_refs[ref];
        std::string w = fmt::format("{}:{} ({})", ps.front()->file, ps.front()->line, ps.front()->why);
        if (ps.size() > 1) w += fmt::format(" and {} more places", ps.size() - 1);
        return w;
    };
    std::vector<discovery::Image> possible_images;
    if (o.include_possible)
        for (const auto& [ref, ps] : possible_refs) {
            discovery::Image img;
            img.ref = ref::Reference::parse(ref);
            img.cls = discovery::Class::optional;
            possible_images.push_back(std::move(img));
        }

    // Plan every image, in the order discovery sorted them.
    Sources sources(o, mirrors, o.manifest_file.parent_path());
    std::vector<Planned> plan;
    for (const auto& img : found.images)
        if (std::find(o.classes.begin(), o.classes.end(), img.cls) != o.classes.end()) plan.push_back({&img, img.ref.str()});
    for (const auto& img : possible_images) {
        plan.push_back({&img, img.ref.str()});
        plan.back().possible = true;
    }
    say(fmt::format("{} images to pack ({} found, {} skipped by class{})", plan.size(), found.images.size(),
                    found.images.size() + possible_images.size() - plan.size(),
                    possible_images.empty() ? "" : fmt::format(", {} possible", possible_images.size())));
    {
        std::atomic<std::size_t> next{0};
        std::mutex mu;
        auto worker = [&] {
            for (std::size_t i; (i = next++) < plan.size();) {
                auto& p = plan[i];
                std::string where = p.img->sites.empty() ? std::string() : site_where(p.img->sites.front());
                std::vector<std::string> warns;
                try {
                    p.src = sources.open(p.img->ref, p.img->source);
                    plan_image(p, p.img->ref, platforms, warns);
                } catch (const std::exception& e) {
                    std::lock_guard lock(mu);
                    p.failed = true;
                    if (p.possible) { // not an image of the deployment's own fields: only said
                        result.warnings.push_back(fmt::format("possible image {} at {}: not packed: {}", p.ref,
                                                              possible_where(p.ref), e.what()));
                        continue;
                    }
                    std::string from = p.src ? p.src->describe() : p.img->source;
                    failures.push_back({p.ref, where, from.empty() || from == p.ref ? e.what() : fmt::format("from {}: {}", from, e.what())});
                    continue;
                }
                std::uint64_t bytes = 0;
                for (const auto& b : p.blobs) bytes += static_cast<std::uint64_t>(b.size);
                std::string plats;
                for (const auto& pl : p.platforms) plats += (plats.empty() ? "" : ", ") + pl;
                say(fmt::format("image {}: {} {}{}, {} blobs, {}", p.ref, p.top.digest.short_str(),
                                oci::media_type::is_index(p.top.media_type) ? "index" : "image",
                                plats.empty() ? "" : " (" + plats + ")", p.blobs.size(), util::human_bytes(bytes)));
                std::lock_guard lock(mu);
                result.warnings.insert(result.warnings.end(), warns.begin(), warns.end());
            }
        };
        std::vector<std::jthread> pool;
        int n = std::clamp<int>(o.jobs, 1, std::max<int>(1, static_cast<int>(plan.size())));
        for (int i = 0; i < n; ++i) pool.emplace_back(worker);
    }

    // Every blob once, with the images that use it.
    struct BlobJob {
        oci::Descriptor desc;
        std::string kind;
        std::set<std::string> images;
        std::vector<std::size_t> users; ///< indexes in `plan` of the images whose blobs include it
        Planned* first = nullptr;
        bool done = false;
    };
    std::map<oci::Digest, BlobJob> blobs;
    std::map<oci::Digest, const oci::RawManifest*> manifests;
    for (std::size_t pi = 0; pi < plan.size(); ++pi) {
        auto& p = plan[pi];
        if (p.failed) continue;
        auto add_manifest = [&](const oci::RawManifest& raw) {
            manifests.emplace(raw.digest, &raw);
            auto& b = blobs[raw.digest];
            b.desc = {raw.media_type, raw.digest, static_cast<std::int64_t>(raw.bytes.size()), {}, {}, {}};
            b.kind = oci::media_type::is_index(raw.media_type) ? "index" : "manifest";
            b.images.insert(p.ref);
            b.done = true;
        };
        add_manifest(p.top);
        for (const auto& c : p.children) add_manifest(c);
        auto parsed_configs = std::set<oci::Digest>{};
        for (const auto& c : p.children)
            if (auto parsed = oci::parse(c); auto* im = std::get_if<oci::ImageManifest>(&parsed)) parsed_configs.insert(im->config.digest);
        if (auto parsed = oci::parse(p.top); auto* im = std::get_if<oci::ImageManifest>(&parsed)) parsed_configs.insert(im->config.digest);
        for (const auto& d : p.blobs) {
            auto& b = blobs[d.digest];
            if (!b.first) {
                b.desc = d;
                b.first = &p;
                b.kind = parsed_configs.count(d.digest) ? "config" : "layer";
            }
            b.images.insert(p.ref);
            b.users.push_back(pi);
            result.bytes_referenced += static_cast<std::uint64_t>(d.size);
        }
    }

    // A delta: layers a base lists (same digest, same size) are assumed, not stored.
    std::vector<bundle::AssumedRecord> assumed;
    if (!o.have.empty()) {
        for (auto it = blobs.begin(); it != blobs.end();) {
            const auto& b = it->second;
            std::optional<std::size_t> base;
            const delta::InventoryBlob* listed = nullptr;
            if (b.kind == "layer")
                for (std::size_t hi = 0; hi < o.have.size() && !base; ++hi)
                    if (auto f = o.have[hi].blobs.find(it->first); f != o.have[hi].blobs.end() && f->second.size == b.desc.size) {
                        base = hi;
                        listed = &f->second;
                    }
            if (!base) {
                ++it;
                continue;
            }
            assumed.push_back({it->first, b.desc.size, b.desc.media_type, {b.images.begin(), b.images.end()}, *base,
                               listed->repositories});
            ++result.blobs_assumed;
            result.bytes_assumed += static_cast<std::uint64_t>(b.desc.size);
            it = blobs.erase(it);
        }
        say(fmt::format("delta against {} base{}: {} layers ({}) assumed present in the target registry, not stored",
                        o.have.size(), o.have.size() == 1 ? "" : "s", result.blobs_assumed,
                        util::human_bytes(result.bytes_assumed)));
    }

    // Fetch what the cache lacks.
    Cache cache(o.cache_dir);
    std::vector<BlobJob*> todo;
    std::uint64_t to_download = 0;
    for (auto& [d, b] : blobs) {
        if (b.done) continue;
        if (cache.has(b.desc)) {
            b.done = true;
            ++result.blobs_cached;
            result.bytes_cached += static_cast<std::uint64_t>(b.desc.size);
        } else {
            todo.push_back(&b);
            to_download += static_cast<std::uint64_t>(b.desc.size);
        }
    }
    // A plain .tar in one file gets each layer it downloads written once, at its place in
    // the bundle (BundleWriter::reserve), after bundle.json: the cache keeps a reference to
    // it there for later packs. Configs (bundle.json names their platforms) and every blob
    // of a .tar.zst or a split bundle go through the cache first.
    const bool write_once = !is_zst(o.output) && o.split_size == 0;
    // Downloads go image by image, in plan order, so that images finish one after another.
    {
        std::map<const BlobJob*, std::size_t> first_use;
        for (std::size_t pi = 0; pi < plan.size(); ++pi)
            for (const auto& d : plan[pi].blobs)
                if (auto it = blobs.find(d.digest); it != blobs.end()) first_use.emplace(&it->second, first_use.size());
        std::stable_sort(todo.begin(), todo.end(), [&](const BlobJob* a, const BlobJob* b) {
            return first_use.at(a) < first_use.at(b);
        });
    }
    // Where each image stands: bytes there (cached or downloaded) and blobs still missing.
    struct Track {
        std::uint64_t total = 0, done = 0;
        std::size_t missing = 0;
        bool started = false, failed = false;
    };
    std::vector<Track> track(plan.size());
    std::mutex track_mu;
    for (std::size_t pi = 0; pi < plan.size(); ++pi) {
        if (plan[pi].failed) continue;
        for (const auto& d : plan[pi].blobs) {
            auto job = blobs.find(d.digest);
            if (job == blobs.end()) continue; // assumed (a delta): nothing to fetch
            const auto& b = job->second;
            track[pi].total += static_cast<std::uint64_t>(d.size);
            if (b.done) track[pi].done += static_cast<std::uint64_t>(d.size);
            else ++track[pi].missing;
        }
    }
    // Called with track_mu held.
    auto report = [&](std::size_t pi) {
        if (!o.events.image) return;
        const auto& t = track[pi];
        util::ImageProgress ev;
        ev.ref = plan[pi].ref;
        ev.state = t.failed        ? util::ImageState::failed
                   : t.missing == 0 ? util::ImageState::done
                   : t.started      ? util::ImageState::active
                                    : util::ImageState::waiting;
        ev.done = std::min(t.done, t.total);
        ev.total = t.total;
        ev.moved_nothing = t.missing == 0 && !t.started;
        o.events.image(ev);
    };
    say(fmt::format("{} blobs ({}): {} in the cache, {} to download ({})", blobs.size() - manifests.size(),
                    util::human_bytes(result.bytes_cached + to_download), result.blobs_cached, todo.size(),
                    util::human_bytes(to_download)));
    std::vector<BlobJob*> to_cache, direct;
    for (auto* b : todo) (write_once && b->kind == "layer" ? direct : to_cache).push_back(b);
    if (o.events.phase) o.events.phase("download", to_download);
    {
        std::lock_guard lock(track_mu);
        for (std::size_t pi = 0; pi < plan.size(); ++pi)
            if (!plan[pi].failed) report(pi);
    }
    // Downloads `jobs`, each through `into` (the cache, or its place in the bundle).
    using Into = std::function<void(BlobJob&, const std::function<void(registry::BlobSink&)>& fetch)>;
    auto download = [&](const std::vector<BlobJob*>& jobs, const Into& into) {
        std::atomic<std::size_t> next{0};
        std::mutex mu;
        auto worker = [&] {
            for (std::size_t i; (i = next++) < jobs.size();) {
                auto& b = *jobs[i];
                try {
                    into(b, [&](registry::BlobSink& sink) {
                        b.first->src->fetch_blob(b.desc, sink, [&](std::uint64_t n) {
                            if (o.events.bytes) o.events.bytes(n);
                            std::lock_guard lock(track_mu);
                            for (auto u : b.users) {
                                track[u].started = true;
                                track[u].done += n;
                                report(u);
                            }
                        });
                    });
                    {
                        std::lock_guard lock(track_mu);
                        for (auto u : b.users) {
                            track[u].started = true;
                            if (track[u].missing > 0) --track[u].missing;
                            if (track[u].missing == 0) track[u].done = track[u].total; // retries counted twice
                            report(u);
                        }
                    }
                    std::lock_guard lock(mu);
                    b.done = true;
                    ++result.blobs_downloaded;
                    result.bytes_downloaded += static_cast<std::uint64_t>(b.desc.size);
                    if (o.events.blob)
                        o.events.blob(fmt::format("blob {} ({}, {}): downloaded", b.desc.digest.short_str(), b.kind,
                                                  util::human_bytes(static_cast<std::uint64_t>(b.desc.size))));
                } catch (const std::exception& e) {
                    {
                        std::lock_guard lock(track_mu);
                        for (auto u : b.users) {
                            track[u].failed = true;
                            report(u);
                        }
                    }
                    std::lock_guard lock(mu);
                    b.first->failed = true;
                    failures.push_back({b.first->ref, b.first->src->describe(),
                                        fmt::format("{} {}: {}", b.kind, b.desc.digest.str(), e.what())});
                }
            }
        };
        std::vector<std::jthread> pool;
        int n = std::clamp<int>(o.jobs, 1, std::max<int>(1, static_cast<int>(jobs.size())));
        for (int i = 0; i < n; ++i) pool.emplace_back(worker);
    };
    download(to_cache, [&](BlobJob& b, const std::function<void(registry::BlobSink&)>& fetch) { cache.fill(b.desc, fetch); });
    if (!failures.empty()) throw PackError(std::move(failures));

    // bundle.json.
    bundle::BundleDoc doc;
    doc.name = m.name;
    doc.version = m.version;
    doc.tool = std::string("aas-bundle ") + AAS_BUNDLE_VERSION;
    const std::int64_t created = creation_time(o.created);
    doc.created = bundle::rfc3339(created);
    doc.signer = signer;
    for (const auto& pl : platforms) doc.platforms.push_back(pl.str());
    for (const auto& r : m.releases) doc.releases.push_back({r.name, r.chart, r.namespace_, r.values});
    doc.plain_manifests = m.plain_manifests;
    for (auto& p : plan) {
        if (p.failed) continue; // a possible image its registry does not have (said above)
        bundle::ImageRecord rec;
        rec.ref = p.ref;
        rec.source = p.src->describe();
        rec.digest = p.top.digest;
        rec.media_type = p.top.media_type;
        rec.size = static_cast<std::int64_t>(p.top.bytes.size());
        rec.platforms = p.platforms;
        if (rec.platforms.empty() && oci::media_type::is_image_manifest(p.top.media_type)) {
            auto parsed = oci::parse(p.top);
            if (auto pl = config_platform(cache.path(std::get<oci::ImageManifest>(parsed).config.digest)))
                rec.platforms.push_back(*pl);
        }
        if (!platforms.empty() && rec.platforms.size() == 1 && !p.index_digest) {
            auto pl = oci::Platform::parse(rec.platforms.front());
            if (!oci::platform_matches_any(platforms, pl))
                result.warnings.push_back(fmt::format("{} is a single {} image, not one of the platforms asked for",
                                                      p.ref, rec.platforms.front()));
        }
        rec.index_digest = p.index_digest;
        rec.filtered_index = p.filtered;
        rec.cls = discovery::to_string(p.img->cls);
        for (const auto& b : p.blobs) rec.blob_bytes += static_cast<std::uint64_t>(b.size);
        for (const auto& s : p.img->sites) {
            rec.sites.push_back({s.release, s.chart, s.file, s.line, s.values_path, s.written == p.ref ? "" : s.written,
                                 s.template_file, s.template_line, discovery::to_string(s.cls), s.reference, {}});
            for (const auto& part : s.parts)
                rec.sites.back().parts.push_back(bundle::PartRecord{part.part, part.file, part.line, part.values_path,
                                                                    part.file_key, part.written, part.at});
        }
        doc.images.push_back(std::move(rec));
    }
    std::uint64_t stored_layers = 0; // config and layer bytes stored, for the dedup figure
    for (const auto& [d, b] : blobs) {
        doc.blobs.push_back({d, b.desc.size, b.desc.media_type, b.kind, {b.images.begin(), b.images.end()}});
        result.bytes_stored += static_cast<std::uint64_t>(b.desc.size);
        if (!manifests.count(d)) stored_layers += static_cast<std::uint64_t>(b.desc.size);
    }
    result.bytes_saved = result.bytes_referenced - stored_layers - result.bytes_assumed;
    for (const auto& h : o.have) doc.base.push_back(h.base);
    doc.assumed = std::move(assumed);

    // The OCI layout's index.json: one entry per image, named by its full reference.
    nlohmann::ordered_json index = {{"schemaVersion", 2},
                                    {"mediaType", std::string(oci::media_type::oci_index)},
                                    {"manifests", nlohmann::ordered_json::array()}};
    for (const auto& rec : doc.images) {
        nlohmann::ordered_json e = {{"mediaType", rec.media_type}, {"digest", rec.digest.str()}, {"size", rec.size}};
        if (rec.platforms.size() == 1 && oci::media_type::is_image_manifest(rec.media_type)) {
            auto pl = oci::Platform::parse(rec.platforms.front());
            e["platform"] = {{"architecture", pl.architecture}, {"os", pl.os}};
            if (!pl.variant.empty()) e["platform"]["variant"] = pl.variant;
        }
        e["annotations"] = {{"io.containerd.image.name", rec.ref}, {"org.opencontainers.image.ref.name", rec.ref}};
        index["manifests"].push_back(std::move(e));
    }
    const std::string index_json = index.dump(2) + "\n";
    const std::string layout_json = "{\"imageLayoutVersion\":\"1.0.0\"}\n";
    auto k8s_entries = scan_k8s(k8s);

    // Format v2's order: k8s/ first, then the layout (docs/bundle-format.md).
    for (const auto& e : k8s_entries) doc.files.push_back(e.rec);
    doc.files.push_back({std::string(bundle::layout_dir), "dir", 0755, 0, {}, {}});
    doc.files.push_back({std::string(bundle::layout_file_path), "file", 0644, layout_json.size(), oci::Digest::of(layout_json), {}});
    doc.files.push_back({std::string(bundle::index_json_path), "file", 0644, index_json.size(), oci::Digest::of(index_json), {}});
    doc.files.push_back({"images/blobs", "dir", 0755, 0, {}, {}});
    doc.files.push_back({"images/blobs/sha256", "dir", 0755, 0, {}, {}});
    result.doc = doc;
    const std::string doc_json = doc.to_json();

    // The archive.
    say(fmt::format("writing {} ({} images, {} blobs, {} stored, {} saved by shared layers)", o.output.string(),
                    doc.images.size(), doc.blobs.size(), util::human_bytes(result.bytes_stored),
                    util::human_bytes(result.bytes_saved)));
    std::uint64_t k8s_bytes = 0;
    for (const auto& e : k8s_entries) k8s_bytes += e.rec.size;
    if (o.events.phase) o.events.phase("write", result.bytes_stored + k8s_bytes);
    if (auto parent = o.output.parent_path(); !parent.empty()) {
        std::error_code ec;
        fs::create_directories(parent, ec);
        if (ec) throw Error(fmt::format("creating the output folder {}: {}", parent.string(), ec.message()));
    }
    bundle::WriteOptions wo;
    wo.zstd = is_zst(o.output);
    wo.zstd_level = o.zstd_level;
    wo.split_size = o.split_size;
    wo.mtime = created;
    // A plain .tar takes over what a killed pack into the same OUT left: layers it had
    // downloaded stay in place when their slot is where it was and hashes right.
    wo.adopt_partial = write_once;
    bundle::BundleWriter w(o.output, wo);
    // Bytes of `in` from `offset` (a file of the k8s folder, a cache file, an earlier bundle).
    auto pread_from = [&](int fd, std::uint64_t offset, const std::string& where) {
        return [&o, fd, offset, where, at = std::uint64_t{0}](char* out, std::size_t n) mutable -> std::size_t {
            for (;;) {
                ssize_t r = ::pread(fd, out, n, static_cast<off_t>(offset + at));
                if (r < 0 && errno == EINTR) continue;
                if (r < 0) throw Error(fmt::format("reading {}: {}", where, util::errno_message(errno)));
                at += static_cast<std::uint64_t>(r);
                if (o.events.bytes) o.events.bytes(static_cast<std::uint64_t>(r));
                return static_cast<std::size_t>(r);
            }
        };
    };
    auto copy_from = [&](const fs::path& file, const std::string& arc_path, std::uint64_t size,
                         const oci::Digest& expect, unsigned mode, std::int64_t mtime) {
        util::Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd) throw Error(fmt::format("reading {}: {}", file.string(), util::errno_message(errno)));
        return w.add_stream(arc_path, size, pread_from(fd.get(), 0, file.string()), mode, mtime) == expect;
    };
    auto damaged = [&](const oci::Digest& d, const BlobJob& b) {
        cache.drop(d);
        return Error(fmt::format("the cached copy of blob {} ({} of {}) is damaged; it was removed from the cache "
                                 "{}: run pack again to download it",
                                 d.str(), b.kind, *b.images.begin(), o.cache_dir.string()));
    };
    w.add_file(bundle::bundle_json_path, doc_json);
    if (!o.key.empty()) w.add_file(bundle::signature_path, signing::sign(o.key, doc_json));
    for (const auto& e : k8s_entries) {
        if (e.rec.type == "dir") {
            w.add_directory(e.rec.path, e.rec.mode, e.mtime);
        } else if (e.rec.type == "symlink") {
            w.add_symlink(e.rec.path, e.rec.target, e.mtime);
        } else if (!copy_from(e.source, e.rec.path, e.rec.size, e.rec.sha256, e.rec.mode, e.mtime)) {
            throw Error(fmt::format("{} changed while it was being packed; run pack again", e.source.string()));
        }
    }
    w.add_directory(bundle::layout_dir);
    w.add_file(bundle::layout_file_path, layout_json);
    w.add_file(bundle::index_json_path, index_json);
    w.add_directory("images/blobs");
    w.add_directory("images/blobs/sha256");
    // Blobs in digest order. Write-once: every config and layer gets its place now, filled
    // below (downloads straight into it, cached copies from the cache), several at once.
    std::set<const BlobJob*> direct_set(direct.begin(), direct.end());
    std::map<oci::Digest, bundle::BundleWriter::Slot> slots;
    for (const auto& [d, b] : blobs) {
        auto arc = bundle::blob_path(d);
        auto size = static_cast<std::uint64_t>(b.desc.size);
        if (auto it = manifests.find(d); it != manifests.end()) {
            w.add_file(arc, it->second->bytes);
            continue;
        }
        if (write_once) {
            slots[d] = w.reserve(arc, size);
            continue;
        }
        auto in = cache.locate(b.desc);
        if (!in) throw damaged(d, b);
        if (w.add_stream(arc, size, pread_from(in->fd.get(), in->offset, in->where)) != d) throw damaged(d, b);
    }
    if (write_once) {
        struct SlotSink : registry::BlobSink {
            bundle::BundleWriter* w = nullptr;
            bundle::BundleWriter::Slot slot;
            std::uint64_t pos = 0;
            void write(const char* p, std::size_t n) override {
                w->write_at(slot, pos, p, n);
                pos += n;
            }
            void reset() override { pos = 0; }
        };
        // Each layer whose bytes are in its slot is noted in the cache, pointing into the
        // temporary file: after a kill -9, the next pack into OUT takes that file over
        // (adopt_partial) and keeps those bytes where they are.
        const fs::path partial = w.partial();
        auto note = [&](const oci::Digest& d, const bundle::BundleWriter::Slot& slot) {
            try {
                cache.add_ref(d, partial, slot.offset, slot.size);
            } catch (const Error&) {
                // only a later resume is lost
            }
        };
        const Into into_slot = [&](BlobJob& b, const std::function<void(registry::BlobSink&)>& fetch) {
            SlotSink sink;
            sink.w = &w;
            sink.slot = slots.at(b.desc.digest);
            fetch(sink); // verifies size and digest while streaming
            note(b.desc.digest, sink.slot);
        };
        std::jthread downloads([&] { download(direct, into_slot); });
        // Cached copies. One that no longer matches (an earlier bundle the cache points
        // into was overwritten, a cache file went bad) is dropped from the cache and
        // downloaded into its place instead, once the downloads above are done.
        std::vector<BlobJob*> refetch;
        std::vector<std::string> redone;
        std::vector<char> buf(1u << 20);
        const fs::path adopted = w.adopted();
        std::size_t kept = 0;
        std::uint64_t kept_bytes = 0;
        // True when the killed run's file, now ours, holds `d` at `slot` already.
        auto in_place = [&](const oci::Digest& d, const bundle::BundleWriter::Slot& slot) {
            auto n = adopted.empty() ? std::nullopt : cache.ref_note(d);
            if (!n || n->bundle != adopted || n->offset != slot.offset || n->size != slot.size) return false;
            oci::Hasher h;
            std::uint64_t at = 0;
            while (at < slot.size) {
                std::size_t got = w.read_at(slot, at, buf.data(), buf.size());
                if (got == 0) break;
                h.update(buf.data(), got);
                at += got;
            }
            return at == slot.size && h.finish() == d;
        };
        for (auto& [d, b] : blobs) {
            if (manifests.count(d) || direct_set.count(&b)) continue;
            const auto& slot = slots.at(d);
            if (b.kind == "layer" && in_place(d, slot)) {
                ++kept;
                kept_bytes += slot.size;
                if (o.events.bytes) o.events.bytes(slot.size);
                note(d, slot);
                continue;
            }
            bool good = false;
            if (auto in = cache.locate(b.desc)) {
                auto read = pread_from(in->fd.get(), in->offset, in->where);
                oci::Hasher h;
                std::uint64_t at = 0;
                while (at < slot.size) {
                    std::size_t got = read(buf.data(), static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), slot.size - at)));
                    if (got == 0) break;
                    h.update(buf.data(), got);
                    w.write_at(slot, at, buf.data(), got);
                    at += got;
                }
                good = at == slot.size && h.finish() == d;
            }
            if (good) {
                if (b.kind == "layer") note(d, slot);
                continue;
            }
            cache.drop(d);
            redone.push_back(fmt::format("blob {} ({} of {}): the cache's copy no longer matches; it was dropped "
                                         "from the cache {} and downloaded again",
                                         d.str(), b.kind, *b.images.begin(), o.cache_dir.string()));
            --result.blobs_cached;
            result.bytes_cached -= slot.size;
            refetch.push_back(&b);
        }
        downloads.join();
        if (kept > 0)
            say(fmt::format("kept {} blobs ({}) that a killed pack had written into {}", kept,
                            util::human_bytes(kept_bytes), adopted.string()));
        if (!refetch.empty()) download(refetch, into_slot);
        result.warnings.insert(result.warnings.end(), redone.begin(), redone.end());
    }
    if (!failures.empty()) throw PackError(std::move(failures));
    result.written = w.commit();
    // Later packs find these blobs in this bundle (a .tar.zst or split bundle cannot be read
    // at offsets: their blobs stay in the cache itself).
    for (const auto& [d, slot] : slots) {
        if (blobs.at(d).kind != "layer") continue; // configs stay in the cache (bundle.json reads them)
        try {
            cache.add_ref(d, fs::absolute(o.output), slot.offset, slot.size);
        } catch (const Error& e) {
            result.warnings.push_back(fmt::format("the cache {} does not note where blob {} is: {}",
                                                  o.cache_dir.string(), d.str(), e.what()));
        }
    }
    if (!o.include_possible)
        for (const auto& [ref, ps] : possible_refs)
            result.warnings.push_back(fmt::format("possible image {} at {}: not packed (it is not in an image field); "
                                                  "pack --include-possible packs it when its registry has it",
                                                  ref, possible_where(ref)));
    return result;
}

} // namespace aas::pack
