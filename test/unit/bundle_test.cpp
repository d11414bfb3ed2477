#include "testing.hpp"

#include "aas_bundle/bundle/parts.hpp"
#include "aas_bundle/bundle/writer.hpp"

#include "aas_bundle/util/error.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <csignal>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using aas::bundle::BundleWriter;
using aas::bundle::PartsIndex;
using aas::bundle::StreamReader;
using aas::bundle::WriteOptions;
using aas::bundle::WriteResult;
using aas::oci::Digest;
using aas::testing::slurp;
using aas::testing::TempDir;

namespace {

/// File names in `dir`.
std::set<std::string> names(const fs::path& dir) {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
    return out;
}

void spit(const fs::path& p, std::string_view data) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    REQUIRE(out.good());
}

/// Incompressible but reproducible bytes.
std::string noise(std::size_t n, std::uint32_t seed) {
    std::string s(n, '\0');
    std::uint32_t x = seed * 2654435761u + 1;
    for (auto& c : s) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        c = static_cast<char>(x & 0xff);
    }
    return s;
}

/// Compressible, reproducible text (zstd shrinks it to about a third).
std::string text(std::size_t n, std::uint32_t seed) {
    static const char* words[] = {"layer ", "blob ", "sha256 ", "manifest ", "index ", "config\n", "tar ", "zstd "};
    std::string s;
    s.reserve(n + 16);
    std::uint32_t x = seed * 2654435761u + 1;
    while (s.size() < n) {
        x = x * 1103515245u + 12345u;
        s += words[(x >> 16) % 8];
        if ((x >> 8) % 5 == 0) s += static_cast<char>('a' + (x >> 20) % 26);
    }
    s.resize(n);
    return s;
}

struct Entry {
    std::string path;
    unsigned type = 0;
    unsigned perm = 0;
    std::int64_t mtime = 0;
    std::int64_t uid = -1, gid = -1;
    std::string uname, gname;
    std::string symlink;
    std::string data;
};

/// Reads a tar (optionally zstd-compressed) with libarchive.
std::vector<Entry> read_tar(const std::string& bytes) {
    struct archive* a = archive_read_new();
    archive_read_support_filter_zstd(a);
    archive_read_support_format_tar(a);
    REQUIRE(archive_read_open_memory(a, bytes.data(), bytes.size()) == ARCHIVE_OK);
    std::vector<Entry> out;
    struct archive_entry* e = nullptr;
    int rc;
    // ARCHIVE_WARN: a UTF-8 name that the test's C locale cannot show.
    while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
        Entry x;
        const char* name = archive_entry_pathname_utf8(e);
        x.path = name ? name : archive_entry_pathname(e);
        x.type = archive_entry_filetype(e);
        x.perm = archive_entry_perm(e);
        x.mtime = archive_entry_mtime(e);
        x.uid = archive_entry_uid(e);
        x.gid = archive_entry_gid(e);
        x.uname = archive_entry_uname(e) ? archive_entry_uname(e) : "";
        x.gname = archive_entry_gname(e) ? archive_entry_gname(e) : "";
        if (archive_entry_symlink(e)) x.symlink = archive_entry_symlink(e);
        char buf[65536];
        la_ssize_t n;
        while ((n = archive_read_data(a, buf, sizeof buf)) > 0) x.data.append(buf, static_cast<std::size_t>(n));
        REQUIRE(n == 0);
        out.push_back(std::move(x));
    }
    CHECK(rc == ARCHIVE_EOF);
    archive_read_free(a);
    return out;
}

/// A reader over `data` handing out at most `piece` bytes a call.
aas::bundle::ReadFn reader_of(const std::string& data, std::size_t piece, std::size_t* pos) {
    return [&data, piece, pos](char* out, std::size_t n) -> std::size_t {
        std::size_t k = std::min({n, piece, data.size() - *pos});
        std::copy_n(data.data() + *pos, k, out);
        *pos += k;
        return k;
    };
}

const std::string long_name = "blobs/sha256/" + std::string(120, 'x') + "/layer.tar";

