#include "ops/planner.h"

#include <boost/json.hpp>

#include "common/random.h"
#include "ops/actions.h"

namespace argon::ops {

catalog::Operation Planner::add(catalog::Tx& tx, std::string_view project_id,
                                std::string_view action, std::optional<std::string> branch_id,
                                std::optional<std::string> endpoint_id,
                                const boost::json::object& params) const {
  catalog::Operation op;
  op.id = uuid_v4();
  op.project_id = std::string(project_id);
  op.branch_id = std::move(branch_id);
  op.endpoint_id = std::move(endpoint_id);
  op.action = std::string(action);
  op.params_json = boost::json::serialize(params);
  op.created_at = op.updated_at = now();
  (void)tx.put_operation(op);
  return op;
}

std::vector<catalog::Operation> Planner::delete_endpoint(catalog::Tx& tx,
                                                         const catalog::Endpoint& ep) const {
  catalog::Endpoint e = ep;
  e.deleted = true;
  e.updated_at = now();
  (void)tx.put_endpoint(e);
  return {add(tx, e.project_id, action::kSuspendCompute, e.branch_id, e.id,
              {{"branch_id", e.branch_id}, {"delete_endpoint", true}})};
}

std::vector<catalog::Operation> Planner::delete_branch(catalog::Tx& tx,
                                                       const catalog::Branch& branch) const {
  std::vector<catalog::Operation> ops;
  for (const auto& ep : tx.list_branch_endpoints(branch.id)) {
    for (auto& op : delete_endpoint(tx, ep)) ops.push_back(std::move(op));
  }
  catalog::Branch b = branch;
  b.deleted = true;
  b.updated_at = now();
  (void)tx.put_branch(b);
  ops.push_back(add(tx, b.project_id, action::kDeleteTimeline, b.id, std::nullopt));
  return ops;
}

catalog::Operation Planner::start_endpoint(catalog::Tx& tx, catalog::Endpoint& ep) const {
  ep.pending_state = "active";
  ep.updated_at = now();
  (void)tx.put_endpoint(ep);
  return add(tx, ep.project_id, action::kStartCompute, ep.branch_id, ep.id);
}

catalog::Operation Planner::suspend_endpoint(catalog::Tx& tx, catalog::Endpoint& ep) const {
  ep.pending_state = "idle";
  ep.updated_at = now();
  (void)tx.put_endpoint(ep);
  return add(tx, ep.project_id, action::kSuspendCompute, ep.branch_id, ep.id,
             {{"branch_id", ep.branch_id}});
}

catalog::Operation Planner::apply_config(catalog::Tx& tx, const catalog::Branch& branch,
                                         const boost::json::object& change) const {
  std::optional<std::string> endpoint_id;
  auto eps = tx.list_branch_endpoints(branch.id);
  if (!eps.empty()) endpoint_id = eps.front().id;
  return add(tx, branch.project_id, action::kApplyConfig, branch.id, endpoint_id,
             {{"changes", boost::json::array{change}}});
}

catalog::Operation Planner::delete_snapshot(catalog::Tx& tx, catalog::Snapshot& snapshot) const {
  snapshot.deleted = true;
  snapshot.updated_at = now();
  (void)tx.put_snapshot(snapshot);
  return add(tx, snapshot.project_id, action::kDeleteTimeline, std::nullopt, std::nullopt,
             {{"snapshot_id", snapshot.id}});
}

}  // namespace argon::ops
