// Image sources: OCI layouts and docker-save archives built here, byte by byte.

#include "aas_bundle/oci/digest.hpp"
#include "aas_bundle/oci/media_types.hpp"
#include "aas_bundle/source/source.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using aas::oci::Descriptor;
using aas::oci::Digest;
namespace mt = aas::oci::media_type;

namespace {

class TempDir {
public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "aas-source-test-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

void write(const fs::path& p, std::string_view data) {
    fs::create_directories(p.parent_path());
    std::ofstream f(p, std::ios::binary);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

/// A tar written by hand: ustar headers, long names as pax 'x' or GNU 'L' headers.
class TarWriter {
public:
    enum class LongNames { pax, gnu };
    explicit TarWriter(LongNames style = LongNames::pax) : style_(style) {}

    void file(const std::string& name, std::string_view data) {
        entry(name, '0', data.size(), "");
        body(data);
    }
    void symlink(const std::string& name, const std::string& target) { entry(name, '2', 0, target); }
    void dir(const std::string& name) { entry(name, '5', 0, ""); }
    std::string finish() { return out_ + std::string(1024, '\0'); }

private:
    void entry(const std::string& name, char type, std::size_t size, const std::string& link) {
        if (name.size() > 100) {
            if (style_ == LongNames::pax) {
                std::string rec = pax_record("path", name);
                header("PaxHeaders/long", 'x', rec.size(), "");
                body(rec);
            } else {
                header("././@LongLink", 'L', name.size() + 1, "");
                body(name + '\0');
            }
        }
        header(name.substr(0, 100), type, size, link);
    }
    static std::string pax_record(const std::string& key, const std::string& value) {
        std::size_t base = key.size() + value.size() + 3; // ' ', '=', '\n'
        std::size_t len = base + 1;
        while (std::to_string(len).size() + base != len) ++len;
        return fmt::format("{} {}={}\n", len, key, value);
    }
    void header(const std::string& name, char type, std::size_t size, const std::string& link) {
        std::string h(512, '\0');
        auto put = [&](std::size_t off, std::string_view s) { h.replace(off, s.size(), s); };
        put(0, name);
        put(100, "0000644");
        put(108, "0000000");
        put(116, "0000000");
        put(124, fmt::format("{:011o}", size));
        put(136, "00000000000");
        put(148, "        ");
        h[156] = type;
        put(157, link);
        put(257, std::string_view("ustar\0"
                                  "00",
                                  8));
        unsigned sum = 0;
        for (unsigned char c : h) sum += c;
        put(148, fmt::format("{:06o}", sum));
        h[154] = '\0';
        out_ += h;
    }
    void body(std::string_view data) {
        out_ += data;
        out_ += std::string((512 - data.size() % 512) % 512, '\0');
    }
    LongNames style_;
    std::string out_;
};

/// gzip of `data` (libarchive's raw format with the gzip filter).
std::string gzip(std::string_view data) {
    archive* a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_raw(a);
    archive_write_set_bytes_in_last_block(a, 1);
    std::vector<char> buf(data.size() + 65536);
    std::size_t used = 0;
    REQUIRE(archive_write_open_memory(a, buf.data(), buf.size(), &used) == ARCHIVE_OK);
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, "data");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    REQUIRE(archive_write_header(a, e) == ARCHIVE_OK);
    REQUIRE(archive_write_data(a, data.data(), data.size()) == static_cast<la_ssize_t>(data.size()));
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
    return std::string(buf.data(), used);
}

struct MemorySink : aas::registry::BlobSink {
    std::string data;
    void write(const char* d, std::size_t n) override { data.append(d, n); }
    void reset() override { data.clear(); }
};

std::string fetch(aas::source::ImageSource& s, const Descriptor& d, std::uint64_t* counted = nullptr) {
    MemorySink sink;
    s.fetch_blob(d, sink, [&](std::uint64_t n) {
        if (counted) *counted += n;
    });
    return sink.data;
}

Descriptor desc(std::string_view media_type, std::string_view bytes) {
    Descriptor d;
    d.media_type = std::string(media_type);
    d.digest = Digest::of(bytes);
    d.size = static_cast<std::int64_t>(bytes.size());
    return d;
}

std::string descriptor_json(const Descriptor& d, const std::string& extra = "") {
    return fmt::format(R"({{"mediaType":"{}","digest":"{}","size":{}{}}})", d.media_type, d.digest.str(), d.size,
                       extra);
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const aas::Error& e) {
        return e.what();
    }
    return "(no error)";
}

/// A small image: a layer tar, a config whose diff_ids name it, an OCI manifest over them.
struct TestImage {
    std::string layer_tar; // uncompressed
    std::string layer_gz;
    std::string config;
    std::string manifest; // OCI manifest with the gzip layer
    explicit TestImage(const std::string& seed) {
        TarWriter t;
        t.file("data/" + seed + ".txt", "payload of " + seed + "\n");
        layer_tar = t.finish();
        layer_gz = gzip(layer_tar);
        config = fmt::format(R"({{"architecture":"amd64","os":"linux","config":{{"Labels":{{"seed":"{}"}}}},)"
                             R"("rootfs":{{"type":"layers","diff_ids":["{}"]}}}})",
                             seed, Digest::of(layer_tar).str());
        // Deliberately indented and with no mediaType for the child test.
        manifest = fmt::format("{{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"{}\",\n   \"config\": {},\n"
                               "   \"layers\": [{}]\n}}",
                               mt::oci_manifest, descriptor_json(config_desc()), descriptor_json(layer_desc()));
    }
    Descriptor config_desc() const { return desc(mt::oci_config, config); }
    Descriptor layer_desc() const { return desc(mt::oci_layer_gzip, layer_gz); }
    Descriptor manifest_desc() const { return desc(mt::oci_manifest, manifest); }
    std::string config_hex() const { return Digest::of(config).hex(); }
};

void write_blob(const fs::path& layout, std::string_view bytes) {
    write(layout / "blobs" / "sha256" / Digest::of(bytes).hex(), bytes);
}

/// An OCI layout with "1.0" (an image) and "2.0" (an index over a second image whose
/// manifest omits mediaType).
struct OciFixture {
    TempDir dir;
    fs::path layout;
    TestImage one{"one"}, two{"two"};
    std::string child, index;
    OciFixture() {
        layout = dir.path() / "layout";
        write(layout / "oci-layout", R"({"imageLayoutVersion": "1.0.0"})");
        child = fmt::format(R"({{"schemaVersion":2,"config":{},"layers":[{}]}})", descriptor_json(two.config_desc()),
                            descriptor_json(two.layer_desc()));
        index = fmt::format(
            R"({{"schemaVersion":2,"mediaType":"{}","manifests":[{}]}})", mt::oci_index,
            descriptor_json(desc(mt::oci_manifest, child), R"(,"platform":{"architecture":"amd64","os":"linux"})"));
        for (const auto* s : {&one.config, &one.layer_gz, &one.manifest, &two.config, &two.layer_gz, &child, &index})
            write_blob(layout, *s);
        write(layout / "index.json",
              fmt::format(
                  R"({{"schemaVersion":2,"manifests":[{},{}]}})",
                  descriptor_json(one.manifest_desc(), R"(,"annotations":{"org.opencontainers.image.ref.name":"1.0"})"),
                  descriptor_json(desc(mt::oci_index, index),
                                  R"(,"annotations":{"org.opencontainers.image.ref.name":"2.0"})")));
    }
};

/// The manifest a classic archive of `img` (uncompressed layer) must get.
std::string synthesised(const TestImage& img) {
    return fmt::format(
        R"({{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
        R"("config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},)"
        R"("layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}]}})",
        Digest::of(img.config).str(), img.config.size(), Digest::of(img.layer_tar).str(), img.layer_tar.size());
}