/// The sample archive used by several tests: a folder, files, a stream, a symlink and a
/// name too long for ustar.
WriteResult write_sample(const fs::path& out, const WriteOptions& opts, std::size_t stream_size = 3u << 20,
                         bool compressible = false) {
    BundleWriter w(out, opts);
    w.add_directory("blobs/", 0755, 100);
    CHECK(w.add_file("bundle.json", "{\"x\":1}\n") == Digest::of("{\"x\":1}\n"));
    CHECK(w.add_file("bin/run", "#!/bin/sh\n", 0755, 200) == Digest::of("#!/bin/sh\n"));
    std::string big = compressible ? text(stream_size, 7) : noise(stream_size, 7);
    std::size_t pos = 0;
    CHECK(w.add_stream("blobs/big", big.size(), reader_of(big, 7000, &pos)) == Digest::of(big));
    CHECK(pos == big.size());
    w.add_symlink("latest", "bundle.json", 300);
    w.add_file(long_name, "long");
    return w.commit();
}

std::string read_all(StreamReader& r, std::size_t piece = 4096) {
    std::string out;
    std::vector<char> buf(piece);
    for (;;) {
        std::size_t n = r.read(buf.data(), buf.size());
        if (n == 0) break;
        out.append(buf.data(), n);
    }
    return out;
}

std::string read_bundle(const fs::path& p) {
    StreamReader r(aas::bundle::locate(p));
    return read_all(r);
}

template <class F> std::string error_of(F&& f) {
    try {
        f();
    } catch (const aas::Error& e) {
        return e.what();
    }
    return "<no error>";
}

} // namespace

TEST_CASE("bundle::BundleWriter writes a tar that libarchive reads back") {
    TempDir dir;
    WriteOptions opts;
    opts.mtime = 1700000000;
    std::string label;
    SUBCASE("plain tar") {
        label = "plain";
    }
    SUBCASE("zstd, 2 workers") {
        label = "zstd";
        opts.zstd = true;
    }
    SUBCASE("zstd in the caller's thread, level 1") {
        label = "zstd0";
        opts.zstd = true;
        opts.zstd_workers = 0;
        opts.zstd_level = 1;
    }
    CAPTURE(label);
    fs::path out = dir.path / "b.tar";
    WriteResult res = write_sample(out, opts);
    std::string bytes = slurp(out);
    CHECK(res.files == std::vector<fs::path>{out});
    CHECK(res.parts.empty());
    CHECK(res.size == bytes.size());
    CHECK(res.sha256 == Digest::of(bytes));
    CHECK(names(dir.path) == std::set<std::string>{"b.tar"});
    CHECK((fs::status(out).permissions() & fs::perms::all) ==
          (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read));
    if (opts.zstd) {
        REQUIRE(bytes.size() > 4);
        CHECK(bytes.compare(0, 4, "\x28\xb5\x2f\xfd") == 0); // zstd frame magic
    } else {
        CHECK(bytes.size() % 512 == 0);
        CHECK(bytes.substr(bytes.size() - 1024) == std::string(1024, '\0'));
    }

    auto entries = read_tar(bytes);
    REQUIRE(entries.size() == 6);
    for (const auto& e : entries) {
        CAPTURE(e.path);
        CHECK(e.uid == 0);
        CHECK(e.gid == 0);
        CHECK(e.uname.empty());
        CHECK(e.gname.empty());
    }
    CHECK(entries[0].path == "blobs/");
    CHECK(entries[0].type == AE_IFDIR);
    CHECK(entries[0].perm == 0755);
    CHECK(entries[0].mtime == 100);
    CHECK(entries[1].path == "bundle.json");
    CHECK(entries[1].type == AE_IFREG);
    CHECK(entries[1].perm == 0644);
    CHECK(entries[1].mtime == 1700000000);
    CHECK(entries[1].data == "{\"x\":1}\n");
    CHECK(entries[2].path == "bin/run");
    CHECK(entries[2].perm == 0755);
    CHECK(entries[2].mtime == 200);
    CHECK(entries[2].data == "#!/bin/sh\n");
    CHECK(entries[3].path == "blobs/big");
    CHECK(entries[3].data == noise(3u << 20, 7));
    CHECK(entries[4].path == "latest");
    CHECK(entries[4].type == AE_IFLNK);
    CHECK(entries[4].symlink == "bundle.json");
    CHECK(entries[4].mtime == 300);
    CHECK(entries[5].path == long_name);
    CHECK(entries[5].data == "long");

    // A whole bundle reads back as itself.
    StreamReader r(aas::bundle::locate(out));
    CHECK(read_all(r, 1000) == bytes);
    CHECK(r.offset() == bytes.size());
}

TEST_CASE("bundle::BundleWriter pads only to the tar standard end") {
    TempDir dir;
    BundleWriter w(dir.path / "a.tar", WriteOptions{});
    w.add_file("a", "hello");
    WriteResult res = w.commit();
    // header + one data block + two zero blocks, not a 10 KiB record
    CHECK(res.size == 512 + 512 + 1024);
    CHECK(fs::file_size(dir.path / "a.tar") == 2048);
}

