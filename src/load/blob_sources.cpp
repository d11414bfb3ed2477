#include "blob_sources.hpp"

#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/fs.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unistd.h>
#include <vector>

namespace aas::load::detail {

RangeSource::RangeSource(int fd, std::uint64_t offset, std::uint64_t size, oci::Digest digest, std::string label)
    : fd_(fd), base_(offset), size_(size), digest_(std::move(digest)), label_(std::move(label)) {}

std::size_t RangeSource::pread_some(void* out, std::size_t n, std::uint64_t offset) const {
    if (offset >= size_) return 0;
    n = static_cast<std::size_t>(std::min<std::uint64_t>(n, size_ - offset));
    long r = util::pread_retrying(fd_, out, n, base_ + offset);
    if (r < 0) throw Error(fmt::format("{}: reading the bundle: {}", label_, util::errno_message(errno)));
    if (r == 0 && n > 0)
        throw Error(
            fmt::format("{}: the bundle ends before the blob does (it became shorter while being read)", label_));
    return static_cast<std::size_t>(r);
}

void RangeSource::check() const {
    if (hashed_ != size_) return;
    auto got = hasher_.finish();
    if (got != digest_) throw Damaged(fmt::format("{}: content hash mismatch (sha256 {})", label_, got.str()));
}

void RangeSource::hash_upto(std::uint64_t end) const {
    std::vector<char> buf(1u << 20);
    while (hashed_ < end) {
        auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), end - hashed_));
        std::size_t got = pread_some(buf.data(), want, hashed_);
        hasher_.update(buf.data(), got);
        hashed_ += got;
    }
    check();
}

std::size_t RangeSource::read_at(void* out, std::size_t n, std::uint64_t offset) const {
    if (offset > hashed_) hash_upto(offset); // a resume past what was read: hash the gap
    std::size_t got = pread_some(out, n, offset);
    if (offset + got > hashed_ && offset <= hashed_) {
        auto skip = static_cast<std::size_t>(hashed_ - offset); // bytes hashed already (a rewind)
        hasher_.update(static_cast<const char*>(out) + skip, got - skip);
        hashed_ = offset + got;
        check();
    }
    return got;
}

// ---------------------------------------------------------------------------------------

StreamSource::StreamSource(std::uint64_t size, std::size_t ahead, std::size_t keep, std::string label)
    : size_(size), ahead_(ahead), keep_(keep), label_(std::move(label)), ring_(ahead + keep) {}

void StreamSource::put(const char* p, std::size_t n) {
    std::unique_lock lock(mu_);
    while (n > 0) {
        // Room: at most ahead_ bytes past what the upload read, keep_ behind it.
        cv_.wait(lock, [&] { return abandoned_ || (end_ < read_ + ahead_ && end_ - base_ < ring_.size()); });
        if (abandoned_) return;
        auto room =
            static_cast<std::size_t>(std::min<std::uint64_t>(read_ + ahead_ - end_, ring_.size() - (end_ - base_)));
        std::size_t take = std::min(n, room);
        for (std::size_t done = 0; done < take;) { // at most two pieces around the ring's end
            auto at = static_cast<std::size_t>((end_ + done) % ring_.size());
            std::size_t piece = std::min(take - done, ring_.size() - at);
            std::memcpy(ring_.data() + at, p + done, piece);
            done += piece;
        }
        end_ += take;
        p += take;
        n -= take;
        cv_.notify_all();
    }
}

void StreamSource::close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    cv_.notify_all();
}

void StreamSource::abandon() {
    std::lock_guard lock(mu_);
    abandoned_ = true;
    cv_.notify_all();
}

std::size_t StreamSource::read_at(void* out, std::size_t n, std::uint64_t offset) const {
    std::unique_lock lock(mu_);
    if (offset < base_)
        throw Error(fmt::format("{}: the upload went back to byte {}, which a compressed or split bundle cannot give "
                                "again (it is read once, in order); run the load again: it goes on from its journal",
                                label_, offset));
    cv_.wait(lock, [&] { return closed_ || abandoned_ || offset < end_; });
    if (offset >= end_) {
        if (offset >= size_) return 0;
        throw Error(fmt::format("{}: the bundle's data for it ended at byte {} of {}", label_, end_, size_));
    }
    std::size_t got = static_cast<std::size_t>(std::min<std::uint64_t>(n, end_ - offset));
    for (std::size_t done = 0; done < got;) {
        auto at = static_cast<std::size_t>((offset + done) % ring_.size());
        std::size_t piece = std::min(got - done, ring_.size() - at);
        std::memcpy(static_cast<char*>(out) + done, ring_.data() + at, piece);
        done += piece;
    }
    read_ = std::max(read_, offset + got);
    if (read_ > base_ + keep_) base_ = read_ - keep_; // older bytes may be overwritten now
    cv_.notify_all();
    return got;
}

} // namespace aas::load::detail
