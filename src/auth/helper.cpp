// Credential helpers: `docker-credential-NAME get`, the protocol docker, oras and crane
// speak. The child gets the server on stdin and answers JSON on stdout; it is given a
// default signal mask (aas-bundle's main thread blocks SIGINT and SIGTERM) and killed at
// the deadline.

#include "aas_bundle/auth/auth.hpp"
#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/log.hpp"
#include "aas_bundle/util/strings.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace aas::auth {

namespace {

constexpr std::size_t max_output = 64u << 10;

struct Fd {
    int fd = -1;
    ~Fd() { reset(); }
    void reset() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
};

} // namespace

std::optional<Credential> run_credential_helper(const std::string& name, const std::string& server,
                                                int timeout_seconds) {
    const std::string program = "docker-credential-" + name;
    auto fail = [&](const std::string& why) -> Error {
        return Error(fmt::format("credential helper {} (for {}): {}", program, server, why));
    };
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) != 0) throw fail(util::errno_message(errno));
    Fd in_r{in[0]}, in_w{in[1]};
    if (::pipe2(out, O_CLOEXEC) != 0) throw fail(util::errno_message(errno));
    Fd out_r{out[0]}, out_w{out[1]};
    if (::pipe2(err, O_CLOEXEC) != 0) throw fail(util::errno_message(errno));
    Fd err_r{err[0]}, err_w{err[1]};

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_r.fd, 0);
    posix_spawn_file_actions_adddup2(&fa, out_w.fd, 1);
    posix_spawn_file_actions_adddup2(&fa, err_w.fd, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char arg1[] = "get";
    std::string a0 = program;
    char* argv[] = {a0.data(), arg1, nullptr};
    pid_t pid = 0;
    int rc = ::posix_spawnp(&pid, program.c_str(), &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc == ENOENT)
        throw HelperNotFound(fmt::format("credential helper {} (for {}): not found on PATH (install it, or remove "
                                         "credsStore/credHelpers from the registry config)",
                                         program, server));
    if (rc != 0) throw fail(util::errno_message(rc));
    in_r.reset();
    out_w.reset();
    err_w.reset();

    // The server on stdin, then EOF.
    std::string input = server + "\n";
    ::signal(SIGPIPE, SIG_IGN);
    for (std::size_t off = 0; off < input.size();) {
        ssize_t w = ::write(in_w.fd, input.data() + off, input.size() - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) break; // the helper did not read it; its answer says why
        off += static_cast<std::size_t>(w);
    }
    in_w.reset();

    std::string stdout_text, stderr_text;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
    bool timed_out = false;
    while (out_r.fd >= 0 || err_r.fd >= 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            break;
        }
        pollfd p[2] = {{out_r.fd, POLLIN, 0}, {err_r.fd, POLLIN, 0}};
        int n = ::poll(p, 2, static_cast<int>(left.count()));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        for (int k = 0; k < 2; ++k) {
            if (p[k].fd < 0 || !(p[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[4096];
            ssize_t r = ::read(p[k].fd, buf, sizeof buf);
            std::string& dst = k == 0 ? stdout_text : stderr_text;
            if (r > 0 && dst.size() < max_output) dst.append(buf, static_cast<std::size_t>(r));
            if (r == 0 || (r < 0 && errno != EINTR)) (k == 0 ? out_r : err_r).reset();
        }
    }
    if (timed_out) ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out) throw fail(fmt::format("no answer within {} s; it was stopped", timeout_seconds));

    auto said = [](std::string t) {
        t = std::string(util::trim(t));
        if (t.size() > 300) t = t.substr(0, 300) + "...";
        return util::escape_control(t);
    };
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        // The protocol's "no credentials" answer, on stdout.
        if (stdout_text.find("credentials not found") != std::string::npos) return std::nullopt;
        std::string why = !util::trim(stderr_text).empty() ? said(stderr_text) : said(stdout_text);
        throw fail(fmt::format("{}{}", WIFEXITED(status) ? fmt::format("exited {}", WEXITSTATUS(status))
                                                         : std::string("killed by a signal"),
                               why.empty() ? "" : ": " + why));
    }
    nlohmann::json j = nlohmann::json::parse(stdout_text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("Secret") || !j["Secret"].is_string())
        throw fail("its answer is not the JSON {\"ServerURL\",\"Username\",\"Secret\"} of the protocol");
    Credential c;
    c.password = j["Secret"].get<std::string>();
    if (j.contains("Username") && j["Username"].is_string()) c.username = j["Username"].get<std::string>();
    if (c.password.empty()) return std::nullopt;
    log::add_secret(c.password);
    log::debug("credential helper {} gave credentials of user \"{}\" for {}", program, c.username, server);
    return c;
}

} // namespace aas::auth
