#pragma once
// Temporary files and folders that must not outlive an interrupted command. `main`
// starts one watcher thread before any other; on SIGINT or SIGTERM it removes every
// registered path and exits with 128 + the signal (130, 143), as a shell expects.

#include <filesystem>
#include <functional>

namespace aas::util {

/// Blocks SIGINT and SIGTERM in the calling thread (and every thread started after it)
/// and starts the thread that waits for them. Call once, first thing in main.
void install_signal_cleanup();

/// Removes `path` (a file, or a folder with everything in it) if a signal ends the
/// process while this object lives.
class RemoveOnSignal {
public:
    explicit RemoveOnSignal(std::filesystem::path path);
    /// Registers the path `create` makes (a folder with a random name, say), calling it with
    /// the registry locked: a signal between the making and the registering still removes
    /// it. `create` must not make a RemoveOnSignal itself. Its exceptions propagate.
    explicit RemoveOnSignal(const std::function<std::filesystem::path()>& create);
    const std::filesystem::path& path() const { return path_; }
    ~RemoveOnSignal();
    RemoveOnSignal(const RemoveOnSignal&) = delete;
    RemoveOnSignal& operator=(const RemoveOnSignal&) = delete;

private:
    std::filesystem::path path_;
};

} // namespace aas::util
