#include "aas_bundle/util/progress.hpp"

#include <algorithm>
#include <utility>

namespace aas::util {

ImageTracks::ImageTracks(DoneWhen done_when, Report report) : done_when_(done_when), report_(std::move(report)) {}

void ImageTracks::add(std::string ref, std::string target, std::uint64_t total, std::uint64_t present,
                      std::size_t missing, bool hidden) {
    std::lock_guard lock(mu_);
    Track t;
    t.ref = std::move(ref);
    t.target = std::move(target);
    t.total = total;
    t.done = present;
    t.missing = missing;
    t.hidden = hidden;
    tracks_.push_back(std::move(t));
}

void ImageTracks::report_all() {
    std::lock_guard lock(mu_);
    for (const auto& t : tracks_)
        if (!t.hidden) report(t);
}

void ImageTracks::blob_news(const std::vector<std::size_t>& users, std::uint64_t bytes, bool whole, bool by_us) {
    std::lock_guard lock(mu_);
    for (auto u : users) {
        auto& t = tracks_.at(u);
        if (by_us) t.started = true;
        t.done += bytes;
        if (whole) {
            if (t.missing > 0) --t.missing;
            if (t.missing == 0) t.done = t.total; // bytes of a retried blob counted twice
        }
        report(t);
    }
}

void ImageTracks::failed(const std::vector<std::size_t>& users) {
    std::lock_guard lock(mu_);
    for (auto u : users) {
        tracks_.at(u).failed = true;
        report(tracks_.at(u));
    }
}

void ImageTracks::finish(std::size_t i) {
    std::lock_guard lock(mu_);
    auto& t = tracks_.at(i);
    t.finished = true;
    t.done = t.total;
    report(t);
}

void ImageTracks::report(const Track& t) const {
    if (!report_) return;
    bool done = done_when_ == DoneWhen::finished ? t.finished : t.missing == 0;
    ImageProgress ev;
    ev.ref = t.ref;
    ev.target = t.target;
    ev.state = t.failed    ? ImageState::failed
               : done      ? ImageState::done
               : t.started ? ImageState::active
                           : ImageState::waiting;
    ev.done = std::min(t.done, t.total);
    ev.total = t.total;
    ev.moved_nothing = done && !t.started;
    report_(ev);
}

} // namespace aas::util
