#pragma once
// Rewriting a bundle's k8s/ folder so that every image it references comes from the
// private registry (`aas-bundle load`, step 4). Files are edited as text, by line and
// column, never re-serialised: comments, key order, quoting, blank lines, trailing spaces
// and CRLF line ends stay byte for byte; only image values change and missing keys are
// inserted.
//
// Each site discovery recorded (bundle::SiteRecord) gets its image's target reference in
// the form its chart reads:
//
//   full reference string   `image: busybox`, `router: <REGISTRY>/x/router:v1`,
//                           `image: quay.io/x@sha256:…`: the target's name plus the same
//                           kind of suffix as written (a tag: the target's tag; a digest:
//                           the digest as written; neither: none)
//   repository string       a values path ending in `.repository`, or a map whose chart
//                           default has `repository` but no `registry`: the target's name
//                           (tag and digest keys are left alone)
//   Bitnami map             `registry` + `repository` (+ `tag`, `digest`):
//                           registry: HOST[:PORT], repository: PREFIX/PATH
//   ingress-nginx map       `registry` + `image` (+ `tag`, `digest`):
//                           registry: HOST[:PORT][/PREFIX], image: PATH as written
//                           (the chart may append to it, as ingress-nginx's `-chroot`)
//   joined reference        a site with parts (values that are not one value or one map's:
//                           `defaultImageRegistry`/`defaultImageRepository`/`name`): the
//                           one value whose text starts the reference and holds all that
//                           differs from the target, the registry host (or nothing, for a
//                           Docker Hub name), becomes HOST[:PORT][/PREFIX] there
//                           (`defaultImageRegistry: reg.local:5000/ai`); the other values are
//                           left alone. A value shared by several images is written once
//                           when they all need the same text; a chart file's value (read
//                           through .Files) is edited in that file, never inside a .tgz.
//
// Which file is edited:
//   - a value written in one of the release's values files: that file, in place;
//   - a value that is a chart default (the chart's own values.yaml, subcharts and .tgz
//     charts included): the key is INSERTED into the release's last values file, under its
//     parent map (created as needed) at the end of the parent's block, or at the end of the
//     file; a release with no values file gets a new one,
//     `k8s/environments/airgap/<release>-values.yaml`, appended to its `values`;
//   - without a release (a folder scanned without a manifest): the chart default in place;
//   - templates (helm test hooks with a literal image) and plain manifests: in place;
//   - files outside k8s/ (the bundle manifest's `images`): ignored.
// What cannot be done safely (a template inside a .tgz, a line that does not hold the value
// discovery recorded, a parent that is not a block map) is a warning, never a guess.

#include "aas_bundle/bundle/format.hpp"
#include "aas_bundle/ref/reference.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace aas::rewrite {

/// One image of the bundle and where it goes.
struct ImageTarget {
    std::string source;                    ///< normalised logical reference (bundle.json images[].ref)
    ref::Reference target;                 ///< full target reference ("reg.local:5000/ai/bitnami/mongodb:6.0.3")
    std::vector<bundle::SiteRecord> sites; ///< where the image is referenced (bundle.json images[].sites)
};

/// The new content of one file.
struct FileChange {
    std::string path;   ///< relative to the root: "k8s/environments/production/x-values.yaml"
    std::string before; ///< content now ("" when created)
    std::string after;  ///< content to write
    bool created = false;
};

struct Plan {
    std::vector<FileChange> changes;             ///< sorted by path; only files whose content changes
    std::vector<bundle::ReleaseRecord> releases; ///< every release given, with created values files appended
    std::vector<std::string> warnings;           ///< sites not rewritten: "FILE:LINE: values.path: why"
};

/// Computes the edits that point every site of `images` at its target. `root` holds the
/// k8s/ folder (site files are relative to it: "k8s/environments/production/x.yaml");
/// `releases` are bundle.json's (chart and values relative to k8s/). Reads files under
/// `root`, writes nothing. Throws aas::Error when a chart or values file cannot be read,
/// when two sites need different values at the same place (the message names both), and
/// when the values file it would create already exists.
Plan plan(const std::filesystem::path& root, const std::vector<ImageTarget>& images,
          const std::vector<bundle::ReleaseRecord>& releases);

/// Writes `p`'s changes under `root`, each file atomically (temporary file, fsync, rename)
/// with its mode kept (0644 for created files, their folders created). Throws aas::Error
/// naming the file when it cannot be written, or when its content is no longer the plan's
/// `before` (nothing of that file is written then).
void apply(const std::filesystem::path& root, const Plan& p);

/// The change as `diff -u` prints it: "--- a/PATH" (or "--- /dev/null" when created),
/// "+++ b/PATH", then "@@ -L,N +L,N @@" hunks with 3 lines of context; a last line
/// without newline is followed by "\ No newline at end of file". "" when nothing changes.
std::string unified_diff(const FileChange& change);

} // namespace aas::rewrite