/// A classic `docker save` tar of `images` (tag -> image), layers in "<dir>/layer.tar".
std::string classic_tar(const std::vector<std::pair<std::string, const TestImage*>>& images,
                        TarWriter::LongNames style = TarWriter::LongNames::pax, const std::string& layer_dir = "") {
    TarWriter t(style);
    std::string manifest = "[";
    for (std::size_t i = 0; i < images.size(); ++i) {
        const auto& [tag, img] = images[i];
        std::string dir = layer_dir.empty() ? Digest::of(img->layer_tar).hex() : layer_dir + std::to_string(i);
        t.dir(dir + "/");
        t.file(dir + "/VERSION", "1.0");
        t.file(dir + "/layer.tar", img->layer_tar);
        t.file(img->config_hex() + ".json", img->config);
        manifest += fmt::format(R"({}{{"Config":"{}.json","RepoTags":["{}"],"Layers":["{}/layer.tar"]}})", i ? "," : "",
                                img->config_hex(), tag, dir);
    }
    manifest += "]";
    t.file("manifest.json", manifest);
    return t.finish();
}

aas::ref::Reference R(std::string_view s) {
    return aas::ref::Reference::parse(s);
}

} // namespace

TEST_CASE("source::oci_layout reads tagged images, child manifests and blobs") {
    OciFixture f;
    auto src = aas::source::open_oci_layout(f.layout, "1.0");
    CHECK(src->describe() == "oci:" + fs::absolute(f.layout).lexically_normal().string() + ":1.0");
    auto top = src->top();
    CHECK(top.bytes == f.one.manifest);
    CHECK(top.digest == Digest::of(f.one.manifest));
    CHECK(top.media_type == mt::oci_manifest);
    std::uint64_t counted = 0;
    CHECK(fetch(*src, f.one.layer_desc(), &counted) == f.one.layer_gz);
    CHECK(counted == f.one.layer_gz.size());
    CHECK(fetch(*src, f.one.config_desc()) == f.one.config);

    auto idx = aas::source::open_oci_layout(f.layout, "2.0");
    auto itop = idx->top();
    CHECK(itop.bytes == f.index);
    CHECK(itop.media_type == mt::oci_index);
    auto child = idx->manifest(Digest::of(f.child));
    CHECK(child.bytes == f.child);
    CHECK(child.media_type == mt::oci_manifest); // from the index's descriptor
    CHECK(fetch(*idx, f.two.layer_desc()) == f.two.layer_gz);

    SUBCASE("open_from with a tag, relative to the base folder") {
        auto s = aas::source::open_from("oci:layout:1.0", f.dir.path(), R("x/y:1"));
        CHECK(s->top().bytes == f.one.manifest);
    }
}

