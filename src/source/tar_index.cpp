// The tar header grammar (see tar_index.hpp): the index of an uncompressed tar, member
// names and links. The stores that read through it are in file_store.cpp.

#include "tar_index.hpp"

#include "aas_bundle/util/error.hpp"

#include <fmt/format.h>

#include <array>
#include <cstring>

namespace aas::source::detail {

namespace {

constexpr std::size_t block = 512;
constexpr std::uint64_t max_name_bytes = 64u << 10; // GNU long names and pax headers

std::string field(const char* p, std::size_t n) {
    std::size_t len = 0;
    while (len < n && p[len] != '\0') ++len;
    return std::string(p, len);
}

/// A numeric header field: octal (spaces/NULs around it), or GNU base-256.
std::optional<std::uint64_t> number(const unsigned char* p, std::size_t n) {
    if (n > 0 && (p[0] & 0x80)) {
        if (p[0] & 0x40) return std::nullopt; // negative
        std::uint64_t v = p[0] & 0x3f;
        for (std::size_t i = 1; i < n; ++i) {
            if (v >> 56) return std::nullopt;
            v = (v << 8) | p[i];
        }
        return v;
    }
    std::size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\0')) ++i;
    std::uint64_t v = 0;
    bool any = false;
    for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) {
        if (v >> 60) return std::nullopt;
        v = v * 8 + (p[i] - '0');
        any = true;
    }
    for (; i < n; ++i)
        if (p[i] != ' ' && p[i] != '\0') return std::nullopt;
    if (!any) return 0;
    return v;
}

bool checksum_ok(const unsigned char* h) {
    auto stored = number(h + 148, 8);
    if (!stored) return false;
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < block; ++i) sum += (i >= 148 && i < 156) ? ' ' : h[i];
    return sum == *stored;
}

/// pax records "LEN key=value\n" -> the keys we use.
void parse_pax(std::string_view data, std::map<std::string, std::string>& out, const std::string& where) {
    while (!data.empty()) {
        if (data.front() == '\0') break; // padding
        auto sp = data.find(' ');
        std::uint64_t len = 0;
        bool ok = sp != std::string_view::npos && sp > 0;
        for (std::size_t i = 0; ok && i < sp; ++i) {
            if (data[i] < '0' || data[i] > '9')
                ok = false;
            else
                len = len * 10 + static_cast<std::uint64_t>(data[i] - '0');
            if (len > data.size()) ok = false;
        }
        if (!ok || len <= sp + 1 || data[len - 1] != '\n')
            throw Error(fmt::format("{}: a pax extended header is malformed", where));
        std::string_view rec = data.substr(sp + 1, len - sp - 2);
        auto eq = rec.find('=');
        if (eq != std::string_view::npos) out[std::string(rec.substr(0, eq))] = std::string(rec.substr(eq + 1));
        data.remove_prefix(len);
    }
}

std::string parent_of(const std::string& path) {
    auto slash = path.rfind('/');
    return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

/// Joins `base` and a relative link target, resolving "." and ".."; nullopt when it leaves
/// the root.
std::optional<std::string> join_link(const std::string& base, std::string_view target) {
    std::vector<std::string> parts;
    auto push_all = [&](std::string_view s) -> bool {
        std::size_t i = 0;
        while (i <= s.size()) {
            auto j = s.find('/', i);
            if (j == std::string_view::npos) j = s.size();
            auto part = s.substr(i, j - i);
            if (part == "..") {
                if (parts.empty()) return false;
                parts.pop_back();
            } else if (!part.empty() && part != ".") {
                parts.emplace_back(part);
            }
            i = j + 1;
        }
        return true;
    };
    if (!target.empty() && target.front() == '/') {
        if (!push_all(target)) return std::nullopt;
    } else if (!push_all(base) || !push_all(target)) {
        return std::nullopt;
    }
    std::string out;
    for (const auto& p : parts) {
        if (!out.empty()) out += '/';
        out += p;
    }
    return out;
}

} // namespace

// ---------------------------------------------------------------------------------------

