#pragma once
// Reading a bundle's tar stream from bytes (a whole bundle, or its parts as one stream:
// parts.hpp), zstd-decoded when it starts with zstd's magic, parsed by libarchive (tar
// formats only), never extracted. Bundles are hostile input: the decoder bounds the zstd
// window and the output, and refusal() names what a bundle may not hold. Used by verify
// (and through it by load, inspect and the libFuzzer target).

#include "aas_bundle/util/error.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace aas::bundle {

/// Reads up to `n` bytes into `out`; returns the count (0 only at the end).
using ReadFn = std::function<std::size_t(char* out, std::size_t n)>;
/// Moves the input `n` bytes on without reading them; false when it cannot (then the
/// bytes are read through).
using SkipFn = std::function<bool(std::uint64_t)>;

/// A problem that stops the pass: truncation, a broken zstd frame, garbage, a bomb.
class FatalError : public aas::Error {
public:
    using aas::Error::Error;
};

/// zstd window the decoder accepts: 2^25 = 32 MiB (pack's levels need at most 8 MiB).
inline constexpr int max_window_log = 25;

/// Bytes of the tar stream, decoded from `in` (zstd detected by its magic).
class Decoder {
public:
    Decoder(ReadFn in, std::string name, SkipFn skip = {});
    ~Decoder();
    Decoder(const Decoder&) = delete;
    Decoder& operator=(const Decoder&) = delete;

    /// Up to `n` tar bytes; 0 at the end. Throws FatalError for a truncated or broken zstd
    /// stream, or when more than the limit would be produced.
    std::size_t read(char* out, std::size_t n);
    /// Skips `n` tar bytes of a plain (uncompressed) tar by moving the input on; returns
    /// the bytes skipped (0: cannot, read them instead). Counted as read, limits included.
    std::uint64_t skip(std::uint64_t n);
    /// A plain tar whose input can move on without reading (skip() works).
    bool can_skip() const { return started_ && !compressed_ && static_cast<bool>(skip_); }
    bool compressed() const { return compressed_; }
    std::uint64_t in_bytes() const { return in_bytes_; }
    std::uint64_t out_bytes() const { return out_bytes_; }
    /// Largest tar stream accepted; more is a decompression bomb (or data added).
    void set_limit(std::uint64_t bytes, std::string why) {
        limit_ = bytes;
        limit_why_ = std::move(why);
    }
    /// Also refuses more than `ratio` tar bytes per archive byte read so far, plus
    /// `slack` (0: no such cap). For bundles whose bundle.json is not authenticated, whose
    /// sizes cannot be trusted to bound anything.
    void set_ratio_cap(std::uint64_t ratio, std::uint64_t slack) {
        ratio_ = ratio;
        slack_ = slack;
    }

private:
    void start();
    std::size_t pull(char* out, std::size_t n);
    std::size_t decode(char* out, std::size_t n);

    void check_limits() const;

    ReadFn in_;
    SkipFn skip_;
    std::string name_;
    bool started_ = false, compressed_ = false, eof_ = false, flush_pending_ = false;
    std::size_t last_ret_ = 0;
    std::uint64_t in_bytes_ = 0, out_bytes_ = 0;
    std::uint64_t limit_ = UINT64_MAX;
    std::uint64_t ratio_ = 0, slack_ = 0;
    std::string limit_why_;
    std::string prefix_; // bytes read to sniff the magic, of a plain tar
    struct Zstd;
    std::unique_ptr<Zstd> z_;
};

/// One tar entry's header, as libarchive reads it.
struct TarEntry {
    std::string name; ///< as stored, one trailing '/' removed
    enum class Type { file, dir, symlink, hardlink, other } type = Type::other;
    std::string type_name; ///< "file", "folder", "symlink", "hard link", "character device", …
    std::uint64_t size = 0;
    unsigned mode = 0;             ///< permission bits
    std::string target;            ///< symlink or hard link target
    std::uint64_t offset = 0;      ///< of its header in the tar stream
    std::uint64_t data_offset = 0; ///< of its data in the tar stream
    bool sparse = false;
};

/// Why an entry may not be in a bundle (a path that escapes, a link, a device…), or ""
/// when its name and type are acceptable.
std::string refusal(const TarEntry& e);

/// libarchive's tar reader over a Decoder.
class TarReader {
public:
    /// `skip`: how to move the input on (a plain tar's data is then skipped, not read).
    TarReader(ReadFn in, std::string name, SkipFn skip = {});
    ~TarReader();
    TarReader(const TarReader&) = delete;
    TarReader& operator=(const TarReader&) = delete;

    /// The next entry's header; false at the end of the archive. Throws FatalError.
    bool next(TarEntry& e);
    /// The current entry's data, a block at a time: sets `p` and returns its size; 0 at
    /// the end of the entry. The block stays valid until the next call.
    std::size_t read_block(const char** p);
    /// Skips the rest of the current entry's data (read through, unless the input of a
    /// plain tar can move on: see the constructor).
    void skip();
    /// After next() returned false: reads what is left of the bytes (zstd checksums, the
    /// parts' final check) and returns the tar stream offset of the first non-zero byte
    /// after the end-of-archive marker (data appended to the bundle), if any.
    std::optional<std::uint64_t> drain();
    Decoder& decoder() { return *dec_; }

    struct Impl; // public for libarchive's callback

private:
    [[noreturn]] void fail(const char* doing);
    std::unique_ptr<Decoder> dec_;
    std::unique_ptr<Impl> impl_;
};

} // namespace aas::bundle