TEST_CASE("source::oci_layout tag selection errors") {
    OciFixture f;
    auto abs = fs::absolute(f.layout).lexically_normal().string();
    CHECK(error_of([&] { aas::source::open_oci_layout(f.layout, "3.0"); }) ==
          "oci:" + abs + ":3.0: no image tagged '3.0' in index.json (it has: 1.0, 2.0)");
    auto many = error_of([&] { aas::source::open_oci_layout(f.layout, ""); });
    CHECK(many.find("index.json lists 2 images; name one with oci:PATH:NAME, NAME being one of: 1.0, 2.0") !=
          std::string::npos);
    CHECK(error_of([&] { aas::source::open_oci_layout(f.dir.path() / "missing", ""); }).find("not a folder") !=
          std::string::npos);
    fs::remove(f.layout / "oci-layout");
    CHECK(error_of([&] { aas::source::open_oci_layout(f.layout, "1.0"); }).find("there is no oci-layout file") !=
          std::string::npos);
}

TEST_CASE("source::oci_layout detects corrupted blobs and manifests") {
    OciFixture f;
    auto src = aas::source::open_oci_layout(f.layout, "1.0");
    auto layer = f.one.layer_desc();
    std::string bad = f.one.layer_gz;
    bad[bad.size() / 2] ^= 0x01;
    write(f.layout / "blobs" / "sha256" / layer.digest.hex(), bad);
    auto err = error_of([&] { fetch(*src, layer); });
    CHECK(err.find(layer.digest.str()) != std::string::npos);
    CHECK(err.find("digest mismatch") != std::string::npos);

    write(f.layout / "blobs" / "sha256" / layer.digest.hex(), f.one.layer_gz + "x");
    err = error_of([&] { fetch(*src, layer); });
    CHECK(err.find(fmt::format("the file has {} bytes, the descriptor says {}", layer.size + 1, layer.size)) !=
          std::string::npos);

    write(f.layout / "blobs" / "sha256" / Digest::of(f.one.manifest).hex(), f.one.manifest + " ");
    err = error_of([&] { src->top(); });
    CHECK(err.find(Digest::of(f.one.manifest).str()) != std::string::npos);
}

TEST_CASE("source::oci_layout refuses path traversal in index.json digests") {
    TempDir dir;
    auto layout = dir.path() / "layout";
    write(layout / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    write(dir.path() / "secret", "top secret");
    for (const std::string& digest : std::vector<std::string>{"sha256:../../secret", "sha256/../../../secret",
                                                              "../secret", "sha256:" + std::string(62, 'a') + "/.."}) {
        write(layout / "index.json",
              fmt::format(R"({{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{}","size":10}}]}})",
                          mt::oci_manifest, digest));
        auto err = error_of([&] { aas::source::open_oci_layout(layout, ""); });
        CHECK_MESSAGE(err.find("index.json") != std::string::npos, err);
        CHECK(err.find("top secret") == std::string::npos);
    }
}

