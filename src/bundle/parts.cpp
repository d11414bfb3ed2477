// The parts index of a split bundle, locating a bundle from a user path, and reading a
// bundle (whole or split) as one verified stream.

#include "aas_bundle/bundle/parts.hpp"

#include "aas_bundle/bundle/format.hpp"
#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

namespace aas::bundle {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view parts_format = "aas-bundle-parts/v1";
constexpr std::uint64_t max_index_size = 1u << 20;
constexpr std::size_t block_size = 1u << 20;

bool plain_file_name(std::string_view name) {
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
           name.find('\0') == std::string_view::npos;
}

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

/// "X.partNNN" -> "X"; otherwise empty.
std::string strip_part_suffix(const std::string& file) {
    auto dot = file.rfind(".part");
    if (dot == std::string::npos || dot == 0 || !all_digits(std::string_view(file).substr(dot + 5))) return {};
    return file.substr(0, dot);
}

bool ends_with(const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

} // namespace

// ---------------------------------------------------------------------------------------
// PartsIndex

std::string PartsIndex::to_json() const {
    nlohmann::ordered_json j;
    j["format"] = parts_format;
    j["bundle"] = bundle;
    j["size"] = size;
    j["sha256"] = sha256.str();
    j["part_size"] = part_size;
    auto arr = nlohmann::ordered_json::array();
    for (const auto& p : parts) {
        nlohmann::ordered_json e;
        e["name"] = p.name;
        e["size"] = p.size;
        e["sha256"] = p.sha256.str();
        arr.push_back(std::move(e));
    }
    j["parts"] = std::move(arr);
    return j.dump(2) + "\n";
}

namespace {

// The parts index's field readers: "reading parts index WHERE: CTX"KEY" must be ...".
struct IndexReader {
    const std::string& where;

    [[noreturn]] void fail(const std::string& why) const {
        throw Error(fmt::format("reading parts index {}: {}", where, why));
    }
    std::string str(const nlohmann::json& obj, const char* key, const std::string& ctx) const {
        auto it = obj.find(key);
        if (it == obj.end() || !it->is_string()) fail(fmt::format("{}\"{}\" must be a string", ctx, key));
        return it->get<std::string>();
    }
    std::uint64_t uint(const nlohmann::json& obj, const char* key, const std::string& ctx) const {
        auto it = obj.find(key);
        if (it == obj.end() || !it->is_number_unsigned())
            fail(fmt::format("{}\"{}\" must be a non-negative integer", ctx, key));
        return it->get<std::uint64_t>();
    }
    oci::Digest digest(const nlohmann::json& obj, const std::string& ctx) const {
        std::string s = str(obj, "sha256", ctx);
        oci::Digest d;
        try {
            d = oci::Digest::parse(s);
        } catch (const Error& e) {
            fail(ctx + e.what());
        }
        if (d.algorithm() != oci::Algorithm::sha256) fail(fmt::format("{}\"sha256\" is not a sha256 digest", ctx));
        return d;
    }
};

// Part `i` of `count`: a new plain name, part_size long (the last one 1 to part_size).
PartInfo read_part_info(const IndexReader& r, const nlohmann::json& e, std::size_t i, std::size_t count,
                        std::uint64_t part_size, std::set<std::string>& seen) {
    std::string ctx = fmt::format("part {} of {}: ", i + 1, count);
    if (!e.is_object()) r.fail(ctx + "expected a JSON object");
    PartInfo p;
    p.name = r.str(e, "name", ctx);
    if (!plain_file_name(p.name))
        r.fail(fmt::format("{}name \"{}\" is not a plain file name in the index's folder", ctx, p.name));
    if (!seen.insert(p.name).second) r.fail(fmt::format("{}name \"{}\" appears twice", ctx, p.name));
    p.size = r.uint(e, "size", ctx);
    p.sha256 = r.digest(e, ctx);
    bool last = i + 1 == count;
    if (!last && p.size != part_size)
        r.fail(fmt::format("{}size {} differs from part_size {} (only the last part may be shorter)", ctx, p.size,
                           part_size));
    if (last && (p.size == 0 || p.size > part_size))
        r.fail(fmt::format("{}size {} of the last part is not between 1 and part_size {}", ctx, p.size, part_size));
    return p;
}

} // namespace

PartsIndex PartsIndex::parse(std::string_view json, const std::string& where) {
    IndexReader r{where};
    if (json.size() > max_index_size) r.fail(fmt::format("larger than the limit of {} bytes", max_index_size));
    if (auto why = util::json_depth_problem(json, max_json_depth)) r.fail(*why);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(json);
    } catch (const nlohmann::json::exception& e) {
        r.fail(fmt::format("not valid JSON: {}", e.what()));
    }
    if (!j.is_object()) r.fail("expected a JSON object");

