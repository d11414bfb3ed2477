// libFuzzer target: the template engine and the image scanner on malformed templates and
// values: errors and diagnostics, never crashes or hangs. Input: values YAML, a line
// "#--#", then a template.
#include "aas_bundle/chart/template.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string input(reinterpret_cast<const char*>(data), size);
    auto cut = input.find("#--#");
    std::string values_text = cut == std::string::npos ? std::string() : input.substr(0, cut);
    std::string tmpl = cut == std::string::npos ? input : input.substr(cut + 4);
    aas::chart::Chart chart;
    chart.name = "fuzz";
    chart.version = "1.0.0";
    chart.app_version = "1.0";
    chart.display = "fuzz";
    try {
        chart.values = aas::chart::parse_yaml(values_text, "values.yaml");
    } catch (const aas::Error&) {}
    aas::chart::File helpers{
        "templates/_helpers.tpl", "fuzz/templates/_helpers.tpl",
        R"({{- define "img" -}}{{ printf "%s/%s:%s" .registry .repository (.tag | toString) }}{{- end -}})"};
    aas::chart::File file{"templates/x.yaml", "fuzz/templates/x.yaml", tmpl};
    chart.templates = {helpers, file};
    try {
        auto co = aas::chart::coalesce(chart, {});
        aas::chart::tmpl::TemplateSet ts;
        ts.add(helpers);
        ts.add(file);
        aas::chart::tmpl::Context ctx;
        ctx.chart = &co;
        auto r = ts.render(file.display, ctx);
        (void)aas::chart::tmpl::scan_images(r);
    } catch (const aas::Error&) {}
    return 0;
}
