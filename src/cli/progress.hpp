#pragma once
// Progress on stderr, as docker pull and Zarf show it.
//
// On a terminal: above, the lines that are final (news, and one line per finished image);
// below, a live region redrawn in place (cursor up, erase down) every 200 ms: one line per
// image in flight (state, bytes, rate), a few of the waiting ones, and the total bar with
// ETA. Not a terminal: plain lines, one per image when it finishes. Quiet (e.g. --json):
// nothing. Per-blob lines (`detail`) only with --verbose.

#include "aas_bundle/util/progress.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace aas::cli {

class Progress {
public:
    enum class Mode { tty, plain, quiet };
    /// tty when stderr is a terminal, plain otherwise.
    static Mode detect();

    Progress(Mode mode, std::string title);
    ~Progress();

    /// Words for an image's transfer: "downloading" / "downloaded" (pack),
    /// "pushing" / "pushed" (load), and for one that needed nothing ("in the cache").
    void verbs(std::string active, std::string finished, std::string nothing_to_move);

    /// Starts a phase with a known amount of work: the status line then shows
    /// "TITLE: done / total (P%), rate, ETA" (thread-safe).
    void phase(std::string title, std::uint64_t total);
    /// Adds transferred bytes (thread-safe).
    void add(std::uint64_t pulled, std::uint64_t pushed);
    /// Where one image stands (thread-safe). A finished image gets one final line.
    void image(const util::ImageProgress& ev);
    /// Prints one line of news (above the live region on a terminal).
    void line(const std::string& text);
    /// A line of detail (one per blob): printed only with --verbose.
    void detail(const std::string& text);
    /// Stops redrawing and clears the live region.
    void finish();

private:
    struct Image {
        util::ImageProgress last;
        std::uint64_t done_at_start = 0; ///< bytes already there when first seen
        std::chrono::steady_clock::time_point started{};
        bool moving = false;
    };

    void draw_locked();
    void clear_locked();
    void print_locked(const std::string& text);
    std::string bar_locked() const;
    std::string finished_line(const Image& im) const;

    Mode mode_;
    std::string title_;
    std::string active_ = "moving", finished_ = "done", nothing_ = "nothing to move";
    std::atomic<std::uint64_t> pulled_{0}, pushed_{0}, total_{0};
    std::chrono::steady_clock::time_point start_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool done_ = false;
    int live_lines_ = 0; ///< lines of the live region on the screen now
    std::vector<Image> images_;
    std::unordered_map<std::string, std::size_t> index_;
    std::size_t finished_count_ = 0;
    std::thread ticker_;
};

} // namespace aas::cli
