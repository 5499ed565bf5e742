// Roles and databases inside a branch's running Postgres, kept in step with the catalog: the API's
// changes are applied to the cluster (`apply`), and those made with SQL are read back before a
// compute stops (`sync_from_compute`). Every statement runs on argond's admin connection.
#pragma once

#include <vector>

#include "catalog/model.h"
#include "common/error.h"
#include "ops/action_env.h"
#include "ops/params.h"

namespace argon::ops {

class ClusterConfig {
 public:
  explicit ClusterConfig(ActionEnv& env) : env_(env) {}

  // A new project's first branch: the template has only the admin role, so create neon_superuser
  // and then the catalog's roles and databases. The compute must run.
  [[nodiscard]] Status initialize(const catalog::Branch& branch);
  // Carries out the changes in order (each idempotent). The compute must run.
  [[nodiscard]] Status apply(const catalog::Branch& branch,
                             const std::vector<params::ConfigChange>& changes);
  // Brings roles and databases created or dropped with SQL into the catalog, unless an API change
  // for the branch is still pending (those are authoritative until applied).
  [[nodiscard]] Status sync_from_compute(const catalog::Branch& branch);

 private:
  ActionEnv& env_;
};

}  // namespace argon::ops
