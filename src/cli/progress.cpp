#include "progress.hpp"

#include "aas_bundle/util/log.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>

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

void Progress::draw_locked() {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::uint64_t moved = pulled_ + pushed_;
    double rate = secs > 0 ? static_cast<double>(moved) / secs : 0;
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
