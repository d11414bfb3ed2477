#pragma once
// The one way this project runs independent items on several threads.

#include <cstddef>
#include <functional>

namespace aas::util {

/// Calls `fn(0)` … `fn(count - 1)` on up to `jobs` threads (the calling thread is one of
/// them), each index exactly once, taken in increasing order. Returns when every call has
/// returned. If a call throws, no index not yet taken is started, the calls running finish,
/// and the first exception is rethrown here; callers that want to go on after a failure
/// catch inside `fn`. `jobs` 0 means one thread.
void parallel_for(std::size_t count, unsigned jobs, const std::function<void(std::size_t)>& fn);

} // namespace aas::util
