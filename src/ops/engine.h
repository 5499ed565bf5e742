// The operations engine: carries out the operations the api (through the Planner) committed to the
// catalog. Per-project FIFO: a project's operations run one at a time in creation order; different
// projects run in parallel on the worker pool. Every action is idempotent, so after a crash the
// engine simply runs every non-terminal operation again from the start (`recover`). The engine is
// the only writer of data directories and the only caller of compute start/stop.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <optional>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "catalog/catalog.h"
#include "common/clock.h"
#include "common/pg_install.h"
#include "compute/compute_manager.h"
#include "compute/endpoint_access.h"
#include "ops/planner.h"
#include "storage/storage.h"

namespace argon::ops {

// suspend_timeout_seconds = 0 means this (Neon's default).
inline constexpr int64_t kDefaultSuspendTimeoutSeconds = 300;

struct EngineOptions {
  int workers = 2;
  std::chrono::milliseconds compute_start_timeout{60000};
  std::chrono::milliseconds compute_stop_timeout{30000};
  std::chrono::milliseconds expiry_interval{10000};
  // Branches a finalized restore left behind ('<name> (old)') are deleted once unchanged this long;
  // zero keeps them until a user deletes them.
  std::chrono::seconds old_branch_retention{0};
};

class Engine final : public compute::EndpointResolver {
 public:
  Engine(catalog::Catalog& catalog, storage::Storage& storage, compute::ComputeManager& computes,
         const PgInstalls& pg, const Clock& clock, EngineOptions options);
  ~Engine();

  // Startup reconciliation, before any request is served: removes leftovers of interrupted
  // creates, stops stray postmasters, marks endpoints idle, requeues interrupted operations and
  // garbage-collects directories the catalog does not reference.
  Status recover();
  // Starts the threads. Interrupted finalized restores gate their endpoints again first (needs
  // set_connection_control before).
  void start();
  // Stops dispatching, waits for running operations, stops every compute cleanly.
  void stop();
  // Wakes the dispatcher after operations were committed.
  void notify();

  const Planner& planner() const { return planner_; }

  // Wake on connect (compute::EndpointResolver): the proxy polls this while a client waits.
  Result<std::optional<compute::ComputeTarget>> wake(std::string_view endpoint_id) override;
  // The proxy's control over client connections: suspending a compute gates the endpoint and
  // terminates its connections first; the periodic sweep reads activity for autosuspend. Set before
  // start().
  void set_connection_control(compute::ConnectionControl* control) { control_ = control; }
  // A finalized restore was accepted: from now until its swap_binding_id operation ends (done,
  // failed or skipped), new connections to these endpoints wait at the proxy's gate instead of
  // reaching the data being replaced. In memory: a restart lifts it.
  void hold_endpoints_until(const std::string& swap_op_id, const std::vector<std::string>& endpoint_ids);
  // Lifts that hold (also done when the swap operation ends).
  void release_endpoints(const std::string& swap_op_id);
  // What a branch's WAL says about its last commit (storage/wal_history.h), for a snapshot asked for
  // at a point in time. Runs PostgreSQL's tools: tens of milliseconds.
  Result<storage::WalHistory> branch_wal_history(const catalog::Branch& branch);
  // A 400 naming `field` when PostgreSQL `pg_major` refuses the pg_settings in `settings_json` (an
  // object that may hold "pg_settings"), asked of `postgres -C` without starting anything.
  Status check_pg_settings(int pg_major, const std::string& settings_json, std::string_view field);
  // Test and shutdown aid: true when no operation is pending or running.
  bool idle();

 private:
  enum class Outcome { kDone, kSkipped };

  void dispatch_loop();
  void worker_loop();
  void expiry_loop();
  size_t sweep_old_branches(catalog::Tx& tx, int64_t now);
  // Suspends active endpoints without connections for longer than their suspend_timeout_seconds
  // and keeps last_active current.
  void autosuspend_sweep();
  // Records a finished start_compute for wake().
  void note_start_finished(const catalog::Operation& op);
  void run(catalog::Operation op);
  Result<Outcome> execute(catalog::Operation& op);

  Result<Outcome> create_timeline(catalog::Operation& op);
  Result<Outcome> start_compute(catalog::Operation& op);
  Result<Outcome> suspend_compute(catalog::Operation& op);
  // The message clients of a compute being stopped receive (SQLSTATE 57P01).
  std::string suspend_reason(const catalog::Operation& op, const std::string& branch_id, bool deleting);
  Result<Outcome> apply_config(catalog::Operation& op);
  Result<Outcome> delete_timeline(catalog::Operation& op);
  Result<Outcome> create_snapshot(catalog::Operation& op);
  Result<Outcome> delete_snapshot(catalog::Operation& op);
  Status verify_no_commit(const std::string& project_id, const std::string& branch_id,
                          const std::filesystem::path& pgdata, uint64_t from, std::optional<uint64_t> until);
  Result<Outcome> finalize_restore(catalog::Operation& op);
  Result<Outcome> reset_branch(catalog::Operation& op);

  // Starts the compute serving `branch` (idempotent) and creates missing roles/databases.
  Status ensure_compute(const catalog::Branch& branch);
  Status reconcile_roles_and_databases(const catalog::Branch& branch);
  // Brings roles and databases created or dropped with SQL into the catalog.
  Status sync_from_compute(const catalog::Branch& branch);
  compute::ComputeSpec compute_spec(const catalog::Branch& branch, int pg_major) const;
  Result<int> project_pg_major(std::string_view project_id);
  void on_compute_crash(const std::string& branch_id);
  void finish_deleted_projects();

  catalog::Catalog& catalog_;
  storage::Storage& storage_;
  compute::ComputeManager& computes_;
  const PgInstalls& pg_;
  const Clock& clock_;
  EngineOptions options_;
  Planner planner_;

  std::mutex mu_;
  std::condition_variable cv_;          // dispatcher wake-up
  std::condition_variable work_cv_;     // workers
  std::deque<catalog::Operation> queue_;

  // Starts that wake() asked for, by endpoint id; never held while taking the catalog's lock.
  struct WakeState {
    std::string op_id;
    bool finished = false;
    std::optional<std::string> error;
    std::chrono::steady_clock::time_point checked_at;  // last catalog check while pending
  };
  std::mutex wake_mu_;
  std::map<std::string, WakeState, std::less<>> wakes_;
  compute::ConnectionControl* control_ = nullptr;
  std::mutex held_mu_;
  std::map<std::string, std::vector<std::string>> held_;  // swap operation id -> gated endpoints
  std::set<std::string> busy_projects_;
  bool dirty_ = true;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace argon::ops
