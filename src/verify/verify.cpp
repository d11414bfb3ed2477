// verify: one streaming pass over a bundle (see verify.hpp for the order of the checks;
// the pass itself is the Checker, checker.hpp), and the parts to copy again after it
// stopped at a bad one.

#include "aas_bundle/verify/verify.hpp"

#include "checker.hpp"

#include "aas_bundle/signing/signing.hpp"
#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/fs.hpp"

#include <fcntl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>

namespace aas::verify {
namespace fs = std::filesystem;

namespace {

std::string part_label(const bundle::PartsIndex& pi, std::size_t k) {
    return fmt::format("part {} of {} ({})", k + 1, pi.parts.size(), pi.parts[k].name);
}

/// After the reader stopped at a bad part: checks every part from `first` on, so that the
/// report names every part to copy again, and recognises parts that were swapped.
void check_remaining_parts(const bundle::BundleLocation& loc, std::size_t first, Report& rep) {
    const auto& pi = *loc.parts;
    fs::path dir = loc.index.parent_path().empty() ? fs::path(".") : loc.index.parent_path();
    for (std::size_t k = first; k < pi.parts.size(); ++k) {
        const auto& p = pi.parts[k];
        fs::path file = dir / p.name;
        util::Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
        int open_error = fd ? 0 : errno;
        std::string problem;
        oci::Hasher h;
        std::uint64_t size = 0;
        if (open_error == ENOENT) {
            problem = fmt::format("{} missing", part_label(pi, k));
        } else if (open_error != 0) {
            problem = fmt::format("{}: cannot open: {}", part_label(pi, k), util::errno_message(open_error));
        } else {
            size = util::read_chunks(fd.get(), 1u << 20, file.string(),
                                     [&](const char* data, std::size_t n) { h.update(data, n); });
            auto got = h.finish();
            std::string swapped;
            for (std::size_t j = 0; j < pi.parts.size(); ++j)
                if (j != k && pi.parts[j].sha256 == got && pi.parts[j].size == size)
                    swapped =
                        fmt::format(" it holds the bytes of {}: the parts were swapped or renamed", part_label(pi, j));
            if (k == first) { // reported by the reader already: add what was learnt
                if (!swapped.empty())
                    for (auto& pr : rep.problems)
                        if (pr.kind == "part" && pr.message.find(part_label(pi, k)) != std::string::npos)
                            pr.message += ";" + swapped;
                continue;
            }
            if (size != p.size)
                problem = fmt::format("{}: size {}, expected {}", part_label(pi, k), size, p.size);
            else if (got != p.sha256)
                problem =
                    fmt::format("{}: sha256 mismatch ({})", part_label(pi, k),
                                swapped.empty() ? "the part is damaged or is not from this bundle" : swapped.substr(1));
        }
        if (k == first) continue;
        if (!problem.empty()) rep.problems.push_back({"part", p.name, problem});
    }
}

Report verify_with(const bundle::ReadFn& read, const bundle::SkipFn& skip, const std::string& name, const Options& o) {
    Report rep;
    rep.bundle = name;
    if (!o.key.empty()) {
        std::error_code ec;
        if (!fs::is_regular_file(o.key, ec))
            throw UsageError(fmt::format("--key {}: no such file (give the public key NAME.pub that aas-bundle "
                                         "keygen wrote)",
                                         o.key.string()));
        try {
            rep.key_fingerprint = signing::public_fingerprint(o.key);
        } catch (const Error& e) {
            throw UsageError(fmt::format("--key {}: {}", o.key.string(), e.what()));
        }
    }
    detail::Checker(rep, name, o).run(read, skip);
    return rep;
}

} // namespace

Report verify_stream(const std::function<std::size_t(char*, std::size_t)>& read, const std::string& name,
                     const Options& o) {
    return verify_with(read, {}, name, o);
}

Report verify(const Options& o) {
    auto loc = bundle::locate(o.bundle);
    bundle::StreamReader in(loc);
    bundle::SkipFn skip;
    if (o.defer_blobs && !loc.parts) skip = [&](std::uint64_t n) { return in.skip(n); }; // offsets in one file
    Report rep = verify_with([&](char* out, std::size_t n) { return in.read(out, n); }, skip, o.bundle.string(), o);
    rep.warnings = loc.warnings;
    if (loc.parts) {
        rep.parts = loc.parts->parts.size();
        bool part_failed =
            std::any_of(rep.problems.begin(), rep.problems.end(), [](const Problem& p) { return p.kind == "part"; });
        if (part_failed && in.offset() < loc.parts->size) {
            auto first = static_cast<std::size_t>(in.offset() / loc.parts->part_size);
            check_remaining_parts(loc, std::min(first, loc.parts->parts.size() - 1), rep);
        }
    }
    return rep;
}

} // namespace aas::verify
