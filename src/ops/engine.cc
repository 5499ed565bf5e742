#include "ops/engine.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/crash_point.h"
#include "ops/action.h"
#include "ops/recovery.h"

namespace argon::ops {

using catalog::Operation;
using catalog::Tx;

Engine::Engine(catalog::Catalog& catalog, storage::Storage& storage,
               compute::ComputeManager& computes, const PgInstalls& pg, const Clock& clock,
               EngineOptions options)
    : env_{catalog, storage, computes, pg, clock, options},
      planner_(clock),
      wakes_(env_, planner_, [this] { notify(); }),
      sweeps_(env_, planner_, [this] { notify(); }),
      scheduler_(env_, make_actions(env_), [this](const Operation& op) { on_finished(op); }) {
  computes.set_crash_callback(
      [this](const std::string& id, int /*code*/) { on_compute_crash(id); });
}

Engine::~Engine() { stop(); }

Status Engine::recover() { return ops::recover(env_); }

Status Engine::start() {
  // A finalized restore interrupted by a crash gates its target's endpoints again until its
  // operation ends, as the API call did: no connection reaches the data being replaced.
  ARGON_ASSIGN_OR_RETURN(
      auto holds,
      env_.catalog.transact([&](Tx& tx) -> Result<std::map<std::string, std::vector<std::string>>> {
        std::map<std::string, std::vector<std::string>> out;
        for (const auto& op : tx.list_pending_operations()) {
          if (op.kind != to_string(ActionKind::kFinalizeRestore)) continue;
          ARGON_ASSIGN_OR_RETURN(auto params,
                                 parse_params(ActionKind::kFinalizeRestore, op.params_json));
          out[op.id] = ids_of(
              tx.list_branch_endpoints(std::get<params::FinalizeRestore>(params).target_branch_id));
        }
        return out;
      }));
  for (const auto& [op_id, endpoints] : holds) hold_endpoints_until(op_id, endpoints);
  scheduler_.start();
  sweeps_.start();
  return {};
}

void Engine::stop() {
  sweeps_.stop();
  scheduler_.stop();
}

void Engine::notify() { scheduler_.notify(); }

void Engine::on_finished(const Operation& op) {
  if (op.kind == to_string(ActionKind::kStartCompute)) wakes_.note_finished(op);
  if (op.kind == to_string(ActionKind::kFinalizeRestore)) release_endpoints(op.id);
  if (auto st = remove_deleted_projects(env_); !st) {
    // The next operation's end, or the next start, tries again.
    spdlog::error("removing deleted projects failed: {} {}", st.error().message, st.error().detail);
  }
}

void Engine::hold_endpoints_until(const std::string& swap_op_id,
                                  const std::vector<std::string>& endpoint_ids) {
  if (!env_.control || endpoint_ids.empty()) return;
  for (const auto& ep : endpoint_ids) env_.control->gate(ep);
  std::lock_guard l(held_mu_);
  auto& held = held_[swap_op_id];
  held.insert(held.end(), endpoint_ids.begin(), endpoint_ids.end());
}

void Engine::release_endpoints(const std::string& swap_op_id) {
  std::vector<std::string> held;
  {
    std::lock_guard l(held_mu_);
    if (auto it = held_.find(swap_op_id); it != held_.end()) {
      held = std::move(it->second);
      held_.erase(it);
    }
  }
  env_.unfence(held);
}

Result<std::optional<compute::ComputeTarget>> Engine::wake(std::string_view endpoint_id) {
  return wakes_.wake(endpoint_id);
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
