// The operations engine: carries out the operations the api (through the Planner) committed to the
// catalog. It wires together the scheduler (queue, workers, one action per operation kind), the
// periodic sweeps, the wake coordinator the proxy asks, and startup recovery; it is the only writer
// of data directories and the only caller of compute start/stop. See ops/README.md.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "common/clock.h"
#include "common/pg_install.h"
#include "compute/computes.h"
#include "compute/endpoint_access.h"
#include "ops/action_env.h"
#include "ops/history_keeper.h"
#include "ops/planner.h"
#include "ops/scheduler.h"
#include "ops/snapshot_checks.h"
#include "ops/sweeps.h"
#include "ops/wake_coordinator.h"
#include "storage/storage.h"

namespace argon::ops {

class Engine final : public compute::EndpointResolver {
 public:
  Engine(catalog::Catalog& catalog, storage::Storage& storage, compute::Computes& computes,
         const PgInstalls& pg, const Clock& clock, EngineOptions options);
  ~Engine();

  // Startup reconciliation (ops/recovery.h), before any request is served.
  [[nodiscard]] Status recover();
  // Starts the threads. Endpoints being switched by an interrupted finalized restore are held again
  // first (needs set_connection_control before).
  [[nodiscard]] Status start();
  // Stops dispatching and the sweeps, and waits for running operations.
  void stop();
  // Wakes the dispatcher after operations were committed.
  void notify();

  const Planner& planner() const { return planner_; }

  // Wake on connect (compute::EndpointResolver): the proxy polls this while a client waits.
  Result<std::optional<compute::ComputeTarget>> wake(std::string_view endpoint_id) override;
  std::optional<compute::ComputeTarget> serving_now(std::string_view endpoint_id) override;
  // The proxy's control over client connections: suspending a compute gates the endpoint and
  // terminates its connections first; the sweeps read activity for autosuspend. Set before start().
  void set_connection_control(compute::ConnectionControl* control) { env_.control = control; }
  // What a branch's WAL says about its last commit (storage/wal_history.h), for a snapshot asked
  // for at a point in time. Runs PostgreSQL's tools: tens of milliseconds.
  [[nodiscard]] Result<storage::WalHistory> branch_wal_history(const catalog::Branch& branch);
  // Whether `point` of the branch's history can be recovered (ActionEnv::plan_point): the 400s a
  // user gets for a point outside the window, before anything is planned as an operation. Reads
  // the branch's WAL from its nearest base image with pg_waldump.
  [[nodiscard]] Status check_history_point(const catalog::Branch& branch,
                                           const storage::PointInTime& point);
  // A 400 naming `field` when PostgreSQL `pg_major` refuses the pg_settings in `settings_json` (an
  // object that may hold "pg_settings"), asked of `postgres -C` without starting anything.
  [[nodiscard]] Status check_pg_settings(int pg_major, const std::string& settings_json,
                                         std::string_view field);

 private:
  // On the worker, after an operation's end was recorded.
  void on_finished(const catalog::Operation& op);
  // A compute exited on its own: its endpoints are idle (the next connection wakes it).
  void on_compute_crash(const std::string& branch_id);

  ActionEnv env_;
  Planner planner_;
  WakeCoordinator wakes_;
  Sweeps sweeps_;
  SnapshotChecks checks_;
  HistoryKeeper history_;
  Scheduler scheduler_;
};

}  // namespace argon::ops
