#pragma once
// Ed25519 keys and signatures (OpenSSL 3), for signing bundle.json.
//
// Keys are PEM files that stock tools read: NAME.key holds the private key (PKCS#8, mode
// 0600), NAME.pub the public key (SubjectPublicKeyInfo). A signature is the raw 64-byte
// Ed25519 signature over the exact bytes signed, so it verifies with
//   openssl pkeyutl -verify -rawin -pubin -inkey NAME.pub -in bundle.json -sigfile bundle.json.sig

#include "aas_bundle/util/error.hpp"

#include <filesystem>
#include <string>
#include <string_view>

namespace aas::signing {

/// Writes a new key pair to `base`.key and `base`.pub (atomically; the private key with
/// mode 0600). Refuses to replace existing files unless `overwrite`. Returns the public
/// key's fingerprint.
std::string generate_keypair(const std::filesystem::path& base, bool overwrite = false);

/// Signs `data` with the private key in `private_key_file`; returns the 64-byte signature.
/// Throws aas::Error naming the file when it is not an Ed25519 private key.
std::string sign(const std::filesystem::path& private_key_file, std::string_view data);

/// True when `signature` is a valid signature of `data` by the key in `public_key_file`.
/// Throws aas::Error naming the file when it is not an Ed25519 public key.
bool verify(const std::filesystem::path& public_key_file, std::string_view data, std::string_view signature);

/// "sha256:<hex>" of the public key's DER encoding (the key in `public_key_file`, which may
/// also be a private key file: its public half is used).
std::string fingerprint(const std::filesystem::path& key_file);

/// Like fingerprint(), for a key that must be public (verify, inspect and load take one):
/// a private key file is refused with aas::Error saying so.
std::string public_fingerprint(const std::filesystem::path& public_key_file);

} // namespace aas::signing
