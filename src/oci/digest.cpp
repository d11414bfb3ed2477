#include "aas_bundle/oci/digest.hpp"

#include "aas_bundle/signing/hash.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>

namespace aas::oci {

static std::size_t hex_length(Algorithm alg) {
    return alg == Algorithm::sha256 ? 64 : 128;
}
static std::string_view alg_name(Algorithm alg) {
    return alg == Algorithm::sha256 ? "sha256" : "sha512";
}

Digest Digest::parse(std::string_view s) {
    auto colon = s.find(':');
    if (colon == std::string_view::npos)
        throw Error(fmt::format("invalid digest \"{}\": expected \"sha256:<64 hex digits>\"", s));
    auto alg_s = s.substr(0, colon);
    auto hex = s.substr(colon + 1);
    Digest d;
    if (alg_s == "sha256") {
        d.alg_ = Algorithm::sha256;
    } else if (alg_s == "sha512") {
        d.alg_ = Algorithm::sha512;
    } else {
        throw Error(fmt::format("invalid digest \"{}\": unsupported algorithm \"{}\" (sha256 and sha512 are supported)",
                                s, alg_s));
    }
    if (hex.size() != hex_length(d.alg_))
        throw Error(fmt::format("invalid digest \"{}\": a {} digest is {} hex digits", s, alg_s, hex_length(d.alg_)));
    for (char c : hex) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            throw Error(fmt::format("invalid digest \"{}\": '{}' is not a lower-case hex digit", s, c));
    }
    d.hex_ = std::string(hex);
    return d;
}

Digest Digest::of(std::string_view bytes, Algorithm alg) {
    Hasher h(alg);
    h.update(bytes);
    return h.finish();
}

std::string Digest::str() const {
    return fmt::format("{}:{}", alg_name(alg_), hex_);
}

std::string Digest::short_str() const {
    return fmt::format("{}:{}", alg_name(alg_), hex_.substr(0, 12));
}

static signing::HashKind kind_of(Algorithm alg) {
    return alg == Algorithm::sha256 ? signing::HashKind::sha256 : signing::HashKind::sha512;
}

Hasher::Hasher(Algorithm alg) : alg_(alg), hash_(kind_of(alg)) {}

void Hasher::update(const void* data, std::size_t n) {
    hash_.update(data, n);
}

Digest Hasher::finish() {
    std::string raw = hash_.finish();
    return Digest::parse(fmt::format("{}:{}", alg_name(alg_),
                                     util::to_hex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size())));
}

void Hasher::reset() {
    hash_.reset();
}

} // namespace aas::oci
