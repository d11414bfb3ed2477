#include "aas_bundle/signing/signing.hpp"

#include "aas_bundle/signing/hash.hpp"

#include "aas_bundle/util/fs.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>

namespace aas::signing {
namespace fs = std::filesystem;

namespace {

struct PkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct BioFree {
    void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Bio = std::unique_ptr<BIO, BioFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

std::string openssl_error() {
    unsigned long e = ERR_get_error();
    if (!e) return "unknown OpenSSL error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

// `strict_public`: a private key file is refused where a public key is asked for
// (verifying), instead of reading its public half.
Pkey read_key(const fs::path& file, bool want_private, bool strict_public = false) {
    std::string pem = util::read_file(file, 64u << 10);
    Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    Pkey key(want_private ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
                          : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    if (!key && !want_private) {
        // A private key file also holds the public half.
        Bio again(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
        ERR_clear_error();
        key.reset(PEM_read_bio_PrivateKey(again.get(), nullptr, nullptr, nullptr));
        if (key && strict_public)
            throw Error(fmt::format("{} is a private key: give the public key (NAME.pub) instead; the private key "
                                    "stays on the online side",
                                    file.string()));
    }
    if (!key) {
        ERR_clear_error();
        throw Error(fmt::format("{}: not a PEM {} key (expected one written by aas-bundle keygen)", file.string(),
                                want_private ? "private" : "public"));
    }
    if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519)
        throw Error(fmt::format("{}: an {} key, not Ed25519", file.string(), EVP_PKEY_get0_type_name(key.get())));
    return key;
}

std::string bio_string(BIO* b) {
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    return std::string(data, static_cast<std::size_t>(n));
}

std::string fingerprint_of(EVP_PKEY* key) {
    unsigned char* der = nullptr;
    int n = i2d_PUBKEY(key, &der);
    if (n <= 0) throw Error("OpenSSL: cannot encode a public key: " + openssl_error());
    Hash h(HashKind::sha256);
    h.update(der, static_cast<std::size_t>(n));
    OPENSSL_free(der);
    std::string md = h.finish();
    return "sha256:" + util::to_hex(reinterpret_cast<const unsigned char*>(md.data()), md.size());
}

} // namespace

std::string generate_keypair(const fs::path& base, bool overwrite) {
    fs::path priv = base;
    priv += ".key";
    fs::path pub = base;
    pub += ".pub";
    std::error_code ec;
    if (!overwrite && (fs::exists(priv, ec) || fs::exists(pub, ec)))
        throw UsageError(fmt::format("{} or {} already exists: choose another name, or --force to replace them",
                                     priv.string(), pub.string()));
    Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    if (!key) throw Error("OpenSSL: cannot generate an Ed25519 key: " + openssl_error());
    Bio priv_bio(BIO_new(BIO_s_mem())), pub_bio(BIO_new(BIO_s_mem()));
    if (PEM_write_bio_PrivateKey(priv_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
        PEM_write_bio_PUBKEY(pub_bio.get(), key.get()) != 1)
        throw Error("OpenSSL: cannot encode the key pair: " + openssl_error());
    util::write_file_atomic(priv, bio_string(priv_bio.get()), fs::perms::owner_read | fs::perms::owner_write);
    util::write_file_atomic(pub, bio_string(pub_bio.get()));
    return fingerprint_of(key.get());
}

std::string sign(const fs::path& private_key_file, std::string_view data) {
    Pkey key = read_key(private_key_file, true);
    MdCtx ctx(EVP_MD_CTX_new());
    std::string sig(64, '\0');
    std::size_t len = sig.size();
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
        EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1)
        throw Error(fmt::format("signing with {}: {}", private_key_file.string(), openssl_error()));
    sig.resize(len);
    return sig;
}

bool verify(const fs::path& public_key_file, std::string_view data, std::string_view signature) {
    Pkey key = read_key(public_key_file, false, true);
    MdCtx ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1)
        throw Error(fmt::format("verifying with {}: {}", public_key_file.string(), openssl_error()));
    int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                              reinterpret_cast<const unsigned char*>(data.data()), data.size());
    ERR_clear_error();
    return rc == 1;
}

std::string fingerprint(const fs::path& key_file) {
    Pkey key = read_key(key_file, false);
    return fingerprint_of(key.get());
}

std::string public_fingerprint(const fs::path& public_key_file) {
    Pkey key = read_key(public_key_file, false, true);
    return fingerprint_of(key.get());
}

} // namespace aas::signing
