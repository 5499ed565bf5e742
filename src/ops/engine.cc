#include "ops/engine.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/crash_point.h"
#include "ops/action.h"
#include "ops/actions/actions.h"
#include "ops/recovery.h"

namespace argon::ops {

using catalog::Operation;
using catalog::Tx;

Engine::Engine(catalog::Catalog& catalog, storage::Storage& storage, compute::Computes& computes,
               const PgInstalls& pg, const Clock& clock, EngineOptions options)
    : env_{catalog, storage, computes, pg, clock, options},
      planner_(clock),
      wakes_(env_, planner_, [this] { notify(); }),
      sweeps_(env_, planner_, [this] { notify(); }),
      checks_(storage, clock, options.snapshot_scrub_interval, *env_.foreground,
              [this](const std::string& id) { return settle_snapshot_beside(env_, id); }),
      history_(env_),
      scheduler_(env_, make_actions(env_), [this](const Operation& op) { on_finished(op); }) {
  computes.set_crash_callback(
      [this](const std::string& id, int /*code*/) { on_compute_crash(id); });
}

Engine::~Engine() { stop(); }

Status Engine::recover() { return ops::recover(env_); }

Status Engine::start() {
  // A finalized restore interrupted by a crash still has its endpoints marked switching: the proxy
  // holds them again before it accepts connections.
  ARGON_RETURN_IF_ERROR(env_.sync_holds());
  scheduler_.start();
  sweeps_.start();
  checks_.start();
  history_.start();
  return {};
}

void Engine::stop() {
  history_.stop();
  checks_.stop();
  sweeps_.stop();
  scheduler_.stop();
}

void Engine::notify() { scheduler_.notify(); }

void Engine::on_finished(const Operation& op) {
  if (op.kind == to_string(ActionKind::kCreateSnapshot))
    checks_.notify();  // its settling, its checksums
  if (op.kind == to_string(ActionKind::kStartCompute)) wakes_.note_finished(op);
  if (op.kind == to_string(ActionKind::kFinalizeRestore)) {
    // Done, failed or skipped: its endpoints are not being switched any more. (Done, the swap
    // cleared them already.)
    auto st = env_.catalog.run([&](Tx& tx) -> Status {
      for (auto ep : tx.list_all_endpoints()) {
        if (ep.switching_op != op.id) continue;
        ep.switching_op.reset();
        ARGON_RETURN_IF_ERROR(tx.put_endpoint(ep));
      }
      return {};
    });
    if (st) st = env_.sync_holds();
    // A failure here leaves the endpoints held (waiting clients time out with a clear message)
    // until the next sync: the next restore's end, or argond's next start.
    if (!st)
      spdlog::error("lifting the restore hold of operation {} failed: {}", op.id,
                    st.error().detail);
  }
  if (auto st = remove_deleted_projects(env_); !st) {
    // The next operation's end, or the next start, tries again.
    spdlog::error("removing deleted projects failed: {} {}", st.error().message, st.error().detail);
  }
}

Result<std::optional<compute::ComputeTarget>> Engine::wake(std::string_view endpoint_id) {
  return wakes_.wake(endpoint_id);
}

std::optional<compute::ComputeTarget> Engine::serving_now(std::string_view endpoint_id) {
  return wakes_.serving_now(endpoint_id);
}

Result<storage::WalHistory> Engine::branch_wal_history(const catalog::Branch& branch) {
  if (!env_.storage.branch_exists(branch.id)) {
    return fail(
        ErrorCode::kLocked,
        fmt::format("branch {} has no data yet; retry once its operations finish", branch.id));
  }
  ARGON_ASSIGN_OR_RETURN(const int major, env_.catalog.transact([&](Tx& tx) -> Result<int> {
    auto p = tx.get_project(branch.project_id, true);
    if (!p)
      return fail(ErrorCode::kNotFound, fmt::format("project {} not found", branch.project_id));
    return p->pg_version;
  }));
  ARGON_ASSIGN_OR_RETURN(const PgInstall* pg, env_.install(major));
  return env_.storage.wal_history(*pg, env_.storage.branch_pgdata(branch.id));
}

Status Engine::check_history_point(const catalog::Branch& branch,
                                   const storage::PointInTime& point) {
  ARGON_ASSIGN_OR_RETURN(auto rt, env_.catalog.read([&](Tx& tx) -> Result<BranchRuntime> {
    auto r = ActionEnv::load_runtime(tx, branch.project_id, branch.id);
    if (!r) return fail(ErrorCode::kNotFound, fmt::format("branch {} not found", branch.id));
    return *r;
  }));
  std::shared_lock history(env_.storage.history_mu(branch.id));
  ARGON_ASSIGN_OR_RETURN(auto plan, env_.plan_point(rt, point));
  (void)plan;
  return {};
}

Status Engine::check_pg_settings(int pg_major, const std::string& settings_json,
                                 std::string_view field) {
  const auto settings = pg_settings_of(settings_json);
  if (settings.empty()) return {};
  ARGON_ASSIGN_OR_RETURN(const PgInstall* pg, env_.install(pg_major));
  auto st = env_.computes.check_settings(*pg, settings,
                                         env_.storage.data_dir() / "run" / ".settings-check");
  crash_point("settings.checked");
  if (!st && st.error().code == ErrorCode::kBadRequest) {
    return fail(ErrorCode::kBadRequest, fmt::format("{}: {}", field, st.error().message));
  }
  return st;
}

void Engine::on_compute_crash(const std::string& branch_id) {
  auto st = env_.catalog.run([&](Tx& tx) -> Status {
    const int64_t now = env_.clock.now_ms();
    for (auto ep : tx.list_branch_endpoints(branch_id)) {
      ep.current_state = catalog::endpoint_state::kIdle;
      ep.suspended_at = now;
      ep.updated_at = now;
      ARGON_RETURN_IF_ERROR(tx.put_endpoint(ep));
    }
    return {};
  });
  // The proxy's wake checks that the compute runs, so a stale "active" only costs a start request.
  if (!st)
    spdlog::error("compute {} exited; marking its endpoints idle failed: {}", branch_id,
                  st.error().detail);
}

}  // namespace argon::ops