std::string normalize_member(std::string_view name) {
    std::string out;
    std::size_t i = 0;
    while (i <= name.size()) {
        auto j = name.find('/', i);
        if (j == std::string_view::npos) j = name.size();
        auto part = name.substr(i, j - i);
        if (!part.empty() && part != ".") {
            if (!out.empty()) out += '/';
            out += part;
        }
        i = j + 1;
    }
    return out;
}

const TarMember* resolve_member(const std::map<std::string, TarMember>& members, const std::string& path,
                                std::string* resolved) {
    std::string cur = normalize_member(path);
    for (int hops = 0; hops <= 16; ++hops) {
        auto it = members.find(cur);
        if (it == members.end()) return nullptr;
        const auto& m = it->second;
        if (m.type == '0') {
            if (resolved) *resolved = cur;
            return &m;
        }
        if (m.type == '1') {
            cur = m.link;
        } else if (m.type == '2') {
            auto next = join_link(parent_of(cur), m.link);
            if (!next) return nullptr;
            cur = *next;
        } else {
            return nullptr;
        }
    }
    return nullptr;
}

namespace {

using ReadAt = std::function<std::size_t(void* out, std::size_t n, std::uint64_t offset)>;

/// One pass over the headers of an uncompressed tar: the state the grammar carries from a
/// header to the next (pax records, GNU long names) and the members found so far.
class TarIndexer {
public:
    TarIndexer(const ReadAt& read_at, std::uint64_t file_size, const std::string& where)
        : read_at_(read_at), file_size_(file_size), where_(where) {}

    std::map<std::string, TarMember> run() {
        while (read_header()) {
            const char* hc = reinterpret_cast<const char*>(h_.data());
            auto size = number(h_.data() + 124, 12);
            if (!size) throw Error(fmt::format("{}: the tar header at byte {} has an invalid size", where_, pos_));
            char type = hc[156];
            std::uint64_t data_at = pos_ + block;
            std::uint64_t member_size = *size;
            if (type == 'x' || type == 'L' || type == 'K' || type == 'g')
                read_extension(type, data_at, *size);
            else
                member_size = add_member(hc, type, data_at, *size);
            skip_data(data_at, member_size);
        }
        return std::move(members_);
    }

private:
    /// Reads the header at pos_ into h_; false at the end of the archive (the end of the
    /// file, or a zero block). Throws on a truncated archive or a bad checksum.
    bool read_header() {
        if (pos_ == file_size_) return false; // no end-of-archive blocks: accepted
        if (pos_ > file_size_)
            throw Error(
                fmt::format("{}: the archive ends inside the member before byte {} (truncated?)", where_, pos_));
        if (pos_ + block > file_size_ || read_at_(h_.data(), block, pos_) != block)
            throw Error(
                fmt::format("{}: the archive ends inside the tar header at byte {} (truncated?)", where_, pos_));
        bool zero = true;
        for (auto c : h_)
            if (c != 0) {
                zero = false;
                break;
            }
        if (zero) return false; // end of archive
        if (!checksum_ok(h_.data())) {
            if (pos_ == 0)
                throw Error(fmt::format("{}: not a tar archive (the first header's checksum is wrong)", where_));
            throw Error(fmt::format("{}: the tar header at byte {} is corrupt (bad checksum)", where_, pos_));
        }
        return true;
    }

    /// The data of an extension header (pax or GNU long name), bounded by max_name_bytes.
    std::string read_data(std::uint64_t offset, std::uint64_t size, const char* what) const {
        if (size > max_name_bytes)
            throw Error(fmt::format("{}: the {} at byte {} is {} bytes, more than the limit of {}", where_, what,
                                    offset, size, max_name_bytes));
        std::string data(size, '\0');
        if (read_at_(data.data(), data.size(), offset) != data.size())
            throw Error(
                fmt::format("{}: the archive ends inside the {} at byte {} (truncated?)", where_, what, offset));
        return data;
    }

    /// Typeflags 'x' (pax records), 'L' / 'K' (GNU long name / link) for the next member;
    /// 'g' (global pax) is skipped.
    void read_extension(char type, std::uint64_t data_at, std::uint64_t size) {
        if (type == 'g') return;
        std::string data = read_data(data_at, size, type == 'x' ? "pax header" : "GNU long name");
        if (type == 'x') {
            parse_pax(data, pax_, fmt::format("{}: byte {}", where_, pos_));
        } else {
            auto& target = type == 'L' ? long_name_ : long_link_;
            target = field(data.data(), data.size());
        }
    }

