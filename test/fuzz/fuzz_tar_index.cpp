// libFuzzer target: the tar header parser of image sources (src/source/tar_index.cpp,
// private to the source module): index_tar over the input as a whole uncompressed tar
// (ustar, pax 'x'/'g' records, GNU 'L'/'K' long names, base-256 sizes), then every
// member looked up through resolve_member (hard links and symlinks followed, at most 16
// hops, never out of the archive's root) and normalize_member.
//
// Properties checked beyond "no crash, no sanitizer report":
//   - every regular member's data lies inside the input (offset + size <= file size);
//   - member names are normalised (normalize_member is idempotent on them);
//   - a member resolved to a regular file is one of the members, of type '0'.
#include "../../src/source/tar_index.hpp"

#include "aas_bundle/util/error.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace aas::source::detail;
    auto read_at = [&](void* out, std::size_t n, std::uint64_t offset) -> std::size_t {
        if (offset >= size) return 0;
        std::size_t take = std::min<std::uint64_t>(n, size - offset);
        std::memcpy(out, data + offset, take);
        return take;
    };
    try {
        auto members = index_tar(read_at, size, "fuzz.tar");
        for (const auto& [name, m] : members) {
            if (normalize_member(name) != name) __builtin_trap();
            if (m.type == '0' && (m.offset > size || m.size > size - m.offset)) __builtin_trap();
            std::string resolved;
            const TarMember* r = resolve_member(members, name, &resolved);
            if (r) {
                auto it = members.find(resolved);
                if (it == members.end() || &it->second != r || r->type != '0') __builtin_trap();
            }
            // Lookups by names that are not normalised, as callers give them.
            resolve_member(members, "./" + name + "/", nullptr);
        }
    } catch (const aas::Error&) {}
    return 0;
}
