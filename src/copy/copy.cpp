#include "aas_bundle/copy/copy.hpp"

#include "aas_bundle/oci/walk.hpp"
#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/util/parallel.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>

namespace aas::copy {
namespace {

class FileSink : public registry::BlobSink {
public:
    explicit FileSink(util::TempFile& f) : file_(f) {}
    void write(const char* data, std::size_t n) override { file_.append(data, n); }
    void reset() override { file_.truncate(); }

private:
    util::TempFile& file_;
};

class FileSource : public registry::BlobSource {
public:
    explicit FileSource(const util::TempFile& f) : file_(f) {}
    std::uint64_t size() const override { return file_.size(); }
    std::size_t read_at(void* out, std::size_t n, std::uint64_t offset) const override {
        return file_.read_at(out, n, offset);
    }

private:
    const util::TempFile& file_;
};

// The two ends of one copy.
struct Ends {
    registry::Client& src;
    const ref::Reference& from;
    registry::Client& dst;
    const ref::Reference& to;
    std::string src_repo = from.repository();
    std::string dst_repo = to.repository();
};

struct Plan {
    // Manifests to push, children before the indexes that list them.
    std::vector<oci::RawManifest> children;
    oci::RawManifest top;
    std::map<oci::Digest, oci::Descriptor> blobs;
    std::vector<std::string> platforms;
};

// The manifest copied: the source's, or the image for the one platform asked for out of
// its index.
void plan_top(Plan& plan, const Ends& ends, const CopyOptions& options) {
    plan.top = ends.src.get_manifest(ends.src_repo, ends.from.identifier());
    auto parsed = oci::parse(plan.top);
    const auto* idx = std::get_if<oci::Index>(&parsed);
    if (!idx || options.platforms.empty()) return;
    const auto& want = options.platforms.front();
    const oci::Descriptor* pick = oci::pick_platforms(*idx, {want}, ends.from.str()).front();
    plan.platforms.push_back(pick->platform->str());
    plan.top = ends.src.get_manifest(ends.src_repo, pick->digest.str());
    if (!std::holds_alternative<oci::ImageManifest>(oci::parse(plan.top)))
        throw Error(fmt::format("{}: the entry for {} is itself an index", ends.from.str(), want.str()));
}

// The image's graph (oci::walk): children, blobs; foreign layers are said, not copied.
void add_graph(Plan& plan, const Ends& ends, std::vector<std::string>& warnings) {
    auto g = oci::walk(plan.top,
                       [&](const oci::Descriptor& c) { return ends.src.get_manifest(ends.src_repo, c.digest.str()); });
    for (const auto& b : g.foreign)
        warnings.push_back(fmt::format("layer {} is a non-distributable foreign layer ({}); it is not copied",
                                       b.digest.short_str(), b.urls.front()));
    for (const auto& b : g.blobs) plan.blobs.emplace(b.digest, b);
    plan.children = std::move(g.children);
    plan.platforms.insert(plan.platforms.end(), g.platforms.begin(), g.platforms.end());
}

// Where the copy goes: the target's own tag or digest, else the source's. Fills
// `result.destination` and returns the tag or digest the top manifest is put under.
std::string place_target(const ref::Reference& to, const oci::Digest& top, CopyResult& result) {
    result.destination = to.has_tag() || to.has_digest() ? to.str() : to.with_digest(top.str()).str();
    if (!to.has_digest()) return to.has_tag() ? to.tag() : top.str();
    if (to.digest() != top.str())
        throw Error(fmt::format("target {} names digest {}, but the image copied has digest {}", to.str(), to.digest(),
                                top.str()));
    return to.has_tag() ? to.tag() : to.digest();
}

// One blob to the target: skipped when the target has it, mounted when source and target
// are the same registry (registry::Client::place_blob: one HEAD, then the mount), else
// pulled into a spool file and uploaded from there.
registry::PushOutcome copy_blob(const Ends& ends, const oci::Descriptor& b, const CopyOptions& options) {
    std::vector<std::string> mount_from;
    if (ends.src.base_url() == ends.dst.base_url()) mount_from.push_back(ends.src_repo);
    if (auto placed = ends.dst.place_blob(ends.dst_repo, b, mount_from)) return *placed;
    util::TempFile spool(options.temp_dir);
    FileSink sink(spool);
    ends.src.fetch_blob(ends.src_repo, b, sink, [&](std::uint64_t n) {
        if (options.on_bytes) options.on_bytes(n, 0);
    });
    FileSource source(spool);
    ends.dst.upload_blob(ends.dst_repo, b, source, [&](std::uint64_t n) {
        if (options.on_bytes) options.on_bytes(0, n);
    });
    return registry::PushOutcome::uploaded;
}

// Every blob of the plan, `options.jobs` at a time; throws listing every blob that failed.
void copy_blobs(const Ends& ends, const Plan& plan, const CopyOptions& options, CopyResult& result) {
    std::vector<oci::Descriptor> blobs;
    for (const auto& [d, desc] : plan.blobs) {
        blobs.push_back(desc);
        result.bytes_total += static_cast<std::uint64_t>(desc.size);
    }
    std::mutex mu;
    std::vector<std::string> failures;
    const auto jobs = static_cast<unsigned>(std::max(1, options.jobs));
    util::parallel_for(blobs.size(), jobs, [&](std::size_t i) {
        const auto& b = blobs[i];
        try {
            auto outcome = copy_blob(ends, b, options);
            std::lock_guard lock(mu);
            switch (outcome) {
            case registry::PushOutcome::uploaded:
                ++result.blobs_uploaded;
                result.bytes_uploaded += static_cast<std::uint64_t>(b.size);
                break;
            case registry::PushOutcome::skipped:
                ++result.blobs_skipped;
                break;
            case registry::PushOutcome::mounted:
                ++result.blobs_mounted;
                break;
            }
            if (options.on_blob) options.on_blob(b, outcome);
        } catch (const std::exception& e) {
            std::lock_guard lock(mu);
            failures.push_back(fmt::format("blob {} ({}): {}", b.digest.str(), b.media_type, e.what()));
        }
    });
    if (failures.empty()) return;
    std::string msg = fmt::format("copying {} to {}: {} of {} blobs failed", ends.from.str(), ends.to.str(),
                                  failures.size(), blobs.size());
    for (const auto& f : failures) msg += "\n  " + f;
    throw Error(msg);
}

// The manifests: children by digest (unless the target has them), then the top one under
// `target_id`.
void put_manifests(const Ends& ends, const Plan& plan, const std::string& target_id, CopyResult& result) {
    for (const auto& child : plan.children) {
        if (!ends.dst.head_manifest(ends.dst_repo, child.digest.str()))
            ends.dst.put_manifest(ends.dst_repo, child.digest.str(), child);
        ++result.manifests;
    }
    ends.dst.put_manifest(ends.dst_repo, target_id, plan.top);
    ++result.manifests;
}

} // namespace

CopyResult copy_image(registry::Client& src, const ref::Reference& from, registry::Client& dst,
                      const ref::Reference& to, const CopyOptions& options) {
    if (options.platforms.size() > 1)
        throw UsageError("copy takes one --platform (the image for that platform), or none for the whole index");
    const Ends ends{src, from, dst, to};
    CopyResult result;
    result.source = from.str();
    Plan plan;
    plan_top(plan, ends, options);
    add_graph(plan, ends, result.warnings);
    const std::string target_id = place_target(to, plan.top.digest, result);
    copy_blobs(ends, plan, options, result);
    put_manifests(ends, plan, target_id, result);
    result.digest = plan.top.digest;
    result.media_type = plan.top.media_type;
    result.platforms = plan.platforms;
    return result;
}

} // namespace aas::copy
