#include "cache.hpp"

#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/util/signals.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace aas::pack {
namespace fs = std::filesystem;

namespace {

const char* algorithm_dir(const oci::Digest& d) {
    return d.algorithm() == oci::Algorithm::sha256 ? "sha256" : "sha512";
}

// A download into a new temporary file of the cache.
class FileSink : public registry::BlobSink {
public:
    // Creates the file from `tmpl` (mkstemp's XXXXXX at its end).
    explicit FileSink(std::string tmpl) : name_(std::move(tmpl)) {
        fd_ = util::Fd(::mkstemp(name_.data()));
        if (!fd_)
            throw Error(fmt::format("creating a file in the cache {}: {}", fs::path(name_).parent_path().string(),
                                    util::errno_message(errno)));
    }
    const std::string& name() const { return name_; }

    void write(const char* p, std::size_t n) override {
        while (n > 0) {
            ssize_t w = ::write(fd_.get(), p, n);
            if (w < 0) {
                if (errno == EINTR) continue;
                throw Error(fmt::format("writing {}: {}", name_, util::errno_message(errno)));
            }
            p += w;
            n -= static_cast<std::size_t>(w);
        }
    }
    void reset() override {
        if (::ftruncate(fd_.get(), 0) != 0 || ::lseek(fd_.get(), 0, SEEK_SET) < 0)
            throw Error(fmt::format("truncating {}: {}", name_, util::errno_message(errno)));
    }

    // Makes the file readable by all, syncs and closes it.
    void finish() {
        if (::fchmod(fd_.get(), 0644) != 0 || ::fsync(fd_.get()) != 0 || ::close(fd_.release()) != 0)
            throw Error(fmt::format("writing {}: {}", name_, util::errno_message(errno)));
    }

private:
    std::string name_;
    util::Fd fd_;
};

} // namespace

Cache::Cache(fs::path root) : dir_(std::move(root) / "blobs") {
    std::error_code ec;
    fs::create_directories(dir_ / "sha256", ec);
    fs::create_directories(dir_ / "sha512", ec);
    if (ec) throw Error(fmt::format("creating the cache folder {}: {}", dir_.string(), ec.message()));
    // Downloads of processes that are gone.
    for (const char* alg : {"sha256", "sha512"}) {
        for (const auto& e : fs::directory_iterator(dir_ / alg, ec)) {
            auto name = e.path().filename().string();
            if (name.rfind(".tmp-", 0) != 0) continue;
            long pid = std::strtol(name.c_str() + 5, nullptr, 10);
            if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) fs::remove(e.path(), ec);
        }
    }
}

fs::path Cache::path(const oci::Digest& d) const {
    return dir_ / algorithm_dir(d) / d.hex();
}

fs::path Cache::ref_path(const oci::Digest& d) const {
    return dir_.parent_path() / "refs" / algorithm_dir(d) / d.hex();
}

std::optional<Cache::Located> Cache::locate(const oci::Descriptor& d) const {
    auto size = static_cast<std::uint64_t>(d.size);
    auto open_at = [&](const fs::path& file, std::uint64_t offset) -> std::optional<Located> {
        util::Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
        struct stat st {};
        if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
            static_cast<std::uint64_t>(st.st_size) < offset + size)
            return std::nullopt;
        return Located{std::move(fd), offset, file.string(), false};
    };
    if (auto own = open_at(path(d.digest), 0); own && ::lseek(own->fd.get(), 0, SEEK_END) == d.size) return own;
    auto note = ref_note(d.digest);
    if (!note || note->size != size) return std::nullopt;
    auto in = open_at(note->bundle, note->offset);
    if (in) {
        in->where = fmt::format("{} at byte {}", in->where, in->offset);
        in->ref = true;
    }
    return in;
}

bool Cache::copy_verified(const oci::Descriptor& d, std::size_t chunk,
                          const std::function<void(const char*, std::size_t, std::uint64_t)>& out,
                          const std::function<void(std::uint64_t)>& moved) const {
    auto in = locate(d);
    if (!in) return false;
    const auto size = static_cast<std::uint64_t>(d.size);
    std::vector<char> buf(chunk);
    oci::Hasher h;
    std::uint64_t at = 0;
    while (at < size) {
        auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - at));
        std::size_t got = util::pread_some(in->fd.get(), buf.data(), want, in->offset + at, in->where);
        if (got == 0) break;
        moved(got);
        h.update(buf.data(), got);
        out(buf.data(), got, at);
        at += got;
    }
    return at == size && h.finish() == d.digest;
}

void Cache::add_ref(const oci::Digest& d, const fs::path& bundle, std::uint64_t offset, std::uint64_t size) const {
    auto file = ref_path(d);
    std::error_code ec;
    fs::create_directories(file.parent_path(), ec);
    nlohmann::ordered_json j = {{"bundle", bundle.string()}, {"offset", offset}, {"size", size}};
    util::write_file_atomic(file, j.dump() + "\n",
                            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                fs::perms::others_read,
                            /*durable=*/false);
}

std::optional<Cache::RefNote> Cache::ref_note(const oci::Digest& d) const {
    std::string text;
    try {
        text = util::read_file(ref_path(d), 64u << 10);
    } catch (const Error&) {
        return std::nullopt;
    }
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object() || !j.contains("bundle") || !j["bundle"].is_string() || !j.contains("offset") ||
        !j["offset"].is_number_unsigned() || !j.contains("size") || !j["size"].is_number_unsigned())
        return std::nullopt;
    return RefNote{j["bundle"].get<std::string>(), j["offset"].get<std::uint64_t>(), j["size"].get<std::uint64_t>()};
}

void Cache::fill(const oci::Descriptor& d, const std::function<void(registry::BlobSink&)>& fetch) {
    auto final_path = path(d.digest);
    FileSink sink((final_path.parent_path() / fmt::format(".tmp-{}-{}-XXXXXX", ::getpid(), d.digest.hex())).string());
    util::RemoveOnSignal on_signal(sink.name()); // a download in progress is not kept on SIGINT/SIGTERM
    try {
        fetch(sink); // verifies size and digest while streaming
        sink.finish();
        if (::rename(sink.name().c_str(), final_path.c_str()) != 0)
            throw Error(fmt::format("renaming {} into the cache: {}", sink.name(), util::errno_message(errno)));
    } catch (...) {
        ::unlink(sink.name().c_str());
        throw;
    }
}

void Cache::drop(const oci::Digest& d) const {
    ::unlink(path(d).c_str());
    ::unlink(ref_path(d).c_str());
}

} // namespace aas::pack
