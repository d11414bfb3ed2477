#pragma once
// Tar archives other than bundles, read through libarchive for the modules that must not
// use it themselves: packaged helm charts (`.tgz`, in memory) and compressed `docker save`
// / OCI-layout archives (a file). A thin reader: members in order, each header and then
// its data; the callers keep their own limits and messages (libarchive's text is error()).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

struct archive;

namespace aas::bundle {

class TarArchive {
public:
    /// The compressions recognised: gzip only (a packaged chart), or every filter
    /// libarchive has (gzip, bzip2, xz, zstd, …). The format is tar either way.
    enum class Compression { gzip, any };

    /// One member's header.
    struct Member {
        std::optional<std::string> name;      ///< as stored; absent when libarchive has none
        std::optional<std::string> utf8_name; ///< the name as UTF-8, read only when `name` is absent
        enum class Type { file, dir, symlink, other } type = Type::other; ///< the file type
        std::optional<std::int64_t> size;    ///< the size its header gives, when it gives one
        std::optional<std::string> hardlink; ///< a hard link's target (whatever its type)
        std::string symlink;                 ///< a symlink's target ("" when it has none)
    };

    /// `what` names the archive in the one error the constructor throws (out of memory).
    TarArchive(Compression compression, std::string_view what);
    ~TarArchive();
    TarArchive(const TarArchive&) = delete;
    TarArchive& operator=(const TarArchive&) = delete;

    /// Reads from `data`, which must outlive this reader; false on failure (see error()).
    bool open(std::string_view data);
    /// Reads the file `path`; false on failure (see error()).
    bool open(const std::filesystem::path& path);

    enum class Next { member, end, failed };
    /// The next member's header into `m` (a libarchive warning counts as success).
    Next next(Member& m);
    /// Up to `n` bytes of the current member's data (0 at its end), or nullopt on failure.
    std::optional<std::size_t> read(char* out, std::size_t n);
    /// libarchive's message for the last failure, or nullptr when it gave none.
    const char* error() const;

private:
    struct archive* a_;
};

} // namespace aas::bundle
