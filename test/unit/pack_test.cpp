// bundle.json (bundle/format), pack's own pieces (its blob cache, the scan of the k8s
// folder: private headers of src/pack/) and pack end to end from an OCI layout, without a
// network.

#include "testing.hpp"

#include "../../src/pack/cache.hpp"
#include "../../src/pack/k8s_scan.hpp"

#include "aas_bundle/bundle/format.hpp"
#include "aas_bundle/oci/media_types.hpp"
#include "aas_bundle/pack/pack.hpp"
#include "aas_bundle/signing/signing.hpp"
#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/util/strings.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;
using aas::testing::slurp;
using aas::testing::TempDir;
using namespace aas;

namespace {

bundle::BundleDoc sample_doc() {
    bundle::BundleDoc d;
    d.name = "shop";
    d.version = "1.0";
    d.tool = "aas-bundle test";
    d.created = bundle::rfc3339(1700000000);
    d.platforms = {"linux/amd64"};
    d.releases = {{"kv", "charts/kv", "shop", {"environments/production/kv-values.yaml"}}};
    bundle::ImageRecord img;
    img.ref = "docker.io/library/busybox:1.36";
    img.digest = oci::Digest::of("manifest");
    img.media_type = std::string(oci::media_type::oci_manifest);
    img.size = 8;
    img.platforms = {"linux/amd64"};
    img.index_digest = oci::Digest::of("index");
    img.cls = "required";
    img.sites = {{"kv", "k8s/charts/kv", "k8s/charts/kv/values.yaml", 3, "image", "", "", 0, "required"}};
    d.images.push_back(img);
    d.blobs.push_back({oci::Digest::of("manifest"), 8, img.media_type, "manifest", {img.ref}});
    d.files.push_back({"k8s", "dir", 0755, 0, {}, {}});
    d.files.push_back({"k8s/a.yaml", "file", 0600, 3, oci::Digest::of("a: "), {}});
    d.files.push_back({"k8s/l", "symlink", 0, 0, {}, "a.yaml"});
    return d;
}

// Every entry of a tar (uncompressed or zstd) as path -> content ("" for others), in order.
std::vector<std::pair<std::string, std::string>> read_tar(const fs::path& file) {
    std::vector<std::pair<std::string, std::string>> out;
    archive* a = archive_read_new();
    archive_read_support_filter_zstd(a);
    archive_read_support_format_tar(a);
    REQUIRE(archive_read_open_filename(a, file.c_str(), 65536) == ARCHIVE_OK);
    archive_entry* e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        std::string data;
        char buf[65536];
        la_ssize_t n;
        while ((n = archive_read_data(a, buf, sizeof buf)) > 0) data.append(buf, static_cast<std::size_t>(n));
        out.emplace_back(archive_entry_pathname(e), data);
    }
    archive_read_free(a);
    return out;
}

} // namespace

TEST_CASE("bundle::format bundle.json round trip") {
    auto d = sample_doc();
    auto json = d.to_json();
    auto back = bundle::BundleDoc::parse(json, "bundle.json");
    CHECK(back.to_json() == json);
    CHECK(back.images.at(0).index_digest == oci::Digest::of("index"));
    CHECK(back.files.at(1).mode == 0600);
    CHECK(back.files.at(2).target == "a.yaml");
    CHECK(json.find("\"mode\": \"0600\"") != std::string::npos);
    CHECK(bundle::rfc3339(0) == "1970-01-01T00:00:00Z");
    CHECK(bundle::blob_path(oci::Digest::of("x")) == "images/blobs/sha256/" + oci::Digest::of("x").hex());
}

