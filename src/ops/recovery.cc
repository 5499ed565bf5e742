#include "ops/recovery.h"

#include <spdlog/spdlog.h>

#include <set>

#include "common/crash_point.h"
#include "compute/compute_manager.h"

namespace argon::ops {

using catalog::Branch;
using catalog::Tx;

Status recover(ActionEnv& env) {
  ARGON_RETURN_IF_ERROR(env.storage.remove_temp_dirs());
  for (const auto& id : env.storage.list_branch_dirs()) {
    // The branch's compute, and the one a reset may have started on its copy (or left on the old
    // data it exchanged the copy with).
    for (const auto& pgdata : {env.storage.branch_pgdata(id), env.storage.reset_pgdata(id)}) {
      ARGON_RETURN_IF_ERROR(
          compute::ComputeManager::stop_stray(pgdata, env.options.compute_stop_timeout));
    }
  }
  std::set<std::string> referenced, snapshots;
  std::vector<Branch> ready;
  ARGON_RETURN_IF_ERROR(env.catalog.run([&](Tx& tx) -> Status {
    const int64_t now = env.clock.now_ms();
    for (auto ep : tx.list_all_endpoints()) {
      if (ep.current_state == catalog::endpoint_state::kActive) {
        ep.current_state = catalog::endpoint_state::kIdle;
        ep.suspended_at = now;
        ep.updated_at = now;
        ARGON_RETURN_IF_ERROR(tx.put_endpoint(ep));
      }
    }
    for (auto& op : tx.list_pending_operations()) {
      if (op.status == catalog::op_status::kRunning) {
        spdlog::info("operation {} ({}) was interrupted; it will run again", op.id, op.kind);
        op.status = catalog::op_status::kScheduling;
        op.updated_at = now;
        ARGON_RETURN_IF_ERROR(tx.put_operation(op));
      }
    }
    std::vector<catalog::Project> projects = tx.list_deleted_projects();
    for (const auto& p : tx.list_projects(0, 1 << 30, "")) projects.push_back(p);
    for (const auto& p : projects) {
      for (const auto& b : tx.list_branches(p.id, true)) {
        referenced.insert(b.id);
        if (!b.deleted && b.current_state == catalog::branch_state::kReady) ready.push_back(b);
      }
    }
    for (const auto& s : tx.list_all_snapshots()) snapshots.insert(s.id);
    return {};
  }));
  for (const auto& id : env.storage.list_branch_dirs()) {
    if (!referenced.contains(id)) {
      spdlog::info("removing data directory of unknown branch {}", id);
      ARGON_RETURN_IF_ERROR(env.storage.remove_branch(id));
    }
  }
  // A snapshot directory without a catalog row: its row went (a failed capture, a finished
  // delete) and a crash came before the directory did.
  for (const auto& id : env.storage.list_snapshot_dirs()) {
    if (!snapshots.contains(id)) {
      spdlog::info("removing data of unknown snapshot {}", id);
      ARGON_RETURN_IF_ERROR(env.storage.remove_snapshot(id));
    }
  }
  for (const auto& b : ready) {
    if (!env.storage.branch_exists(b.id)) {
      spdlog::error("branch {} ({}) is ready in the catalog but its data directory {} is missing",
                    b.id, b.name, env.storage.branch_pgdata(b.id).string());
    }
  }
  return remove_deleted_projects(env);
}

Status remove_deleted_projects(ActionEnv& env) {
  return env.catalog.run([&](Tx& tx) -> Status {
    const auto pending = tx.list_pending_operations();
    for (const auto& p : tx.list_deleted_projects()) {
      if (!tx.list_branches(p.id, true).empty() || !tx.list_snapshots(p.id, true).empty()) continue;
      bool busy = false;
      for (const auto& op : pending) busy |= op.project_id == p.id;
      if (busy) continue;
      spdlog::info("project {} deleted", p.id);
      ARGON_RETURN_IF_ERROR(tx.delete_project_operations(p.id));
      crash_point("project.removing");  // inside the transaction: it must roll back whole
      ARGON_RETURN_IF_ERROR(tx.delete_project_row(p.id));
    }
    return {};
  });
}

}  // namespace argon::ops
