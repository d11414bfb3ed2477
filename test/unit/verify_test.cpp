// verify: one pass over in-memory bundles written by BundleWriter, altered, or built by
// hand (ustar headers) to be hostile.

#include "testing.hpp"

#include "aas_bundle/bundle/format.hpp"
#include "aas_bundle/bundle/writer.hpp"
#include "aas_bundle/signing/signing.hpp"
#include "aas_bundle/verify/verify.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using aas::oci::Digest;
using aas::testing::slurp;
using aas::testing::TempDir;

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
        index =
            fmt::format(R"({{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
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
    std::snprintf(h + 100, 8, "%07o", type == '5' ? 0755 : 0644);
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
            CHECK(r.bytes_hashed ==
                  s.layer.size() + s.config.size() + s.manifest.size() + s.index.size() + s.values.size());
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
    CHECK(r.problems[0].message == fmt::format("blob {} (layer of {}): content hash mismatch (sha256 {})",
                                               Digest::of(s.layer).str(), ref, Digest::of(bad).str()));
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
    o.extract = [](const std::string& name) {
        return name == "k8s" || name.rfind("k8s/", 0) == 0 || name.rfind("images/blobs/", 0) == 0;
    };
    auto r = aas::verify::verify(o);
    INFO(all(r));
    CHECK(r.ok());
    CHECK(slurp(d.path / "out/k8s/values.yaml") == s.values);
    CHECK(slurp(d.path / "out" / aas::bundle::blob_path(Digest::of(s.layer))) == s.layer);
    CHECK_FALSE(fs::exists(d.path / "out/images/index.json")); // not accepted by the filter
    CHECK_FALSE(fs::exists(d.path / "out/bundle.json"));
    for (const auto& e : fs::recursive_directory_iterator(d.path / "out")) CHECK(e.path().extension() != ".partial");

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

namespace {
// The Sample's bundle as a hand-made plain tar, with `extra` entries before the end
// marker and `extra_files` listed in bundle.json; `tail` after the end marker.
std::string hand_tar(Sample& s, const std::string& extra, const std::vector<aas::bundle::FileRecord>& extra_files,
                     const std::string& tail = "") {
    auto doc = s.doc;
    for (const auto& f : extra_files) doc.files.push_back(f);
    std::string tar = ustar("bundle.json", '0', doc.to_json());
    tar += ustar("images", '5') + ustar("images/index.json", '0', s.index);
    for (const auto& b : doc.blobs)
        tar += ustar(aas::bundle::blob_path(b.digest), '0',
                     b.kind == "manifest" ? s.manifest
                     : b.kind == "config" ? s.config
                                          : s.layer);
    tar += ustar("k8s", '5') + ustar("k8s/values.yaml", '0', s.values) + extra;
    return tar + std::string(1024, '\0') + tail;
}

aas::bundle::FileRecord link_rec(const std::string& p, const std::string& target) {
    return {p, "symlink", 0, 0, {}, target};
}
} // namespace

TEST_CASE("verify: symlinks are resolved through each other against the whole tree") {
    Sample s;
    // The chain from the hostile-input issue: each link alone looks harmless.
    std::string extra;
    std::vector<aas::bundle::FileRecord> files;
    extra += ustar("k8s/l0", '2', "", ".");
    files.push_back(link_rec("k8s/l0", "."));
    for (int i = 1; i < 16; ++i) {
        extra += ustar(fmt::format("k8s/l{}", i), '2', "", fmt::format("l{}/..", i - 1));
        files.push_back(link_rec(fmt::format("k8s/l{}", i), fmt::format("l{}/..", i - 1)));
    }
    std::string victim = "pwned";
    extra += ustar("k8s/l15/tmp/x/victim.txt", '0', victim);
    files.push_back({"k8s/l15/tmp/x/victim.txt", "file", 0644, victim.size(), Digest::of(victim), {}});
    auto r = run(hand_tar(s, extra, files));
    auto text = all(r);
    INFO(text);
    CHECK_FALSE(r.ok());
    CHECK(text.find("entry \"k8s/l1\" refused: the symlink (-> \"l0/..\"), followed through the other symlinks, "
                    "leads to the bundle's root, outside k8s/") != std::string::npos);
    CHECK(text.find("entry \"k8s/l15\" refused") != std::string::npos);
    CHECK(text.find("entry \"k8s/l15/tmp/x/victim.txt\" refused: its path goes through the symlink \"k8s/l15\"") !=
          std::string::npos);
    CHECK(text.find("\"k8s/l0\" refused") == std::string::npos); // l0 -> . stays in k8s/

    // The shorter chain, relative to the work folder.
    std::string e2;
    std::vector<aas::bundle::FileRecord> f2;
    std::vector<std::pair<std::string, std::string>> chain = {{"s", "."},    {"t", "s/.."}, {"u", "t/.."},
                                                              {"v", "u/.."}, {"w", "v/.."}, {"x", "w/outside"}};
    for (const auto& [n, t] : chain) {
        e2 += ustar("k8s/" + n, '2', "", t);
        f2.push_back(link_rec("k8s/" + n, t));
    }
    text = all(run(hand_tar(s, e2, f2)));
    CHECK(text.find("entry \"k8s/x\" refused") != std::string::npos);
    CHECK(text.find("entry \"k8s/t\" refused") != std::string::npos);

    // Links that stay inside, through each other, pass; a loop does not.
    std::string e3 = ustar("k8s/a", '2', "", "b") + ustar("k8s/b", '2', "", "values.yaml");
    auto r3 = run(hand_tar(s, e3, {link_rec("k8s/a", "b"), link_rec("k8s/b", "values.yaml")}));
    INFO(all(r3));
    CHECK(r3.ok());
    std::string e4 = ustar("k8s/p", '2', "", "q") + ustar("k8s/q", '2', "", "p");
    CHECK(all(run(hand_tar(s, e4, {link_rec("k8s/p", "q"), link_rec("k8s/q", "p")}))).find("a loop") !=
          std::string::npos);
}

TEST_CASE("verify: setuid, setgid and sticky modes are refused") {
    Sample s;
    std::string data = "x";
    std::string entry = ustar("k8s/suid", '0', data);
    std::snprintf(entry.data() + 100, 8, "%07o", 04755); // mode field; checksum redone below
    std::memset(entry.data() + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; ++i) sum += static_cast<unsigned char>(entry[static_cast<std::size_t>(i)]);
    std::snprintf(entry.data() + 148, 8, "%06o", sum);
    auto text = all(run(hand_tar(s, entry, {{"k8s/suid", "file", 04755, data.size(), Digest::of(data), {}}})));
    INFO(text);
    CHECK(text.find("mode 4755 sets setuid, setgid or sticky bits") != std::string::npos);
    CHECK(text.find("files[4] (k8s/suid) has mode 4755") != std::string::npos);
}

TEST_CASE("verify: only zero padding may follow the end of a plain tar") {
    Sample s;
    auto clean = run(hand_tar(s, "", {}, std::string(10240, '\0')));
    INFO(all(clean));
    CHECK(clean.ok());
    auto r = run(hand_tar(s, "", {}, std::string(10, '\0') + "garbage"));
    CHECK_FALSE(r.ok());
    CHECK(all(r).find("data follows the end of the tar archive, from byte") != std::string::npos);
    // A whole entry after the end marker (what `tar -i` would extract).
    CHECK_FALSE(run(hand_tar(s, "", {}, ustar("k8s/late", '0', "late"))).ok());
}

TEST_CASE("verify: a bundle.json nested past the depth cap is refused, not parsed") {
    Sample s;
    auto json = s.doc_json;
    json.insert(json.rfind('}'), ",\"x\":" + std::string(100000, '[') + std::string(100000, ']'));
    auto r = run(ustar("bundle.json", '0', json) + std::string(1024, '\0'));
    CHECK_FALSE(r.ok());
    CHECK(all(r).find("nested more than 64 levels deep") != std::string::npos);
}

TEST_CASE("verify: with a key, nothing past an unauthenticated bundle.json is read") {
    TempDir d;
    Sample s;
    std::string bytes = s.write(d.path, false);
    REQUIRE_NOTHROW(aas::signing::generate_keypair(d.path / "k"));
    std::size_t pos = 0, asked = 0;
    aas::verify::Options o;
    o.key = d.path / "k.pub";
    bool header_called = false;
    o.on_header = [&](const aas::verify::Report&) { header_called = true; };
    auto r = aas::verify::verify_stream(
        [&](char* out, std::size_t n) {
            std::size_t take = std::min({n, bytes.size() - pos, std::size_t{4096}});
            std::memcpy(out, bytes.data() + pos, take);
            pos += take;
            asked += take;
            return take;
        },
        "mem", o);
    CHECK(r.signature == aas::verify::Signature::unsigned_);
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0].message.find("nothing after bundle.json was read") != std::string::npos);
    CHECK_FALSE(header_called);
    CHECK(r.bytes_hashed == 0);
    CHECK(asked < bytes.size() / 2); // the 300 KB layer was never read
}

