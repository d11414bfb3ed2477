#pragma once
// Delta bundles: what the offline registry holds (the inventory), and what an online pack
// may leave out because of it (the bases of a delta). docs/inventory-format.md specifies the
// inventory; in short:
//
//   INVENTORY := {"format": "aas-bundle-inventory/v1", "registry", "prefix", "created",
//                 "from": [FROM], "images": [IMAGE], "blobs": [BLOB]}     sorted, 2-space JSON
//   FROM      := {"kind": "bundle" | "lock", "sha256", "name"}
//   IMAGE     := {"repository", "tag": string | null, "digest", "manifests": [digest]}
//   BLOB      := {"digest", "size", "repositories": [string]}
//
// Written by `load` (OUT/inventory.json) and `aas-bundle inventory`, optionally with a
// detached Ed25519 signature beside it (inventory.json.sig, the bundle signature's scheme).
// Read by `pack --have` as hostile input: size-capped, strictly typed, every digest parsed,
// every repository validated, errors naming the file and the field.

#include "aas_bundle/bundle/format.hpp"
#include "aas_bundle/oci/digest.hpp"
#include "aas_bundle/registry/client.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aas::delta {

inline constexpr std::string_view inventory_format = "aas-bundle-inventory/v1";
/// An inventory larger than this is refused by readers.
inline constexpr std::uint64_t max_inventory = 64u << 20;
/// The detached signature's suffix: inventory.json -> inventory.json.sig.
inline constexpr std::string_view signature_suffix = ".sig";

struct From {
    std::string kind;   ///< bundle | lock
    oci::Digest sha256; ///< of bundle.json, or of the lock file
    std::string name;   ///< "NAME VERSION" of the bundle, or the lock file's name
};

struct InventoryImage {
    std::string repository;             ///< full path in the registry, prefix included
    std::optional<std::string> tag;     ///< nullopt: held by digest only
    oci::Digest digest;                 ///< the top manifest
    std::vector<oci::Digest> manifests; ///< every manifest of its graph, the top included, sorted
};

struct InventoryBlob {
    oci::Digest digest;
    std::int64_t size = 0;
    std::vector<std::string> repositories; ///< sorted
};

struct Inventory {
    std::string format{inventory_format};
    std::string registry; ///< host[:port]
    std::string prefix;   ///< "" for none
    std::string created;  ///< RFC 3339 UTC
    std::vector<From> from;
    std::vector<InventoryImage> images; ///< sorted by repository, tag, digest
    std::vector<InventoryBlob> blobs;   ///< sorted by digest

    /// Deterministic JSON (sorted as above, fixed key order, 2-space indent, newline).
    std::string to_json() const;
    /// Parses and checks hostile input; throws aas::Error "WHERE: FIELD: what" naming the
    /// field (`blobs[3].size: not a non-negative integer`).
    static Inventory parse(std::string_view json, const std::string& where);
};

/// `HOST[:PORT][/PREFIX]` (as --registry takes it) as its host and its prefix (no trailing
/// slash; "" for none).
std::pair<std::string, std::string> split_registry(const std::string& registry);

/// An image whose holdings an inventory describes: its repository in the registry (prefix
/// included), the tag or digest it is held under, and the digest expected there (empty:
/// whatever the registry has).
struct Wanted {
    std::string repository;
    std::string reference; ///< a tag, or a digest
    oci::Digest expect;
};

/// Asks the registry what it holds for `wanted`: HEAD of each manifest, GET of every
/// manifest of its graph (oci::walk), HEAD of each config and layer in that repository.
/// An image the registry lacks, or holds under another digest than expected, is left out
/// with a line in `warnings`. `created` is seconds since the epoch (-1: SOURCE_DATE_EPOCH
/// or now). Throws registry::RegistryError when the registry fails.
Inventory collect(registry::Client& client, const std::string& registry_with_prefix, const std::vector<Wanted>& wanted,
                  std::vector<From> from, std::int64_t created, std::vector<std::string>& warnings);

/// Where a load put one image of a bundle: its repository (prefix included) and the tag it
/// is held under (nullopt: by digest only).
struct Placed {
    const bundle::ImageRecord* image = nullptr;
    std::string repository;
    std::optional<std::string> tag;
};

/// What the registry holds for `doc`'s images after a load of it succeeded, from the
/// verified bundle.json alone (nothing is asked: the load pushed, mounted or found each
/// one there): for every placed image its top manifest and every manifest, config and
/// layer bundle.json lists for it, stored or (a delta) assumed, in its repository. Foreign
/// layers the bundle does not hold are not in the registry, nor in the inventory.
/// `created`: the inventory's date as written (RFC 3339; load gives the bundle's).
Inventory after_load(const bundle::BundleDoc& doc, const std::vector<Placed>& placed,
                     const std::string& registry_with_prefix, std::vector<From> from, std::string created);

/// The images of a load's images.lock.json (at most 64 MiB, read as hostile input), with
/// their repository mapped from the lock's registry prefix to `registry_with_prefix`'s.
/// Throws aas::Error naming the file and the field.
std::vector<Wanted> read_lock(const std::filesystem::path& lock_file, const std::string& registry_with_prefix,
                              From& from);

/// Writes `inv` to `path` atomically, and, when `private_key` is given, its detached
/// signature to `path`.sig (atomically, after the inventory). Without a key, an old .sig
/// beside `path` is removed (it would not match).
void write(const std::filesystem::path& path, const Inventory& inv, const std::filesystem::path& private_key = {});

/// What one `pack --have` argument gives: the base it names, and every blob it says the
/// target registry holds (digest -> size and repositories).
struct Have {
    bundle::BaseRecord base;
    std::map<oci::Digest, InventoryBlob> blobs;
    std::string label; ///< the file as given, for messages
};

/// Reads a `--have` argument: an inventory (JSON), or an old bundle, of which only
/// bundle.json is read (through verify::inspect: size cap, depth cap, strict parse), and
/// whose stored layers become the blobs. For an inventory with `public_key`, PATH.sig must
/// exist and verify, else aas::Error ("the signature does not match: it was altered, or
/// signed with another key"); without a key, a line in `warnings` says its origin was not
/// checked.
Have read_have(const std::filesystem::path& path, const std::filesystem::path& public_key,
               std::vector<std::string>& warnings);

} // namespace aas::delta
