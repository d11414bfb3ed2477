#include "progress.hpp"

#include "aas_bundle/util/log.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <unistd.h>

namespace aas::cli {

Progress::Mode Progress::detect() { return ::isatty(STDERR_FILENO) ? Mode::tty : Mode::plain; }

Progress::Progress(Mode mode, std::string title)
    : mode_(mode), title_(std::move(title)), start_(std::chrono::steady_clock::now()) {
    if (mode_ == Mode::tty) {
        ticker_ = std::thread([this] {
            std::unique_lock lock(mutex_);
            while (!done_) {
                draw_locked();
                cv_.wait_for(lock, std::chrono::milliseconds(200));
            }
        });
    }
}

Progress::~Progress() { finish(); }

void Progress::add(std::uint64_t pulled, std::uint64_t pushed) {
    pulled_ += pulled;
    pushed_ += pushed;
}

void Progress::phase(std::string title, std::uint64_t total) {
    std::lock_guard lock(mutex_);
    title_ = std::move(title);
    total_ = total;
    pulled_ = 0;
    pushed_ = 0;
    start_ = std::chrono::steady_clock::now();
    if (mode_ == Mode::plain && total > 0) log::info("{}: {}", title_, util::human_bytes(total));
}

void Progress::draw_locked() {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::uint64_t moved = pulled_ + pushed_;
    double rate = secs > 0 ? static_cast<double>(moved) / secs : 0;
    if (total_ > 0) {
        std::uint64_t done = std::min<std::uint64_t>(moved, total_);
        double pct = 100.0 * static_cast<double>(done) / static_cast<double>(total_);
        std::string eta = rate > 0 ? fmt::format("ETA {:.0f} s", static_cast<double>(total_ - done) / rate) : "ETA -";
        std::fprintf(stderr, "\r\033[K%s: %s / %s (%.0f%%), %s/s, %s", title_.c_str(), util::human_bytes(done).c_str(),
                     util::human_bytes(total_).c_str(), pct, util::human_bytes(static_cast<std::uint64_t>(rate)).c_str(),
                     eta.c_str());
        std::fflush(stderr);
        return;
    }
    std::fprintf(stderr, "\r\033[K%s: pulled %s, pushed %s, %s/s, %.0f s", title_.c_str(),
                 util::human_bytes(pulled_).c_str(), util::human_bytes(pushed_).c_str(),
                 util::human_bytes(static_cast<std::uint64_t>(rate)).c_str(), secs);
    std::fflush(stderr);
}

void Progress::line(const std::string& text) {
    if (mode_ == Mode::quiet) return;
    std::lock_guard lock(mutex_);
    if (mode_ == Mode::tty) std::fprintf(stderr, "\r\033[K");
    log::info("{}", text);
    if (mode_ == Mode::tty && !done_) draw_locked();
}

void Progress::finish() {
    {
        std::lock_guard lock(mutex_);
        if (done_) return;
        done_ = true;
    }
    cv_.notify_all();
    if (ticker_.joinable()) ticker_.join();
    if (mode_ == Mode::tty) {
        std::fprintf(stderr, "\r\033[K");
        std::fflush(stderr);
    }
}

} // namespace aas::cli