TEST_CASE("verify: defer_blobs skips a plain tar's config and layer data, giving their offsets") {
    TempDir d;
    Sample s;
    s.write(d.path, false);
    aas::verify::Options o;
    o.bundle = d.path / "b.tar";
    o.defer_blobs = true;
    auto r = aas::verify::verify(o);
    INFO(all(r));
    CHECK(r.ok());
    REQUIRE(r.deferred.size() == 2); // the config and the layer; the manifest is read
    std::string bytes = slurp(d.path / "b.tar");
    for (const auto& def : r.deferred) {
        std::string data = bytes.substr(def.offset, def.size);
        CHECK(Digest::of(data) == def.digest);
    }
    CHECK(r.bytes_hashed == s.manifest.size() + s.index.size() + s.values.size());
    CHECK(r.manifests.count(Digest::of(s.manifest)) == 1);
    CHECK(r.manifests.at(Digest::of(s.manifest)) == s.manifest);
    // Skipped, so not read: the archive bytes counted include them (moved past by seeking).
    CHECK(r.archive_bytes >= bytes.size() - 1024);

    // Deferred means not checked: a changed layer passes here, and its offset gives the
    // changed bytes (the caller hashes them).
    std::string bad = s.layer;
    bad[7] = 'X';
    s.write(d.path, false, bad);
    r = aas::verify::verify(o);
    CHECK(r.ok());
    // A .tar.zst cannot be read at offsets: everything is read and hashed, on_blob sees
    // the config and layer data.
    s.write(d.path, true, bad);
    o.bundle = d.path / "b.tar.zst";
    std::map<std::string, std::string> seen;
    o.on_blob = [&](const aas::bundle::BlobRecord& b) -> std::function<void(const char*, std::size_t)> {
        auto key = b.kind;
        return [&seen, key](const char* p, std::size_t n) {
            if (p)
                seen[key].append(p, n);
            else
                seen[key] += "<end>";
        };
    };
    r = aas::verify::verify(o);
    CHECK(r.deferred.empty());
    CHECK_FALSE(r.ok()); // the changed layer is found
    CHECK(seen["layer"] == bad + "<end>");
    CHECK(seen["config"] == s.config + "<end>");
    CHECK(seen.count("manifest") == 0);
}

