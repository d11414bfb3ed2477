#pragma once
// Progress on stderr: a redrawn status line (bytes, rate) on a terminal, plain log lines
// otherwise, nothing in quiet mode (e.g. with --json).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace aas::cli {

class Progress {
public:
    enum class Mode { tty, plain, quiet };
    /// tty when stderr is a terminal, plain otherwise.
    static Mode detect();

    Progress(Mode mode, std::string title);
    ~Progress();

    /// Starts a phase with a known amount of work: the status line then shows
    /// "TITLE: done / total (P%), rate, ETA" (thread-safe).
    void phase(std::string title, std::uint64_t total);
    /// Adds transferred bytes (thread-safe).
    void add(std::uint64_t pulled, std::uint64_t pushed);
    /// Prints one line of news (above the status line on a terminal).
    void line(const std::string& text);
    /// Stops redrawing and clears the status line.
    void finish();

private:
    void draw_locked();

    Mode mode_;
    std::string title_;
    std::atomic<std::uint64_t> pulled_{0}, pushed_{0}, total_{0};
    std::chrono::steady_clock::time_point start_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread ticker_;
};

} // namespace aas::cli
