// util::parallel_for and the EINTR-safe read helpers of util/fs.hpp.

#include "testing.hpp"

#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/util/parallel.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

using aas::testing::TempDir;

TEST_CASE("util::parallel_for calls every index once, on up to `jobs` threads") {
    for (unsigned jobs : {0u, 1u, 3u, 16u}) {
        std::vector<std::atomic<int>> calls(100);
        std::mutex mu;
        std::set<std::thread::id> threads;
        aas::util::parallel_for(calls.size(), jobs, [&](std::size_t i) {
            ++calls[i];
            std::lock_guard lock(mu);
            threads.insert(std::this_thread::get_id());
        });
        for (auto& c : calls) CHECK(c.load() == 1);
        CHECK(threads.size() >= 1);
        CHECK(threads.size() <= std::max(1u, jobs));
    }
    bool called = false;
    aas::util::parallel_for(0, 4, [&](std::size_t) { called = true; });
    CHECK_FALSE(called);
}

TEST_CASE("util::parallel_for rethrows the first exception and starts nothing after it") {
    std::atomic<std::size_t> started{0};
    CHECK_THROWS_WITH_AS(aas::util::parallel_for(1000, 1,
                                                 [&](std::size_t i) {
                                                     ++started;
                                                     if (i == 10) throw std::runtime_error("item 10 failed");
                                                 }),
                         "item 10 failed", std::runtime_error);
    CHECK(started.load() == 11); // one thread: the items after the failed one are never taken
    std::atomic<std::size_t> started4{0};
    CHECK_THROWS_AS(aas::util::parallel_for(1000, 4,
                                            [&](std::size_t i) {
                                                ++started4;
                                                if (i == 0) throw aas::Error("first");
                                                // the other items take a while, so that the three other
                                                // threads cannot run out of items before the failure stops them
                                                std::this_thread::sleep_for(std::chrono::milliseconds(2));
                                            }),
                    aas::Error);
    CHECK(started4.load() < 1000);
}

TEST_CASE("util::read_chunks and read_file read a whole file; errors name it") {
    TempDir d;
    std::string text(200000, 'x');
    for (std::size_t i = 0; i < text.size(); i += 7) text[i] = static_cast<char>('a' + i % 26);
    std::ofstream(d.path / "f", std::ios::binary) << text;
    auto fd = aas::util::open_for_reading(d.path / "f");
    std::string got;
    std::size_t chunks = 0;
    auto total = aas::util::read_chunks(fd.get(), 4096, "f", [&](const char* p, std::size_t n) {
        CHECK(n <= 4096);
        got.append(p, n);
        ++chunks;
    });
    CHECK(total == text.size());
    CHECK(got == text);
    CHECK(chunks >= text.size() / 4096);
    CHECK(aas::util::read_file(d.path / "f") == text);
    CHECK_THROWS_WITH(aas::util::read_file(d.path / "f", 1000),
                      doctest::Contains("larger than the limit of 1000 bytes"));
    CHECK_THROWS_WITH(aas::util::open_for_reading(d.path / "missing"),
                      doctest::Contains("missing: No such file or directory"));
    char c;
    CHECK_THROWS_WITH(aas::util::read_some(-1, &c, 1, "nothing"),
                      doctest::Contains("reading nothing: Bad file descriptor"));

    // pread_some: at an offset, without moving the file's position; 0 past the end.
    char four[4];
    CHECK(aas::util::pread_some(fd.get(), four, 4, 7, "f") == 4);
    CHECK(std::string(four, 4) == text.substr(7, 4));
    CHECK(aas::util::pread_some(fd.get(), four, 4, text.size() - 2, "f") == 2);
    CHECK(aas::util::pread_some(fd.get(), four, 4, text.size() + 10, "f") == 0);
    CHECK(aas::util::pread_retrying(-1, four, 4, 0) == -1);
    CHECK_THROWS_WITH(aas::util::pread_some(-1, four, 4, 0, "nothing"),
                      doctest::Contains("reading nothing: Bad file descriptor"));
}
