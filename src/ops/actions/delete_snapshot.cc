// delete_snapshot (Neon: delete_timeline): the snapshot's data, then its row (with its copy of the
// roles and databases). Idempotent.
#include "ops/action.h"
#include "ops/action_env.h"
#include "ops/actions/actions.h"

namespace argon::ops {
namespace {

class DeleteSnapshot final : public TypedAction<params::DeleteSnapshot> {
 public:
  using TypedAction::TypedAction;

 private:
  Result<Outcome> execute(catalog::Operation&, const params::DeleteSnapshot& p) override {
    ARGON_RETURN_IF_ERROR(env_.storage.remove_snapshot(p.snapshot_id));
    ARGON_RETURN_IF_ERROR(
        env_.catalog.run([&](catalog::Tx& tx) { return tx.delete_snapshot_row(p.snapshot_id); }));
    return Outcome::kDone;
  }
};

}  // namespace

std::unique_ptr<Action> make_delete_snapshot(ActionEnv& env) {
  return std::make_unique<DeleteSnapshot>(env);
}

}  // namespace argon::ops
