// aas-bundle keygen -o NAME: an Ed25519 key pair for signing bundles.

#include "commands.hpp"

#include "aas_bundle/signing/signing.hpp"

#include <fmt/format.h>

#include <iostream>

namespace aas::cli {

std::function<int()> install_keygen(CLI::App& app) {
    struct Flags {
        std::string out;
        bool force = false;
    };
    auto f = std::make_shared<Flags>();
    add_option_with_alias(app, "-o,--output", "--out", f->out,
                          "Writes NAME.key (private, mode 0600) and NAME.pub (public), PEM");
    app.add_flag("--force", f->force, "Replace existing key files");
    return [f] {
        require_option(f->out, "keygen", "-o/--output NAME");
        auto fp = signing::generate_keypair(f->out, f->force);
        std::cout << fmt::format("wrote {0}.key (private: keep it on the online side) and {0}.pub (public: "
                                 "give it to whoever verifies or loads bundles)\nfingerprint {1}\n",
                                 f->out, fp);
        return ok;
    };
}

} // namespace aas::cli
