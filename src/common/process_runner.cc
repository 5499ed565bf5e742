#include "common/process_runner.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

namespace argon {

namespace {
int status_to_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}
}  // namespace

Result<pid_t> PosixProcessRunner::spawn(const ProcessSpec& spec) {
  if (spec.argv.empty()) return fail(ErrorCode::kInternal, "spawn: empty argv");
  // Everything the child needs is prepared before fork: only async-signal-safe calls after it.
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  int log_fd = spec.log_file.empty()
                   ? ::open("/dev/null", O_WRONLY | O_CLOEXEC)
                   : ::open(spec.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) {
    return fail(ErrorCode::kInternal, fmt::format("cannot open log {}: {}", spec.log_file.string(),
                                                  std::strerror(errno)));
  }
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const bool switch_user = spec.user && ::geteuid() == 0 && spec.user->uid != 0;
  gid_t gid = switch_user ? spec.user->gid : 0;
  uid_t uid = switch_user ? spec.user->uid : 0;
  std::string cwd = spec.cwd.empty() ? std::string("/") : spec.cwd.string();
  const int pdeath = spec.parent_death_signal;

  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    return fail(ErrorCode::kInternal, fmt::format("fork failed: {}", std::strerror(err)));
  }
  if (pid == 0) {
    ::setsid();
    if (null_fd >= 0) ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    // Nothing else crosses into the child: Asio opens its sockets without O_CLOEXEC, and a postgres
    // that inherits argond's listening sockets would hold its ports after argond dies.
    ::close_range(3, ~0U, 0);
    if (switch_user) {
      if (::setgroups(1, &gid) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) ::_exit(126);
    }
    // Set after the credential change: a uid change clears the parent-death signal.
    if (pdeath != 0) {
      ::prctl(PR_SET_PDEATHSIG, pdeath);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  return pid;
}

std::optional<int> try_reap(pid_t pid) {
  int status = 0;
  pid_t r = ::waitpid(pid, &status, WNOHANG);
  if (r == pid) return status_to_code(status);
  if (r < 0 && errno == ECHILD) return -1;  // not our child any more: treat as gone
  return std::nullopt;
}

std::optional<int> wait_for_exit(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  // A pidfd becomes readable when the process exits, so the wait ends at the exit. (Polling with
  // a growing delay woke up to 50 ms late: a third of a snapshot's settle, a 70 ms process.)
  if (const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); pidfd >= 0) {
    for (;;) {
      if (auto code = try_reap(pid)) {
        ::close(pidfd);
        return code;
      }
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd ready{pidfd, POLLIN, 0};
      const int n = ::poll(&ready, 1, static_cast<int>(std::min<long long>(left.count(), 60'000)));
      if (n < 0 && errno != EINTR) break;  // then the polling below
    }
    ::close(pidfd);
    if (std::chrono::steady_clock::now() >= deadline) return try_reap(pid);
  }
  auto delay = std::chrono::milliseconds(1);
  while (true) {
    if (auto code = try_reap(pid)) return code;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(50));
  }
}

Result<int> PosixProcessRunner::run(const ProcessSpec& spec, std::chrono::milliseconds timeout) {
  auto pid = spawn(spec);
  if (!pid) return std::unexpected(pid.error());
  if (auto code = wait_for_exit(*pid, timeout)) return *code;
  ::kill(*pid, SIGKILL);
  (void)wait_for_exit(*pid,
                      std::chrono::seconds(10));  // SIGKILL cannot be refused; this only reaps
  return fail(ErrorCode::kInternal,
              fmt::format("{} did not finish within {} ms", spec.argv[0], timeout.count()));
}

std::string tail_file(const std::filesystem::path& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  off_t size = ::lseek(fd, 0, SEEK_END);
  off_t start = size > static_cast<off_t>(max_bytes) ? size - static_cast<off_t>(max_bytes) : 0;
  std::string out(static_cast<size_t>(size - start), '\0');
  ssize_t n = ::pread(fd, out.data(), out.size(), start);
  ::close(fd);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

}  // namespace argon
