// What the actions of the operations engine work with: the catalog, storage, the computes, the
// installed PostgreSQL versions, the clock, the proxy's control over client connections, and the
// few steps several actions share (starting a branch's compute or one beside it, warming it up,
// fencing its endpoints).
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "catalog/catalog.h"
#include "common/clock.h"
#include "common/pg_install.h"
#include "compute/computes.h"
#include "compute/endpoint_access.h"
#include "ops/foreground.h"
#include "storage/storage.h"

namespace argon::ops {

struct EngineOptions {
  int workers = 2;          // data operations (clones, snapshots, restores, deletes, config)
  int compute_workers = 2;  // compute start and suspend, so a wake never waits behind a clone
  std::chrono::milliseconds compute_start_timeout{60000};
  std::chrono::milliseconds compute_stop_timeout{30000};
  std::chrono::milliseconds expiry_interval{10000};
  // Branches a finalized restore left behind ('<name> (old)') are deleted once unchanged this long;
  // zero keeps them until a user deletes them.
  std::chrono::seconds old_branch_retention{0};
  // How often every snapshot is read again in full against its checksums; zero never.
  std::chrono::seconds snapshot_scrub_interval{std::chrono::hours(24 * 7)};
  // A snapshot's operation finishes once it is captured and sealed; it is settled after, on a
  // copy (ops/actions/create_snapshot.cc). Otherwise it is settled before the operation finishes.
  bool settle_after_snapshot = false;
  // Point-in-time history (ops/history_keeper.h): how often base images and pruning are looked
  // at, and how much WAL a running compute writes before its branch gets a new base image.
  std::chrono::milliseconds history_interval{30000};
  uint64_t history_image_wal_bytes = 0;  // 0: 64 MB on reflink, 1 GB on the copy driver
};

// A branch as the actions that start its compute need it: the version it runs and the settings of
// its endpoint.
struct BranchRuntime {
  catalog::Branch branch;
  int pg_major = 0;
  std::vector<catalog::Endpoint> endpoints;  // not deleted
  // The project's history window (history_retention_seconds); 0: no history is kept, and the
  // branch's compute does not archive its WAL.
  int64_t history_seconds = 0;
  bool history() const { return history_seconds > 0; }
};

struct ActionEnv {
  catalog::Catalog& catalog;
  storage::Storage& storage;
  compute::Computes& computes;
  const PgInstalls& pg;
  const Clock& clock;
  EngineOptions options;
  compute::ConnectionControl* control = nullptr;  // the proxy; set before the engine starts
  // Counts the operations running, for the background readers to step aside.
  std::shared_ptr<Foreground> foreground = std::make_shared<Foreground>();

  // Inside a read: the branch with its project's version and its endpoints; nullopt when the
  // branch (or its project) is gone.
  static std::optional<BranchRuntime> load_runtime(catalog::Tx& tx, std::string_view project_id,
                                                   std::string_view branch_id,
                                                   bool include_deleted = false);
  [[nodiscard]] Result<const PgInstall*> install(int pg_major) const;
  // Starts the compute serving the branch (idempotent) with its endpoint's pg_settings.
  [[nodiscard]] Status ensure_compute(const BranchRuntime& runtime);
  // Starts a second compute for the branch, beside the one serving it, on `pgdata` (a copy being
  // prepared), with the same settings and in the other of the branch's two socket directories.
  // It runs as `compute_id` until Computes::rekey makes it the branch's.
  [[nodiscard]] Status start_beside(const BranchRuntime& runtime, const std::string& compute_id,
                                    const std::filesystem::path& pgdata);
  // Before clients are switched to a compute that just started with branch `branch_id`'s data:
  // one session in each of its databases, so the first backends' catalog caches are built and
  // their cache files written now (a fresh compute's first login in a database costs several
  // milliseconds more than the next), then the proxy reads the verifiers of the branch's roles
  // from it (ConnectionControl::prepare). Best effort: a failure only costs the clients that
  // time, and is logged.
  void warm_up(const std::string& compute_id, const std::string& branch_id);
  // Before a compute starts on `pgdata`, a new copy that is about to replace the data at
  // `serving`: on a thread of its own (the returned one, joined when it goes), the kernel is
  // asked to read into the copy's files what it has cached of the same files of the data being
  // replaced (storage/page_cache.h), up to a budget, while the compute starts. A clone's pages
  // are not cached even where its source's are, and the first queries after the swap would
  // otherwise read the catalogs and hot tables from the disk.
  [[nodiscard]] std::jthread carry_page_cache(std::filesystem::path pgdata,
                                              std::filesystem::path serving);
  [[nodiscard]] Status stop_compute(
      std::string_view branch_id,
      compute::Computes::StopMode mode = compute::Computes::StopMode::kFast);
  // A branch whose data could not be built: its compute, directory, endpoints and row go (each
  // failure logged), so nothing half-made stays and the later operations on it are skipped.
  void discard_branch(const std::string& branch_id);
  // The branch's data is complete: state ready (and the LSN it was captured at, if any).
  [[nodiscard]] Status mark_branch_ready(
      const std::string& project_id, const std::string& branch_id,
      const std::optional<std::string>& parent_lsn = std::nullopt);
  // New connections to these endpoints wait at the proxy's gate, and live ones end with 57P01 and
  // `reason`; `unfence` lifts the gate. Without a proxy (unit tests) both do nothing.
  void fence(const std::vector<std::string>& endpoint_ids, const std::string& reason);
  void unfence(const std::vector<std::string>& endpoint_ids);
  // Closes the endpoints' live client connections with 57P01 and `reason` (no gate of its own).
  void terminate(const std::vector<std::string>& endpoint_ids, const std::string& reason);
  // Makes the proxy hold new connections to exactly the endpoints the catalog says are being
  // switched (Endpoint::switching_op, entered and left by finalize_restore, and cleared when that
  // operation ends however it ends). Each call copies the current catalog state, so a crash loses
  // no hold and no caller can lift another's.
  [[nodiscard]] Status sync_holds();
  // One sync_holds at a time, so the later catalog read is the one applied last.
  std::shared_ptr<std::mutex> holds_mu = std::make_shared<std::mutex>();
  // The runtime of `branch_id` (deleted too) in one read; kConflict naming `what` when it is gone.
  [[nodiscard]] Result<BranchRuntime> runtime_of(const std::string& project_id,
                                                 const std::string& branch_id,
                                                 std::string_view what);

