#pragma once
// Where pack reads each image from (private to the module): one registry client per host
// (a mirror's host when the registry has one), shared by the images it serves; file
// sources (docker save archives, OCI layouts) through source::open_from.

#include "aas_bundle/pack/pack.hpp"
#include "aas_bundle/registry/client.hpp"
#include "aas_bundle/source/source.hpp"

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace aas::pack {

class Sources {
public:
    /// `mirrors`: registry -> HOST[:PORT][/PREFIX]; `base`: the folder file sources are
    /// relative to (the manifest's).
    Sources(const Options& o, std::map<std::string, std::string> mirrors, std::filesystem::path base)
        : options_(o), mirrors_(std::move(mirrors)), base_(std::move(base)) {}

    /// Opens where the image `ref` is read from; `from` is the manifest's source, or "".
    /// Thread-safe (sources may be read from several threads at once, see source.hpp).
    std::unique_ptr<source::ImageSource> open(const ref::Reference& ref, const std::string& from);

private:
    registry::Client& client(const std::string& host);

    const Options& options_;
    std::map<std::string, std::string> mirrors_;
    std::filesystem::path base_;
    std::mutex mu_;
    std::map<std::string, std::unique_ptr<registry::Client>> clients_;
};

} // namespace aas::pack