TEST_CASE("bundle::BundleWriter gives the same bytes for the same input") {
    TempDir dir;
    WriteOptions opts;
    opts.zstd = true;
    SUBCASE("zstd, 2 workers") {
        opts.zstd_workers = 2;
    }
    SUBCASE("zstd, 4 workers") {
        opts.zstd_workers = 4;
    }
    SUBCASE("zstd, no workers") {
        opts.zstd_workers = 0;
    }
    SUBCASE("plain") {
        opts.zstd = false;
    }
    CAPTURE(opts.zstd_workers);
    // Big enough for several zstd jobs.
    auto r1 = write_sample(dir.path / "one.tar.zst", opts, 24u << 20, true);
    auto r2 = write_sample(dir.path / "two.tar.zst", opts, 24u << 20, true);
    CHECK(r1.sha256 == r2.sha256);
    CHECK(slurp(dir.path / "one.tar.zst") == slurp(dir.path / "two.tar.zst"));
    if (opts.zstd) CHECK(r1.size < (12u << 20)); // it did compress
}

TEST_CASE("bundle::BundleWriter zstd output does not depend on the number of workers (1 or more)") {
    // libzstd cuts multi-threaded input into jobs by size, not by timing, so a bundle can
    // be reproduced on a machine with another core count. 0 workers is another encoder.
    TempDir dir;
    WriteOptions opts;
    opts.zstd = true;
    std::vector<Digest> got;
    for (int workers : {1, 2, 3}) {
        opts.zstd_workers = workers;
        got.push_back(write_sample(dir.path / fmt::format("w{}.tar.zst", workers), opts, 24u << 20, true).sha256);
    }
    CHECK(got[0] == got[1]);
    CHECK(got[0] == got[2]);
}

TEST_CASE("bundle::BundleWriter splits into parts that concatenate to the whole") {
    TempDir dir;
    WriteOptions opts;
    opts.zstd = true;
    SUBCASE("zstd") {}
    SUBCASE("plain") {
        opts.zstd = false;
    }
    CAPTURE(opts.zstd);
    const std::size_t stream = 100000; // incompressible: ~100 KiB compressed too
    WriteResult whole = write_sample(dir.path / "whole.tar", opts, stream);
    std::string whole_bytes = slurp(dir.path / "whole.tar");

    opts.split_size = 10240;
    fs::path out = dir.path / "b.tar";
    WriteResult res = write_sample(out, opts, stream);
    CHECK(res.size == whole.size);
    CHECK(res.sha256 == whole.sha256);
    std::size_t n = (whole_bytes.size() + 10239) / 10240;
    REQUIRE(res.parts.size() == n);
    REQUIRE(n > 5);

    std::set<std::string> expected_names{"whole.tar", "b.tar.parts"};
    std::vector<fs::path> expected_files;
    std::string cat;
    for (std::size_t i = 0; i < n; ++i) {
        std::string name = fmt::format("b.tar.part{:03}", i);
        CAPTURE(name);
        expected_names.insert(name);
        expected_files.push_back(dir.path / name);
        CHECK(res.parts[i].name == name);
        std::string part = slurp(dir.path / name);
        CHECK(res.parts[i].size == part.size());
        CHECK(res.parts[i].sha256 == Digest::of(part));
        if (i + 1 < n) CHECK(part.size() == 10240);
        cat += part;
    }
    expected_files.push_back(dir.path / "b.tar.parts");
    CHECK(res.files == expected_files);
    CHECK(names(dir.path) == expected_names); // no temporary files left, no whole b.tar
    CHECK(cat == whole_bytes);

    PartsIndex pi = PartsIndex::parse(slurp(dir.path / "b.tar.parts"), "b.tar.parts");
    CHECK(pi.bundle == "b.tar");
    CHECK(pi.size == whole.size);
    CHECK(pi.sha256 == whole.sha256);
    CHECK(pi.part_size == 10240);
    REQUIRE(pi.parts.size() == n);
    CHECK(pi.parts.back().name == res.parts.back().name);
    CHECK(pi.parts.back().sha256 == res.parts.back().sha256);

    // Every way of naming the split bundle reads the same bytes.
    for (const char* name : {"b.tar", "b.tar.parts", "b.tar.part000", "b.tar.part003"}) {
        CAPTURE(name);
        StreamReader r(aas::bundle::locate(dir.path / name));
        CHECK(read_all(r, 3000) == whole_bytes);
        CHECK(r.offset() == whole_bytes.size());
        char c;
        CHECK(r.read(&c, 1) == 0);
    }
}