TEST_CASE("bundle::image_json is the image object of bundle.json, every field") {
    auto d = sample_doc();
    d.images[0].filtered_index = true;
    d.images[0].sites[0].written = "busybox:1.36";
    d.images[0].sites[0].template_file = "k8s/charts/kv/templates/d.yaml";
    d.images[0].sites[0].template_line = 7;
    auto doc = nlohmann::ordered_json::parse(d.to_json());
    auto one = nlohmann::ordered_json::parse(bundle::image_json(d.images[0]));
    CHECK(one == doc["images"][0]);
    CHECK(one["filtered_index"] == true);
    CHECK(one["index_digest"] == oci::Digest::of("index").str());
    CHECK(one["sites"][0]["template_line"] == 7);
    d.images[0].filtered_index = false;
    CHECK_FALSE(nlohmann::json::parse(bundle::image_json(d.images[0])).contains("filtered_index"));
}

TEST_CASE("bundle::format refuses bad documents, naming the field") {
    auto j = nlohmann::json::parse(sample_doc().to_json());
    auto fails = [&](nlohmann::json doc, const std::string& what) {
        try {
            bundle::BundleDoc::parse(doc.dump(), "b.json");
            FAIL("accepted: " << what);
        } catch (const Error& e) {
            CHECK_MESSAGE(std::string(e.what()).find(what) != std::string::npos, e.what());
        }
    };
    auto d = j;
    d["format"] = "aas-bundle/v9";
    fails(d, "is not aas-bundle/v2 or aas-bundle/v1");
    d = j;
    d["files"][1]["path"] = "k8s/../../etc/passwd";
    fails(d, "files[1].path");
    d = j;
    d["files"][1]["path"] = "/etc/passwd";
    fails(d, "is not a safe relative path");
    d = j;
    d["blobs"][0]["digest"] = "sha256:1234";
    fails(d, "blobs[0].digest");
    d = j;
    d["images"][0].erase("digest");
    fails(d, "images[0].digest: missing");
    d = j;
    d["files"][1]["mode"] = "9999";
    fails(d, "not an octal mode");
    d = j;
    d["files"][1]["size"] = -1;
    fails(d, "files[1].size");
    CHECK_THROWS_WITH_AS(bundle::BundleDoc::parse("[1,2", "b.json"), doctest::Contains("b.json: not a JSON object"),
                         Error);
}

TEST_CASE("bundle::format a joined site's reference and parts are optional fields") {
    auto d = sample_doc();
    auto old_json = d.to_json();
    CHECK(old_json.find("\"parts\"") == std::string::npos); // a site without parts writes none
    auto& site = d.images[0].sites[0];
    site.reference = "registry.example.io/acme/kv:1";
    site.parts = {{"registry", "k8s/charts/kv/values.yaml", 1, "defaultImageRegistry", "", "registry.example.io", 0},
                  {"repository", "k8s/charts/kv/files/kv.yaml", 2, "", "image.name", "acme/kv", 20}};
    auto json = d.to_json();
    auto back = bundle::BundleDoc::parse(json, "bundle.json");
    CHECK(back.to_json() == json);
    REQUIRE(back.images[0].sites[0].parts.size() == 2);
    CHECK(back.images[0].sites[0].parts[1].file_key == "image.name");
    CHECK(back.images[0].sites[0].parts[1].at == 20);
    CHECK(bundle::field_problems(back).empty());
    // A bundle written before parts existed still parses, with none.
    auto before = bundle::BundleDoc::parse(old_json, "bundle.json");
    CHECK(before.images[0].sites[0].parts.empty());
    CHECK(before.images[0].sites[0].reference.empty());

    auto j = nlohmann::json::parse(json);
    auto fails = [&](nlohmann::json doc, const std::string& what) {
        try {
            bundle::BundleDoc::parse(doc.dump(), "b.json");
            FAIL("accepted: " << what);
        } catch (const Error& e) {
            CHECK_MESSAGE(std::string(e.what()).find(what) != std::string::npos, e.what());
        }
    };
    auto bad = j;
    bad["images"][0]["sites"][0]["parts"][1]["at"] = 3;
    fails(bad, "images[0].sites[0].parts[1]: its written text is not in the site's reference");
    bad = j;
    bad["images"][0]["sites"][0]["parts"][0]["part"] = "host";
    fails(bad, "parts[0].part");
    bad = j;
    bad["images"][0]["sites"][0]["parts"] = "x";
    fails(bad, "sites[0].parts: not a list");
    // A part's file is edited by load: it must be inside k8s/.
    d.images[0].sites[0].parts[1].file = "k8s/../../etc/passwd";
    auto problems = bundle::field_problems(d);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].field == "images[0].sites[0].parts[1].file");
}

