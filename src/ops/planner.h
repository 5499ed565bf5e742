// The planner writes, inside the caller's catalog transaction, the rows and operations a change
// needs. The api layer and the expiry sweeper both use it, so a branch deleted by a request and one
// deleted by its expiry go through the same steps. Nothing here blocks: the engine carries the
// operations out.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "catalog/catalog.h"
#include "common/clock.h"

namespace argon::ops {

class Planner {
 public:
  explicit Planner(const Clock& clock) : clock_(clock) {}

  catalog::Operation add(catalog::Tx& tx, std::string_view project_id, std::string_view action,
                         std::optional<std::string> branch_id,
                         std::optional<std::string> endpoint_id,
                         const boost::json::object& params = {}) const;

  // Marks a branch and its endpoints deleted; queues suspend_compute for each endpoint and
  // delete_timeline for the branch.
  std::vector<catalog::Operation> delete_branch(catalog::Tx& tx, const catalog::Branch& branch) const;
  // Marks an endpoint deleted; queues suspend_compute (which removes the row).
  std::vector<catalog::Operation> delete_endpoint(catalog::Tx& tx, const catalog::Endpoint& ep) const;
  // Queues start_compute for an endpoint.
  catalog::Operation start_endpoint(catalog::Tx& tx, catalog::Endpoint& ep) const;
  catalog::Operation suspend_endpoint(catalog::Tx& tx, catalog::Endpoint& ep) const;
  // One config change inside a branch's Postgres (roles, databases).
  catalog::Operation apply_config(catalog::Tx& tx, const catalog::Branch& branch,
                                  const boost::json::object& change) const;

  // Marks a snapshot deleted; queues delete_timeline {snapshot_id} (which removes data and row).
  catalog::Operation delete_snapshot(catalog::Tx& tx, catalog::Snapshot& snapshot) const;

  int64_t now() const { return clock_.now_ms(); }

 private:
  const Clock& clock_;
};

}  // namespace argon::ops