TEST_CASE("bundle::BundleWriter cuts parts exactly at split_size, with no empty last part") {
    TempDir dir;
    WriteOptions opts;
    opts.split_size = 512;
    BundleWriter w(dir.path / "x.tar", opts);
    w.add_file("a", "hello"); // 512 header + 512 data + 1024 end = 2048 = 4 parts
    WriteResult res = w.commit();
    REQUIRE(res.parts.size() == 4);
    for (const auto& p : res.parts) CHECK(p.size == 512);
    CHECK(names(dir.path) ==
          std::set<std::string>{"x.tar.part000", "x.tar.part001", "x.tar.part002", "x.tar.part003", "x.tar.parts"});
}

TEST_CASE("bundle::StreamReader names the part that is missing, swapped, damaged or truncated") {
    TempDir dir;
    WriteOptions opts;
    opts.zstd = true;
    opts.split_size = 10240;
    fs::path out = dir.path / "b.tar.zst";
    WriteResult res = write_sample(out, opts, 100000);
    const std::size_t n = res.parts.size();
    REQUIRE(n > 5);
    auto part = [&](std::size_t i) { return dir.path / res.parts[i].name; };
    std::string expected;
    std::uint64_t good_prefix = 0;

    SUBCASE("missing") {
        fs::remove(part(1));
        expected = fmt::format("part 2 of {} (b.tar.zst.part001) missing", n);
        good_prefix = 10240;
    }
    SUBCASE("two parts swapped") {
        fs::rename(part(0), dir.path / "tmp");
        fs::rename(part(1), part(0));
        fs::rename(dir.path / "tmp", part(1));
        expected = fmt::format("part 1 of {} (b.tar.zst.part000): sha256 mismatch (the part is "
                               "damaged or is not from this bundle)",
                               n);
    }
    SUBCASE("a flipped byte") {
        std::string p = slurp(part(2));
        p[5000] = static_cast<char>(p[5000] ^ 0x01);
        spit(part(2), p);
        expected = fmt::format("part 3 of {} (b.tar.zst.part002): sha256 mismatch (the part is "
                               "damaged or is not from this bundle)",
                               n);
        good_prefix = 2 * 10240;
    }
    SUBCASE("truncated") {
        fs::resize_file(part(n - 1), res.parts[n - 1].size - 1);
        expected = fmt::format("part {} of {} (b.tar.zst.part{:03}): size {}, expected {}", n, n, n - 1,
                               res.parts[n - 1].size - 1, res.parts[n - 1].size);
        good_prefix = (n - 1) * 10240;
    }
    SUBCASE("longer") {
        spit(part(3), slurp(part(3)) + "x");
        expected = fmt::format("part 4 of {} (b.tar.zst.part003): size 10241, expected 10240", n);
        good_prefix = 3 * 10240;
    }
    StreamReader r(aas::bundle::locate(out));
    std::string got;
    std::string err = error_of([&] { got = read_all(r); });
    CHECK(err == expected);
    CHECK(r.offset() == good_prefix);
    CHECK_THROWS_AS(read_all(r), aas::bundle::PartError);
}

TEST_CASE("bundle::BundleWriter destroyed without commit leaves no files") {
    TempDir dir;
    WriteOptions opts;
    SUBCASE("whole") {}
    SUBCASE("split, zstd") {
        opts.split_size = 4096;
        opts.zstd = true;
    }
    {
        BundleWriter w(dir.path / "b.tar", opts);
        w.add_file("a", noise(50000, 1));
        CHECK(!names(dir.path).empty()); // temporary files while writing
        for (const auto& name : names(dir.path)) CHECK(name.rfind(".b.tar.", 0) == 0);
    }
    CHECK(names(dir.path).empty());
}

