// restore_branch (Neon: create_timeline): a new root branch, a writable clone of a snapshot
// (verified against its manifest first). A failure removes the branch as create_branch does; a
// finalize_restore queued after it is then skipped.
#include <fmt/format.h>

#include "common/crash_point.h"
#include "ops/action.h"
#include "ops/action_env.h"
#include "ops/actions/actions.h"

namespace argon::ops {
namespace {

using catalog::Tx;

class RestoreBranch final : public TypedAction<params::RestoreBranch> {
 public:
  using TypedAction::TypedAction;

 private:
  Result<Outcome> execute(catalog::Operation& op, const params::RestoreBranch& p) override {
    ARGON_ASSIGN_OR_RETURN(
        auto rt, env_.catalog.transact([&](Tx& tx) -> Result<std::optional<BranchRuntime>> {
          return ActionEnv::load_runtime(tx, op.project_id, op.branch_id.value_or(""), true);
        }));
    if (!rt || rt->branch.deleted) return Outcome::kSkipped;
    const catalog::Branch* branch = &rt->branch;
    Status st;
    if (!env_.storage.snapshot_exists(p.snapshot_id)) {
      st = fail(ErrorCode::kConflict,
                fmt::format("snapshot {} has no data (it was deleted or never completed)",
                            p.snapshot_id));
    } else if (auto stats = env_.storage.create_branch_from_snapshot(branch->id, p.snapshot_id,
                                                                     rt->history());
               !stats) {
      st = std::unexpected(stats.error());
    }
    if (st) crash_point("restore.cloned");
    if (!st) {
      env_.discard_branch(branch->id);
      return std::unexpected(st.error());
    }
    ARGON_RETURN_IF_ERROR(env_.mark_branch_ready(op.project_id, branch->id));
    return Outcome::kDone;
  }
};

}  // namespace

std::unique_ptr<Action> make_restore_branch(ActionEnv& env) {
  return std::make_unique<RestoreBranch>(env);
}

}  // namespace argon::ops
