// libFuzzer target: YAML values parsing and merging never crash or hang on bad input.
#include "aas_bundle/chart/values.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        auto docs = aas::chart::parse_yaml_documents(text, "fuzz.yaml");
        if (docs.size() >= 2) {
            auto merged = aas::chart::merge_values(docs[0], docs[1]);
            (void)merged.at_path("a.b[0].c");
            (void)merged.truthy();
        }
    } catch (const aas::Error&) {}
    return 0;
}