TEST_CASE("bundle::BundleWriter add_stream refuses a source of the wrong length") {
    TempDir dir;
    fs::path out = dir.path / "b.tar";
    std::string data = noise(3000000, 3);
    std::string err;
    {
        BundleWriter w(out, WriteOptions{});
        w.add_file("first", "x");
        SUBCASE("short") {
            std::size_t pos = 0;
            err = error_of([&] { w.add_stream("blob", data.size() + 10, reader_of(data, 1u << 20, &pos)); });
            CHECK(err == fmt::format("adding \"blob\" to {}: the source ended after {} of {} bytes", out.string(),
                                     data.size(), data.size() + 10));
        }
        SUBCASE("gives more than asked") {
            err = error_of([&] { w.add_stream("blob", 10, [](char*, std::size_t n) { return n + 1; }); });
            CHECK(err.find("the source gave 11 bytes when 10 were asked for") != std::string::npos);
        }
        SUBCASE("does not read past size") {
            std::size_t pos = 0;
            CHECK(w.add_stream("blob", 1000, reader_of(data, 1u << 20, &pos)) == Digest::of(data.substr(0, 1000)));
            CHECK(pos == 1000);
            return;
        }
        CHECK(error_of([&] { w.commit(); }).find("unusable after an earlier error") != std::string::npos);
        CHECK(error_of([&] { w.add_file("more", "y"); }).find("unusable") != std::string::npos);
    }
    CHECK(names(dir.path).empty());
}

TEST_CASE("bundle::BundleWriter reports a failed write naming the file and the cause") {
    // A file size limit makes write() fail with EFBIG, as a full disk gives ENOSPC.
    TempDir dir;
    fs::path out = dir.path / "b.tar";
    struct rlimit old {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    std::string err, commit_err;
    {
        BundleWriter w(out, WriteOptions{});
        struct rlimit small = old;
        small.rlim_cur = 200000;
        REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
        err = error_of([&] { w.add_file("big", noise(1u << 20, 5)); });
        ::setrlimit(RLIMIT_FSIZE, &old);
        commit_err = error_of([&] { w.commit(); });
    }
    std::signal(SIGXFSZ, old_handler);
    CAPTURE(err);
    CHECK(err.rfind(fmt::format("adding \"big\" to {}: writing {}/.b.tar.tmp-", out.string(), dir.path.string()), 0) ==
          0);
    CHECK(err.find(std::strerror(EFBIG)) != std::string::npos);
    CHECK(commit_err.find("unusable after an earlier error") != std::string::npos);
    CHECK(names(dir.path).empty());
}

TEST_CASE("bundle::BundleWriter refuses entry names that escape the folder") {
    TempDir dir;
    BundleWriter w(dir.path / "b.tar", WriteOptions{});
    CHECK(error_of([&] { w.add_file("../x", "y"); }).find("\"..\"") != std::string::npos);
    CHECK(error_of([&] { w.add_file("a/../../x", "y"); }).find("\"..\"") != std::string::npos);
    CHECK(error_of([&] { w.add_file("/etc/passwd", "y"); }).find("absolute") != std::string::npos);
    CHECK(error_of([&] { w.add_file("", "y"); }).find("empty") != std::string::npos);
    CHECK(error_of([&] { w.add_file("caf\xe9", "y"); }).find("not valid UTF-8") != std::string::npos);
    CHECK(error_of([&] { w.add_symlink("l", ""); }).find("invalid target") != std::string::npos);
    // A refused name does not spoil the writer.
    w.add_file("a..b/c", "ok");
    // UTF-8 names are written whatever the process locale (libarchive converts names
    // through it), in a pax header when they are not ASCII.
    w.add_file("caf\xc3\xa9/\xe2\x82\xac.txt", "euro");
    auto res = w.commit();
    auto entries = read_tar(slurp(dir.path / "b.tar"));
    REQUIRE(entries.size() == 2);
    CHECK(entries[0].path == "a..b/c");
    CHECK(entries[1].path == "caf\xc3\xa9/\xe2\x82\xac.txt");
    CHECK(entries[1].data == "euro");
    CHECK(slurp(dir.path / "b.tar").find("path=caf\xc3\xa9/\xe2\x82\xac.txt\n") != std::string::npos);
}

TEST_CASE("bundle::BundleWriter replaces an older bundle of the same name") {
    TempDir dir;
    fs::path out = dir.path / "b.tar";
    WriteOptions opts;
    opts.split_size = 1024;
    {
        BundleWriter w(out, opts);
        w.add_file("a", noise(6000, 1)); // 512 + 6144 + 1024 = 7680: 8 parts
        CHECK(w.commit().parts.size() == 8);
    }
    spit(out, "an old whole bundle");
    // Leftovers of a writer that was killed (its PID is not alive) and of a live one.
    spit(dir.path / ".b.tar.tmp-99999999-abcDEF", "x");
    spit(dir.path / ".b.tar.part004.tmp-99999999-abc123", "x");
    std::string live = fmt::format(".b.tar.tmp-{}-zzzzzz", ::getpid());
    spit(dir.path / live, "x");
    spit(dir.path / ".other.tmp-99999999-abcdef", "x");
    {
        BundleWriter w(out, opts);
        w.add_file("a", "short"); // 2048: 2 parts
        CHECK(w.commit().parts.size() == 2);
    }
    CHECK(names(dir.path) ==
          std::set<std::string>{"b.tar.part000", "b.tar.part001", "b.tar.parts", live, ".other.tmp-99999999-abcdef"});
    auto entries = read_tar(read_bundle(out));
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].data == "short");
}

