#include "aas_bundle/registry/copy.hpp"

#include "aas_bundle/oci/media_types.hpp"
#include "aas_bundle/oci/walk.hpp"
#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/util/log.hpp"

#include <fmt/format.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace aas::registry {
namespace {

class FileSink : public BlobSink {
public:
    explicit FileSink(util::TempFile& f) : file_(f) {}
    void write(const char* data, std::size_t n) override { file_.append(data, n); }
    void reset() override { file_.truncate(); }

private:
    util::TempFile& file_;
};

class FileSource : public BlobSource {
public:
    explicit FileSource(const util::TempFile& f) : file_(f) {}
    std::uint64_t size() const override { return file_.size(); }
    std::size_t read_at(void* out, std::size_t n, std::uint64_t offset) const override {
        return file_.read_at(out, n, offset);
    }

private:
    const util::TempFile& file_;
};

struct Plan {
    // Manifests to push, children before the indexes that list them.
    std::vector<oci::RawManifest> children;
    oci::RawManifest top;
    std::map<oci::Digest, oci::Descriptor> blobs;
    std::vector<std::string> platforms;
};

// The image's graph (oci::walk): children, blobs; foreign layers are said, not copied.
void add_graph(Plan& plan, Client& src, const std::string& repo) {
    auto g = oci::walk(plan.top, [&](const oci::Descriptor& c) { return src.get_manifest(repo, c.digest.str()); });
    for (const auto& b : g.foreign)
        log::warn("layer {} is a non-distributable foreign layer ({}); it is not copied", b.digest.short_str(),
                  b.urls.front());
    for (const auto& b : g.blobs) plan.blobs.emplace(b.digest, b);
    plan.children = std::move(g.children);
    plan.platforms.insert(plan.platforms.end(), g.platforms.begin(), g.platforms.end());
}

} // namespace

CopyResult copy_image(Client& src, const ref::Reference& from, Client& dst, const ref::Reference& to,
                      const CopyOptions& options) {
    if (options.platforms.size() > 1)
        throw UsageError("copy takes one --platform (the image for that platform), or none for the whole index");
    CopyResult result;
    result.source = from.str();
    const std::string src_repo = from.repository();
    const std::string dst_repo = to.repository();

    Plan plan;
    plan.top = src.get_manifest(src_repo, from.identifier());
    auto parsed = oci::parse(plan.top);
    if (auto* idx = std::get_if<oci::Index>(&parsed); idx && !options.platforms.empty()) {
        const auto& want = options.platforms.front();
        const oci::Descriptor* pick = oci::pick_platforms(*idx, {want}, from.str()).front();
        plan.platforms.push_back(pick->platform->str());
        plan.top = src.get_manifest(src_repo, pick->digest.str());
        parsed = oci::parse(plan.top);
        if (!std::holds_alternative<oci::ImageManifest>(parsed))
            throw Error(fmt::format("{}: the entry for {} is itself an index", from.str(), want.str()));
    }
    add_graph(plan, src, src_repo);

    // Where the copy goes: the target's own tag or digest, else the source's.
    std::string target_id;
    if (to.has_digest()) {
        if (to.digest() != plan.top.digest.str())
            throw Error(fmt::format("target {} names digest {}, but the image copied has digest {}", to.str(),
                                    to.digest(), plan.top.digest.str()));
        target_id = to.has_tag() ? to.tag() : to.digest();
    } else {
        target_id = to.has_tag() ? to.tag() : plan.top.digest.str();
    }
    result.destination = to.has_tag() || to.has_digest() ? to.str() : to.with_digest(plan.top.digest.str()).str();

    // Blobs, in parallel.
    std::vector<oci::Descriptor> blobs;
    for (const auto& [d, desc] : plan.blobs) {
        blobs.push_back(desc);
        result.bytes_total += static_cast<std::uint64_t>(desc.size);
    }
    const bool same_registry = src.base_url() == dst.base_url();
    std::atomic<std::size_t> next{0};
    std::mutex mu;
    std::vector<std::string> failures;
    auto worker = [&] {
        for (;;) {
            std::size_t i = next++;
            if (i >= blobs.size()) return;
            const auto& b = blobs[i];
            try {
                PushOutcome outcome;
                if (dst.blob_exists(dst_repo, b.digest)) {
                    outcome = PushOutcome::skipped;
                } else if (same_registry && src_repo != dst_repo && dst.mount_blob(dst_repo, b, src_repo)) {
                    outcome = PushOutcome::mounted;
                } else {
                    util::TempFile spool(options.temp_dir);
                    FileSink sink(spool);
                    src.fetch_blob(src_repo, b, sink, [&](std::uint64_t n) {
                        if (options.on_bytes) options.on_bytes(n, 0);
                    });
                    FileSource source(spool);
                    outcome = dst.push_blob(dst_repo, b, source, [&](std::uint64_t n) {
                        if (options.on_bytes) options.on_bytes(0, n);
                    });
                }
                std::lock_guard lock(mu);
                switch (outcome) {
                case PushOutcome::uploaded:
                    ++result.blobs_uploaded;
                    result.bytes_uploaded += static_cast<std::uint64_t>(b.size);
                    break;
                case PushOutcome::skipped: ++result.blobs_skipped; break;
                case PushOutcome::mounted: ++result.blobs_mounted; break;
                }
                if (options.on_blob) options.on_blob(b, outcome);
            } catch (const std::exception& e) {
                std::lock_guard lock(mu);
                failures.push_back(fmt::format("blob {} ({}): {}", b.digest.str(), b.media_type, e.what()));
            }
        }
    };
    {
        std::vector<std::jthread> pool;
        int n = std::max(1, std::min<int>(options.jobs, static_cast<int>(blobs.size())));
        for (int i = 0; i < n; ++i) pool.emplace_back(worker);
    }
    if (!failures.empty()) {
        std::string msg = fmt::format("copying {} to {}: {} of {} blobs failed", from.str(), to.str(), failures.size(),
                                      blobs.size());
        for (const auto& f : failures) msg += "\n  " + f;
        throw Error(msg);
    }

    // Manifests: children by digest, then the top one under the target name.
    for (const auto& child : plan.children) {
        if (!dst.head_manifest(dst_repo, child.digest.str())) dst.put_manifest(dst_repo, child.digest.str(), child);
        ++result.manifests;
    }
    dst.put_manifest(dst_repo, target_id, plan.top);
    ++result.manifests;

    result.digest = plan.top.digest;
    result.media_type = plan.top.media_type;
    result.platforms = plan.platforms;
    return result;
}

} // namespace aas::registry
