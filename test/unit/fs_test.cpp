// util::SafeTree and make_private_dir: writing untrusted paths without leaving the root.

#include "testing.hpp"

#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/fs.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;
using aas::testing::TempDir;

TEST_CASE("util::SafeTree creates folders and files beneath its root") {
    TempDir d;
    fs::create_directory(d.path / "root");
    aas::util::SafeTree t(d.path / "root");
    t.mkdirs("k8s/charts/x");
    CHECK(fs::is_directory(d.path / "root/k8s/charts/x"));
    auto [fd, name] = t.parent("k8s/new/deeper/file.yaml");
    CHECK(name == "file.yaml");
    CHECK(fs::is_directory(d.path / "root/k8s/new/deeper"));
    ::close(fd);
    t.symlink("k8s/link", "charts");
    CHECK(fs::read_symlink(d.path / "root/k8s/link") == "charts");
    t.chmod("k8s/charts", 04755);
    struct stat st {};
    REQUIRE(::stat((d.path / "root/k8s/charts").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0755); // setuid never carried
}

TEST_CASE("util::SafeTree never follows a symlink, not even one inside the root") {
    TempDir d;
    fs::create_directories(d.path / "root/k8s");
    fs::create_directories(d.path / "outside");
    fs::create_directory_symlink(d.path / "outside", d.path / "root/k8s/out"); // absolute, leaves
    fs::create_directory_symlink("..", d.path / "root/k8s/up");                // relative, climbs
    fs::create_directory_symlink(".", d.path / "root/k8s/here");               // stays inside
    aas::util::SafeTree t(d.path / "root");
    for (const char* p : {"k8s/out/victim", "k8s/up/victim", "k8s/here/victim", "k8s/out/a/b/victim"}) {
        INFO(p);
        CHECK_THROWS_AS(t.parent(p), aas::Error);
        CHECK_THROWS_AS(t.mkdirs(p), aas::Error);
    }
    CHECK_THROWS_AS(t.chmod("k8s/out", 0777), aas::Error);
    CHECK(fs::is_empty(d.path / "outside"));
    for (const char* bad : {"../x", "/etc/passwd", "k8s/../x", "k8s//x", "./x", ""}) {
        INFO(bad);
        CHECK_THROWS_AS(t.parent(bad), aas::Error);
    }
}

TEST_CASE("util::SafeTree refuses a root that is a symlink") {
    TempDir d;
    fs::create_directory(d.path / "real");
    fs::create_directory_symlink(d.path / "real", d.path / "link");
    CHECK_THROWS_AS(aas::util::SafeTree(d.path / "link"), aas::Error);
}

TEST_CASE("util::make_private_dir makes a new folder of mode 0700 each time") {
    TempDir d;
    auto a = aas::util::make_private_dir("aas-load-dry-", d.path);
    auto b = aas::util::make_private_dir("aas-load-dry-", d.path);
    CHECK(a != b);
    struct stat st {};
    REQUIRE(::lstat(a.c_str(), &st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK((st.st_mode & 0777) == 0700);
    CHECK(a.filename().string().rfind("aas-load-dry-", 0) == 0);
}