TEST_CASE("source::docker_archive classic layout gets a deterministic synthesised manifest") {
    TempDir dir;
    TestImage app("app"), other("other");
    auto tar = classic_tar({{"shop/app:2.1", &app}, {"shop/other:1", &other}});
    write(dir.path() / "x.tar", tar);
    write(dir.path() / "y.tar", tar);

    auto src = aas::source::open_docker_archive(dir.path() / "x.tar", R("docker.io/shop/app:2.1"));
    CHECK(src->describe() == "docker-archive:" + (dir.path() / "x.tar").string());
    auto top = src->top();
    CHECK(top.bytes == synthesised(app));
    CHECK(top.media_type == mt::oci_manifest);
    CHECK(top.digest == Digest::of(synthesised(app)));
    CHECK(src->manifest(top.digest).bytes == top.bytes);
    CHECK(error_of([&] { src->manifest(Digest::of("nope")); }).find("the archive has no manifest") !=
          std::string::npos);

    // Same content, another file and another open: the same digest.
    auto again = aas::source::open_docker_archive(dir.path() / "y.tar", R("shop/app:2.1"));
    CHECK(again->top().digest == top.digest);

    auto parsed = std::get<aas::oci::ImageManifest>(aas::oci::parse(top));
    REQUIRE(parsed.layers.size() == 1);
    CHECK(fetch(*src, parsed.layers[0]) == app.layer_tar);
    CHECK(fetch(*src, parsed.config) == app.config);

    auto o = aas::source::open_docker_archive(dir.path() / "x.tar", R("shop/other:1"));
    CHECK(o->top().bytes == synthesised(other));

    CHECK(error_of([&] { aas::source::open_docker_archive(dir.path() / "x.tar", R("shop/app:9")); }) ==
          "docker-archive:" + (dir.path() / "x.tar").string() +
              ": no image tagged docker.io/shop/app:9 in the archive (it has: shop/app:2.1, "
              "shop/other:1)");

    // One image needs no match.
    write(dir.path() / "one.tar", classic_tar({{"shop/app:2.1", &app}}));
    auto one = aas::source::open_docker_archive(dir.path() / "one.tar", R("whatever/else:1"));
    CHECK(one->top().bytes == synthesised(app));

    SUBCASE("open_from docker-archive: relative to the base folder") {
        auto s = aas::source::open_from("docker-archive:x.tar", dir.path(), R("shop/other:1"));
        CHECK(s->top().bytes == synthesised(other));
    }
}

TEST_CASE("source::docker_archive verifies layers against the synthesised digests") {
    TempDir dir;
    TestImage app("app");
    std::string tar = classic_tar({{"shop/app:2.1", &app}});
    auto pos = tar.find("payload of app");
    REQUIRE(pos != std::string::npos);
    tar[pos] = 'P'; // the layer no longer matches its diff_id
    write(dir.path() / "x.tar", tar);
    auto src = aas::source::open_docker_archive(dir.path() / "x.tar", R("shop/app:2.1"));
    auto parsed = std::get<aas::oci::ImageManifest>(aas::oci::parse(src->top()));
    auto err = error_of([&] { fetch(*src, parsed.layers[0]); });
    CHECK(err.find("docker-archive:" + (dir.path() / "x.tar").string()) == 0);
    CHECK(err.find(Digest::of(app.layer_tar).str()) != std::string::npos);
    CHECK(err.find("/layer.tar") != std::string::npos);
    CHECK(err.find("digest mismatch") != std::string::npos);

    // A truncated archive is refused when opened.
    write(dir.path() / "cut.tar", tar.substr(0, 1500));
    CHECK(error_of([&] {
              aas::source::open_docker_archive(dir.path() / "cut.tar", R("shop/app:2.1"));
          }).find("truncated") != std::string::npos);
    // Not a tar at all.
    write(dir.path() / "junk.tar", std::string(2048, 'j'));
    CHECK(error_of([&] {
              aas::source::open_docker_archive(dir.path() / "junk.tar", R("shop/app:2.1"));
          }).find("not a tar archive") != std::string::npos);
}

