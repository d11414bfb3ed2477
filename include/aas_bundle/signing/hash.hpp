#pragma once
// SHA-256 and SHA-512 over a stream of bytes (OpenSSL EVP). The module that owns OpenSSL
// owns hashing too; `oci` builds its content digests on this.

#include <memory>
#include <string>

namespace aas::signing {

enum class HashKind { sha256, sha512 };

/// Incremental hashing. Throws aas::Error when OpenSSL fails (it does not for these).
class Hash {
public:
    explicit Hash(HashKind kind);
    ~Hash();
    Hash(Hash&&) noexcept;
    Hash& operator=(Hash&&) noexcept;
    Hash(const Hash&) = delete;
    Hash& operator=(const Hash&) = delete;

    void update(const void* data, std::size_t n);
    /// The raw digest (32 or 64 bytes); the hash restarts afterwards.
    std::string finish();
    /// Drops everything hashed so far.
    void reset();

private:
    struct Impl;
    HashKind kind_;
    std::unique_ptr<Impl> impl_;
};

} // namespace aas::signing
