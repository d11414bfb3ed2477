// libFuzzer target: the parts index of a split bundle (aas::bundle::PartsIndex::parse,
// include/aas_bundle/bundle/parts.hpp). Beyond "no crash, no sanitizer report": an index
// that parses names only plain file names, and writing it back (to_json) gives an index
// that parses to the same JSON again.
#include "aas_bundle/bundle/parts.hpp"

#include "aas_bundle/util/error.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    aas::bundle::PartsIndex a;
    try {
        a = aas::bundle::PartsIndex::parse(in, "fuzz.parts");
    } catch (const aas::Error&) {
        return 0;
    }
    auto plain = [](const std::string& n) {
        return !n.empty() && n != "." && n != ".." && n.find('/') == std::string::npos &&
               n.find('\0') == std::string::npos;
    };
    if (!plain(a.bundle)) __builtin_trap();
    for (const auto& p : a.parts)
        if (!plain(p.name)) __builtin_trap();
    std::string once = a.to_json();
    try {
        auto b = aas::bundle::PartsIndex::parse(once, "fuzz.parts (written back)");
        if (b.to_json() != once) __builtin_trap();
    } catch (const aas::Error&) {
        __builtin_trap(); // what parse accepted and to_json wrote must parse again
    }
    return 0;
}
