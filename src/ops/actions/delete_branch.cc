// delete_branch (Neon: delete_timeline): the branch's compute stops, its data directory goes, then
// its endpoint and branch rows. Idempotent: each step finds its work done after a crash.
#include "common/crash_point.h"
#include "ops/action.h"
#include "ops/action_env.h"
#include "ops/actions/actions.h"

namespace argon::ops {
namespace {

class DeleteBranch final : public TypedAction<params::DeleteBranch> {
 public:
  using TypedAction::TypedAction;

 private:
  Result<Outcome> execute(catalog::Operation& op, const params::DeleteBranch&) override {
    const std::string id = op.branch_id.value_or("");
    ARGON_RETURN_IF_ERROR(env_.stop_compute(id));
    crash_point("delete.stopped");
    ARGON_RETURN_IF_ERROR(env_.storage.remove_branch(id));
    ARGON_RETURN_IF_ERROR(env_.catalog.run([&](catalog::Tx& tx) -> Status {
      // Deleted endpoints too: their own suspend_compute may not have removed the row yet.
      for (const auto& ep : tx.list_all_endpoints()) {
        if (ep.branch_id == id) ARGON_RETURN_IF_ERROR(tx.delete_endpoint_row(ep.id));
      }
      return tx.delete_branch_row(id);
    }));
    return Outcome::kDone;
  }
};

}  // namespace

std::unique_ptr<Action> make_delete_branch(ActionEnv& env) {
  return std::make_unique<DeleteBranch>(env);
}

}  // namespace argon::ops
