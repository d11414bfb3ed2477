// verify: one pass over in-memory bundles written by BundleWriter, altered, or built by
// hand (ustar headers) to be hostile.

#include "testing.hpp"

#include "aas_bundle/bundle/format.hpp"
#include "aas_bundle/bundle/writer.hpp"
#include "aas_bundle/verify/verify.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using aas::testing::slurp;
using aas::testing::TempDir;
using aas::oci::Digest;

namespace {

const std::string ref = "docker.io/shop/a:1";

struct Sample {
    std::string layer = std::string(300000, 'L') + "end";
    std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
    std::string manifest, index, doc_json, values = "replicas: 1\n";
    aas::bundle::BundleDoc doc;

    Sample() {
        manifest = fmt::format(
            R"({{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
            R"("config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},)"
            R"("layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{}}}]}})",
            Digest::of(config).str(), config.size(), Digest::of(layer).str(), layer.size());
        index = fmt::format(R"({{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
                            R"("manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                            R"("digest":"{}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"{}"}}}}]}})",
                            Digest::of(manifest).str(), manifest.size(), ref);
        doc.name = "t";
        doc.version = "1";
        aas::bundle::ImageRecord img;
        img.ref = ref;
        img.digest = Digest::of(manifest);
        img.media_type = "application/vnd.oci.image.manifest.v1+json";
        img.size = static_cast<std::int64_t>(manifest.size());
        img.cls = "required";
        doc.images.push_back(img);
        auto blob = [&](const std::string& data, const char* mt, const char* kind) {
            doc.blobs.push_back({Digest::of(data), static_cast<std::int64_t>(data.size()), mt, kind, {ref}});
        };
        blob(manifest, "application/vnd.oci.image.manifest.v1+json", "manifest");
        blob(config, "application/vnd.oci.image.config.v1+json", "config");
        blob(layer, "application/vnd.oci.image.layer.v1.tar+gzip", "layer");
        std::sort(doc.blobs.begin(), doc.blobs.end(), [](const auto& a, const auto& b) { return a.digest < b.digest; });
        doc.files.push_back({"images", "dir", 0755, 0, {}, {}});
        doc.files.push_back({"images/index.json", "file", 0644, index.size(), Digest::of(index), {}});
        doc.files.push_back({"k8s", "dir", 0755, 0, {}, {}});
        doc.files.push_back({"k8s/values.yaml", "file", 0644, values.size(), Digest::of(values), {}});
        doc_json = doc.to_json();
    }

    /// The bundle's bytes as BundleWriter writes them.
    std::string write(const fs::path& dir, bool zstd, const std::string& layer_as_written = "") {
        fs::path out = dir / (zstd ? "b.tar.zst" : "b.tar");
        aas::bundle::WriteOptions o;
        o.zstd = zstd;
        aas::bundle::BundleWriter w(out, o);
        w.add_file("bundle.json", doc_json);
        w.add_directory("images");
        w.add_file("images/index.json", index);
        for (const auto& b : doc.blobs) {
            std::string data = b.kind == "manifest" ? manifest : b.kind == "config" ? config : layer;
            if (b.kind == "layer" && !layer_as_written.empty()) data = layer_as_written;
            w.add_file(aas::bundle::blob_path(b.digest), data);
        }
        w.add_directory("k8s");
        w.add_file("k8s/values.yaml", values);
        w.commit();
        return slurp(out);
    }
};

aas::verify::Report run(const std::string& bytes, unsigned workers = 2) {
    std::size_t pos = 0;
    aas::verify::Options o;
    o.workers = workers;
    return aas::verify::verify_stream(
        [&](char* out, std::size_t n) {
            std::size_t take = std::min(n, bytes.size() - pos);
            std::memcpy(out, bytes.data() + pos, take);
            pos += take;
            return take;
        },
        "mem", o);
}

std::string all(const aas::verify::Report& r) {
    std::string s;
    for (const auto& p : r.problems) s += p.kind + ": " + p.message + "\n";
    return s;
}

// A ustar header + data, by hand (so that it can be anything).
std::string ustar(const std::string& name, char type, const std::string& data = "", const std::string& link = "") {
    char h[512] = {};
    std::memcpy(h, name.data(), std::min<std::size_t>(name.size(), 100));
    std::snprintf(h + 100, 8, "%07o", 0644);
    std::snprintf(h + 108, 8, "%07o", 0);
    std::snprintf(h + 116, 8, "%07o", 0);
    std::snprintf(h + 124, 12, "%011lo", static_cast<unsigned long>(data.size()));
    std::snprintf(h + 136, 12, "%011o", 0);
    h[156] = type;
    std::memcpy(h + 157, link.data(), std::min<std::size_t>(link.size(), 100));
    std::memcpy(h + 257, "ustar", 6);
    std::memcpy(h + 263, "00", 2);
    std::memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(h + 148, 8, "%06o", sum);
    std::string out(h, 512);
    out += data;
    out.append((512 - data.size() % 512) % 512, '\0');
    return out;
}

} // namespace