    /// The member's size: the pax "size" record when there is one, else the header's.
    std::uint64_t pax_size_or(std::uint64_t header_size) const {
        auto it = pax_.find("size");
        if (it == pax_.end()) return header_size;
        std::uint64_t v = 0;
        bool ok = !it->second.empty();
        for (char c : it->second) {
            if (c < '0' || c > '9' || v > (UINT64_MAX - 9) / 10)
                ok = false;
            else
                v = v * 10 + static_cast<std::uint64_t>(c - '0');
        }
        if (!ok) throw Error(fmt::format("{}: the pax size of the member at byte {} is invalid", where_, pos_));
        return v;
    }

    /// The member's name: pax "path", a GNU long name, or the header's (POSIX prefix "/" name).
    std::string member_name(const char* hc) const {
        if (auto it = pax_.find("path"); it != pax_.end()) return it->second;
        if (long_name_) return *long_name_;
        std::string name = field(hc, 100);
        bool posix = std::memcmp(hc + 257, "ustar\0", 6) == 0;
        std::string prefix = posix ? field(hc + 345, 155) : std::string();
        if (!prefix.empty()) name = prefix + "/" + name;
        return name;
    }

    /// The member's link target: pax "linkpath", a GNU long link name, or the header's.
    std::string member_link(const char* hc) const {
        if (auto it = pax_.find("linkpath"); it != pax_.end()) return it->second;
        if (long_link_) return *long_link_;
        return field(hc + 157, 100);
    }

    /// Records the member whose header is at pos_ (a later one of the same name replaces it;
    /// one of a skipped type removes it) and forgets the extension headers. Returns the
    /// number of data bytes that follow the header (none for links).
    std::uint64_t add_member(const char* hc, char type, std::uint64_t data_at, std::uint64_t size) {
        std::uint64_t member_size = pax_size_or(size);
        std::string name = member_name(hc);
        std::string link = member_link(hc);

        TarMember m;
        m.ordinal = ordinal_++;
        m.offset = data_at;
        m.size = member_size;
        switch (type) {
        case '0':
        case '\0':
        case '7':
            m.type = '0';
            break;
        case '1':
            m.type = '1';
            m.link = normalize_member(link);
            m.size = 0; // a hard link has no data of its own
            member_size = 0;
            break;
        case '2':
            m.type = '2';
            m.link = link;
            member_size = 0;
            m.size = 0;
            break;
        case '5':
            m.type = '5';
            break;
        default:
            m.type = '?';
            break;
        }
        if (m.type == '0' && data_at + m.size > file_size_)
            throw Error(fmt::format("{}: member {} ({} bytes at byte {}) runs past the end of the archive "
                                    "(truncated?)",
                                    where_, name, m.size, data_at));
        std::string key = normalize_member(name);
        if (!key.empty() && m.type != '?')
            members_[key] = std::move(m);
        else if (!key.empty())
            members_.erase(key);
        pax_.clear();
        long_name_.reset();
        long_link_.reset();
        return member_size;
    }

    /// Moves pos_ past `member_size` data bytes at `data_at`, padded to whole blocks.
    void skip_data(std::uint64_t data_at, std::uint64_t member_size) {
        std::uint64_t padded = (member_size + block - 1) / block * block;
        if (padded < member_size || data_at + padded < data_at) // overflow
            throw Error(fmt::format("{}: the tar header at byte {} has an invalid size", where_, pos_));
        pos_ = data_at + padded;
    }

    const ReadAt& read_at_;
    const std::uint64_t file_size_;
    const std::string& where_;
    std::map<std::string, TarMember> members_;
    std::array<unsigned char, block> h_{};
    std::uint64_t pos_ = 0;
    std::uint64_t ordinal_ = 0;
    std::optional<std::string> long_name_, long_link_;
    std::map<std::string, std::string> pax_;
};

} // namespace

std::map<std::string, TarMember>
index_tar(const std::function<std::size_t(void* out, std::size_t n, std::uint64_t offset)>& read_at,
          std::uint64_t file_size, const std::string& where) {
    return TarIndexer(read_at, file_size, where).run();
}

} // namespace aas::source::detail
