#include "aas_bundle/util/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace aas::util {

void parallel_for(std::size_t count, unsigned jobs, const std::function<void(std::size_t)>& fn) {
    if (count == 0) return;
    std::atomic<std::size_t> next{0};
    std::atomic<bool> stop{false};
    std::exception_ptr first;
    std::mutex mu;
    auto worker = [&] {
        for (std::size_t i; !stop.load(std::memory_order_relaxed) && (i = next++) < count;) {
            try {
                fn(i);
            } catch (...) {
                std::lock_guard lock(mu);
                if (!first) first = std::current_exception();
                stop = true;
            }
        }
    };
    std::size_t threads = std::clamp<std::size_t>(jobs, 1, count);
    {
        std::vector<std::jthread> pool;
        pool.reserve(threads - 1);
        for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
        worker();
    }
    if (first) std::rethrow_exception(first);
}

} // namespace aas::util