TEST_CASE("verify: stop_before ends the pass; the k8s entries read must be whole") {
    TempDir d;
    Sample s;
    // The Sample lists k8s/ last (format v1's order); written k8s-first it is format v2's.
    aas::bundle::WriteOptions wo;
    fs::path out = d.path / "v2.tar";
    {
        aas::bundle::BundleWriter w(out, wo);
        w.add_file("bundle.json", s.doc_json);
        w.add_directory("k8s");
        w.add_file("k8s/values.yaml", s.values);
        w.add_directory("images");
        w.add_file("images/index.json", s.index);
        for (const auto& b : s.doc.blobs)
            w.add_file(aas::bundle::blob_path(b.digest), b.kind == "manifest" ? s.manifest
                                                         : b.kind == "config" ? s.config
                                                                              : s.layer);
        w.commit();
    }
    aas::verify::Options o;
    o.bundle = out;
    o.extract_to = d.path / "x";
    o.extract = [](const std::string& n) { return n == "k8s" || n.rfind("k8s/", 0) == 0; };
    std::vector<std::string> asked;
    o.stop_before = [&](const std::string& n) {
        asked.push_back(n);
        return n != "k8s" && n.rfind("k8s/", 0) != 0;
    };
    auto r = aas::verify::verify(o);
    INFO(all(r));
    CHECK(r.ok());
    CHECK(r.stopped_on_request);
    CHECK(asked == std::vector<std::string>{"k8s", "k8s/values.yaml", "images"});
    CHECK(slurp(d.path / "x/k8s/values.yaml") == s.values);
    CHECK(r.blobs_checked == 0);
    // In the first format's order the pass stops before k8s/: what it lists is missing.
    s.write(d.path, false);
    o.bundle = d.path / "b.tar";
    o.extract_to = d.path / "y";
    r = aas::verify::verify(o);
    CHECK(r.stopped_on_request);
    CHECK_FALSE(r.ok());
    CHECK(all(r).find("k8s/values.yaml: missing where the k8s folder ends") != std::string::npos);
}
