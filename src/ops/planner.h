// The planner writes, inside the caller's catalog transaction, the rows and operations a change
// needs. The api layer and the engine's sweeps both use it, so a branch deleted by a request and
// one deleted by its expiry go through the same steps. Nothing here blocks: the engine carries the
// operations out. Every write's failure is returned, so the caller's transaction rolls back whole.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "common/clock.h"
#include "ops/params.h"

namespace argon::ops {

class Planner {
 public:
  explicit Planner(const Clock& clock) : clock_(clock) {}

  // One operation: its kind and Neon action name come from the parameters' type.
  [[nodiscard]] Result<catalog::Operation> add(catalog::Tx& tx, std::string_view project_id,
                                               std::optional<std::string> branch_id,
                                               std::optional<std::string> endpoint_id,
                                               const ActionParams& params) const;

  // Marks a branch and its endpoints deleted; queues suspend_compute for each endpoint and
  // delete_branch for the branch.
  [[nodiscard]] Result<std::vector<catalog::Operation>> delete_branch(
      catalog::Tx& tx, const catalog::Branch& branch) const;
  // Marks an endpoint deleted; queues suspend_compute (which removes the row).
  [[nodiscard]] Result<catalog::Operation> delete_endpoint(catalog::Tx& tx,
                                                           const catalog::Endpoint& ep) const;
  // Queues start_compute / suspend_compute for an endpoint and records the pending state.
  [[nodiscard]] Result<catalog::Operation> start_endpoint(catalog::Tx& tx,
                                                          catalog::Endpoint& ep) const;
  [[nodiscard]] Result<catalog::Operation> suspend_endpoint(catalog::Tx& tx,
                                                            catalog::Endpoint& ep) const;
  // One config change inside a branch's Postgres (roles, databases).
  [[nodiscard]] Result<catalog::Operation> apply_config(catalog::Tx& tx,
                                                        const catalog::Branch& branch,
                                                        params::ConfigChange change) const;
  // Marks a snapshot deleted; queues delete_snapshot (which removes data and row).
  [[nodiscard]] Result<catalog::Operation> delete_snapshot(catalog::Tx& tx,
                                                           catalog::Snapshot& snapshot) const;

  int64_t now() const { return clock_.now_ms(); }

 private:
  const Clock& clock_;
};

}  // namespace argon::ops