    std::string format = r.str(j, "format", "");
    if (format != parts_format)
        r.fail(fmt::format("unsupported format \"{}\" (expected \"{}\")", format, parts_format));

    PartsIndex pi;
    pi.bundle = r.str(j, "bundle", "");
    if (!plain_file_name(pi.bundle)) r.fail(fmt::format("\"bundle\" \"{}\" is not a plain file name", pi.bundle));
    pi.size = r.uint(j, "size", "");
    pi.sha256 = r.digest(j, "");
    pi.part_size = r.uint(j, "part_size", "");
    if (pi.part_size == 0) r.fail("\"part_size\" must be more than 0");

    auto parts = j.find("parts");
    if (parts == j.end() || !parts->is_array() || parts->empty()) r.fail("\"parts\" must be a non-empty array");
    std::set<std::string> seen;
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < parts->size(); ++i) {
        PartInfo p = read_part_info(r, (*parts)[i], i, parts->size(), pi.part_size, seen);
        if (sum + p.size < sum) r.fail("the part sizes overflow");
        sum += p.size;
        pi.parts.push_back(std::move(p));
    }
    if (sum != pi.size) r.fail(fmt::format("the part sizes add up to {} bytes, but \"size\" is {}", sum, pi.size));
    return pi;
}

// ---------------------------------------------------------------------------------------
// locate

static BundleLocation split_at(const fs::path& index) {
    BundleLocation loc;
    loc.index = index;
    std::string text;
    try {
        text = util::read_file(index, max_index_size);
    } catch (const Error& e) {
        throw Error(fmt::format("reading parts index {}: {}", index.string(), e.what()));
    }
    loc.parts = PartsIndex::parse(text, index.string());
    // Part files beside it that the index does not list are not read: say so.
    std::string name = index.filename().string();
    std::string base = name.substr(0, name.size() - std::string_view(".parts").size());
    std::set<std::string> listed;
    for (const auto& p : loc.parts->parts) listed.insert(p.name);
    std::error_code ec;
    fs::path dir = index.parent_path().empty() ? fs::path(".") : index.parent_path();
    std::vector<std::string> extra;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        std::string f = it->path().filename().string();
        if (strip_part_suffix(f) == base && !listed.count(f)) extra.push_back(f);
    }
    std::sort(extra.begin(), extra.end());
    for (const auto& f : extra)
        loc.warnings.push_back(fmt::format("{} is not listed in the parts index {} ({} parts) and is ignored: it is "
                                           "left from another bundle, or was copied by mistake",
                                           (dir / f).string(), index.string(), loc.parts->parts.size()));
    return loc;
}

BundleLocation locate(const fs::path& path) {
    std::error_code ec;
    std::string file = path.filename().string();
    if (file.empty()) throw UsageError(fmt::format("no bundle at {}: not a file name", path.string()));

    if (ends_with(file, ".parts")) {
        if (!fs::exists(path, ec)) throw UsageError(fmt::format("no bundle at {}", path.string()));
        return split_at(path);
    }
    std::string base = strip_part_suffix(file);
    if (!base.empty()) {
        fs::path index = path.parent_path() / (base + ".parts");
        if (!fs::exists(index, ec))
            throw UsageError(fmt::format("{} is one part of a split bundle, but its parts index {} is missing and "
                                         "is needed to read the parts in order and check them",
                                         path.string(), index.string()));
        return split_at(index);
    }
    auto st = fs::status(path, ec);
    if (fs::exists(st)) {
        if (fs::is_directory(st))
            throw UsageError(fmt::format("no bundle at {}: it is a folder, not a bundle file", path.string()));
        BundleLocation loc;
        loc.whole = path;
        return loc;
    }
    fs::path index = path;
    index += ".parts";
    if (fs::exists(index, ec)) return split_at(index);
    throw UsageError(fmt::format("no bundle at {}", path.string()));
}

// ---------------------------------------------------------------------------------------
// StreamReader

struct StreamReader::Impl {
    BundleLocation loc;
    int fd = -1;
    std::uint64_t offset = 0;
    // split only
    fs::path dir;
    std::size_t part = 0;        // index of the open part (or of the next to open)
    std::uint64_t part_left = 0; // bytes of the open part still to serve
    bool done = false;
    std::string failure; // a PartError already thrown: every later read throws it again
    oci::Hasher whole;
    std::vector<char> buf;
    fs::path none; // whole_file() of a split bundle

    ~Impl() {
        if (fd >= 0) ::close(fd);
    }

    std::string part_label(std::size_t k) const {
        return fmt::format("part {} of {} ({})", k + 1, loc.parts->parts.size(), loc.parts->parts[k].name);
    }

