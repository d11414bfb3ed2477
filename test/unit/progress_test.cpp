// util::ImageTracks: each image's state from the news of blobs shared between images.

#include "aas_bundle/util/progress.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using aas::util::ImageProgress;
using aas::util::ImageState;
using aas::util::ImageTracks;

namespace {

struct Seen {
    std::vector<ImageProgress> events;
    ImageTracks::Report report() {
        return [this](const ImageProgress& ev) { events.push_back(ev); };
    }
    const ImageProgress& last() const { return events.back(); }
};

} // namespace

TEST_CASE("util::ImageTracks, done when the blobs are there (pack)") {
    Seen seen;
    ImageTracks tracks(ImageTracks::DoneWhen::blobs_there, seen.report());
    tracks.add("a:1", "", 300, 100, 2);      // one blob of 100 in the cache, two to download
    tracks.add("gone:1", "", 0, 0, 0, true); // failed before: never reported by report_all
    tracks.add("b:1", "", 50, 50, 0);        // everything in the cache
    tracks.report_all();
    REQUIRE(seen.events.size() == 2);
    CHECK(seen.events[0].ref == "a:1");
    CHECK(seen.events[0].state == ImageState::waiting);
    CHECK(seen.events[0].done == 100);
    CHECK(seen.events[1].ref == "b:1");
    CHECK(seen.events[1].state == ImageState::done);
    CHECK(seen.events[1].moved_nothing);

    tracks.blob_news({0}, 60, false, true);
    CHECK(seen.last().state == ImageState::active);
    CHECK(seen.last().done == 160);
    tracks.blob_news({0}, 0, true, true);
    tracks.blob_news({0}, 500, false, true); // a retried blob's bytes count twice ...
    CHECK(seen.last().done == 300);          // ... but never above the total
    tracks.blob_news({0}, 0, true, true);
    CHECK(seen.last().state == ImageState::done);
    CHECK_FALSE(seen.last().moved_nothing);
    CHECK(seen.last().total == 300);
}

TEST_CASE("util::ImageTracks, done when finished (load); shared blobs and failures") {
    Seen seen;
    ImageTracks tracks(ImageTracks::DoneWhen::finished, seen.report());
    tracks.add("a:1", "reg/a:1", 100, 0, 1);
    tracks.add("b:1", "reg/b:1", 100, 0, 1);
    tracks.blob_news({0, 1}, 100, true, false); // in the registry already: not started by us
    REQUIRE(seen.events.size() == 2);
    CHECK(seen.events[1].target == "reg/b:1");
    CHECK(seen.events[1].state == ImageState::waiting); // its manifests are not pushed yet
    CHECK(seen.events[1].done == 100);
    tracks.finish(0);
    CHECK(seen.last().state == ImageState::done);
    CHECK(seen.last().moved_nothing);
    tracks.failed({1});
    CHECK(seen.last().ref == "b:1");
    CHECK(seen.last().state == ImageState::failed);

    ImageTracks quiet(ImageTracks::DoneWhen::finished, {}); // no report: nothing is called
    quiet.add("c:1", "", 1, 0, 1);
    quiet.blob_news({0}, 1, true, true);
    quiet.finish(0);
    CHECK_THROWS(quiet.finish(1));
}
