// A registry as an image source: a thin layer over registry::Client, which verifies
// manifests and blobs itself.

#include "aas_bundle/source/source.hpp"

#include <fmt/format.h>

namespace aas::source {
namespace {

class RegistrySource final : public ImageSource {
public:
    RegistrySource(registry::Client& client, std::string repository, std::string identifier)
        : client_(client), repository_(std::move(repository)), identifier_(std::move(identifier)) {}

    std::string describe() const override {
        // A tag never holds ':', a digest always does ("sha256:...").
        bool digest = identifier_.find(':') != std::string::npos;
        return fmt::format("{}/{}{}{}", client_.registry(), repository_, digest ? "@" : ":", identifier_);
    }

    oci::RawManifest top() override { return client_.get_manifest(repository_, identifier_); }

    oci::RawManifest manifest(const oci::Digest& digest) override {
        return client_.get_manifest(repository_, digest.str());
    }

    void fetch_blob(const oci::Descriptor& blob, registry::BlobSink& sink,
                    const registry::ByteCallback& on_bytes) override {
        client_.fetch_blob(repository_, blob, sink, on_bytes);
    }

private:
    registry::Client& client_;
    std::string repository_;
    std::string identifier_;
};

} // namespace

std::unique_ptr<ImageSource> open_registry(registry::Client& client, std::string repository, std::string identifier) {
    return std::make_unique<RegistrySource>(client, std::move(repository), std::move(identifier));
}

} // namespace aas::source
