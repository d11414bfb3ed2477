// pack(): the phases of pack.hpp's "order of work", one member function of Packer each.
// The pieces it uses are beside it: the blob cache (cache.hpp), the sources of images
// (sources.hpp), what one image stores (plan.hpp), the k8s folder (k8s_scan.hpp).

#include "aas_bundle/pack/pack.hpp"

#include "cache.hpp"
#include "k8s_scan.hpp"
#include "plan.hpp"
#include "sources.hpp"

#include "aas_bundle/manifest/manifest.hpp"
#include "aas_bundle/oci/media_types.hpp"
#include "aas_bundle/signing/signing.hpp"
#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/util/parallel.hpp"
#include "aas_bundle/util/progress.hpp"
#include "aas_bundle/util/strings.hpp"
#include "aas_bundle_version.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <set>
#include <sys/stat.h>
#include <thread>

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

std::int64_t creation_time(std::int64_t given) {
    if (given >= 0) return given;
    if (const char* s = std::getenv("SOURCE_DATE_EPOCH"); s && *s) {
        if (auto v = util::parse_u64(s)) return static_cast<std::int64_t>(*v);
        throw UsageError(fmt::format("SOURCE_DATE_EPOCH=\"{}\" is not a number of seconds", s));
    }
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
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

// Bytes of the file open as `fd` from `offset` (a file of the k8s folder, a cache file, an
// earlier bundle), for BundleWriter::add_stream; each read is counted in `events.bytes`.
bundle::ReadFn file_reader(const Events& events, int fd, std::uint64_t offset, const std::string& where) {
    return [&events, fd, offset, where, at = std::uint64_t{0}](char* out, std::size_t n) mutable {
        std::size_t got = util::pread_some(fd, out, n, offset + at, where);
        at += got;
        if (events.bytes) events.bytes(got);
        return got;
    };
}

// A blob the bundle stores, once, with the images that use it.
struct BlobJob {
    oci::Descriptor desc;
    std::string kind; ///< index, manifest, config or layer
    std::set<std::string> images;
    std::vector<std::size_t> users; ///< indexes in the plan of the images whose blobs include it
    Planned* first = nullptr;       ///< the first image that needs it: where it is read from
    bool done = false;              ///< in memory (manifests), in the cache, or downloaded
};

// One pack: the state its phases share. pack() calls the phases in order.
class Packer {
public:
    /// Checks the options and reads the manifest: a bad key or k8s folder fails here,
    /// before any download.
    explicit Packer(const Options& o);

    // 1. What to pack.
    void discover();
    // 2. Every image's manifests, then every blob once; a delta's assumed layers out.
    void read_manifests();
    void list_blobs();
    void leave_out_assumed();
    // 3. What the cache lacks, and the downloads into the cache.
    void plan_downloads();
    void download_into_cache();
    // 4. bundle.json, then the archive (with the downloads into its slots), then the
    //    result.
    void describe_bundle();
    void write_archive();
    Result commit();

    /// Throws PackError when any image failed so far.
    void throw_failures();

private:
    using Fetch = std::function<void(registry::BlobSink&)>;
    using Into = std::function<void(BlobJob&, const Fetch& fetch)>;

    void say(const std::string& s) const {
        if (o_.events.line) o_.events.line(s);
    }
    unsigned threads() const { return static_cast<unsigned>(std::max(o_.jobs, 1)); }
    void collect_possible();
    std::string possible_where(const std::string& ref) const;
    void plan_one(Planned& p);
    void add_blobs_of(std::size_t pi);
    void track_images();
    void download(const std::vector<BlobJob*>& jobs, const Into& into);
    void download_one(BlobJob& b, const Into& into);
    bundle::ImageRecord image_record(const Planned& p);
    void describe_blobs(bundle::BundleDoc& doc);
    std::string layout_index(const bundle::BundleDoc& doc) const;
    void open_writer();
    void write_head();
    void write_blobs();
    void fill_slots();
    bool in_place(const oci::Digest& d, const bundle::BundleWriter::Slot& slot) const;
    void note_partial(const oci::Digest& d, const bundle::BundleWriter::Slot& slot) const;
    void fetch_into_slot(BlobJob& b, const Fetch& fetch);
    Error damaged(const oci::Digest& d, const BlobJob& b) const;
    void note_in_cache();

    const Options& o_;
    std::string signer_;
    manifest::Manifest m_;
    fs::path k8s_;
    std::vector<oci::Platform> platforms_;
    std::map<std::string, std::string> mirrors_;

    Result result_;
    std::vector<Failure> failures_;
    std::mutex mu_; ///< guards result_ and failures_ while workers run

    discovery::Result found_;
    /// Values that look like images outside any image field (discovery's "possible"): with
    /// include_possible they are packed when their registry has them; else listed at the end.
    std::map<std::string, std::vector<const discovery::Possible*>> possible_refs_;
    std::vector<discovery::Image> possible_images_;

    std::optional<Sources> sources_;
    std::vector<Planned> plan_;
    std::map<oci::Digest, BlobJob> blobs_;
    std::map<oci::Digest, const oci::RawManifest*> manifests_;
    std::vector<bundle::AssumedRecord> assumed_;

    std::optional<Cache> cache_;
    /// A plain .tar in one file gets each layer it downloads written once, at its place in
    /// the bundle (BundleWriter::reserve), after bundle.json: the cache keeps a reference to
    /// it there for later packs. Configs (bundle.json names their platforms) and every blob
    /// of a .tar.zst or a split bundle go through the cache first.
    bool write_once_ = false;
    std::vector<BlobJob*> to_cache_, direct_;
    std::uint64_t to_download_ = 0;
    std::optional<util::ImageTracks> tracks_; ///< each image's download, for Events::image

    std::int64_t created_ = 0;
    std::string doc_json_, index_json_;
    const std::string layout_json_ = "{\"imageLayoutVersion\":\"1.0.0\"}\n";
    std::vector<K8sEntry> k8s_entries_;

    std::map<oci::Digest, bundle::BundleWriter::Slot> slots_;
    fs::path partial_, adopted_;                 ///< write-once: the writer's temporary file, and the one it took over
    std::optional<bundle::BundleWriter> writer_; ///< last: gone before what it reads from
};

Packer::Packer(const Options& o) : o_(o) {
    if (o.key.empty() && !o.allow_unsigned)
        throw UsageError("pack needs a signing key (--key NAME.key, made with 'aas-bundle keygen'); "
                         "give --unsigned to write a bundle that cannot be authenticated");
    if (o.cache_dir.empty()) throw UsageError("pack needs a cache folder");
    if (o.output.empty()) throw UsageError("pack needs an output path (-o)");
    if (!o.key.empty()) signer_ = signing::fingerprint(o.key); // fails early on a bad key

    m_ = manifest::load(o.manifest_file);
    k8s_ = o.k8s_override.empty() ? m_.k8s : o.k8s_override;
    if (struct stat st{}; !k8s_.empty() && (::stat(k8s_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)))
        throw UsageError(fmt::format("the k8s folder {} is not a folder", k8s_.string())); // before any download
    platforms_ = o.platforms.empty() ? m_.platforms : o.platforms;
    mirrors_ = m_.mirrors;
    for (const auto& [k, v] : o.mirrors) mirrors_[k] = v;
}

void Packer::throw_failures() {
    if (!failures_.empty()) throw PackError(std::move(failures_));
}

// ---------------------------------------------------------------------------------------
// 1. Discovery: invalid references and unresolved placeholders become failures.

void Packer::discover() {
    found_ = discovery::discover(m_, o_.k8s_override);
    for (const auto& e : found_.errors)
        failures_.push_back({"(invalid reference)", fmt::format("{}:{} {}", e.file, e.line, e.values_path), e.message});
    for (const auto& u : found_.unresolved)
        failures_.push_back({u.target, fmt::format("{}:{} {}", u.file, u.line, u.values_path), u.message});
    result_.warnings = found_.warnings;
    collect_possible();
}

void Packer::collect_possible() {
    for (const auto& p : found_.possible) {
        auto r = ref::Reference::try_parse(p.value);
        if (!r) continue;
        bool known = std::any_of(found_.images.begin(), found_.images.end(),
                                 [&](const discovery::Image& i) { return i.ref.str() == r->str(); });
        if (!known) possible_refs_[r->str()].push_back(&p);
    }
    if (o_.include_possible)
        for (const auto& [ref, ps] : possible_refs_) {
            discovery::Image img;
            img.ref = ref::Reference::parse(ref);
            img.cls = discovery::Class::optional;
            possible_images_.push_back(std::move(img));
        }
}

std::string Packer::possible_where(const std::string& ref) const {
    const auto& ps = possible_refs_.at(ref);
    std::string w = fmt::format("{}:{} ({})", ps.front()->file, ps.front()->line, ps.front()->why);
    if (ps.size() > 1) w += fmt::format(" and {} more places", ps.size() - 1);
    return w;
}

// ---------------------------------------------------------------------------------------
// 2. Every image's manifests, `jobs` at a time, in the order discovery sorted them.

void Packer::read_manifests() {
    sources_.emplace(o_, mirrors_, o_.manifest_file.parent_path());
    for (const auto& img : found_.images)
        if (std::find(o_.classes.begin(), o_.classes.end(), img.cls) != o_.classes.end())
            plan_.push_back({&img, img.ref.str()});
    for (const auto& img : possible_images_) {
        plan_.push_back({&img, img.ref.str()});
        plan_.back().possible = true;
    }
    say(fmt::format("{} images to pack ({} found, {} skipped by class{})", plan_.size(), found_.images.size(),
                    found_.images.size() + possible_images_.size() - plan_.size(),
                    possible_images_.empty() ? "" : fmt::format(", {} possible", possible_images_.size())));
    util::parallel_for(plan_.size(), threads(), [&](std::size_t i) { plan_one(plan_[i]); });
}

// Reads one image's manifests; a failure is collected (a possible image's only said).
void Packer::plan_one(Planned& p) {
    std::string where = p.img->sites.empty() ? std::string() : site_where(p.img->sites.front());
    std::vector<std::string> warns;
    try {
        p.src = sources_->open(p.img->ref, p.img->source);
        plan_image(p, p.img->ref, platforms_, warns);
    } catch (const std::exception& e) {
        std::lock_guard lock(mu_);
        p.failed = true;
        if (p.possible) { // not an image of the deployment's own fields: only said
            result_.warnings.push_back(
                fmt::format("possible image {} at {}: not packed: {}", p.ref, possible_where(p.ref), e.what()));
            return;
        }
        std::string from = p.src ? p.src->describe() : p.img->source;
        failures_.push_back(
            {p.ref, where, from.empty() || from == p.ref ? e.what() : fmt::format("from {}: {}", from, e.what())});
        return;
    }
    std::uint64_t bytes = 0;
    for (const auto& b : p.blobs) bytes += static_cast<std::uint64_t>(b.size);
    std::string plats;
    for (const auto& pl : p.platforms) plats += (plats.empty() ? "" : ", ") + pl;
    say(fmt::format("image {}: {} {}{}, {} blobs, {}", p.ref, p.top.digest.short_str(),
                    oci::media_type::is_index(p.top.media_type) ? "index" : "image",
                    plats.empty() ? "" : " (" + plats + ")", p.blobs.size(), util::human_bytes(bytes)));
    std::lock_guard lock(mu_);
    result_.warnings.insert(result_.warnings.end(), warns.begin(), warns.end());
}

// Every blob once, with the images that use it.
void Packer::list_blobs() {
    for (std::size_t pi = 0; pi < plan_.size(); ++pi)
        if (!plan_[pi].failed) add_blobs_of(pi);
}

void Packer::add_blobs_of(std::size_t pi) {
    auto& p = plan_[pi];
    auto add_manifest = [&](const oci::RawManifest& raw) {
        manifests_.emplace(raw.digest, &raw);
        auto& b = blobs_[raw.digest];
        b.desc = {raw.media_type, raw.digest, static_cast<std::int64_t>(raw.bytes.size()), {}, {}, {}};
        b.kind = oci::media_type::is_index(raw.media_type) ? "index" : "manifest";
        b.images.insert(p.ref);
        b.done = true;
    };
    add_manifest(p.top);
    for (const auto& c : p.children) add_manifest(c);
    auto configs = std::set<oci::Digest>{};
    for (const auto& c : p.children)
        if (auto parsed = oci::parse(c); auto* im = std::get_if<oci::ImageManifest>(&parsed))
            configs.insert(im->config.digest);
    if (auto parsed = oci::parse(p.top); auto* im = std::get_if<oci::ImageManifest>(&parsed))
        configs.insert(im->config.digest);
    for (const auto& d : p.blobs) {
        auto& b = blobs_[d.digest];
        if (!b.first) {
            b.desc = d;
            b.first = &p;
            b.kind = configs.count(d.digest) ? "config" : "layer";
        }
        b.images.insert(p.ref);
        b.users.push_back(pi);
        result_.bytes_referenced += static_cast<std::uint64_t>(d.size);
    }
}

// A delta: layers a base lists (same digest, same size) are assumed, not stored.
void Packer::leave_out_assumed() {
    if (o_.have.empty()) return;
    for (auto it = blobs_.begin(); it != blobs_.end();) {
        const auto& b = it->second;
        std::optional<std::size_t> base;
        const delta::InventoryBlob* listed = nullptr;
        if (b.kind == "layer")
            for (std::size_t hi = 0; hi < o_.have.size() && !base; ++hi)
                if (auto f = o_.have[hi].blobs.find(it->first);
                    f != o_.have[hi].blobs.end() && f->second.size == b.desc.size) {
                    base = hi;
                    listed = &f->second;
                }
        if (!base) {
            ++it;
            continue;
        }
        assumed_.push_back({it->first,
                            b.desc.size,
                            b.desc.media_type,
                            {b.images.begin(), b.images.end()},
                            *base,
                            listed->repositories});
        ++result_.blobs_assumed;
        result_.bytes_assumed += static_cast<std::uint64_t>(b.desc.size);
        it = blobs_.erase(it);
    }
    say(fmt::format("delta against {} base{}: {} layers ({}) assumed present in the target registry, not stored",
                    o_.have.size(), o_.have.size() == 1 ? "" : "s", result_.blobs_assumed,
                    util::human_bytes(result_.bytes_assumed)));
}

// ---------------------------------------------------------------------------------------
// 3. Every blob the cache cannot give is downloaded, `jobs` at a time, image by image.

void Packer::plan_downloads() {
    cache_.emplace(o_.cache_dir);
    std::vector<BlobJob*> todo;
    for (auto& [d, b] : blobs_) {
        if (b.done) continue;
        if (cache_->has(b.desc)) {
            b.done = true;
            ++result_.blobs_cached;
            result_.bytes_cached += static_cast<std::uint64_t>(b.desc.size);
        } else {
            todo.push_back(&b);
            to_download_ += static_cast<std::uint64_t>(b.desc.size);
        }
    }
    write_once_ = !is_zst(o_.output) && o_.split_size == 0;
    // Downloads go image by image, in plan order, so that images finish one after another.
    std::map<const BlobJob*, std::size_t> first_use;
    for (const auto& p : plan_)
        for (const auto& d : p.blobs)
            if (auto it = blobs_.find(d.digest); it != blobs_.end()) first_use.emplace(&it->second, first_use.size());
    std::stable_sort(todo.begin(), todo.end(),
                     [&](const BlobJob* a, const BlobJob* b) { return first_use.at(a) < first_use.at(b); });
    track_images();
    say(fmt::format("{} blobs ({}): {} in the cache, {} to download ({})", blobs_.size() - manifests_.size(),
                    util::human_bytes(result_.bytes_cached + to_download_), result_.blobs_cached, todo.size(),
                    util::human_bytes(to_download_)));
    for (auto* b : todo) (write_once_ && b->kind == "layer" ? direct_ : to_cache_).push_back(b);
}

// Where each image's download stands: bytes there (cached or downloaded), blobs missing.
void Packer::track_images() {
    tracks_.emplace(util::ImageTracks::DoneWhen::blobs_there, o_.events.image);
    for (const auto& p : plan_) {
        std::uint64_t total = 0, present = 0;
        std::size_t missing = 0;
        for (const auto& d : p.blobs) {
            auto job = blobs_.find(d.digest);
            if (p.failed || job == blobs_.end()) continue; // assumed (a delta): nothing to fetch
            total += static_cast<std::uint64_t>(d.size);
            if (job->second.done)
                present += static_cast<std::uint64_t>(d.size);
            else
                ++missing;
        }
        tracks_->add(p.ref, {}, total, present, missing, p.failed);
    }
}

void Packer::download_into_cache() {
    if (o_.events.phase) o_.events.phase("download", to_download_);
    tracks_->report_all();
    download(to_cache_, [&](BlobJob& b, const Fetch& fetch) { cache_->fill(b.desc, fetch); });
}

// Downloads `jobs`, each through `into` (the cache, or its place in the bundle); every
// failure is collected.
void Packer::download(const std::vector<BlobJob*>& jobs, const Into& into) {
    util::parallel_for(jobs.size(), threads(), [&](std::size_t i) { download_one(*jobs[i], into); });
}

void Packer::download_one(BlobJob& b, const Into& into) {
    try {
        into(b, [&](registry::BlobSink& sink) {
            b.first->src->fetch_blob(b.desc, sink, [&](std::uint64_t n) {
                if (o_.events.bytes) o_.events.bytes(n);
                tracks_->blob_news(b.users, n, false, true);
            });
        });
        tracks_->blob_news(b.users, 0, true, true);
        std::lock_guard lock(mu_);
        b.done = true;
        ++result_.blobs_downloaded;
        result_.bytes_downloaded += static_cast<std::uint64_t>(b.desc.size);
        if (o_.events.blob)
            o_.events.blob(fmt::format("blob {} ({}, {}): downloaded", b.desc.digest.short_str(), b.kind,
                                       util::human_bytes(static_cast<std::uint64_t>(b.desc.size))));
    } catch (const std::exception& e) {
        tracks_->failed(b.users);
        std::lock_guard lock(mu_);
        b.first->failed = true;
        failures_.push_back(
            {b.first->ref, b.first->src->describe(), fmt::format("{} {}: {}", b.kind, b.desc.digest.str(), e.what())});
    }
}

// ---------------------------------------------------------------------------------------
// 4. bundle.json: the images, the blobs, the files (k8s/ first, then the layout).

void Packer::describe_bundle() {
    bundle::BundleDoc doc;
    doc.name = m_.name;
    doc.version = m_.version;
    doc.tool = std::string("aas-bundle ") + AAS_BUNDLE_VERSION;
    created_ = creation_time(o_.created);
    doc.created = bundle::rfc3339(created_);
    doc.signer = signer_;
    for (const auto& pl : platforms_) doc.platforms.push_back(pl.str());
    for (const auto& r : m_.releases) doc.releases.push_back({r.name, r.chart, r.namespace_, r.values});
    doc.plain_manifests = m_.plain_manifests;
    for (auto& p : plan_)
        if (!p.failed) doc.images.push_back(image_record(p)); // failed: a possible image (said above)
    describe_blobs(doc);
    index_json_ = layout_index(doc);
    k8s_entries_ = scan_k8s(k8s_);
    // Format v2's order: k8s/ first, then the layout (docs/bundle-format.md).
    for (const auto& e : k8s_entries_) doc.files.push_back(e.rec);
    doc.files.push_back({std::string(bundle::layout_dir), "dir", 0755, 0, {}, {}});
    doc.files.push_back(
        {std::string(bundle::layout_file_path), "file", 0644, layout_json_.size(), oci::Digest::of(layout_json_), {}});
    doc.files.push_back(
        {std::string(bundle::index_json_path), "file", 0644, index_json_.size(), oci::Digest::of(index_json_), {}});
    doc.files.push_back({"images/blobs", "dir", 0755, 0, {}, {}});
    doc.files.push_back({"images/blobs/sha256", "dir", 0755, 0, {}, {}});
    result_.doc = doc;
    doc_json_ = doc.to_json();
}

bundle::ImageRecord Packer::image_record(const Planned& p) {
    bundle::ImageRecord rec;
    rec.ref = p.ref;
    rec.source = p.src->describe();
    rec.digest = p.top.digest;
    rec.media_type = p.top.media_type;
    rec.size = static_cast<std::int64_t>(p.top.bytes.size());
    rec.platforms = p.platforms;
    if (rec.platforms.empty() && oci::media_type::is_image_manifest(p.top.media_type)) {
        auto parsed = oci::parse(p.top);
        if (auto pl = config_platform(cache_->path(std::get<oci::ImageManifest>(parsed).config.digest)))
            rec.platforms.push_back(*pl);
    }
    if (!platforms_.empty() && rec.platforms.size() == 1 && !p.index_digest) {
        auto pl = oci::Platform::parse(rec.platforms.front());
        if (!oci::platform_matches_any(platforms_, pl))
            result_.warnings.push_back(fmt::format("{} is a single {} image, not one of the platforms asked for", p.ref,
                                                   rec.platforms.front()));
    }
    rec.index_digest = p.index_digest;
    rec.filtered_index = p.filtered;
    rec.cls = discovery::to_string(p.img->cls);
    for (const auto& b : p.blobs) rec.blob_bytes += static_cast<std::uint64_t>(b.size);
    for (const auto& s : p.img->sites) {
        rec.sites.push_back({s.release,
                             s.chart,
                             s.file,
                             s.line,
                             s.values_path,
                             s.written == p.ref ? "" : s.written,
                             s.template_file,
                             s.template_line,
                             discovery::to_string(s.cls),
                             s.reference,
                             {}});
        for (const auto& part : s.parts)
            rec.sites.back().parts.push_back(bundle::PartRecord{part.part, part.file, part.line, part.values_path,
                                                                part.file_key, part.written, part.at});
    }
    return rec;
}

void Packer::describe_blobs(bundle::BundleDoc& doc) {
    std::uint64_t stored_layers = 0; // config and layer bytes stored, for the dedup figure
    for (const auto& [d, b] : blobs_) {
        doc.blobs.push_back({d, b.desc.size, b.desc.media_type, b.kind, {b.images.begin(), b.images.end()}});
        result_.bytes_stored += static_cast<std::uint64_t>(b.desc.size);
        if (!manifests_.count(d)) stored_layers += static_cast<std::uint64_t>(b.desc.size);
    }
    result_.bytes_saved = result_.bytes_referenced - stored_layers - result_.bytes_assumed;
    for (const auto& h : o_.have) doc.base.push_back(h.base);
    doc.assumed = std::move(assumed_);
}

// The OCI layout's index.json: one entry per image, named by its full reference.
std::string Packer::layout_index(const bundle::BundleDoc& doc) const {
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
    return index.dump(2) + "\n";
}

// ---------------------------------------------------------------------------------------
// 4. The archive, to temporary files: bundle.json and its signature, k8s/, the layout, the
// blobs in digest order (from memory, the cache, or downloaded into their slots).

void Packer::write_archive() {
    const auto& doc = result_.doc;
    say(fmt::format("writing {} ({} images, {} blobs, {} stored, {} saved by shared layers)", o_.output.string(),
                    doc.images.size(), doc.blobs.size(), util::human_bytes(result_.bytes_stored),
                    util::human_bytes(result_.bytes_saved)));
    std::uint64_t k8s_bytes = 0;
    for (const auto& e : k8s_entries_) k8s_bytes += e.rec.size;
    if (o_.events.phase) o_.events.phase("write", result_.bytes_stored + k8s_bytes);
    open_writer();
    write_head();
    write_blobs();
    if (write_once_) fill_slots();
}

void Packer::open_writer() {
    if (auto parent = o_.output.parent_path(); !parent.empty()) {
        std::error_code ec;
        fs::create_directories(parent, ec);
        if (ec) throw Error(fmt::format("creating the output folder {}: {}", parent.string(), ec.message()));
    }
    bundle::WriteOptions wo;
    wo.zstd = is_zst(o_.output);
    wo.zstd_level = o_.zstd_level;
    wo.split_size = o_.split_size;
    wo.mtime = created_;
    // A plain .tar takes over what a killed pack into the same OUT left: layers it had
    // downloaded stay in place when their slot is where it was and hashes right.
    wo.adopt_partial = write_once_;
    writer_.emplace(o_.output, wo);
}

// bundle.json and its signature, k8s/, the layout's files.
void Packer::write_head() {
    auto& w = *writer_;
    w.add_file(bundle::bundle_json_path, doc_json_);
    if (!o_.key.empty()) w.add_file(bundle::signature_path, signing::sign(o_.key, doc_json_));
    for (const auto& e : k8s_entries_) {
        if (e.rec.type == "dir") {
            w.add_directory(e.rec.path, e.rec.mode, e.mtime);
        } else if (e.rec.type == "symlink") {
            w.add_symlink(e.rec.path, e.rec.target, e.mtime);
        } else {
            util::Fd fd = util::open_for_reading(e.source);
            auto read = file_reader(o_.events, fd.get(), 0, e.source.string());
            if (w.add_stream(e.rec.path, e.rec.size, read, e.rec.mode, e.mtime) != e.rec.sha256)
                throw Error(fmt::format("{} changed while it was being packed; run pack again", e.source.string()));
        }
    }
    w.add_directory(bundle::layout_dir);
    w.add_file(bundle::layout_file_path, layout_json_);
    w.add_file(bundle::index_json_path, index_json_);
    w.add_directory("images/blobs");
    w.add_directory("images/blobs/sha256");
}

// Blobs in digest order. Write-once: every config and layer gets its place now, filled by
// fill_slots() (downloads straight into it, cached copies from the cache).
void Packer::write_blobs() {
    auto& w = *writer_;
    for (const auto& [d, b] : blobs_) {
        auto arc = bundle::blob_path(d);
        auto size = static_cast<std::uint64_t>(b.desc.size);
        if (auto it = manifests_.find(d); it != manifests_.end()) {
            w.add_file(arc, it->second->bytes);
            continue;
        }
        if (write_once_) {
            slots_[d] = w.reserve(arc, size);
            continue;
        }
        auto in = cache_->locate(b.desc);
        if (!in) throw damaged(d, b);
        if (w.add_stream(arc, size, file_reader(o_.events, in->fd.get(), in->offset, in->where)) != d)
            throw damaged(d, b);
    }
}

Error Packer::damaged(const oci::Digest& d, const BlobJob& b) const {
    cache_->drop(d);
    return Error(fmt::format("the cached copy of blob {} ({} of {}) is damaged; it was removed from the cache "
                             "{}: run pack again to download it",
                             d.str(), b.kind, *b.images.begin(), o_.cache_dir.string()));
}

// Write-once: the downloads go into their slots on a thread of their own while the cached
// copies are copied into theirs. A cached copy that no longer matches (an earlier bundle
// the cache points into was overwritten, a cache file went bad) is dropped from the cache
// and downloaded into its place instead, once the downloads above are done.
void Packer::fill_slots() {
    partial_ = writer_->partial();
    adopted_ = writer_->adopted();
    const Into into_slot = [&](BlobJob& b, const Fetch& fetch) { fetch_into_slot(b, fetch); };
    std::jthread downloads_into_slots([&] { download(direct_, into_slot); });
    std::set<const BlobJob*> direct(direct_.begin(), direct_.end());
    std::vector<BlobJob*> refetch;
    std::vector<std::string> redone;
    std::size_t kept = 0;
    std::uint64_t kept_bytes = 0;
    for (auto& [d, b] : blobs_) {
        if (manifests_.count(d) || direct.count(&b)) continue;
        const auto& slot = slots_.at(d);
        if (b.kind == "layer" && in_place(d, slot)) {
            ++kept;
            kept_bytes += slot.size;
            if (o_.events.bytes) o_.events.bytes(slot.size);
            note_partial(d, slot);
            continue;
        }
        bool good = cache_->copy_verified(
            b.desc, 1u << 20,
            [&](const char* data, std::size_t n, std::uint64_t at) { writer_->write_at(slot, at, data, n); },
            [&](std::uint64_t n) {
                if (o_.events.bytes) o_.events.bytes(n);
            });
        if (good) {
            if (b.kind == "layer") note_partial(d, slot);
            continue;
        }
        cache_->drop(d);
        redone.push_back(fmt::format("blob {} ({} of {}): the cache's copy no longer matches; it was dropped "
                                     "from the cache {} and downloaded again",
                                     d.str(), b.kind, *b.images.begin(), o_.cache_dir.string()));
        --result_.blobs_cached;
        result_.bytes_cached -= slot.size;
        refetch.push_back(&b);
    }
    downloads_into_slots.join();
    if (kept > 0)
        say(fmt::format("kept {} blobs ({}) that a killed pack had written into {}", kept,
                        util::human_bytes(kept_bytes), adopted_.string()));
    if (!refetch.empty()) download(refetch, into_slot);
    result_.warnings.insert(result_.warnings.end(), redone.begin(), redone.end());
}

// True when the killed run's file, now ours (adopt_partial), holds `d` at `slot` already.
bool Packer::in_place(const oci::Digest& d, const bundle::BundleWriter::Slot& slot) const {
    auto n = adopted_.empty() ? std::nullopt : cache_->ref_note(d);
    if (!n || n->bundle != adopted_ || n->offset != slot.offset || n->size != slot.size) return false;
    std::vector<char> buf(1u << 20);
    oci::Hasher h;
    std::uint64_t at = 0;
    while (at < slot.size) {
        std::size_t got = writer_->read_at(slot, at, buf.data(), buf.size());
        if (got == 0) break;
        h.update(buf.data(), got);
        at += got;
    }
    return at == slot.size && h.finish() == d;
}

// Each layer whose bytes are in its slot is noted in the cache, pointing into the
// temporary file: after a kill -9, the next pack into OUT takes that file over
// (adopt_partial) and keeps those bytes where they are.
void Packer::note_partial(const oci::Digest& d, const bundle::BundleWriter::Slot& slot) const {
    try {
        cache_->add_ref(d, partial_, slot.offset, slot.size);
    } catch (const Error&) {
        // only a later resume is lost
    }
}

void Packer::fetch_into_slot(BlobJob& b, const Fetch& fetch) {
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
    SlotSink sink;
    sink.w = &*writer_;
    sink.slot = slots_.at(b.desc.digest);
    fetch(sink); // verifies size and digest while streaming
    note_partial(b.desc.digest, sink.slot);
}

// ---------------------------------------------------------------------------------------
// The bundle under its final name; the cache notes where it holds each layer.

Result Packer::commit() {
    result_.written = writer_->commit();
    note_in_cache();
    if (!o_.include_possible)
        for (const auto& [ref, ps] : possible_refs_)
            result_.warnings.push_back(fmt::format("possible image {} at {}: not packed (it is not in an image field); "
                                                   "pack --include-possible packs it when its registry has it",
                                                   ref, possible_where(ref)));
    return std::move(result_);
}

// Later packs find these blobs in this bundle (a .tar.zst or split bundle cannot be read
// at offsets: their blobs stay in the cache itself).
void Packer::note_in_cache() {
    for (const auto& [d, slot] : slots_) {
        if (blobs_.at(d).kind != "layer") continue; // configs stay in the cache (bundle.json reads them)
        try {
            cache_->add_ref(d, fs::absolute(o_.output), slot.offset, slot.size);
        } catch (const Error& e) {
            result_.warnings.push_back(fmt::format("the cache {} does not note where blob {} is: {}",
                                                   o_.cache_dir.string(), d.str(), e.what()));
        }
    }
}

} // namespace

Result pack(const Options& o) {
    Packer p(o);
    p.discover();
    p.read_manifests();
    p.list_blobs();
    p.leave_out_assumed();
    p.plan_downloads();
    p.download_into_cache();
    p.throw_failures();
    p.describe_bundle();
    p.write_archive();
    p.throw_failures();
    return p.commit();
}

} // namespace aas::pack
