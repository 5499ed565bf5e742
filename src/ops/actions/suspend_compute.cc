// suspend_compute: an endpoint's compute stops. Roles and databases made with SQL are read back
// into the catalog first; then the endpoint is gated, its clients hear why their connection ends
// (moved, disabled, deleted, suspended) and the compute stops cleanly; then the gate lifts, and
// waiting clients wake whatever compute the endpoint names by then. A deleted endpoint's row goes
// last.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "ops/action.h"
#include "ops/action_env.h"
#include "ops/actions/actions.h"
#include "ops/cluster_config.h"

namespace argon::ops {
namespace {

using catalog::Tx;

class SuspendCompute final : public TypedAction<params::SuspendCompute> {
 public:
  using TypedAction::TypedAction;

 private:
  struct Loaded {
    std::optional<catalog::Branch> branch;  // the compute's
    std::optional<catalog::Endpoint> endpoint;
  };

  Result<Outcome> execute(catalog::Operation& op, const params::SuspendCompute& p) override {
    const std::string endpoint_id = op.endpoint_id.value_or("");
    ARGON_ASSIGN_OR_RETURN(Loaded loaded, env_.catalog.transact([&](Tx& tx) -> Result<Loaded> {
      return Loaded{tx.get_branch(op.project_id, p.branch_id, true),
                    tx.get_endpoint(op.project_id, endpoint_id, true)};
    }));
    const bool running = env_.computes.running(p.branch_id);
    if (loaded.branch && running) {
      if (auto st = ClusterConfig(env_).sync_from_compute(*loaded.branch); !st) {
        spdlog::warn("could not read roles and databases from compute {} before suspending: {}",
                     p.branch_id, st.error().message);
      }
    }
    std::vector<std::string> fenced;
    if (running && !endpoint_id.empty()) fenced.push_back(endpoint_id);
    env_.fence(fenced, reason(endpoint_id, loaded.endpoint, p));
    const Status stopped = env_.stop_compute(p.branch_id);
    env_.unfence(fenced);
    ARGON_RETURN_IF_ERROR(stopped);
    ARGON_RETURN_IF_ERROR(env_.catalog.run([&](Tx& tx) -> Status {
      auto e = tx.get_endpoint(op.project_id, endpoint_id, true);
      if (!e) return {};
      if (p.delete_endpoint) return tx.delete_endpoint_row(e->id);
      const int64_t now = env_.clock.now_ms();
      e->current_state = catalog::endpoint_state::kIdle;
      e->pending_state.reset();
      e->suspended_at = now;
      e->updated_at = now;
      return tx.put_endpoint(*e);
    }));
    return Outcome::kDone;
  }

  // What the endpoint's clients read in their 57P01.
  static std::string reason(const std::string& id, const std::optional<catalog::Endpoint>& ep,
                            const params::SuspendCompute& p) {
    if (p.delete_endpoint)
      return fmt::format("terminating connection: endpoint {} was deleted", id);
    if (ep && ep->branch_id != p.branch_id) {
      return fmt::format(
          "terminating connection: endpoint {} moved to branch {}; reconnect to reach it", id,
          ep->branch_id);
    }
    if (ep && ep->disabled)
      return fmt::format("terminating connection: endpoint {} was disabled", id);
    return fmt::format(
        "terminating connection: endpoint {} is being suspended; reconnect to wake it", id);
  }
};

}  // namespace

std::unique_ptr<Action> make_suspend_compute(ActionEnv& env) {
  return std::make_unique<SuspendCompute>(env);
}

}  // namespace argon::ops