TEST_CASE("util::parse_size") {
    CHECK(util::parse_size("1048576") == 1048576u);
    CHECK(util::parse_size("4095M") == std::uint64_t{4095} << 20);
    CHECK(util::parse_size("2G") == std::uint64_t{2} << 30);
    CHECK(util::parse_size("2GiB") == std::uint64_t{2} << 30);
    CHECK(util::parse_size("2gb") == std::uint64_t{2} << 30);
    CHECK(util::parse_size("1k") == 1024u);
    CHECK_FALSE(util::parse_size("0"));
    CHECK_FALSE(util::parse_size("G"));
    CHECK_FALSE(util::parse_size("2X"));
    CHECK_FALSE(util::parse_size("-1G"));
    CHECK_FALSE(util::parse_size("99999999999T"));
}

TEST_CASE("pack::pack from an OCI layout writes a signed bundle") {
    TempDir t;
    // An OCI layout with one image: config and one layer, written by hand.
    fs::path layout = t.path / "layout";
    fs::create_directories(layout / "blobs/sha256");
    auto put = [&](const std::string& data) {
        auto d = oci::Digest::of(data);
        util::write_file_atomic(layout / "blobs/sha256" / d.hex(), data);
        return d;
    };
    std::string config =
        R"({"architecture":"arm64","os":"linux","variant":"v8","rootfs":{"type":"layers","diff_ids":[]}})";
    std::string layer(5000, 'x');
    auto cd = put(config), ld = put(layer);
    std::string manifest = fmt::format(
        R"({{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{}","size":{}}},"layers":[{{"mediaType":"{}","digest":"{}","size":{}}}]}})",
        oci::media_type::oci_manifest, oci::media_type::oci_config, cd.str(), config.size(), oci::media_type::oci_layer,
        ld.str(), layer.size());
    auto md = put(manifest);
    util::write_file_atomic(layout / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    util::write_file_atomic(
        layout / "index.json",
        fmt::format(R"({{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{}","size":{},)"
                    R"("annotations":{{"org.opencontainers.image.ref.name":"2.1.0"}}}}]}})",
                    oci::media_type::oci_manifest, md.str(), manifest.size()));
    // A k8s folder and a manifest that names the image.
    fs::create_directories(t.path / "k8s/plain");
    util::write_file_atomic(t.path / "k8s/plain/app.yaml",
                            "kind: Pod\nspec:\n  containers:\n    - name: a\n      image: shop/front:2.1.0\n");
    util::write_file_atomic(
        t.path / "bundle.yaml",
        "apiVersion: aas-bundle/v1\nkind: Bundle\nname: t\nversion: '1'\nk8s: k8s\n"
        "manifests: [plain/app.yaml]\nimages:\n  - ref: shop/front:2.1.0\n    from: oci:layout:2.1.0\n");
    signing::generate_keypair(t.path / "signer");

    pack::Options o;
    o.manifest_file = t.path / "bundle.yaml";
    o.output = t.path / "out/b.tar.zst";
    o.key = t.path / "signer.key";
    o.cache_dir = t.path / "cache";
    o.created = 1700000000;
    std::vector<std::string> lines, blob_lines;
    std::vector<util::ImageProgress> events;
    o.events.line = [&](const std::string& s) { lines.push_back(s); };
    o.events.blob = [&](const std::string& s) { blob_lines.push_back(s); };
    o.events.image = [&](const util::ImageProgress& ev) { events.push_back(ev); };
    fs::create_directories(t.path / "out");
    auto r = pack::pack(o);
    REQUIRE(fs::exists(o.output));
    // Progress: the image waits, moves, then is done with all its bytes; blobs have their
    // own channel (shown with --verbose only), not the news lines.
    REQUIRE(events.size() >= 3);
    CHECK(events.front().state == util::ImageState::waiting);
    CHECK(events.front().done == 0);
    CHECK(events.back().state == util::ImageState::done);
    CHECK(events.back().ref == "docker.io/shop/front:2.1.0");
    CHECK(events.back().done == config.size() + layer.size());
    CHECK(events.back().total == config.size() + layer.size());
    CHECK_FALSE(events.back().moved_nothing);
    CHECK(std::any_of(events.begin(), events.end(), [](const auto& e) { return e.state == util::ImageState::active; }));
    CHECK(blob_lines.size() == 2);
    CHECK(std::none_of(lines.begin(), lines.end(), [](const auto& l) { return l.rfind("blob ", 0) == 0; }));
    CHECK(r.doc.images.size() == 1);
    CHECK(r.doc.images[0].ref == "docker.io/shop/front:2.1.0");
    CHECK(r.doc.images[0].digest == md);
    CHECK(r.doc.images[0].platforms == std::vector<std::string>{"linux/arm64/v8"});
    CHECK(r.bytes_downloaded == config.size() + layer.size());

    auto entries = read_tar(o.output);
    REQUIRE(entries.size() >= 10);
    CHECK(entries[0].first == "bundle.json");
    CHECK(entries[1].first == "bundle.json.sig");
    CHECK(signing::verify(t.path / "signer.pub", entries[0].second, entries[1].second));
    std::map<std::string, std::string> by_name(entries.begin(), entries.end());
    CHECK(by_name.at(bundle::blob_path(md)) == manifest);
    CHECK(by_name.at(bundle::blob_path(ld)) == layer);
    CHECK(by_name.at("k8s/plain/app.yaml").find("shop/front") != std::string::npos);
    auto doc = bundle::BundleDoc::parse(entries[0].second, "bundle.json");
    CHECK(doc.signer == signing::fingerprint(t.path / "signer.pub"));
    CHECK(doc.created == "2023-11-14T22:13:20Z");

    // Again from the cache: nothing read from the layout, the same bytes.
    auto first = util::read_file(o.output, 1u << 30);
    fs::remove(layout / "blobs/sha256" / ld.hex());
    events.clear();
    auto again = pack::pack(o);
    CHECK(again.bytes_downloaded == 0);
    // Everything in the cache: one event, done, nothing moved.
    REQUIRE(events.size() == 1);
    CHECK(events[0].state == util::ImageState::done);
    CHECK(events[0].moved_nothing);
    CHECK(events[0].done == events[0].total);
    CHECK(util::read_file(o.output, 1u << 30) == first);

    // A damaged cache entry is caught on the way into the bundle and dropped.
    util::write_file_atomic(t.path / "cache/blobs/sha256" / ld.hex(), std::string(5000, 'y'));
    CHECK_THROWS_WITH_AS(pack::pack(o), doctest::Contains("is damaged; it was removed from the cache"), Error);
    CHECK_FALSE(fs::exists(t.path / "cache/blobs/sha256" / ld.hex()));
    CHECK(util::read_file(o.output, 1u << 30) == first); // the old bundle is untouched

    // Without a key and without allow_unsigned: refused.
    o.key.clear();
    CHECK_THROWS_AS(pack::pack(o), UsageError);
}

