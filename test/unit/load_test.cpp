// Target names of load (the deployment guide's <registry-url>/<repository>/<image-name>).

#include "aas_bundle/load/load.hpp"
#include "aas_bundle/load/mirrors.hpp"
#include "aas_bundle/util/error.hpp"

#include <doctest/doctest.h>

using namespace aas;

namespace {
std::string target(const std::string& src, const std::string& reg, bool flatten = false) {
    return load::target_for(ref::Reference::parse(src), reg, flatten).str();
}
const std::string hex64(64, 'a');
} // namespace

TEST_CASE("load::target_for keeps the repository path under the registry and prefix") {
    CHECK(target("docker.io/bitnami/mongodb:6.0.3-debian-11-r9", "reg.local:5000/ai-appstore") ==
          "reg.local:5000/ai-appstore/bitnami/mongodb:6.0.3-debian-11-r9");
    CHECK(target("gcr.io/knative-releases/knative.dev/serving/cmd/queue@sha256:" + hex64, "reg.local/ai") ==
          "reg.local/ai/knative-releases/knative.dev/serving/cmd/queue@sha256:" + hex64);
    CHECK(target("busybox", "reg.local") == "reg.local/library/busybox:latest");
    CHECK(target("registry.k8s.io/ingress-nginx/controller:v1.5.1@sha256:" + hex64, "10.0.0.5:443/a/b/") ==
          "10.0.0.5:443/a/b/ingress-nginx/controller:v1.5.1@sha256:" + hex64);
}

TEST_CASE("load::target_for --flatten keeps the last path component") {
    CHECK(target("docker.io/bitnami/mongodb:6.0.3", "reg.local/ai", true) == "reg.local/ai/mongodb:6.0.3");
    CHECK(target("gcr.io/a/b/c/queue:v1", "reg.local", true) == "reg.local/queue:v1");
}

TEST_CASE("load::target_for refuses what cannot be a target") {
    CHECK_THROWS_AS(target("busybox", ""), UsageError);
    CHECK_THROWS_AS(target("busybox", "/prefix"), UsageError);
    CHECK_THROWS_AS(target("busybox", "reg.local/UPPER"), UsageError);
    CHECK_THROWS_AS(target("busybox", "bad host!/x"), Error);
}

TEST_CASE("load::digest_tag") {
    CHECK(load::digest_tag("sha256:" + hex64) == "sha256-" + hex64);
}

TEST_CASE("load::mirror_files: one configuration per runtime, the path kept") {
    aas::load::MirrorOptions o;
    o.registry = "registry.internal:5000/ai-appstore";
    auto files = aas::load::mirror_files({"docker.io", "quay.io"}, o);
    auto text = [&](const std::string& path) {
        for (const auto& f : files)
            if (f.path == path) return f.text;
        FAIL("no file " << path);
        return std::string();
    };
    auto hub = text("registries/containerd/certs.d/docker.io/hosts.toml");
    CHECK(hub.find("server = \"https://registry-1.docker.io\"") != std::string::npos);
    CHECK(hub.find("[host.\"https://registry.internal:5000/v2/ai-appstore\"]") != std::string::npos);
    CHECK(hub.find("override_path = true") != std::string::npos);
    CHECK(text("registries/containerd/certs.d/quay.io/hosts.toml").find("server = \"https://quay.io\"") !=
          std::string::npos);
    auto crio = text("registries/registries.conf.d/50-aas-bundle.conf");
    CHECK(crio.find("prefix = \"quay.io\"") != std::string::npos);
    CHECK(crio.find("location = \"registry.internal:5000/ai-appstore\"") != std::string::npos);
    CHECK(crio.find("insecure") == std::string::npos);
    auto k3s = text("registries/registries.yaml");
    CHECK(k3s.find("\"^(.*)$\": \"ai-appstore/$1\"") != std::string::npos);
    CHECK(k3s.find("configs:") == std::string::npos); // no CA, TLS verified

    o.registry = "127.0.0.1:5000";
    o.plain_http = true;
    files = aas::load::mirror_files({"docker.io"}, o);
    hub = text("registries/containerd/certs.d/docker.io/hosts.toml");
    CHECK(hub.find("[host.\"http://127.0.0.1:5000\"]") != std::string::npos);
    CHECK(hub.find("override_path") == std::string::npos);
    CHECK(text("registries/registries.conf.d/50-aas-bundle.conf").find("insecure = true") != std::string::npos);
    CHECK(text("registries/registries.yaml").find("rewrite") == std::string::npos);

    // Registry names come from the bundle: never a folder that climbs.
    CHECK_THROWS_AS(aas::load::mirror_files({".."}, o), aas::Error);
    CHECK_THROWS_AS(aas::load::mirror_files({"a/../b"}, o), aas::Error);
}

// ---------------------------------------------------------------------------------------
// Where pushed bytes come from (src/load/blob_sources.hpp, internal to load).

#include "../../src/load/blob_sources.hpp"

#include <cstdio>
#include <thread>
#include <unistd.h>