TEST_CASE("bundle::locate") {
    TempDir dir;
    spit(dir.path / "w.tar", "whole");
    PartsIndex pi;
    pi.bundle = "s.tar";
    pi.size = 3;
    pi.sha256 = Digest::of("abc");
    pi.part_size = 2;
    pi.parts = {{"s.tar.part000", 2, Digest::of("ab")}, {"s.tar.part001", 1, Digest::of("c")}};
    spit(dir.path / "s.tar.parts", pi.to_json());
    spit(dir.path / "s.tar.part000", "ab");
    spit(dir.path / "s.tar.part001", "c");

    auto whole = aas::bundle::locate(dir.path / "w.tar");
    CHECK(whole.whole == dir.path / "w.tar");
    CHECK(whole.index.empty());
    CHECK_FALSE(whole.parts.has_value());

    for (const char* name : {"s.tar.parts", "s.tar.part000", "s.tar.part001", "s.tar"}) {
        CAPTURE(name);
        auto loc = aas::bundle::locate(dir.path / name);
        CHECK(loc.whole.empty());
        CHECK(loc.index == dir.path / "s.tar.parts");
        REQUIRE(loc.parts.has_value());
        CHECK(loc.parts->parts.size() == 2);
        CHECK(read_bundle(dir.path / name) == "abc");
    }

    spit(dir.path / "o.tar.part001", "x");
    std::string err = error_of([&] { aas::bundle::locate(dir.path / "o.tar.part001"); });
    CHECK(err.find((dir.path / "o.tar.parts").string() + " is missing and is needed") != std::string::npos);
    CHECK_THROWS_AS(aas::bundle::locate(dir.path / "o.tar.part001"), aas::UsageError);

    CHECK(error_of([&] { aas::bundle::locate(dir.path / "nope.tar"); }) ==
          "no bundle at " + (dir.path / "nope.tar").string());
    CHECK_THROWS_AS(aas::bundle::locate(dir.path / "nope.tar"), aas::UsageError);
    CHECK_THROWS_AS(aas::bundle::locate(dir.path / "nope.tar.parts"), aas::UsageError);
    CHECK_THROWS_AS(aas::bundle::locate(dir.path), aas::UsageError);

    spit(dir.path / "bad.tar.parts", "{\"format\": \"something/v9\"}");
    err = error_of([&] { aas::bundle::locate(dir.path / "bad.tar"); });
    CHECK(err.find((dir.path / "bad.tar.parts").string()) != std::string::npos);
    CHECK(err.find("unsupported format \"something/v9\"") != std::string::npos);

    // The whole stream is checked at the end too (an index whose total disagrees with
    // its parts cannot be built by parse(), so alter a part the index also vouches for).
    spit(dir.path / "s.tar.part001", "d");
    CHECK(error_of([&] { read_bundle(dir.path / "s.tar"); }).find("part 2 of 2 (s.tar.part001): sha256 mismatch") == 0);
}

