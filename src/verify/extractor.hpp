#pragma once
// Internal to the verify module: writing the entries a verify pass accepts under
// Options::extract_to, while they are checked.

#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/verify/verify.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace aas::verify::detail {

/// Writes accepted entries under Options::extract_to while they are checked. Every path is
/// created through util::SafeTree (no symlink is ever followed); symlinks are created only
/// at the end, once the whole tree has been checked; modes lose setuid, setgid and sticky.
class Extractor {
public:
    explicit Extractor(const Options& o) : o_(o) {}
    ~Extractor();
    Extractor(const Extractor&) = delete;
    Extractor& operator=(const Extractor&) = delete;

    /// Whether the entry `name` is to be written (an extraction folder, and the filter).
    bool wants(const std::string& name) const { return !o_.extract_to.empty() && (!o_.extract || o_.extract(name)); }
    void dir(const std::string& name, unsigned mode);
    /// Remembered; created by finish().
    void symlink(const std::string& name, const std::string& target) { links_.emplace_back(name, target); }
    /// Starts the file `name`, written as NAME.partial and renamed by close().
    void open(const std::string& name, unsigned mode);
    bool is_open() const { return fd_ >= 0; }
    void write(const char* p, std::size_t n);
    void close();
    /// After the whole pass: when `tree_ok` (every symlink was resolved against the final
    /// tree and stays inside k8s/), the symlinks; then folder modes, last, so that folders
    /// stay writable while they are filled.
    void finish(bool tree_ok);

private:
    util::SafeTree& tree();
    [[noreturn]] void fail(const char* what);

    const Options& o_;
    std::unique_ptr<util::SafeTree> tree_;
    int fd_ = -1;
    int dir_ = -1;
    unsigned mode_ = 0644;
    std::string name_, base_, partial_;
    std::vector<std::pair<std::string, unsigned>> dirs_;
    std::vector<std::pair<std::string, std::string>> links_;
};

} // namespace aas::verify::detail
