#pragma once
// Internal to the verify module: hashing entries on worker threads while the reading
// thread decodes the next ones. Each entry (a Job) goes to one worker, the one with the
// fewest bytes waiting, so its chunks are hashed in order; memory is a fixed pool of
// chunk buffers, and the reader waits for a free one.

#include "aas_bundle/oci/digest.hpp"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace aas::verify::detail {

class HashPool {
public:
    struct Job {
        oci::Hasher hasher;
        std::uint64_t bytes = 0;
        oci::Digest result;
        bool complete = false; ///< the last chunk was submitted (set by the reader)
        std::size_t worker = 0;
    };

    HashPool(unsigned workers, std::size_t chunk_size, std::size_t chunks);
    ~HashPool();
    HashPool(const HashPool&) = delete;
    HashPool& operator=(const HashPool&) = delete;

    /// A new job, assigned to the least loaded worker. Valid until the pool is destroyed.
    Job* start();
    /// A free chunk buffer of chunk_size() bytes (blocks until one is free).
    char* buffer();
    /// Hands `n` bytes in `buf` (from buffer(), or nullptr with n 0) to the job's worker;
    /// `last` finishes the job's digest after them.
    void submit(Job* job, char* buf, std::size_t n, bool last);
    /// Returns an unused buffer to the pool.
    void release(char* buf);
    /// Waits until every chunk submitted so far is hashed.
    void wait();
    std::size_t chunk_size() const { return chunk_size_; }

private:
    struct Chunk {
        Job* job;
        char* buf;
        std::size_t n;
        bool last;
    };
    struct Worker {
        std::deque<Chunk> queue;
        std::uint64_t pending = 0;
        std::condition_variable cv;
        std::thread thread;
    };
    void run(Worker& w);

    std::size_t chunk_size_;
    std::vector<std::unique_ptr<char[]>> storage_;
    std::vector<char*> free_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::deque<std::unique_ptr<Job>> jobs_;
    std::mutex mu_;
    std::condition_variable free_cv_, idle_cv_;
    std::size_t in_flight_ = 0;
    bool stop_ = false;
};

} // namespace aas::verify::detail