TEST_CASE("bundle::PartsIndex round-trips and refuses bad indexes") {
    PartsIndex pi;
    pi.bundle = "x.tar.zst";
    pi.size = 25;
    pi.sha256 = Digest::of("whole");
    pi.part_size = 10;
    pi.parts = {{"x.tar.zst.part000", 10, Digest::of("a")},
                {"x.tar.zst.part001", 10, Digest::of("b")},
                {"x.tar.zst.part002", 5, Digest::of("c")}};
    std::string json = pi.to_json();
    CHECK(json.find("\"format\": \"aas-bundle-parts/v1\"") != std::string::npos);
    CHECK(json.find("\"format\"") < json.find("\"parts\"")); // documented key order
    PartsIndex back = PartsIndex::parse(json, "x.parts");
    CHECK(back.bundle == pi.bundle);
    CHECK(back.size == pi.size);
    CHECK(back.sha256 == pi.sha256);
    CHECK(back.part_size == pi.part_size);
    REQUIRE(back.parts.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(back.parts[i].name == pi.parts[i].name);
        CHECK(back.parts[i].size == pi.parts[i].size);
        CHECK(back.parts[i].sha256 == pi.parts[i].sha256);
    }

    auto refused = [](PartsIndex bad) { return error_of([&] { PartsIndex::parse(bad.to_json(), "dir/x.parts"); }); };
    auto starts = [](const std::string& s) { return s.rfind("reading parts index dir/x.parts: ", 0) == 0; };
    {
        PartsIndex bad = pi;
        bad.parts[1].name = "../x";
        auto e = refused(bad);
        CHECK(starts(e));
        CHECK(e.find("part 2 of 3: name \"../x\" is not a plain file name") != std::string::npos);
    }
    for (const char* name : {"a/b", "..", ".", "", "/etc/passwd"}) {
        CAPTURE(name);
        PartsIndex bad = pi;
        bad.parts[0].name = name;
        CHECK(refused(bad).find("is not a plain file name") != std::string::npos);
    }
    {
        PartsIndex bad = pi;
        bad.parts[1].name = bad.parts[0].name;
        CHECK(refused(bad).find("appears twice") != std::string::npos);
    }
    {
        PartsIndex bad = pi;
        bad.size = 26;
        CHECK(refused(bad).find("the part sizes add up to 25 bytes, but \"size\" is 26") != std::string::npos);
    }
    {
        PartsIndex bad = pi;
        bad.parts[1].size = 9;
        bad.size = 24;
        CHECK(refused(bad).find("part 2 of 3: size 9 differs from part_size 10") != std::string::npos);
    }
    {
        PartsIndex bad = pi;
        bad.parts[2].size = 11;
        bad.size = 31;
        CHECK(refused(bad).find("last part is not between 1 and part_size 10") != std::string::npos);
    }
    {
        PartsIndex bad = pi;
        bad.bundle = "../x.tar";
        CHECK(refused(bad).find("\"bundle\" \"../x.tar\" is not a plain file name") != std::string::npos);
    }
    auto parse_error = [](const std::string& text) { return error_of([&] { PartsIndex::parse(text, "x.parts"); }); };
    CHECK(parse_error("not json").find("not valid JSON") != std::string::npos);
    CHECK(parse_error("[]").find("expected a JSON object") != std::string::npos);
    CHECK(parse_error(std::string(2u << 20, ' ')).find("larger than the limit") != std::string::npos);
    std::string neg = json;
    neg.replace(neg.find("\"size\": 25"), 10, "\"size\": -25");
    CHECK(parse_error(neg).find("\"size\" must be a non-negative integer") != std::string::npos);
    std::string baddigest = json;
    baddigest.replace(baddigest.find("sha256:"), 7, "sha256:zz");
    CHECK(parse_error(baddigest).find("invalid digest") != std::string::npos);
    std::string noparts = R"({"format":"aas-bundle-parts/v1","bundle":"x","size":0,"sha256":")" + Digest::of("").str() +
                          R"(","part_size":1,"parts":[]})";
    CHECK(parse_error(noparts).find("\"parts\" must be a non-empty array") != std::string::npos);
}

TEST_CASE("bundle::BundleWriter::reserve leaves room filled later, at offsets, the bytes as if streamed") {
    TempDir dir;
    std::string big(700000, '\0'), small = "tiny";
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 + 7);
    // The same archive twice: data streamed, and data written into reserved room, out of order.
    WriteOptions opts;
    {
        BundleWriter w(dir.path / "streamed.tar", opts);
        w.add_file("a.txt", "first");
        w.add_file("images/blobs/sha256/" + std::string(64, 'b'), big);
        w.add_file("c/" + std::string(120, 'x'), small); // a long name: a pax header before it
        w.add_file("d.txt", "last");
        w.commit();
    }
    WriteResult r;
    {
        BundleWriter w(dir.path / "reserved.tar", opts);
        CHECK(w.can_reserve());
        w.add_file("a.txt", "first");
        auto s1 = w.reserve("images/blobs/sha256/" + std::string(64, 'b'), big.size());
        auto s2 = w.reserve("c/" + std::string(120, 'x'), small.size());
        w.add_file("d.txt", "last");
        w.write_at(s2, 0, small.data(), small.size());
        w.write_at(s1, 400000, big.data() + 400000, big.size() - 400000);
        w.write_at(s1, 0, big.data(), 400000);
        CHECK_THROWS_AS(w.write_at(s2, 1, small.data(), small.size()), aas::Error); // past its room
        r = w.commit();
        std::string bytes = slurp(dir.path / "reserved.tar");
        CHECK(bytes.substr(s1.offset, s1.size) == big);
        CHECK(bytes.substr(s2.offset, s2.size) == small);
    }
    CHECK(slurp(dir.path / "reserved.tar") == slurp(dir.path / "streamed.tar"));
    CHECK(r.sha256 == Digest::of(slurp(dir.path / "streamed.tar"))); // read back for the hash
    // Only a plain tar in one file.
    opts.zstd = true;
    BundleWriter z(dir.path / "z.tar.zst", opts);
    CHECK_FALSE(z.can_reserve());
    CHECK_THROWS_AS(z.reserve("x", 10), aas::Error);
}

