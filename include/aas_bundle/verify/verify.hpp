#pragma once
// The offline side's checks: `verify` proves a bundle whole and untouched in one streaming
// pass; `inspect` shows what a bundle holds from its first entries only.
//
// verify, in one pass over the archive bytes (docs/bundle-format.md):
//
//   bytes   := whole file | parts (each part's size and sha256 checked before its bytes
//              are used, bundle::StreamReader)
//   tar     := zstd-decoded when the bytes start with 28 B5 2F FD, else as they are;
//              read by libarchive (tar formats only) from memory, never extracted
//   entry 1 := "bundle.json" (at most bundle::max_bundle_json bytes)
//   entry 2 := "bundle.json.sig" (optional, at most 1 KiB): the signature over entry 1 is
//              checked first; with a key, a missing or bad signature ends the pass there
//              (nothing else is read, hashed or written). bundle.json's fields are then
//              checked (bundle::field_problems), and without a valid signature the tar
//              stream is capped at 128x the archive bytes read + 16 MiB
//   rest    := every entry checked against bundle.json: blobs against their digest and
//              size, files against size, sha256 and mode, folders and symlinks by type
//              and target; hashing runs on worker threads while the reader decodes
//   after   := the tree: no entry beneath a symlink, every symlink followed through the
//              others ends inside k8s/; nothing but zero padding after a plain tar's end;
//              completeness: every entry listed is present, nothing unlisted is present,
//              every blob that images/index.json or any manifest or index in the layout
//              references is present, and index.json's entries match bundle.json's images
//
// Hostile input: entries with an absolute name or a ".." component, hard links, devices,
// FIFOs, sockets, symlinks that leave k8s/, duplicate names and entries larger than
// bundle.json says are refused (reported, their data skipped unread); a tar stream larger
// than bundle.json accounts for (a decompression bomb) stops the pass, as do a truncated
// archive, a broken zstd frame, a zstd window over 32 MiB and garbage, each named with the
// offset. Nothing is written to disk unless Options::extract_to asks for it (load's single
// pass: each entry that is listed, of the listed type and size, is written as it is read,
// through util::SafeTree, modes without setuid/setgid/sticky; symlinks only at the end and
// only when no problem was found; only a report without problems makes what was written
// trustworthy). docs/bundle-format.md, "Reading a bundle safely", states the rules. Memory is bounded (about 20 MiB of
// buffers plus bundle.json and the layout's manifests) whatever the bundle's size.

#include "aas_bundle/bundle/format.hpp"
#include "aas_bundle/bundle/parts.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace aas::verify {

/// One problem found, as a full sentence in `message`, e.g.
/// "blob sha256:ab12… (layer of docker.io/bitnami/mongodb:6.0.3): content hash mismatch".
struct Problem {
    /// signature | part | archive | refused | blob | file | missing | unlisted | layout
    std::string kind;
    /// What it is about: a digest, an archive path, a part name, or the bundle.
    std::string subject;
    std::string message;
};

enum class Signature {
    not_checked, ///< no key given: authenticity was not checked
    unsigned_,   ///< the bundle carries no signature
    valid,       ///< bundle.json is signed by the key given
    invalid,     ///< the signature does not match the key given
};

struct Report;

struct Options {
    std::filesystem::path bundle;
    /// Ed25519 public key (aas-bundle keygen's NAME.pub); empty: integrity only.
    std::filesystem::path key;
    /// Hash worker threads (0: one per core).
    unsigned workers = 0;
    /// Bytes of buffers between the reader and the hash workers (0: 16 MiB; at least
    /// 2 MiB). load, which streams blobs through buffers of its own, asks for less.
    std::size_t buffer_bytes = 0;
    /// Called from the reading thread with the count of archive bytes just read.
    std::function<void(std::uint64_t)> progress;
    /// When set, entries whose archive path `extract` accepts (all when it is empty) are
    /// written under this folder during the same pass: folders, symlinks, and files (via a
    /// ".partial" name, renamed when their bytes are written). Refused and unlisted entries
    /// are never written. A write failure (disk full) throws aas::Error naming the file.
    std::filesystem::path extract_to;
    std::function<bool(const std::string& path)> extract;
    /// Called once bundle.json is read, its signature checked (and, with a key, found
    /// valid) and its fields checked, before any further entry is read: `report.doc` is
    /// set. An exception it throws ends the pass and leaves verify() (load checks its
    /// targets there, so that a bundle it cannot load is refused within a second).
    std::function<void(const Report& report)> on_header;