namespace {

// A layer's descriptor for `data`.
oci::Descriptor layer_of(const std::string& data) {
    return {std::string(oci::media_type::oci_layer),
            oci::Digest::of(data),
            static_cast<std::int64_t>(data.size()),
            {},
            {},
            {}};
}

// Fills the cache with `data` through a fetch that writes it in two pieces.
void fill_with(pack::Cache& cache, const oci::Descriptor& d, const std::string& data) {
    cache.fill(d, [&](registry::BlobSink& sink) {
        sink.write(data.data(), 3);
        sink.write(data.data() + 3, data.size() - 3);
    });
}

// What copy_verified gives, and whether it vouched for it.
std::pair<bool, std::string> copied(const pack::Cache& cache, const oci::Descriptor& d) {
    std::string out;
    std::uint64_t moved = 0;
    bool good = cache.copy_verified(
        d, 4,
        [&](const char* data, std::size_t n, std::uint64_t at) {
            CHECK(at == out.size());
            out.append(data, n);
        },
        [&](std::uint64_t n) { moved += n; });
    CHECK(moved == out.size());
    return {good, out};
}

} // namespace

TEST_CASE("pack::Cache fill, hit, and a damaged copy refused, dropped and fetched again") {
    TempDir t;
    pack::Cache cache(t.path / "cache");
    const std::string data = "the bytes of a layer";
    auto d = layer_of(data);
    CHECK_FALSE(cache.has(d));
    CHECK_FALSE(copied(cache, d).first);

    fill_with(cache, d, data);
    CHECK(cache.path(d.digest) == t.path / "cache/blobs/sha256" / d.digest.hex());
    CHECK(slurp(cache.path(d.digest)) == data);
    REQUIRE(cache.has(d));
    CHECK_FALSE(cache.locate(d)->ref);
    CHECK(copied(cache, d) == std::pair<bool, std::string>{true, data});

    // A copy of the right size with other bytes is found, but not vouched for.
    util::write_file_atomic(cache.path(d.digest), std::string(data.size(), 'y'));
    CHECK(cache.has(d));
    CHECK_FALSE(copied(cache, d).first);
    cache.drop(d.digest);
    CHECK_FALSE(cache.has(d));
    fill_with(cache, d, data);
    CHECK(copied(cache, d) == std::pair<bool, std::string>{true, data});

    // A copy of another size is not found at all.
    util::write_file_atomic(cache.path(d.digest), data + "!");
    CHECK_FALSE(cache.has(d));
}

