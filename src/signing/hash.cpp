#include "aas_bundle/signing/hash.hpp"

#include "aas_bundle/util/error.hpp"

#include <openssl/evp.h>

namespace aas::signing {

struct Hash::Impl {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Impl() { EVP_MD_CTX_free(ctx); }
};

static const EVP_MD* md_of(HashKind kind) {
    return kind == HashKind::sha256 ? EVP_sha256() : EVP_sha512();
}

Hash::Hash(HashKind kind) : kind_(kind), impl_(std::make_unique<Impl>()) {
    if (!impl_->ctx || EVP_DigestInit_ex(impl_->ctx, md_of(kind), nullptr) != 1)
        throw Error("OpenSSL: cannot start a digest");
}
Hash::~Hash() = default;
Hash::Hash(Hash&&) noexcept = default;
Hash& Hash::operator=(Hash&&) noexcept = default;

void Hash::update(const void* data, std::size_t n) {
    if (n && EVP_DigestUpdate(impl_->ctx, data, n) != 1) throw Error("OpenSSL: digest update failed");
}

std::string Hash::finish() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(impl_->ctx, out, &len) != 1) throw Error("OpenSSL: digest final failed");
    reset();
    return std::string(reinterpret_cast<const char*>(out), len);
}

void Hash::reset() {
    if (EVP_DigestInit_ex(impl_->ctx, md_of(kind_), nullptr) != 1) throw Error("OpenSSL: cannot restart a digest");
}

} // namespace aas::signing