TEST_CASE("verify: a bundle as written passes, plain and zstd, with any number of workers") {
    TempDir d;
    Sample s;
    for (bool zstd : {false, true}) {
        auto bytes = s.write(d.path, zstd);
        for (unsigned workers : {1u, 2u, 3u}) {
            auto r = run(bytes, workers);
            INFO(all(r));
            CHECK(r.ok());
            CHECK(r.blobs_checked == 3);
            CHECK(r.files_checked == 4);
            CHECK(r.signature == aas::verify::Signature::unsigned_);
            CHECK(r.bytes_hashed == s.layer.size() + s.config.size() + s.manifest.size() + s.index.size() + s.values.size());
        }
    }
}

TEST_CASE("verify: a changed layer is named with its image") {
    TempDir d;
    Sample s;
    std::string bad = s.layer;
    bad[1000] = 'X';
    auto r = run(s.write(d.path, true, bad));
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0].kind == "blob");
    CHECK(r.problems[0].message ==
          fmt::format("blob {} (layer of {}): content hash mismatch (sha256 {})", Digest::of(s.layer).str(), ref,
                      Digest::of(bad).str()));
}

TEST_CASE("verify: truncated and damaged streams stop the pass with the offset") {
    TempDir d;
    Sample s;
    auto tar = s.write(d.path, false);
    auto r = run(tar.substr(0, 200000));
    CHECK(r.stopped);
    CHECK(all(r).find("runcated") != std::string::npos);
    CHECK(all(r).find("were not checked") != std::string::npos);

    auto zst = s.write(d.path, true);
    zst[zst.size() / 2] ^= 0x55;
    r = run(zst);
    CHECK(!r.ok());
    CHECK(r.stopped);
    CHECK(all(r).find("zstd") != std::string::npos);

    CHECK(all(run("")).find("the file is empty") != std::string::npos);
    CHECK(all(run(std::string(2048, 'x'))).find("not a tar archive") != std::string::npos);
}

TEST_CASE("verify: hostile entries are refused, every one") {
    Sample s;
    std::string tar = ustar("bundle.json", '0', s.doc_json);
    tar += ustar("../escape", '0', "x");
    tar += ustar("/etc/cron.d/x", '0', "x");
    tar += ustar("k8s/hard", '1', "", "k8s/values.yaml");
    tar += ustar("k8s/link", '2', "", "../../etc/shadow");
    tar += ustar("k8s/ok-link", '2', "", "values.yaml");
    tar += ustar("k8s/dev", '3');
    tar += ustar("k8s/fifo", '6');
    tar += std::string(1024, '\0');
    auto r = run(tar);
    auto text = all(r);
    INFO(text);
    CHECK(text.find("\"../escape\"") != std::string::npos);
    CHECK(text.find("the name is absolute") != std::string::npos);
    CHECK(text.find("hard link") != std::string::npos);
    CHECK(text.find("outside k8s/") != std::string::npos);
    CHECK(text.find("character device") != std::string::npos);
    CHECK(text.find("FIFO") != std::string::npos);
    // k8s/ok-link stays inside k8s/: not refused, only unlisted
    CHECK(text.find("k8s/ok-link: a symlink in the archive but not listed") != std::string::npos);
    std::size_t refused = 0;
    for (const auto& p : r.problems) refused += p.kind == "refused";
    CHECK(refused == 6);
}

TEST_CASE("verify: bundle.json must come first and be sane") {
    CHECK(all(run(ustar("x", '0', "y") + std::string(1024, '\0'))).find("not bundle.json") != std::string::npos);
    CHECK(all(run(ustar("bundle.json", '0', "{}") + std::string(1024, '\0'))).find("bundle.json") != std::string::npos);
}

TEST_CASE("verify: extract_to writes the accepted entries in the same pass") {
    TempDir d;
    Sample s;
    s.write(d.path, true);
    aas::verify::Options o;
    o.bundle = d.path / "b.tar.zst";
    o.extract_to = d.path / "out";
    o.extract = [](const std::string& name) { return name == "k8s" || name.rfind("k8s/", 0) == 0 ||
                                                     name.rfind("images/blobs/", 0) == 0; };
    auto r = aas::verify::verify(o);
    INFO(all(r));
    CHECK(r.ok());
    CHECK(slurp(d.path / "out/k8s/values.yaml") == s.values);
    CHECK(slurp(d.path / "out" / aas::bundle::blob_path(Digest::of(s.layer))) == s.layer);
    CHECK_FALSE(fs::exists(d.path / "out/images/index.json")); // not accepted by the filter
    CHECK_FALSE(fs::exists(d.path / "out/bundle.json"));
    for (const auto& e : fs::recursive_directory_iterator(d.path / "out"))
        CHECK(e.path().extension() != ".partial");

    // An unlisted entry appended to a plain tar is reported and never written.
    s.write(d.path, false);
    std::string bytes = slurp(d.path / "b.tar");
    auto end = bytes.find_last_not_of('\0');
    std::size_t cut = (end / 512 + 1) * 512;
    bytes = bytes.substr(0, cut) + ustar("k8s/extra.yaml", '0', "added: true\n") + std::string(1024, '\0');
    std::ofstream(d.path / "c.tar", std::ios::binary) << bytes;
    o.bundle = d.path / "c.tar";
    o.extract_to = d.path / "out2";
    r = aas::verify::verify(o);
    CHECK_FALSE(r.ok());
    CHECK(all(r).find("k8s/extra.yaml") != std::string::npos);
    CHECK(fs::exists(d.path / "out2/k8s/values.yaml"));
    CHECK_FALSE(fs::exists(d.path / "out2/k8s/extra.yaml"));
}