  // How `point` of `source`'s history would be recovered (storage/history.h's plan_recovery in
  // the project's window): a 400 in Neon's words for a point outside it.
  [[nodiscard]] Result<storage::RecoveryPlan> plan_point(const BranchRuntime& source,
                                                         const storage::PointInTime& point);
  enum class PointBuild {
    kBranch,     // branches/<id>: a new branch
    kResetCopy,  // branches/.reset-<id>: a branch restored in place (reset_branch), `op_id`'s
    kSnapshot,   // snapshots/<id>: settled, not yet sealed
  };
  // A new data directory (a branch's, a reset's copy or a snapshot's) at `point` of `source`'s
  // history (storage/history.h): the newest base image before the point, recovered from the
  // source's archive through the last commit the point includes, by postgres --single with the
  // source endpoint's settings, promoted to a timeline of its own and shut down cleanly, before
  // anything can reach it. With `history`, the new branch's own history begins there. Returns the
  // point the new branch branched off (the end of the last record replayed: Neon's parent_lsn).
  [[nodiscard]] Result<uint64_t> build_at_point(const BranchRuntime& source,
                                                const storage::PointInTime& point, PointBuild build,
                                                const std::string& id, const std::string& op_id,
                                                bool history);

 private:
  Result<compute::ComputeSpec> compute_spec(const BranchRuntime& runtime);
  // With the project's history on: the compute archives its WAL into the branch's archive.
  Status archive_into_history(const BranchRuntime& runtime, compute::ComputeSpec& spec);
};

// A stop with no checkpoint, for a compute whose data nobody is served any more (the one a
// finalized restore or a reset replaced); it recovers from its WAL when next started.
inline constexpr auto kStopNow = compute::Computes::StopMode::kImmediate;

// The point an operation's parameters name (their point_lsn / point_time, as the API got them).
storage::PointInTime point_of(const std::optional<std::string>& lsn,
                              const std::optional<std::string>& time);

// Every project (not deleted), a hundred at a time; the first error stops the walk.
Status for_each_project(catalog::Tx& tx,
                        const std::function<Status(const catalog::Project&)>& visit);

// An endpoint now bound to a branch whose compute is `running` (or not): active or idle, nothing
// pending.
void set_serving(catalog::Endpoint& ep, bool running, int64_t now);

std::vector<std::string> ids_of(const std::vector<catalog::Endpoint>& endpoints);

// The endpoint settings' "pg_settings" (JSON text) as `-c name=value` pairs.
std::vector<std::pair<std::string, std::string>> pg_settings_of(const std::string& settings_json);

// A clean-up after a failure: its own failure is logged, never returned, because the error the
// caller returns is the one that says what went wrong (and recovery removes what is left).
void log_if_cleanup_failed(const Status& st, std::string_view what);

}  // namespace argon::ops