TEST_CASE("source::docker_archive reads pax and GNU long names and symlinked layers") {
    TempDir dir;
    TestImage app("app");
    std::string long_dir = std::string(120, 'd') + "/" + std::string(60, 'e');
    for (auto style : {TarWriter::LongNames::pax, TarWriter::LongNames::gnu}) {
        write(dir.path() / "long.tar", classic_tar({{"shop/app:2.1", &app}}, style, long_dir));
        auto src = aas::source::open_docker_archive(dir.path() / "long.tar", R("shop/app:2.1"));
        auto top = src->top();
        CHECK(top.bytes == synthesised(app));
        auto parsed = std::get<aas::oci::ImageManifest>(aas::oci::parse(top));
        CHECK(fetch(*src, parsed.layers[0]) == app.layer_tar);
    }

    // Older `docker save` links a shared layer to its first copy.
    TarWriter t;
    t.file("aaa/layer.tar", app.layer_tar);
    t.symlink("bbb/layer.tar", "../aaa/layer.tar");
    t.file(app.config_hex() + ".json", app.config);
    t.file("manifest.json",
           fmt::format(R"([{{"Config":"{}.json","RepoTags":null,"Layers":["bbb/layer.tar"]}}])", app.config_hex()));
    write(dir.path() / "link.tar", t.finish());
    auto src = aas::source::open_docker_archive(dir.path() / "link.tar", R("shop/app:2.1"));
    CHECK(src->top().bytes == synthesised(app));
    auto parsed = std::get<aas::oci::ImageManifest>(aas::oci::parse(src->top()));
    CHECK(fetch(*src, parsed.layers[0]) == app.layer_tar);
}

TEST_CASE("source::docker_archive gzip-compressed archives and gzip layers") {
    TempDir dir;
    TestImage app("app"), other("other");
    auto tar = classic_tar({{"shop/app:2.1", &app}, {"shop/other:1", &other}});
    write(dir.path() / "x.tar.gz", gzip(tar));
    auto src = aas::source::open_docker_archive(dir.path() / "x.tar.gz", R("shop/other:1"));
    CHECK(src->top().bytes == synthesised(other));
    auto parsed = std::get<aas::oci::ImageManifest>(aas::oci::parse(src->top()));
    CHECK(fetch(*src, parsed.layers[0]) == other.layer_tar);
    CHECK(fetch(*src, parsed.config) == other.config);

    // A layer file that is itself gzip: tar+gzip, digest of the file's bytes.
    TarWriter t;
    t.file("l/layer.tar", app.layer_gz);
    t.file(app.config_hex() + ".json", app.config);
    t.file("manifest.json",
           fmt::format(R"([{{"Config":"{}.json","RepoTags":["shop/app:2.1"],"Layers":["l/layer.tar"]}}])",
                       app.config_hex()));
    write(dir.path() / "gzl.tar", t.finish());
    auto g = aas::source::open_docker_archive(dir.path() / "gzl.tar", R("shop/app:2.1"));
    auto gm = std::get<aas::oci::ImageManifest>(aas::oci::parse(g->top()));
    REQUIRE(gm.layers.size() == 1);
    CHECK(gm.layers[0].media_type == mt::oci_layer_gzip);
    CHECK(gm.layers[0].digest == Digest::of(app.layer_gz));
    CHECK(fetch(*g, gm.layers[0]) == app.layer_gz);
}

