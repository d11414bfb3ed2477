#include "progress.hpp"

#include "aas_bundle/util/log.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <sys/ioctl.h>
#include <unistd.h>

namespace aas::cli {
namespace {

// Lines of the live region longer than the terminal would wrap and break the cursor-up
// count: they are cut to its width.
std::size_t terminal_width() {
    winsize ws{};
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
    return 80;
}

std::string fit(std::string s, std::size_t width) {
    if (s.size() < width) return s;
    s.resize(width > 4 ? width - 4 : 0);
    return s + "...";
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::string rate_of(std::uint64_t bytes, double secs) {
    return util::human_bytes(secs > 0 ? static_cast<std::uint64_t>(static_cast<double>(bytes) / secs) : 0) + "/s";
}

// At most this many lines for images in flight and waiting, so the region stays on screen.
constexpr std::size_t max_active_lines = 12;
constexpr std::size_t max_waiting_lines = 3;

} // namespace

Progress::Mode Progress::detect() {
    return ::isatty(STDERR_FILENO) ? Mode::tty : Mode::plain;
}

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

Progress::~Progress() {
    finish();
}

void Progress::verbs(std::string active, std::string finished, std::string nothing_to_move) {
    std::lock_guard lock(mutex_);
    active_ = std::move(active);
    finished_ = std::move(finished);
    nothing_ = std::move(nothing_to_move);
}

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

std::string Progress::finished_line(const Image& im) const {
    const auto& ev = im.last;
    std::string name = ev.target.empty() ? ev.ref : fmt::format("{} -> {}", ev.ref, ev.target);
    if (ev.state == util::ImageState::failed) return fmt::format("{}: failed (the reason is listed at the end)", name);
    if (!im.moving) return fmt::format("{}: {} ({})", name, nothing_, util::human_bytes(ev.total));
    double secs = seconds_since(im.started);
    std::uint64_t moved = ev.done > im.done_at_start ? ev.done - im.done_at_start : 0;
    return fmt::format("{}: {} {} in {:.1f} s ({})", name, finished_, util::human_bytes(ev.total), secs,
                       rate_of(moved, secs));
}

void Progress::image(const util::ImageProgress& ev) {
    if (mode_ == Mode::quiet) return;
    std::lock_guard lock(mutex_);
    auto [it, fresh] = index_.try_emplace(ev.ref, images_.size());
    if (fresh) {
        images_.push_back({});
        images_.back().done_at_start = ev.done;
    }
    auto& im = images_[it->second];
    bool was_final = !fresh && (im.last.state == util::ImageState::done || im.last.state == util::ImageState::failed);
    if (was_final) return; // one final line per image
    if (!im.moving && ev.state == util::ImageState::active) {
        im.moving = true;
        im.started = std::chrono::steady_clock::now();
    }
    im.last = ev;
    if (ev.state != util::ImageState::done && ev.state != util::ImageState::failed) return;
    ++finished_count_;
    print_locked(finished_line(im));
}

void Progress::clear_locked() {
    if (mode_ != Mode::tty || live_lines_ == 0) return;
    // Back to the first line of the region, then erase from there to the end of the screen.
    std::string s = "\r";
    if (live_lines_ > 1) s += fmt::format("\033[{}A", live_lines_ - 1);
    s += "\033[J";
    std::fputs(s.c_str(), stderr);
    live_lines_ = 0;
}

void Progress::print_locked(const std::string& text) {
    clear_locked();
    log::info("{}", text);
    if (mode_ == Mode::tty && !done_) draw_locked();
}

std::string Progress::bar_locked() const {
    double secs = seconds_since(start_);
    std::uint64_t moved = pulled_ + pushed_;
    double rate = secs > 0 ? static_cast<double>(moved) / secs : 0;
    std::string images =
        images_.empty() ? std::string() : fmt::format(", {}/{} images done", finished_count_, images_.size());
    if (total_ > 0) {
        std::uint64_t done = std::min<std::uint64_t>(moved, total_);
        double pct = 100.0 * static_cast<double>(done) / static_cast<double>(total_);
        std::string eta = rate > 0 ? fmt::format("ETA {:.0f} s", static_cast<double>(total_ - done) / rate) : "ETA -";
        return fmt::format("{}: {} / {} ({:.0f}%), {}, {}{}", title_, util::human_bytes(done),
                           util::human_bytes(total_), pct, rate_of(moved, secs), eta, images);
    }
    return fmt::format("{}: pulled {}, pushed {}, {}, {:.0f} s{}", title_, util::human_bytes(pulled_),
                       util::human_bytes(pushed_), rate_of(moved, secs), secs, images);
}

void Progress::draw_locked() {
    if (mode_ != Mode::tty) return;
    std::vector<std::string> lines;
    std::size_t active = 0, waiting = 0, waiting_shown = 0;
    for (const auto& im : images_) {
        const auto& ev = im.last;
        if (ev.state == util::ImageState::active && active < max_active_lines) {
            ++active;
            double secs = seconds_since(im.started);
            std::uint64_t moved = ev.done > im.done_at_start ? ev.done - im.done_at_start : 0;
            lines.push_back(fmt::format("  {}  {} {} / {}, {}", ev.ref, active_, util::human_bytes(ev.done),
                                        util::human_bytes(ev.total), rate_of(moved, secs)));
        } else if (ev.state == util::ImageState::waiting ||
                   (ev.state == util::ImageState::active && active >= max_active_lines)) {
            ++waiting;
        }
    }
    for (const auto& im : images_) {
        if (waiting_shown == max_waiting_lines) break;
        if (im.last.state != util::ImageState::waiting) continue;
        lines.push_back(fmt::format("  {}  waiting", im.last.ref));
        ++waiting_shown;
    }
    if (waiting > waiting_shown) lines.push_back(fmt::format("  ... and {} more waiting", waiting - waiting_shown));
    lines.push_back(bar_locked());

    auto width = terminal_width();
    clear_locked();
    std::string out = "\r\033[K";
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (i > 0) out += "\n";
        out += fit(lines[i], width);
    }
    std::fputs(out.c_str(), stderr);
    std::fflush(stderr);
    live_lines_ = static_cast<int>(lines.size());
}

void Progress::line(const std::string& text) {
    if (mode_ == Mode::quiet) return;
    std::lock_guard lock(mutex_);
    print_locked(text);
}

void Progress::detail(const std::string& text) {
    if (log::level() < log::Level::debug) return;
    line(text);
}

void Progress::finish() {
    {
        std::lock_guard lock(mutex_);
        if (done_) return;
        done_ = true;
        clear_locked();
    }
    cv_.notify_all();
    if (ticker_.joinable()) ticker_.join();
    if (mode_ == Mode::tty) {
        std::fprintf(stderr, "\r\033[K");
        std::fflush(stderr);
    }
}

} // namespace aas::cli
