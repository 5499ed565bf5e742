// start_compute: the compute of an endpoint's branch starts (idempotent), and the endpoint becomes
// active; if it cannot start, the endpoint is idle again and the error says PostgreSQL's reason.
#include <fmt/format.h>

#include "ops/action.h"
#include "ops/action_env.h"
#include "ops/actions/actions.h"

namespace argon::ops {
namespace {

using catalog::Tx;

class StartCompute final : public TypedAction<params::StartCompute> {
 public:
  using TypedAction::TypedAction;

 private:
  struct Loaded {
    std::optional<catalog::Endpoint> endpoint;
    std::optional<BranchRuntime> branch;
  };

  Result<Outcome> execute(catalog::Operation& op, const params::StartCompute&) override {
    ARGON_ASSIGN_OR_RETURN(Loaded loaded, env_.catalog.transact([&](Tx& tx) -> Result<Loaded> {
      Loaded l{tx.get_endpoint(op.project_id, op.endpoint_id.value_or("")), std::nullopt};
      if (l.endpoint) l.branch = ActionEnv::load_runtime(tx, op.project_id, l.endpoint->branch_id);
      return l;
    }));
    if (!loaded.endpoint || !loaded.branch) return Outcome::kSkipped;
    const auto& ep = *loaded.endpoint;
    if (ep.disabled) {
      return fail(ErrorCode::kConflict,
                  fmt::format("endpoint {} is disabled; enable it with PATCH first", ep.id));
    }
    const Status started = env_.ensure_compute(*loaded.branch);
    ARGON_RETURN_IF_ERROR(env_.catalog.run([&](Tx& tx) -> Status {
      auto e = tx.get_endpoint(op.project_id, ep.id);
      if (!e) return {};
      const int64_t now = env_.clock.now_ms();
      e->current_state =
          std::string(started ? catalog::endpoint_state::kActive : catalog::endpoint_state::kIdle);
      e->pending_state.reset();
      if (started) e->started_at = e->last_active = now;
      e->updated_at = now;
      return tx.put_endpoint(*e);
    }));
    if (!started) return std::unexpected(started.error());
    return Outcome::kDone;
  }
};

}  // namespace

std::unique_ptr<Action> make_start_compute(ActionEnv& env) {
  return std::make_unique<StartCompute>(env);
}

}  // namespace argon::ops
