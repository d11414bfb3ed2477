#include "aas_bundle/util/signals.hpp"

#include <csignal>
#include <mutex>
#include <pthread.h>
#include <set>
#include <thread>
#include <unistd.h>

namespace aas::util {
namespace fs = std::filesystem;

namespace {

std::mutex& mu() {
    static std::mutex m;
    return m;
}
std::multiset<std::string>& paths() {
    static std::multiset<std::string> p;
    return p;
}

} // namespace

void install_signal_cleanup() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) return;
    std::thread([set] {
        int sig = 0;
        while (sigwait(&set, &sig) != 0) {}
        {
            std::lock_guard lock(mu()); // held until exit: no new path is registered meanwhile
            for (const auto& p : paths()) {
                std::error_code ec;
                fs::remove_all(p, ec);
            }
            ::_exit(128 + sig);
        }
    }).detach();
}

RemoveOnSignal::RemoveOnSignal(fs::path path) : path_(std::move(path)) {
    std::lock_guard lock(mu());
    paths().insert(path_.string());
}

RemoveOnSignal::RemoveOnSignal(const std::function<fs::path()>& create) {
    std::lock_guard lock(mu());
    path_ = create();
    paths().insert(path_.string());
}

RemoveOnSignal::~RemoveOnSignal() {
    std::lock_guard lock(mu());
    if (auto it = paths().find(path_.string()); it != paths().end()) paths().erase(it);
}

} // namespace aas::util
