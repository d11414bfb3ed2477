// libarchive behind TarArchive (tar_archive.hpp): the header fields its callers read.

#include "aas_bundle/bundle/tar_archive.hpp"

#include "aas_bundle/util/error.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>

namespace aas::bundle {

namespace {
constexpr std::size_t file_block = 1u << 16;
} // namespace

TarArchive::TarArchive(Compression compression, std::string_view what) : a_(archive_read_new()) {
    if (!a_) throw Error(fmt::format("{}: out of memory creating an archive reader", what));
    if (compression == Compression::gzip)
        archive_read_support_filter_gzip(a_);
    else
        archive_read_support_filter_all(a_);
    archive_read_support_format_tar(a_);
}

TarArchive::~TarArchive() {
    archive_read_free(a_);
}

bool TarArchive::open(std::string_view data) {
    return archive_read_open_memory(a_, data.data(), data.size()) == ARCHIVE_OK;
}

bool TarArchive::open(const std::filesystem::path& path) {
    return archive_read_open_filename(a_, path.c_str(), file_block) == ARCHIVE_OK;
}

TarArchive::Next TarArchive::next(Member& m) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(a_, &e);
    if (r == ARCHIVE_EOF) return Next::end;
    if (r < ARCHIVE_WARN) return Next::failed;
    m = Member{};
    if (const char* name = archive_entry_pathname(e))
        m.name = name;
    else if (const char* utf8 = archive_entry_pathname_utf8(e))
        m.utf8_name = utf8;
    switch (archive_entry_filetype(e)) {
    case AE_IFREG:
        m.type = Member::Type::file;
        break;
    case AE_IFDIR:
        m.type = Member::Type::dir;
        break;
    case AE_IFLNK:
        m.type = Member::Type::symlink;
        break;
    default:
        m.type = Member::Type::other;
        break;
    }
    if (archive_entry_size_is_set(e)) m.size = archive_entry_size(e);
    if (const char* hl = archive_entry_hardlink(e)) m.hardlink = hl;
    if (const char* target = archive_entry_symlink(e)) m.symlink = target;
    return Next::member;
}

std::optional<std::size_t> TarArchive::read(char* out, std::size_t n) {
    la_ssize_t got = archive_read_data(a_, out, n);
    if (got < 0) return std::nullopt;
    return static_cast<std::size_t>(got);
}

const char* TarArchive::error() const {
    return archive_error_string(a_);
}

} // namespace aas::bundle
