#pragma once
// Where one image stands in a transfer, as pack and load report it to their callers
// (pack::Events::image, load::Events::image). Only data: drawing it is the caller's job.

#include <cstdint>
#include <string>

namespace aas::util {

enum class ImageState {
    waiting, ///< none of its blobs has moved yet
    active,  ///< some of its blobs are moving (pack: downloading; load: pushing)
    done,    ///< every blob it needs is there (load: its manifests are pushed too)
    failed,  ///< one of its blobs failed
};

struct ImageProgress {
    std::string ref;          ///< the image's reference (logical, as in bundle.json)
    std::string target;       ///< load: where it goes; pack: empty
    ImageState state = ImageState::waiting;
    /// Bytes of the image's blobs (config and layers) that are there: moved in this run,
    /// already in the cache or the registry, or shared with an image that moved them.
    std::uint64_t done = 0;
    std::uint64_t total = 0;  ///< bytes of the image's blobs
    bool moved_nothing = false; ///< done with nothing to move (all in the cache / registry)
};

} // namespace aas::util
