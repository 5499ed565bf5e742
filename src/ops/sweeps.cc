#include "ops/sweeps.h"

#include <spdlog/spdlog.h>

#include <set>

namespace argon::ops {

using catalog::Tx;

void Sweeps::start() {
  thread_.start(env_.options.expiry_interval, [this] { sweep(); });
}

void Sweeps::stop() { thread_.stop(); }

void Sweeps::sweep() {
  auto deleted = env_.catalog.transact([&](Tx& tx) { return delete_expired(tx); });
  if (!deleted)
    spdlog::error("expiry sweep failed: {} {}", deleted.error().message, deleted.error().detail);
  autosuspend();
  if (deleted && *deleted) notify_();
}

Result<size_t> Sweeps::delete_expired(Tx& tx) {
  size_t deleted = 0;
  const int64_t now = env_.clock.now_ms();
  for (const auto& b : tx.list_expired_branches(now)) {
    bool has_children = false;
    for (const auto& c : tx.list_branches(b.project_id)) has_children |= c.parent_id == b.id;
    if (b.is_default || b.is_protected || has_children) continue;
    spdlog::info("branch {} ({}) expired; deleting it", b.id, b.name);
    ARGON_RETURN_IF_ERROR(planner_.delete_branch(tx, b));
    ++deleted;
  }
  if (env_.options.old_branch_retention.count() > 0) {
    ARGON_ASSIGN_OR_RETURN(const size_t old, delete_old_branches(tx, now));
    deleted += old;
  }
  for (auto snap : tx.list_all_snapshots()) {
    if (snap.deleted || !snap.expires_at || *snap.expires_at > now) continue;
    spdlog::info("snapshot {} ({}) expired; deleting it", snap.id, snap.name);
    ARGON_RETURN_IF_ERROR(planner_.delete_snapshot(tx, snap));
    ++deleted;
  }
  return deleted;
}

// A branch is "old" when a finalized restore replaced it (another branch's restored_as names it).
// It is deleted once unchanged for the retention, unless something still depends on it: an
// endpoint, a child, protection or default (none of which a swap leaves it, but users may add).
Result<size_t> Sweeps::delete_old_branches(Tx& tx, int64_t now) {
  const int64_t cutoff =
      now - std::chrono::duration_cast<std::chrono::milliseconds>(env_.options.old_branch_retention)
                .count();
  size_t deleted = 0;
  ARGON_RETURN_IF_ERROR(for_each_project(tx, [&](const catalog::Project& p) -> Status {
    const auto branches = tx.list_branches(p.id);
    std::set<std::string> replaced, parents;
    for (const auto& b : branches) {
      if (b.restored_as && b.restore_status == std::string("finalized"))
        replaced.insert(*b.restored_as);
      if (b.parent_id) parents.insert(*b.parent_id);
    }
    for (const auto& b : branches) {
      if (!replaced.contains(b.id) || b.updated_at > cutoff || b.is_default || b.is_protected ||
          parents.contains(b.id) || !tx.list_branch_endpoints(b.id).empty() ||
          b.current_state != catalog::branch_state::kReady || b.pending_state) {
        continue;
      }
      spdlog::info("branch {} ({}) was replaced by a restore and kept {} s; deleting it", b.id,
                   b.name, env_.options.old_branch_retention.count());
      ARGON_RETURN_IF_ERROR(planner_.delete_branch(tx, b));
      ++deleted;
    }
    return {};
  }));
  return deleted;
}

void Sweeps::autosuspend() {
  if (!env_.control) return;
  const auto activity = env_.control->activity();
  const int64_t now = env_.clock.now_ms();
  size_t suspended = 0;
  auto st = env_.catalog.run([&](Tx& tx) -> Status {
    for (auto ep : tx.list_all_endpoints()) {
      if (ep.deleted || ep.current_state != catalog::endpoint_state::kActive || ep.pending_state)
        continue;
      int connections = 0;
      int64_t last = std::max(ep.last_active.value_or(0), ep.started_at.value_or(0));
      if (auto a = activity.find(ep.id); a != activity.end()) {
        connections = a->second.connections;
        last = std::max(last, a->second.last_active_ms);
      }
      if (connections > 0) last = now;
      if (last > ep.last_active.value_or(0)) {
        ep.last_active = last;
        ARGON_RETURN_IF_ERROR(tx.put_endpoint(ep));
      }
      // 0 means the default (300 s), negative never.
      const int64_t timeout_s = ep.suspend_timeout_seconds == 0 ? kDefaultSuspendTimeoutSeconds
                                                                : ep.suspend_timeout_seconds;
      if (timeout_s < 0 || connections > 0 || now - last < timeout_s * 1000) continue;
      spdlog::info("endpoint {}: no connections for {} s; suspending its compute", ep.id,
                   (now - last) / 1000);
      ARGON_RETURN_IF_ERROR(planner_.suspend_endpoint(tx, ep));
      ++suspended;
    }
    return {};
  });
  if (!st) spdlog::error("autosuspend sweep failed: {} {}", st.error().message, st.error().detail);
  if (st && suspended) notify_();
}

}  // namespace argon::ops
