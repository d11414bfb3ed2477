#include "hashpool.hpp"

#include <algorithm>

namespace aas::verify::detail {

HashPool::HashPool(unsigned workers, std::size_t chunk_size, std::size_t chunks) : chunk_size_(chunk_size) {
    for (std::size_t i = 0; i < chunks; ++i) {
        storage_.push_back(std::make_unique<char[]>(chunk_size));
        free_.push_back(storage_.back().get());
    }
    for (unsigned i = 0; i < std::max(1u, workers); ++i) workers_.push_back(std::make_unique<Worker>());
    for (auto& w : workers_) w->thread = std::thread([this, p = w.get()] { run(*p); });
}

HashPool::~HashPool() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    for (auto& w : workers_) w->cv.notify_all();
    for (auto& w : workers_) w->thread.join();
}

HashPool::Job* HashPool::start() {
    std::lock_guard lock(mu_);
    std::size_t best = 0;
    for (std::size_t i = 1; i < workers_.size(); ++i)
        if (workers_[i]->pending < workers_[best]->pending) best = i;
    jobs_.push_back(std::make_unique<Job>());
    jobs_.back()->worker = best;
    return jobs_.back().get();
}

char* HashPool::buffer() {
    std::unique_lock lock(mu_);
    free_cv_.wait(lock, [&] { return !free_.empty(); });
    char* b = free_.back();
    free_.pop_back();
    return b;
}

void HashPool::release(char* buf) {
    if (!buf) return;
    {
        std::lock_guard lock(mu_);
        free_.push_back(buf);
    }
    free_cv_.notify_one();
}

void HashPool::submit(Job* job, char* buf, std::size_t n, bool last) {
    Worker& w = *workers_[job->worker];
    {
        std::lock_guard lock(mu_);
        w.queue.push_back({job, buf, n, last});
        w.pending += n;
        ++in_flight_;
        if (last) job->complete = true;
    }
    w.cv.notify_one();
}

void HashPool::wait() {
    std::unique_lock lock(mu_);
    idle_cv_.wait(lock, [&] { return in_flight_ == 0; });
}

void HashPool::run(Worker& w) {
    std::unique_lock lock(mu_);
    for (;;) {
        w.cv.wait(lock, [&] { return stop_ || !w.queue.empty(); });
        if (w.queue.empty()) return; // stopping
        Chunk c = w.queue.front();
        w.queue.pop_front();
        lock.unlock();
        if (c.n > 0) c.job->hasher.update(c.buf, c.n);
        c.job->bytes += c.n;
        if (c.last) c.job->result = c.job->hasher.finish();
        lock.lock();
        w.pending -= c.n;
        if (c.buf) {
            free_.push_back(c.buf);
            free_cv_.notify_one();
        }
        if (--in_flight_ == 0) idle_cv_.notify_all();
    }
}

} // namespace aas::verify::detail
