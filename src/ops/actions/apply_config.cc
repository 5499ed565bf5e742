// apply_config: roles and databases changed through the API are carried out inside the branch's
// Postgres. A suspended compute is woken for it and suspended again afterwards (Neon: "wakes an
// idle endpoint briefly").
#include "ops/action.h"
#include "ops/action_env.h"
#include "ops/actions/actions.h"
#include "ops/cluster_config.h"

namespace argon::ops {
namespace {

class ApplyConfig final : public TypedAction<params::ApplyConfig> {
 public:
  using TypedAction::TypedAction;

 private:
  Result<Outcome> execute(catalog::Operation& op, const params::ApplyConfig& p) override {
    ARGON_ASSIGN_OR_RETURN(
        auto rt,
        env_.catalog.transact([&](catalog::Tx& tx) -> Result<std::optional<BranchRuntime>> {
          return ActionEnv::load_runtime(tx, op.project_id, op.branch_id.value_or(""));
        }));
    if (!rt) return Outcome::kSkipped;
    const bool was_running = env_.computes.running(rt->branch.id);
    ARGON_RETURN_IF_ERROR(env_.ensure_compute(*rt));
    const Status applied = ClusterConfig(env_).apply(rt->branch, p.changes);
    if (!was_running)
      log_if_cleanup_failed(env_.stop_compute(rt->branch.id),
                            "suspend a compute woken for a change");
    ARGON_RETURN_IF_ERROR(applied);
    return Outcome::kDone;
  }
};

}  // namespace

std::unique_ptr<Action> make_apply_config(ActionEnv& env) {
  return std::make_unique<ApplyConfig>(env);
}

}  // namespace argon::ops
