#include "aas_bundle/util/error.hpp"

namespace aas {

std::string wrap_message(const std::string& context, const std::string& message) {
    return context + ": " + message;
}

} // namespace aas
