// What the operations engine asks of the computes: start and stop one, whether it runs, how to
// reach it as argond's admin role, PostgreSQL's verdict on settings, and crash reports.
// ComputeManager runs real `postgres` processes; the engine's unit tests use a fake.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/pg_control.h"
#include "common/pg_install.h"

namespace argon::compute {

struct ComputeSpec {
  std::string id;  // the branch id, or a name of its own for a copy started beside it (rekey)
  std::filesystem::path pgdata;
  std::filesystem::path run_dir;
  std::filesystem::path log_file;
  PgInstall pg;
  std::vector<std::pair<std::string, std::string>> settings;  // extra `-c name=value`
  // When set, the postmaster is given this symlink (made to point at `pgdata`) as its data
  // directory instead of `pgdata` itself. PostgreSQL works relative to its data directory, but
  // keeps the path it was given for a few things (the control file's path at every checkpoint,
  // the data directory check after a backend crash): a compute whose data directory is renamed
  // while it runs (a reset's copy, exchanged into the branch's place) keeps a valid path by
  // retargeting the link (Computes::relink) right after the rename.
  std::filesystem::path data_link;
};

class Computes {
 public:
  using CrashCallback = std::function<void(const std::string& id, int exit_code)>;

  virtual ~Computes() = default;

  // Called (from any thread) when a compute exits without being asked to.
  virtual void set_crash_callback(CrashCallback cb) = 0;
  // Idempotent: a running compute is left as is. Blocks until it accepts connections.
  [[nodiscard]] virtual Status start(const ComputeSpec& spec,
                                     std::chrono::milliseconds timeout) = 0;
  // Brings a cluster that no compute serves to a clean shutdown, serving nobody meanwhile:
  // `postgres --single` replays whatever WAL its start needs (a capture's backup label, or the
  // rest of a crash), checkpoints and exits. Afterwards the cluster starts with no WAL replay from
  // the checkpoint its control file names (returned), and needs no WAL before it. Safe to repeat.
  [[nodiscard]] virtual Result<ControlData> settle(const ComputeSpec& spec,
                                                   std::chrono::milliseconds timeout) = 0;
  // Idempotent. kFast: a clean shutdown (a checkpoint first), escalated to immediate shutdown
  // after `timeout`. kImmediate: at once, no checkpoint; the next start recovers from the WAL as
  // after a crash (for a compute whose data nobody is served any more).
  enum class StopMode { kFast, kImmediate };
  [[nodiscard]] virtual Status stop(std::string_view id, std::chrono::milliseconds timeout,
                                    StopMode mode) = 0;
  virtual void stop_all(std::chrono::milliseconds timeout) = 0;
  virtual bool running(std::string_view id) const = 0;
  // The socket directory of the running compute `id` (ComputeSpec::run_dir), if it runs.
  virtual std::optional<std::filesystem::path> socket_dir(std::string_view id) const = 0;
  // The running compute `from` is known as `to` from now on: the same process, socket directory
  // and data directory (a reset's copy, started beside the branch, becomes the branch's compute).
  // Refused (kConflict) while a compute runs as `to`, or when `from` does not run.
  [[nodiscard]] virtual Status rekey(std::string_view from, std::string_view to) = 0;
  // The data directory of the running compute `id`, started with a data link, is now `pgdata`:
  // the link is replaced atomically. kConflict when it does not run or has no link.
  [[nodiscard]] virtual Status relink(std::string_view id, const std::filesystem::path& pgdata) = 0;
  // libpq conninfo for argond's admin role on that compute (errors are never logged with the
  // statement, which can hold a password).
  virtual std::string admin_conninfo(std::string_view id,
                                     std::string_view dbname = "postgres") const = 0;
  // PostgreSQL's verdict on `settings` without starting anything: `postgres -C` over an empty
  // configuration in `scratch_dir` checks names, values, units and ranges (not the checks that
  // need a running server, such as wal_level against max_wal_senders). The error is its FATAL.
  [[nodiscard]] virtual Status check_settings(
      const PgInstall& pg, const std::vector<std::pair<std::string, std::string>>& settings,
      const std::filesystem::path& scratch_dir) = 0;
};

}  // namespace argon::compute