TEST_CASE("pack::Cache a failed download leaves nothing; downloads of gone processes are removed") {
    TempDir t;
    pack::Cache cache(t.path / "cache");
    auto d = layer_of("abc");
    CHECK_THROWS_WITH_AS(cache.fill(d,
                                    [](registry::BlobSink& sink) {
                                        sink.write("ab", 2);
                                        throw Error("digest mismatch");
                                    }),
                         "digest mismatch", Error);
    CHECK(fs::is_empty(t.path / "cache/blobs/sha256"));

    auto ours = t.path / "cache/blobs/sha256" / fmt::format(".tmp-{}-x", ::getpid());
    auto gone = t.path / "cache/blobs/sha256/.tmp-999999999-x"; // above any pid_max
    util::write_file_atomic(ours, "a");
    util::write_file_atomic(gone, "a");
    pack::Cache again(t.path / "cache");
    CHECK(fs::exists(ours));
    CHECK_FALSE(fs::exists(gone));
}

TEST_CASE("pack::Cache a note into a bundle gives its bytes, checked like a copy") {
    TempDir t;
    pack::Cache cache(t.path / "cache");
    const std::string data = "a layer inside a bundle";
    auto d = layer_of(data);
    util::write_file_atomic(t.path / "b.tar", "header:" + data + "tail");
    cache.add_ref(d.digest, t.path / "b.tar", 7, data.size());
    auto note = cache.ref_note(d.digest);
    REQUIRE(note);
    CHECK(note->bundle == t.path / "b.tar");
    CHECK(note->offset == 7);
    CHECK(note->size == data.size());
    auto in = cache.locate(d);
    REQUIRE(in);
    CHECK(in->ref);
    CHECK(in->where == (t.path / "b.tar").string() + " at byte 7");
    CHECK(copied(cache, d) == std::pair<bool, std::string>{true, data});

    // The bundle was written over: found (the size fits) but refused.
    util::write_file_atomic(t.path / "b.tar", "HEADER:" + std::string(data.size(), 'z') + "tail");
    CHECK_FALSE(copied(cache, d).first);
    // A note of another size, or a bundle too short for it, is not used.
    cache.add_ref(d.digest, t.path / "b.tar", 7, data.size() + 1);
    CHECK_FALSE(cache.has(d));
    cache.add_ref(d.digest, t.path / "b.tar", 100, data.size());
    CHECK_FALSE(cache.has(d));
    // A note that is not the JSON add_ref writes is ignored.
    cache.add_ref(d.digest, t.path / "b.tar", 7, data.size());
    util::write_file_atomic(t.path / "cache/refs/sha256" / d.digest.hex(), R"({"bundle":"b.tar","offset":-1})");
    CHECK_FALSE(cache.ref_note(d.digest));
    CHECK_FALSE(cache.has(d));
}