    /// Opens part `part`, hashes it whole and checks it against the index, then rewinds.
    void open_part() {
        const PartInfo& p = loc.parts->parts[part];
        fs::path file = dir / p.name;
        fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == ENOENT) throw PartError(fmt::format("{} missing", part_label(part)));
            throw PartError(
                fmt::format("{}: cannot open {}: {}", part_label(part), file.string(), util::errno_message(e)));
        }
        struct stat st;
        if (::fstat(fd, &st) != 0) throw PartError(fmt::format("{}: {}", part_label(part), util::errno_message(errno)));
        if (!S_ISREG(st.st_mode)) throw PartError(fmt::format("{}: not a regular file", part_label(part)));
        if (static_cast<std::uint64_t>(st.st_size) != p.size)
            throw PartError(fmt::format("{}: size {}, expected {}", part_label(part), st.st_size, p.size));
        buf.resize(block_size);
        oci::Hasher h;
        std::uint64_t n = 0;
        for (;;) {
            std::size_t got = read_some(buf.data(), buf.size());
            if (got == 0) break;
            h.update(buf.data(), got);
            n += got;
            if (n > p.size) break;
        }
        if (n != p.size) throw PartError(fmt::format("{}: size {}, expected {}", part_label(part), n, p.size));
        if (h.finish() != p.sha256)
            throw PartError(
                fmt::format("{}: sha256 mismatch (the part is damaged or is not from this bundle)", part_label(part)));
        if (::lseek(fd, 0, SEEK_SET) != 0)
            throw PartError(fmt::format("{}: rewinding: {}", part_label(part), util::errno_message(errno)));
        part_left = p.size;
    }

    std::size_t read_some(char* out, std::size_t n) {
        long r = util::read_retrying(fd, out, n);
        if (r >= 0) return static_cast<std::size_t>(r);
        int e = errno;
        if (loc.parts) throw PartError(fmt::format("{}: reading: {}", part_label(part), util::errno_message(e)));
        throw Error(fmt::format("reading bundle {}: {}", loc.whole.string(), util::errno_message(e)));
    }

    void close_part() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }

    std::size_t read_split(char* out, std::size_t n);

    void finish_split() {
        done = true;
        const PartsIndex& pi = *loc.parts;
        oci::Digest got = whole.finish();
        if (offset != pi.size || got != pi.sha256)
            throw PartError(fmt::format("split bundle {}: the parts add up to {} bytes with {}, but the index says {} "
                                        "bytes with {}",
                                        loc.index.string(), offset, got.str(), pi.size, pi.sha256.str()));
    }
};

StreamReader::StreamReader(const BundleLocation& where) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.loc = where;
    if (m.loc.parts) {
        m.dir = m.loc.index.parent_path();
        if (m.dir.empty()) m.dir = ".";
        return; // parts are opened (and checked) as the reader reaches them
    }
    if (m.loc.whole.empty()) throw Error("reading a bundle: the location names neither a file nor a parts index");
    m.fd = ::open(m.loc.whole.c_str(), O_RDONLY | O_CLOEXEC);
    if (m.fd < 0) throw Error(fmt::format("reading bundle {}: {}", m.loc.whole.string(), util::errno_message(errno)));
}

StreamReader::~StreamReader() = default;

std::size_t StreamReader::read(char* out, std::size_t n) {
    Impl& m = *impl_;
    if (!m.failure.empty()) throw PartError(m.failure);
    if (n == 0 || m.done) return 0;
    if (!m.loc.parts) {
        std::size_t got = m.read_some(out, n);
        if (got == 0) m.done = true;
        m.offset += got;
        return got;
    }
    try {
        return m.read_split(out, n);
    } catch (const PartError& e) {
        m.failure = e.what();
        throw;
    }
}

std::size_t StreamReader::Impl::read_split(char* out, std::size_t n) {
    const auto& parts = loc.parts->parts;
    while (fd < 0 || part_left == 0) {
        if (fd >= 0) {
            close_part();
            ++part;
        }
        if (part >= parts.size()) {
            finish_split();
            return 0;
        }
        open_part();
    }
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n, part_left));
    std::size_t got = read_some(out, want);
    if (got == 0)
        throw PartError(
            fmt::format("{}: became shorter while being read ({} bytes short)", part_label(part), part_left));
    whole.update(out, got);
    part_left -= got;
    offset += got;
    return got;
}

std::uint64_t StreamReader::offset() const {
    return impl_->offset;
}

bool StreamReader::skip(std::uint64_t n) {
    Impl& m = *impl_;
    if (m.loc.parts || !m.failure.empty() || m.done || n > static_cast<std::uint64_t>(INT64_MAX - 1) ||
        m.offset > static_cast<std::uint64_t>(INT64_MAX) - n)
        return false;
    if (::lseek(m.fd, static_cast<off_t>(n), SEEK_CUR) < 0) return false;
    m.offset += n;
    return true;
}

const fs::path& StreamReader::whole_file() const {
    return impl_->loc.parts ? impl_->none : impl_->loc.whole;
}

} // namespace aas::bundle
