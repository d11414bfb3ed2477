#pragma once
// Where one image stands in a transfer, as pack and load report it to their callers
// (pack::Events::image, load::Events::image), and the tracks of several images that make
// those reports. Only data: drawing it is the caller's job.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace aas::util {

enum class ImageState {
    waiting, ///< none of its blobs has moved yet
    active,  ///< some of its blobs are moving (pack: downloading; load: pushing)
    done,    ///< every blob it needs is there (load: its manifests are pushed too)
    failed,  ///< one of its blobs failed
};

struct ImageProgress {
    std::string ref;    ///< the image's reference (logical, as in bundle.json)
    std::string target; ///< load: where it goes; pack: empty
    ImageState state = ImageState::waiting;
    /// Bytes of the image's blobs (config and layers) that are there: moved in this run,
    /// already in the cache or the registry, or shared with an image that moved them.
    std::uint64_t done = 0;
    std::uint64_t total = 0;    ///< bytes of the image's blobs
    bool moved_nothing = false; ///< done with nothing to move (all in the cache / registry)
};

/// Where each image of a transfer stands, from the news of its blobs (a blob may be shared
/// by several images, its "users", given as indexes in the order of add()), reported to
/// `report` image by image as it changes. Used by pack (downloads) and load (pushes).
/// Thread-safe.
class ImageTracks {
public:
    /// When an image is done: when none of its blobs is missing (pack), or only when
    /// finish() says so (load: its manifests are pushed too).
    enum class DoneWhen { blobs_there, finished };
    using Report = std::function<void(const ImageProgress&)>;

    /// `report` unset: nothing is reported.
    ImageTracks(DoneWhen done_when, Report report);

    /// Adds the next image: `total` bytes in its blobs, `present` of them there already,
    /// `missing` blobs still to move. A hidden image is never reported by report_all().
    void add(std::string ref, std::string target, std::uint64_t total, std::uint64_t present, std::size_t missing,
             bool hidden = false);
    /// Every image that is not hidden, as it stands.
    void report_all();
    /// News of one blob the images `users` share: `bytes` more of it are there; `whole`:
    /// all of it is (their bytes count whole once none of their blobs is missing);
    /// `by_us`: this run moved them (the image has started).
    void blob_news(const std::vector<std::size_t>& users, std::uint64_t bytes, bool whole, bool by_us);
    /// A blob of the images `users` failed.
    void failed(const std::vector<std::size_t>& users);
    /// Image `i` is finished (DoneWhen::finished): all its bytes count.
    void finish(std::size_t i);

private:
    struct Track {
        std::string ref, target;
        std::uint64_t total = 0, done = 0;
        std::size_t missing = 0;
        bool hidden = false, started = false, finished = false, failed = false;
    };
    void report(const Track& t) const; // with mu_ held

    DoneWhen done_when_;
    Report report_;
    std::mutex mu_;
    std::vector<Track> tracks_;
};

} // namespace aas::util