TEST_CASE("source::docker_archive Docker 25 OCI layout inside the tar") {
    TempDir dir;
    TestImage app("app"), other("other");
    // Docker 25 writes uncompressed layers and OCI manifests into blobs/sha256/.
    auto manifest_of = [](const TestImage& img) {
        return fmt::format(R"({{"schemaVersion":2,"mediaType":"{}","config":{},"layers":[{}]}})", mt::oci_manifest,
                           descriptor_json(img.config_desc()), descriptor_json(desc(mt::oci_layer, img.layer_tar)));
    };
    auto build = [&](bool annotations) {
        TarWriter t;
        t.file("oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
        std::string entries, save;
        int i = 0;
        for (auto [name, img] : {std::pair{std::string("docker.io/shop/app:2.1"), &app},
                                 std::pair{std::string("docker.io/shop/other:1"), &other}}) {
            std::string m = manifest_of(*img);
            for (const auto* b : {&img->config, &img->layer_tar, &m})
                t.file("blobs/sha256/" + Digest::of(*b).hex(), *b);
            std::string ann = annotations ? fmt::format(R"(,"annotations":{{"io.containerd.image.name":"{}",)"
                                                        R"("org.opencontainers.image.ref.name":"{}"}})",
                                                        name, name.substr(name.rfind(':') + 1))
                                          : "";
            entries += (i ? "," : "") + descriptor_json(desc(mt::oci_manifest, m), ann);
            save += fmt::format(R"({}{{"Config":"blobs/sha256/{}","RepoTags":["{}"],"Layers":["blobs/sha256/{}"]}})",
                                i ? "," : "", img->config_hex(), name.substr(10), Digest::of(img->layer_tar).hex());
            ++i;
        }
        t.file("index.json",
               fmt::format(R"({{"schemaVersion":2,"mediaType":"{}","manifests":[{}]}})", mt::oci_index, entries));
        t.file("manifest.json", "[" + save + "]");
        return t.finish();
    };
    for (bool annotations : {true, false}) {
        CAPTURE(annotations);
        write(dir.path() / "new.tar", build(annotations));
        auto src = aas::source::open_docker_archive(dir.path() / "new.tar", R("shop/other:1"));
        auto top = src->top();
        CHECK(top.bytes == manifest_of(other)); // the archive's own manifest, not a synthesised one
        auto parsed = std::get<aas::oci::ImageManifest>(aas::oci::parse(top));
        CHECK(fetch(*src, parsed.layers[0]) == other.layer_tar);
        CHECK(aas::source::open_docker_archive(dir.path() / "new.tar", R("docker.io/shop/app:2.1"))->top().bytes ==
              manifest_of(app));
        auto err = error_of([&] { aas::source::open_docker_archive(dir.path() / "new.tar", R("shop/app:3")); });
        CHECK_MESSAGE(err.find("no image tagged docker.io/shop/app:3 in the archive (it has: ") != std::string::npos,
                      err);
        CHECK_MESSAGE(err.find("shop/other:1") != std::string::npos, err);
    }
}

TEST_CASE("source::open_from parses the source kinds") {
    TempDir dir;
    auto wanted = R("shop/app:1");
    // Split at the first ':' (containers/image's rule): the name may hold '/' and ':'.
    auto err = error_of([&] { aas::source::open_from("oci:lay:localhost/x/y:2.0", dir.path(), wanted); });
    CHECK_MESSAGE(err.find("oci:" + (dir.path() / "lay").string() + ":localhost/x/y:2.0: cannot open") == 0, err);
    err = error_of([&] { aas::source::open_from("oci:/abs/layout:v1.2", dir.path(), wanted); });
    CHECK_MESSAGE(err.find("oci:/abs/layout:v1.2:") == 0, err);
    err = error_of([&] { aas::source::open_from("docker-archive:/abs/x.tar", dir.path(), wanted); });
    CHECK_MESSAGE(err.find("docker-archive:/abs/x.tar: cannot open the archive") == 0, err);
    err = error_of([&] { aas::source::open_from("docker-archive:/abs/x.tar:localhost/a/b:1", dir.path(), wanted); });
    CHECK_MESSAGE(err.find("docker-archive:/abs/x.tar: cannot open the archive") == 0, err);
    err = error_of([&] { aas::source::open_from("oci-archive:/abs/x.tar:1.0", dir.path(), wanted); });
    CHECK_MESSAGE(err.find("oci-archive:/abs/x.tar:1.0") == 0, err);
    CHECK_THROWS_AS(aas::source::open_from("docker-archive:x.tar:Not A Ref", dir.path(), wanted), aas::UsageError);
    CHECK_THROWS_AS(aas::source::open_from("oci-archive:", dir.path(), wanted), aas::UsageError);

    CHECK_THROWS_AS(aas::source::open_from("oci:", dir.path(), wanted), aas::UsageError);
    CHECK_THROWS_AS(aas::source::open_from("oci:dir:", dir.path(), wanted), aas::UsageError);
    CHECK_THROWS_AS(aas::source::open_from("docker-archive:", dir.path(), wanted), aas::UsageError);
    try {
        aas::source::open_from("docker://shop/app:1", dir.path(), wanted);
        FAIL("no error");
    } catch (const aas::UsageError& e) {
        CHECK(std::string(e.what()).find("use docker-archive:PATH") != std::string::npos);
    }
}