namespace {
// A PID that no process has: a child's, once it has exited and been reaped.
pid_t dead_pid() {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return pid;
}
} // namespace

TEST_CASE("bundle::BundleWriter adopt_partial takes over a killed writer's file, only a plain one of ours") {
    TempDir dir;
    std::string big(300000, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 13 + 1);
    WriteOptions opts;
    opts.adopt_partial = true;
    auto write = [&](const fs::path& out, bool fill) {
        BundleWriter w(out, opts);
        w.add_file("a.txt", "first");
        auto slot = w.reserve("b", big.size());
        w.add_file("c.txt", "last");
        // Without `fill`, the slot is left as the adopted file holds it: the test checks it is there.
        std::string seen(big.size(), '\0');
        std::size_t got = 0;
        while (got < seen.size()) {
            auto n = w.read_at(slot, got, seen.data() + got, seen.size() - got);
            if (n == 0) break;
            got += n;
        }
        if (fill) w.write_at(slot, 0, big.data(), big.size());
        auto adopted = w.adopted();
        w.commit();
        return std::make_pair(adopted, seen == big);
    };
    write(dir.path / "fresh.tar", true);
    const std::string fresh = slurp(dir.path / "fresh.tar");

    // A killed run's file (here: the same bytes plus trailing junk) is taken over; the slot's
    // bytes stay, the file is cut to its new length, the result is the fresh bytes.
    auto stale = dir.path / fmt::format(".out.tar.tmp-{}-AbCdEf", dead_pid());
    {
        std::ofstream f(stale, std::ios::binary);
        f << fresh << std::string(5000, 'j');
    }
    auto [adopted, kept] = write(dir.path / "out.tar", false);
    CHECK(adopted == fs::absolute(stale));
    CHECK(kept);
    CHECK(slurp(dir.path / "out.tar") == fresh);
    CHECK_FALSE(fs::exists(stale));

    // Not taken over (and the next writer removes them as before): a symlink to a file
    // elsewhere, a file with a second link, a part of a split bundle's.
    auto victim = dir.path / "victim";
    {
        std::ofstream f(victim, std::ios::binary);
        f << "do not touch";
    }
    fs::create_symlink(victim, dir.path / fmt::format(".out2.tar.tmp-{}-AbCdEf", dead_pid()));
    std::tie(adopted, kept) = write(dir.path / "out2.tar", true);
    CHECK(adopted.empty());
    CHECK(slurp(victim) == "do not touch");
    fs::create_hard_link(victim, dir.path / fmt::format(".out3.tar.tmp-{}-AbCdEf", dead_pid()));
    std::tie(adopted, kept) = write(dir.path / "out3.tar", true);
    CHECK(adopted.empty());
    CHECK(slurp(victim) == "do not touch");
    CHECK(slurp(dir.path / "out3.tar") == fresh);
    {
        std::ofstream f(dir.path / fmt::format(".out4.tar.part000.tmp-{}-AbCdEf", dead_pid()), std::ios::binary);
        f << fresh;
    }
    std::tie(adopted, kept) = write(dir.path / "out4.tar", true);
    CHECK(adopted.empty());
    // Without adopt_partial, a killed writer's file is removed, not taken over.
    opts.adopt_partial = false;
    {
        std::ofstream f(dir.path / fmt::format(".out5.tar.tmp-{}-AbCdEf", dead_pid()), std::ios::binary);
        f << fresh;
    }
    std::tie(adopted, kept) = write(dir.path / "out5.tar", true);
    CHECK(adopted.empty());
    CHECK_FALSE(kept);
    std::vector<std::string> left;
    for (const auto& e : fs::directory_iterator(dir.path))
        if (e.path().filename().string().find(".tmp-") != std::string::npos) left.push_back(e.path().filename());
    CHECK(left.empty());
}
