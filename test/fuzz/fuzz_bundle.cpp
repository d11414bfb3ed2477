// libFuzzer target: the bundle reader (zstd detection and decoding, libarchive's tar
// reader, the hostile-entry checks, the whole verify pass) and the JSON parsers it relies
// on (bundle.json, OCI manifests and indexes, the parts index). The first byte picks the
// parser; the rest is the input.
#include "aas_bundle/bundle/format.hpp"
#include "aas_bundle/bundle/parts.hpp"
#include "aas_bundle/oci/manifest.hpp"
#include "aas_bundle/verify/verify.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    try {
        switch (data[0] % 4) {
        case 0: { // a whole bundle, read in uneven slices
            std::size_t pos = 0, turn = 0;
            aas::verify::Options o;
            o.workers = 1 + (data[0] >> 7);
            auto r = aas::verify::verify_stream(
                [&](char* out, std::size_t n) {
                    std::size_t take = std::min({n, in.size() - pos, std::size_t{1} + (turn++ * 7919) % 4096});
                    std::memcpy(out, in.data() + pos, take);
                    pos += take;
                    return take;
                },
                "fuzz", o);
            if (r.ok() && !r.doc) __builtin_trap(); // a bundle that passes has a bundle.json
            break;
        }
        case 1:
            aas::bundle::BundleDoc::parse(in, "fuzz");
            break;
        case 2: {
            auto raw = aas::oci::RawManifest::from_bytes(std::string(in), "");
            aas::oci::parse(raw);
            break;
        }
        case 3:
            aas::bundle::PartsIndex::parse(in, "fuzz");
            break;
        }
    } catch (const aas::Error&) {}
    return 0;
}