namespace {
struct TempBytes {
    int fd = -1;
    explicit TempBytes(const std::string& bytes) {
        char name[] = "/tmp/aas-load-test-XXXXXX";
        fd = ::mkstemp(name);
        ::unlink(name);
        REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
    }
    ~TempBytes() { ::close(fd); }
};

std::string read_all(const registry::BlobSource& s, std::size_t step, std::uint64_t from = 0) {
    std::string out;
    std::string buf(step, '\0');
    for (std::uint64_t at = from; at < s.size();) {
        std::size_t got = s.read_at(buf.data(), step, at);
        if (got == 0) break;
        out.append(buf.data(), got);
        at += got;
    }
    return out;
}
} // namespace

TEST_CASE("load::RangeSource reads a blob at its offset and hashes every byte, rewinds and resumes included") {
    std::string blob(300000, '\0');
    for (std::size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<char>(i * 7 + 3);
    TempBytes file("HEADER--" + blob + "--TRAILER");
    auto d = oci::Digest::of(blob);
    {
        load::detail::RangeSource s(file.fd, 8, blob.size(), d, "blob x");
        CHECK(read_all(s, 4096) == blob);
    }
    { // a rewind to 0 after a part, then the whole again
        load::detail::RangeSource s(file.fd, 8, blob.size(), d, "blob x");
        std::string buf(1000, '\0');
        CHECK(s.read_at(buf.data(), 1000, 0) == 1000);
        CHECK(read_all(s, 65536) == blob);
    }
    { // a resume past what was read (the registry had more): the gap is hashed too
        load::detail::RangeSource s(file.fd, 8, blob.size(), d, "blob x");
        CHECK(read_all(s, 65536, 200000) == blob.substr(200000));
    }
    { // other bytes than the digest says: Damaged, when the last byte is read
        load::detail::RangeSource s(file.fd, 7, blob.size(), d, "blob x");
        CHECK_THROWS_AS(read_all(s, 65536), load::detail::Damaged);
    }
    { // a file shorter than the blob
        load::detail::RangeSource s(file.fd, 8, blob.size() + 100, d, "blob x");
        CHECK_THROWS_WITH_AS(read_all(s, 65536), doctest::Contains("ends before the blob does"), Error);
    }
}

TEST_CASE("load::StreamSource hands the producer's bytes to the upload, bounded, with a short rewind") {
    std::string blob(1 << 20, '\0');
    for (std::size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<char>(i * 13 + 1);
    SUBCASE("in order, the producer held back by `ahead`") {
        load::detail::StreamSource s(blob.size(), 64 << 10, 16 << 10, "blob x");
        std::thread producer([&] {
            for (std::size_t at = 0; at < blob.size(); at += 10000)
                s.put(blob.data() + at, std::min<std::size_t>(10000, blob.size() - at));
            s.close();
        });
        std::string got;
        std::string buf(7000, '\0');
        bool rewound = false;
        for (std::uint64_t at = 0; at < blob.size();) {
            std::size_t n = s.read_at(buf.data(), buf.size(), at);
            REQUIRE(n > 0);
            if (at >= 100000 && !rewound) { // a rewind within `keep` is served again
                rewound = true;
                std::string again(5000, '\0');
                REQUIRE(s.read_at(again.data(), again.size(), at - 5000) == 5000);
                CHECK(again == blob.substr(at - 5000, 5000));
            }
            got.append(buf.data(), n);
            at += n;
        }
        producer.join();
        CHECK(rewound);
        CHECK(got == blob);
        CHECK(s.read_at(buf.data(), buf.size(), blob.size()) == 0);
    }
    SUBCASE("a rewind past `keep` fails, naming what to do") {
        load::detail::StreamSource s(blob.size(), 64 << 10, 4 << 10, "blob x");
        std::thread producer([&] {
            s.put(blob.data(), 200000);
            s.close();
        });
        std::string buf(50000, '\0');
        for (std::uint64_t at = 0; at < 100000;) at += s.read_at(buf.data(), buf.size(), at);
        CHECK_THROWS_WITH_AS(s.read_at(buf.data(), 10, 0), doctest::Contains("run the load again"), Error);
        s.abandon();
        producer.join();
    }
    SUBCASE("data that ends early fails the upload; abandon() frees the producer") {
        load::detail::StreamSource s(blob.size(), 32 << 10, 4 << 10, "blob x");
        std::thread producer([&] {
            s.put(blob.data(), 1000);
            s.close();
        });
        std::string buf(4096, '\0');
        CHECK(s.read_at(buf.data(), buf.size(), 0) == 1000);
        CHECK_THROWS_WITH_AS(s.read_at(buf.data(), buf.size(), 1000), doctest::Contains("ended at byte 1000"), Error);
        producer.join();
        load::detail::StreamSource t(blob.size(), 1024, 1024, "blob y");
        std::thread stuck([&] { t.put(blob.data(), blob.size()); }); // blocks after 1 KiB
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        t.abandon();
        stuck.join(); // returns: the bytes are dropped
    }
}
