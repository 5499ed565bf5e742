#include "ops/planner.h"

#include <boost/json.hpp>

#include "catalog/model.h"
#include "common/random.h"

namespace argon::ops {

Result<catalog::Operation> Planner::add(catalog::Tx& tx, std::string_view project_id,
                                        std::optional<std::string> branch_id,
                                        std::optional<std::string> endpoint_id,
                                        const ActionParams& params) const {
  catalog::Operation op;
  op.id = uuid_v4();
  op.project_id = std::string(project_id);
  op.branch_id = std::move(branch_id);
  op.endpoint_id = std::move(endpoint_id);
  op.kind = std::string(to_string(kind_of(params)));
  op.action = std::string(neon_action(kind_of(params)));
  op.params_json = boost::json::serialize(to_json(params));
  op.created_at = op.updated_at = now();
  ARGON_RETURN_IF_ERROR(tx.put_operation(op));
  return op;
}

Result<catalog::Operation> Planner::delete_endpoint(catalog::Tx& tx,
                                                    const catalog::Endpoint& ep) const {
  catalog::Endpoint e = ep;
  e.deleted = true;
  e.updated_at = now();
  ARGON_RETURN_IF_ERROR(tx.put_endpoint(e));
  return add(tx, e.project_id, e.branch_id, e.id, params::SuspendCompute{e.branch_id, true});
}

Result<std::vector<catalog::Operation>> Planner::delete_branch(
    catalog::Tx& tx, const catalog::Branch& branch) const {
  std::vector<catalog::Operation> ops;
  for (const auto& ep : tx.list_branch_endpoints(branch.id)) {
    ARGON_ASSIGN_OR_RETURN(auto op, delete_endpoint(tx, ep));
    ops.push_back(std::move(op));
  }
  catalog::Branch b = branch;
  b.deleted = true;
  b.updated_at = now();
  ARGON_RETURN_IF_ERROR(tx.put_branch(b));
  ARGON_ASSIGN_OR_RETURN(auto op,
                         add(tx, b.project_id, b.id, std::nullopt, params::DeleteBranch{}));
  ops.push_back(std::move(op));
  return ops;
}

Result<catalog::Operation> Planner::start_endpoint(catalog::Tx& tx, catalog::Endpoint& ep) const {
  ep.pending_state = std::string(catalog::endpoint_state::kActive);
  ep.updated_at = now();
  ARGON_RETURN_IF_ERROR(tx.put_endpoint(ep));
  return add(tx, ep.project_id, ep.branch_id, ep.id, params::StartCompute{});
}

Result<catalog::Operation> Planner::suspend_endpoint(catalog::Tx& tx, catalog::Endpoint& ep) const {
  ep.pending_state = std::string(catalog::endpoint_state::kIdle);
  ep.updated_at = now();
  ARGON_RETURN_IF_ERROR(tx.put_endpoint(ep));
  return add(tx, ep.project_id, ep.branch_id, ep.id, params::SuspendCompute{ep.branch_id, false});
}

Result<catalog::Operation> Planner::apply_config(catalog::Tx& tx, const catalog::Branch& branch,
                                                 params::ConfigChange change) const {
  std::optional<std::string> endpoint_id;
  auto eps = tx.list_branch_endpoints(branch.id);
  if (!eps.empty()) endpoint_id = eps.front().id;
  return add(tx, branch.project_id, branch.id, endpoint_id,
             params::ApplyConfig{{std::move(change)}});
}

Result<catalog::Operation> Planner::delete_snapshot(catalog::Tx& tx,
                                                    catalog::Snapshot& snapshot) const {
  snapshot.deleted = true;
  snapshot.updated_at = now();
  ARGON_RETURN_IF_ERROR(tx.put_snapshot(snapshot));
  return add(tx, snapshot.project_id, std::nullopt, std::nullopt,
             params::DeleteSnapshot{snapshot.id});
}

}  // namespace argon::ops
