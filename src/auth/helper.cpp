// Credential helpers: `docker-credential-NAME get`, the protocol docker, oras and crane
// speak. The child gets the server on stdin and answers JSON on stdout; it is given a
// default signal mask (aas-bundle's main thread blocks SIGINT and SIGTERM) and killed at
// the deadline.

#include "aas_bundle/auth/auth.hpp"
#include "aas_bundle/util/error.hpp"
#include "aas_bundle/util/fs.hpp"
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

// "credential helper PROGRAM (for SERVER): WHY".
Error helper_error(const std::string& program, const std::string& server, const std::string& why) {
    return Error(fmt::format("credential helper {} (for {}): {}", program, server, why));
}

// A pipe whose two ends are closed on exec and when they go.
struct Pipe {
    util::Fd read;
    util::Fd write;
};

Pipe make_pipe(const std::string& program, const std::string& server) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw helper_error(program, server, util::errno_message(errno));
    return {util::Fd(fds[0]), util::Fd(fds[1])};
}

// Starts `PROGRAM get` on PATH with `in`, `out` and `err` as its stdin, stdout and stderr,
// an empty signal mask and every signal's default action.
pid_t spawn_helper(const std::string& program, const std::string& server, int in, int out, int err) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in, 0);
    posix_spawn_file_actions_adddup2(&fa, out, 1);
    posix_spawn_file_actions_adddup2(&fa, err, 2);
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
    if (rc != 0) throw helper_error(program, server, util::errno_message(rc));
    return pid;
}

// The server on the helper's stdin, then EOF.
void send_server(util::Fd& in, const std::string& server) {
    std::string input = server + "\n";
    ::signal(SIGPIPE, SIG_IGN);
    for (std::size_t off = 0; off < input.size();) {
        ssize_t w = ::write(in.get(), input.data() + off, input.size() - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) break; // the helper did not read it; its answer says why
        off += static_cast<std::size_t>(w);
    }
    in.reset();
}

struct Answer {
    std::string stdout_text;
    std::string stderr_text;
    bool timed_out = false;
};

// The helper's stdout and stderr (each kept to max_output) until it closes both, or until
// `timeout_seconds` have passed.
Answer read_answer(util::Fd& out, util::Fd& err, int timeout_seconds) {
    Answer a;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
    while (out || err) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            a.timed_out = true;
            break;
        }
        pollfd p[2] = {{out.get(), POLLIN, 0}, {err.get(), POLLIN, 0}};
        int n = ::poll(p, 2, static_cast<int>(left.count()));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        for (int k = 0; k < 2; ++k) {
            if (p[k].fd < 0 || !(p[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[4096];
            long r = util::read_retrying(p[k].fd, buf, sizeof buf);
            std::string& dst = k == 0 ? a.stdout_text : a.stderr_text;
            if (r > 0 && dst.size() < max_output) dst.append(buf, static_cast<std::size_t>(r));
            if (r <= 0) (k == 0 ? out : err).reset();
        }
    }
    return a;
}

int wait_for(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    return status;
}

// The helper's text for a message: trimmed, at most 300 characters, control characters escaped.
std::string said(std::string t) {
    t = std::string(util::trim(t));
    if (t.size() > 300) t = t.substr(0, 300) + "...";
    return util::escape_control(t);
}

} // namespace

std::optional<Credential> run_credential_helper(const std::string& name, const std::string& server,
                                                int timeout_seconds) {
    const std::string program = "docker-credential-" + name;
    Pipe in = make_pipe(program, server);
    Pipe out = make_pipe(program, server);
    Pipe err = make_pipe(program, server);
    pid_t pid = spawn_helper(program, server, in.read.get(), out.write.get(), err.write.get());
    in.read.reset();
    out.write.reset();
    err.write.reset();

    send_server(in.write, server);
    Answer a = read_answer(out.read, err.read, timeout_seconds);
    if (a.timed_out) ::kill(pid, SIGKILL);
    int status = wait_for(pid);
    if (a.timed_out)
        throw helper_error(program, server, fmt::format("no answer within {} s; it was stopped", timeout_seconds));

    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        // The protocol's "no credentials" answer, on stdout.
        if (a.stdout_text.find("credentials not found") != std::string::npos) return std::nullopt;
        std::string why = !util::trim(a.stderr_text).empty() ? said(a.stderr_text) : said(a.stdout_text);
        throw helper_error(program, server,
                           fmt::format("{}{}",
                                       WIFEXITED(status) ? fmt::format("exited {}", WEXITSTATUS(status))
                                                         : std::string("killed by a signal"),
                                       why.empty() ? "" : ": " + why));
    }
    nlohmann::json j = nlohmann::json::parse(a.stdout_text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("Secret") || !j["Secret"].is_string())
        throw helper_error(program, server,
                           "its answer is not the JSON {\"ServerURL\",\"Username\",\"Secret\"} of the protocol");
    Credential c;
    c.password = j["Secret"].get<std::string>();
    if (j.contains("Username") && j["Username"].is_string()) c.username = j["Username"].get<std::string>();
    if (c.password.empty()) return std::nullopt;
    log::add_secret(c.password);
    log::debug("credential helper {} gave credentials of user \"{}\" for {}", program, c.username, server);
    return c;
}

} // namespace aas::auth
