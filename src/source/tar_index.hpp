#pragma once
// Private to the source module: read-only file access for image sources (a folder or a
// tar archive), the tar index, verified blob streaming, and the OCI-layout reader that
// both `oci:` and OCI-style `docker-archive:` sources use.
//
// Tar as read here (POSIX ustar with the pax and GNU extensions), as a grammar:
//
//   archive  := member* end
//   member   := header block(512) data, padded with zeros to a multiple of 512
//   end      := a zero block, or the end of the file after a member
//   header   := name[100] mode[8] uid[8] gid[8] size[12] mtime[12] chksum[8] typeflag[1]
//               linkname[100] magic[6] version[2] uname[32] gname[32] devmajor[8]
//               devminor[8] prefix[155] (pad to 512)
//               magic "ustar\0" (POSIX: path = prefix "/" name) or "ustar  \0" (GNU: no
//               prefix); chksum = sum of the 512 bytes with chksum read as spaces
//   size     := octal digits, or base-256 when the first byte has its high bit set (GNU)
//   typeflag := '0' | '\0' | '7'  regular file      '1' hard link     '2' symbolic link
//               '5' directory
//               'x'  pax header of the next member: records "LEN key=value\n"; path,
//                    linkpath and size are used
//               'g'  global pax header (skipped)
//               'L' / 'K'  GNU long name / long link name of the next member
//               anything else: skipped
//
// Member names are normalised ("./a//b/" -> "a/b"); a later member of the same name
// replaces an earlier one (as tar extraction would). Links are followed when a file is
// looked up (at most 16 hops; a link leaving the archive's root is not found).

#include "aas_bundle/oci/manifest.hpp"
#include "aas_bundle/registry/client.hpp"
#include "aas_bundle/source/source.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aas::source::detail {

/// Receives a file's bytes in pieces.
using ChunkFn = std::function<void(const char* data, std::size_t n)>;

/// Read-only access to the files of a source by relative '/'-separated path ("index.json",
/// "blobs/sha256/<hex>"). Safe to use from several threads at once.
class FileStore {
public:
    virtual ~FileStore() = default;
    /// The container, for messages: "/abs/dir" or "/abs/x.tar".
    virtual std::string container() const = 0;
    /// Size of the regular file at `path` (links followed), nullopt when there is none.
    virtual std::optional<std::uint64_t> size(const std::string& path) const = 0;
    /// The whole file; throws aas::Error naming it when absent or larger than `max_bytes`.
    virtual std::string read(const std::string& path, std::uint64_t max_bytes) const = 0;
    /// Its first `n` bytes (fewer when the file is shorter); throws when absent.
    virtual std::string head(const std::string& path, std::size_t n) const = 0;
    /// Streams the file through `chunk`; throws aas::Error naming it when absent or unreadable.
    virtual void stream(const std::string& path, const ChunkFn& chunk) const = 0;
};

/// Files of a folder. Paths must be relative and free of "..", "." and empty components
/// (throws aas::Error otherwise): nothing outside `root` is ever opened.
std::unique_ptr<FileStore> open_folder(const std::filesystem::path& root);

/// Members of a tar archive. An uncompressed tar is indexed once (headers parsed here, see
/// the grammar above) and read with pread. A gzip-, zstd-, xz- or bzip2-compressed tar
/// cannot be read at random, so it is read through libarchive: one pass at open lists the
/// members (and keeps small members, up to 256 KiB each and 16 MiB in all, in memory), and
/// each `stream` of a larger member decompresses the archive from its start up to that
/// member: correct, but a pass per blob. `where` ("docker-archive:/abs/x.tar") starts every
/// message. Throws aas::Error when the file is not a readable tar.
std::unique_ptr<FileStore> open_tar(const std::filesystem::path& archive, std::string where);

/// One member of an uncompressed tar.
struct TarMember {
    char type = '0';          ///< '0' regular, '1' hard link, '2' symlink, '5' directory
    std::uint64_t offset = 0; ///< where the data starts in the file
    std::uint64_t size = 0;
    std::string link;          ///< target of a link
    std::uint64_t ordinal = 0; ///< position among the archive's entries (0-based)
};

/// Parses the headers of an uncompressed tar read through `read_at` (pread-like: returns
/// the bytes read, fewer only at the end of the file) of `file_size` bytes. `where` names
/// the archive in errors. Returns normalised member name -> member.
std::map<std::string, TarMember>
index_tar(const std::function<std::size_t(void* out, std::size_t n, std::uint64_t offset)>& read_at,
          std::uint64_t file_size, const std::string& where);

/// "./a//b/" -> "a/b"; leading "/" and "./" removed, "." components dropped.
std::string normalize_member(std::string_view name);

/// Follows links from `path` in `members` to a regular file; nullptr when there is none.
const TarMember* resolve_member(const std::map<std::string, TarMember>& members, const std::string& path,
                                std::string* resolved = nullptr);

/// Streams `path` of `store` into `sink`, checking the file size against `blob.size` first
/// and the bytes against `blob.digest` as they pass. `where` ("oci:/x:1.0") and the path
/// name the source in errors, with the blob's digest.
void stream_verified(const FileStore& store, const std::string& path, const oci::Descriptor& blob,
                     registry::BlobSink& sink, const registry::ByteCallback& on_bytes, const std::string& where);

/// "blobs/<algorithm>/<hex>": the only way blob paths are made (from a parsed digest).
std::string blob_path(const oci::Digest& digest);

/// `raw` bytes as a manifest: the document's own mediaType decides; without one, the
/// media type `known` (from the descriptor that pointed at it) does when supported.
oci::RawManifest manifest_from_bytes(std::string bytes, std::string_view known);

/// An OCI image layout in `store` (a folder or a tar): checks `oci-layout`, reads
/// index.json. `where` names the source in messages.
class Layout {
public:
    Layout(std::shared_ptr<const FileStore> store, std::string where);

    const std::vector<oci::Descriptor>& entries() const { return entries_; }
    const std::string& where() const { return where_; }
    const FileStore& store() const { return *store_; }
    const std::shared_ptr<const FileStore>& store_ptr() const { return store_; }

    /// Reads the manifest `d` names from blobs/, verifying size and digest.
    oci::RawManifest read_manifest(const oci::Descriptor& d) const;

private:
    std::shared_ptr<const FileStore> store_;
    std::string where_;
    std::vector<oci::Descriptor> entries_;
};

/// An ImageSource over `layout`, whose top manifest is `top` (an entry of index.json).
std::unique_ptr<ImageSource> make_layout_source(std::shared_ptr<const Layout> layout, oci::Descriptor top,
                                                std::string describe);

/// The names of index.json `entries` for messages: "2.1, 3.0, untagged sha256:…".
std::string layout_entry_names(const std::vector<oci::Descriptor>& entries);

/// Manifests are at most this large (as registries limit them).
inline constexpr std::uint64_t max_manifest_bytes = 4u << 20;
/// index.json, manifest.json and image configs are at most this large.
inline constexpr std::uint64_t max_json_bytes = 16u << 20;

} // namespace aas::source::detail