TEST_CASE("pack::scan_k8s lists every entry sorted, files hashed, and refuses what cannot be shipped") {
    TempDir t;
    auto none = pack::scan_k8s({});
    REQUIRE(none.size() == 1);
    CHECK(none[0].rec.path == "k8s");
    CHECK(none[0].rec.type == "dir");
    CHECK(none[0].rec.mode == 0755);
    CHECK(none[0].mtime == -1);

    fs::path k8s = t.path / "k8s";
    fs::create_directories(k8s / "charts/kv");
    util::write_file_atomic(k8s / "charts/kv/values.yaml", "image: kv:1\n");
    util::write_file_atomic(k8s / "a.yaml", "a: 1\n");
    fs::permissions(k8s / "a.yaml", fs::perms::owner_read | fs::perms::owner_write);
    fs::create_symlink("../a.yaml", k8s / "charts/link.yaml");
    auto entries = pack::scan_k8s(k8s);
    std::vector<std::string> paths;
    for (const auto& e : entries) paths.push_back(e.rec.path);
    CHECK(paths == std::vector<std::string>{"k8s", "k8s/a.yaml", "k8s/charts", "k8s/charts/kv",
                                            "k8s/charts/kv/values.yaml", "k8s/charts/link.yaml"});
    CHECK(entries[0].source == k8s);
    CHECK(entries[1].rec.type == "file");
    CHECK(entries[1].rec.mode == 0600);
    CHECK(entries[1].rec.size == 5);
    CHECK(entries[1].rec.sha256 == oci::Digest::of("a: 1\n"));
    CHECK(entries[1].source == k8s / "a.yaml");
    CHECK(entries[2].rec.type == "dir");
    CHECK(entries[5].rec.type == "symlink");
    CHECK(entries[5].rec.target == "../a.yaml");

    CHECK_THROWS_WITH_AS(pack::scan_k8s(k8s / "a.yaml"), doctest::Contains("is not a folder"), UsageError);

    fs::create_symlink("../../outside.yaml", k8s / "charts/out.yaml");
    REQUIRE(::mkfifo((k8s / "pipe").c_str(), 0644) == 0);
    try {
        pack::scan_k8s(k8s);
        FAIL("a symlink out of the folder and a FIFO were accepted");
    } catch (const UsageError& e) {
        std::string msg = e.what();
        CHECK(msg.find("the k8s folder cannot be shipped as it is:") == 0);
        CHECK(msg.find((k8s / "charts/out.yaml").string() + ": symlink to ../../outside.yaml points outside") !=
              std::string::npos);
        CHECK(msg.find((k8s / "pipe").string() + ": not a regular file, folder or symlink") != std::string::npos);
    }
}
