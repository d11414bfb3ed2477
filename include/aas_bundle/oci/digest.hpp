#pragma once
// Content digests ("sha256:<64 hex>", "sha512:<128 hex>") and streaming hashing.
//
// A digest is always computed over the exact bytes that were stored or sent; manifests are
// never re-serialised before hashing.

#include "aas_bundle/signing/hash.hpp"
#include "aas_bundle/util/error.hpp"

#include <string>
#include <string_view>

namespace aas::oci {

enum class Algorithm { sha256, sha512 };

class Digest {
public:
    Digest() = default;
    /// Parses "sha256:<hex>" or "sha512:<hex>" (lower-case hex of the right length);
    /// throws aas::Error naming the input otherwise.
    static Digest parse(std::string_view s);
    /// Digest of `bytes` with `alg`.
    static Digest of(std::string_view bytes, Algorithm alg = Algorithm::sha256);

    Algorithm algorithm() const { return alg_; }
    const std::string& hex() const { return hex_; }
    std::string str() const;
    bool empty() const { return hex_.empty(); }
    /// First 12 hex digits, for compact messages: "sha256:4ba73c697770".
    std::string short_str() const;

    bool operator==(const Digest&) const = default;
    auto operator<=>(const Digest& o) const { return str() <=> o.str(); }

private:
    Algorithm alg_ = Algorithm::sha256;
    std::string hex_;
};

/// Incremental hashing into a Digest (signing::Hash: OpenSSL EVP).
class Hasher {
public:
    explicit Hasher(Algorithm alg = Algorithm::sha256);

    void update(const void* data, std::size_t n);
    void update(std::string_view s) { update(s.data(), s.size()); }
    /// Finishes and returns the digest; the hasher restarts afterwards.
    Digest finish();
    /// Drops everything hashed so far.
    void reset();
    Algorithm algorithm() const { return alg_; }

private:
    Algorithm alg_;
    signing::Hash hash_;
};

} // namespace aas::oci
