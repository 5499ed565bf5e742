// Supervises the `postgres` processes (computes). A compute serves one branch's data directory and
// listens only on a private unix-socket directory (0700, owned by the Postgres OS user); the proxy
// and argond's own admin connections are its only clients. Start waits for readiness with a
// deadline; stop is a clean (fast) shutdown; a compute that exits on its own is reported through
// the crash callback. One monitor thread reaps every compute: nothing else waits on their pids.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/cluster_names.h"
#include "common/error.h"
#include "common/file_util.h"
#include "common/pg_install.h"
#include "common/process_runner.h"
#include "compute/computes.h"

namespace argon::compute {

class ComputeManager final : public Computes {
 public:
  ComputeManager(ProcessRunner& runner, OsUser pg_user, bool fsync);
  ~ComputeManager() override;

  void set_crash_callback(CrashCallback cb) override;
  Status start(const ComputeSpec& spec, std::chrono::milliseconds timeout) override;
  Result<ControlData> settle(const ComputeSpec& spec, std::chrono::milliseconds timeout) override;
  Status check_settings(const PgInstall& pg,
                        const std::vector<std::pair<std::string, std::string>>& settings,
                        const std::filesystem::path& scratch_dir) override;
  Status stop(std::string_view id, std::chrono::milliseconds timeout, StopMode mode) override;
  void stop_all(std::chrono::milliseconds timeout) override;
  bool running(std::string_view id) const override;
  std::string admin_conninfo(std::string_view id,
                             std::string_view dbname = "postgres") const override;

  std::optional<std::filesystem::path> socket_dir(std::string_view id) const override;
  Status rekey(std::string_view from, std::string_view to) override;
  Status relink(std::string_view id, const std::filesystem::path& pgdata) override;

  std::vector<std::string> running_ids() const;

  // Stops a postmaster left running on `pgdata` by an earlier argond (postmaster.pid names it; the
  // process's working directory, which PostgreSQL sets to its data directory, must be `pgdata`,
  // which also finds one whose directory was renamed since it started, as a reset's copy is).
  static Status stop_stray(const std::filesystem::path& pgdata, std::chrono::milliseconds timeout);

 private:
  using Settings = std::vector<std::pair<std::string, std::string>>;
  // `ours`, then fsync off if argond runs without fsync, then the endpoint's (the last counts).
  Settings with_endpoint_settings(const ComputeSpec& spec, Settings ours) const;
  // `postgres [mode] -D <pgdata> -c …` as the Postgres user, logging to the compute's log.
  ProcessSpec postgres_process(const ComputeSpec& spec, std::vector<std::string> mode,
                               const Settings& settings) const;

  struct Proc {
    pid_t pid = 0;
    std::filesystem::path run_dir;
    std::filesystem::path data_link;  // ComputeSpec::data_link, if it was started with one
    bool stopping = false;
    // stop() gave up waiting (it outlived SIGKILL): the monitor erases the entry once it reaps the
    // pid, and until then start() refuses to run a second postgres on the same data directory.
    bool abandoned = false;
    std::optional<int> exit_code;  // set by the monitor when reaped
    // Neither exited nor being stopped: what running(), socket_dir() and rekey() accept.
    bool serving() const { return !exit_code && !stopping; }
  };

  void monitor_loop();

  ProcessRunner& runner_;
  OsUser pg_user_;
  bool fsync_;
  mutable std::mutex mu_;
  std::condition_variable exited_cv_;
  std::map<std::string, Proc, std::less<>> procs_;
  CrashCallback on_crash_;
  bool shutdown_ = false;
  std::thread monitor_;
};

}  // namespace argon::compute
