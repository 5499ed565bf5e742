// Spawns child processes with an explicit argv (no shell), explicit environment, output to a log
// file, optionally as another OS user. The seam tests and the compute supervisor share.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/file_util.h"

namespace argon {

struct ProcessSpec {
  std::vector<std::string> argv;   // argv[0] is an absolute path
  std::vector<std::string> env;    // "KEY=value"; nothing is inherited
  std::filesystem::path log_file;  // stdout+stderr appended here (created 0600); empty = /dev/null
  std::optional<OsUser> user;      // switch to this user when running as root
  std::filesystem::path cwd;       // empty = "/"
  // Signal the child gets if argond dies (so a kill -9 of argond never leaves an orphan running).
  int parent_death_signal = 0;
};

class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;
  virtual Result<pid_t> spawn(const ProcessSpec& spec) = 0;
  // Spawns and waits; returns the exit status (128+signal when killed). Kills it at the timeout.
  virtual Result<int> run(const ProcessSpec& spec, std::chrono::milliseconds timeout) = 0;
};

class PosixProcessRunner final : public ProcessRunner {
 public:
  Result<pid_t> spawn(const ProcessSpec& spec) override;
  Result<int> run(const ProcessSpec& spec, std::chrono::milliseconds timeout) override;
};

// Non-blocking reap: the exit status if `pid` has exited, nullopt while it runs.
std::optional<int> try_reap(pid_t pid);
// Blocking reap with a deadline; nullopt on timeout.
std::optional<int> wait_for_exit(pid_t pid, std::chrono::milliseconds timeout);
// The last `max_bytes` of a log file, for error messages.
std::string tail_file(const std::filesystem::path& path, size_t max_bytes = 2000);

}  // namespace argon
