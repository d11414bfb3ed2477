// libFuzzer target: image reference parsing.
#include "aas_bundle/ref/reference.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    std::string err;
    if (auto r = aas::ref::Reference::try_parse(text, &err)) {
        auto again = aas::ref::Reference::parse(r->str());
        if (!(again == *r)) __builtin_trap(); // printing and parsing must round-trip
    }
    return 0;
}
