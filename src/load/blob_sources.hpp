#pragma once
// Internal to load: where a pushed blob's bytes come from, straight out of the bundle,
// every byte hashed on the way against the digest the authenticated bundle.json names.
//
//   RangeSource   a plain .tar in one file: the blob's bytes at their offset, read with
//                 pread (several blobs at once); a rewind or a resume from the registry's
//                 offset re-reads what it needs, and the hash still covers every byte once.
//   StreamSource  a .tar.zst or a split bundle, decoded once, in order: verify's reading
//                 thread put()s the blob's bytes; the upload takes them. A window of the
//                 last `keep` bytes serves a rewind within the current upload request;
//                 anything older cannot be read again (the upload fails, and a re-run of
//                 the load goes on from its journal).

#include "aas_bundle/oci/digest.hpp"
#include "aas_bundle/registry/client.hpp"
#include "aas_bundle/util/error.hpp"

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace aas::load::detail {

/// The bundle's bytes for a blob do not hash to its digest: the bundle is damaged.
class Damaged : public aas::Error {
public:
    using aas::Error::Error;
};

class RangeSource : public registry::BlobSource {
public:
    /// `fd` stays owned by the caller; `label` names the blob in messages.
    RangeSource(int fd, std::uint64_t offset, std::uint64_t size, oci::Digest digest, std::string label);
    std::uint64_t size() const override { return size_; }
    /// Throws Damaged when the bytes, once all read, do not hash to the digest (before the
    /// upload's last request ends, so the registry never completes it).
    std::size_t read_at(void* out, std::size_t n, std::uint64_t offset) const override;

private:
    std::size_t pread_some(void* out, std::size_t n, std::uint64_t offset) const;
    void hash_upto(std::uint64_t end) const; // hashes [hashed_, end) by reading it
    void check() const;

    int fd_;
    std::uint64_t base_, size_;
    oci::Digest digest_;
    std::string label_;
    mutable oci::Hasher hasher_;
    mutable std::uint64_t hashed_ = 0;
};

class StreamSource : public registry::BlobSource {
public:
    /// `ahead`: bytes the producer may be ahead of the upload; `keep`: bytes kept behind
    /// it for a rewind (the upload's request size).
    StreamSource(std::uint64_t size, std::size_t ahead, std::size_t keep, std::string label);
    std::uint64_t size() const override { return size_; }
    std::size_t read_at(void* out, std::size_t n, std::uint64_t offset) const override;

    /// The producer: blocks while the upload is `ahead` bytes behind; returns at once
    /// (dropping the bytes) after abandon().
    void put(const char* p, std::size_t n);
    /// The producer reached the blob's end (or stopped early: the upload then fails).
    void close();
    /// The upload gave up: put() no longer waits.
    void abandon();

private:
    std::uint64_t size_;
    std::size_t ahead_, keep_;
    std::string label_;
    mutable std::mutex mu_;
    mutable std::condition_variable cv_;
    // A ring of keep_ + ahead_ bytes holding stream bytes [base_, end_).
    mutable std::vector<char> ring_;
    mutable std::uint64_t base_ = 0, end_ = 0;
    mutable std::uint64_t read_ = 0; // highest offset the upload asked for
    bool closed_ = false, abandoned_ = false;
};

} // namespace aas::load::detail