    // For load, which pushes blobs straight from the bundle (nothing else sets these):
    /// Config and layer blobs of a bundle that is one uncompressed file are not read: each
    /// one listed, of the listed size, goes to Report::deferred with its offset in the
    /// file, its data skipped by seeking. THEIR CONTENT IS NOT CHECKED: the caller must
    /// hash every byte it reads at those offsets. In a .tar.zst or a split bundle they are
    /// read and hashed as usual (and handed to on_blob).
    bool defer_blobs = false;
    /// Called for each blob that is read (not deferred), listed and of the listed size,
    /// before its data: the function it returns (or an empty one) is given every block of
    /// the data as it is read, and {nullptr, 0} at the end. The data's hash is checked as
    /// always, after the pass (a caller that pushes it must wait for the report).
    std::function<std::function<void(const char*, std::size_t)>(const bundle::BlobRecord& blob)> on_blob;
    /// Called with each entry's name after bundle.json and its signature, before it is
    /// read: true ends the pass there (Report::stopped_on_request). The entries read are
    /// checked as usual, and every entry bundle.json lists under k8s/ must be among them
    /// (in format v2 they come first); blobs and the layout are not checked.
    std::function<bool(const std::string& name)> stop_before;
};

/// A blob whose data verify skipped (Options::defer_blobs): at `offset` in the file.
struct Deferred {
    oci::Digest digest;
    std::uint64_t offset = 0;
    std::uint64_t size = 0;
};

struct Report {
    std::string bundle; ///< as given
    Signature signature = Signature::not_checked;
    std::string signer;                   ///< bundle.json's signer ("" when unreadable or unsigned)
    std::string key_fingerprint;          ///< of the key given
    std::optional<bundle::BundleDoc> doc; ///< parsed bundle.json (unauthenticated unless signature == valid)
    oci::Digest bundle_json_digest;       ///< sha256 of bundle.json's exact bytes (empty when it was not read)
    std::vector<Problem> problems;
    /// True when the pass stopped early (truncated, bomb, missing part…): entries after
    /// the stop were not checked.
    bool stopped = false;
    std::uint64_t archive_bytes = 0; ///< bytes of the archive read (compressed, as stored)
    std::uint64_t tar_bytes = 0;     ///< bytes of the tar stream
    std::uint64_t bytes_hashed = 0;  ///< content bytes hashed and compared
    std::size_t blobs_checked = 0;
    std::size_t files_checked = 0;     ///< files, folders and symlinks
    std::size_t parts = 0;             ///< parts of a split bundle (0: one file)
    std::vector<std::string> warnings; ///< not problems: e.g. part files the index does not list
    std::vector<Deferred> deferred;    ///< Options::defer_blobs: blobs not read, in archive order
    /// The verified bytes of every manifest and index read (and images/index.json's are
    /// not here): bounded by the 48 MiB the pass keeps of them.
    std::map<oci::Digest, std::string> manifests;
    bool stopped_on_request = false; ///< Options::stop_before ended the pass

    bool ok() const { return problems.empty(); }
};

/// Verifies the bundle at `o.bundle` (a file, a parts index, a first part, or the whole
/// name of a split bundle). Integrity problems are returned in the report, every one of
/// them; throws aas::UsageError when the bundle or the key cannot be found or read as
/// such, and aas::Error for I/O failures that are not the bundle's fault.
Report verify(const Options& o);

/// The same checks over bytes from `read` (0 at the end), for tests and fuzzing;
/// `name` names the bundle in messages. An exception thrown by `read` that derives from
/// bundle::PartError becomes a "part" problem.
Report verify_stream(const std::function<std::size_t(char*, std::size_t)>& read, const std::string& name,
                     const Options& o);

/// What `inspect` shows: bundle.json (parsed), whether it is signed, and the archive's
/// size and parts. Nothing is hashed but bundle.json itself; nothing is authenticated
/// unless a key is given (then only bundle.json's signature is checked).
struct Inspection {
    bundle::BundleDoc doc;
    oci::Digest bundle_json_digest; ///< sha256 of bundle.json's exact bytes
    bool has_signature = false;
    Signature signature = Signature::not_checked;
    std::string key_fingerprint;
    std::uint64_t archive_size = 0; ///< bytes of the archive file(s)
    bool compressed = false;
    std::optional<bundle::PartsIndex> parts;
    std::uint64_t bytes_stored = 0;     ///< bytes of every blob stored
    std::uint64_t bytes_referenced = 0; ///< config and layer bytes summed per image
    std::uint64_t bytes_saved = 0;      ///< saved by layers shared between images
};

/// Reads the first entries of the bundle at `bundle` (parts are read in order, not
/// hashed). Throws aas::Error naming the bundle when bundle.json cannot be read, and,
/// when a key is given, when the bundle is unsigned or its signature does not match (then
/// bundle.json is not even parsed).
Inspection inspect(const std::filesystem::path& bundle, const std::filesystem::path& key = {});

} // namespace aas::verify
