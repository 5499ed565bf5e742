#include "ops/actions/actions.h"

namespace argon::ops {

std::map<ActionKind, std::unique_ptr<Action>> make_actions(ActionEnv& env) {
  std::map<ActionKind, std::unique_ptr<Action>> out;
  out[ActionKind::kCreateBranch] = make_create_branch(env);
  out[ActionKind::kRestoreBranch] = make_restore_branch(env);
  out[ActionKind::kFinalizeRestore] = make_finalize_restore(env);
  out[ActionKind::kResetBranch] = make_reset_branch(env);
  out[ActionKind::kCreateSnapshot] = make_create_snapshot(env);
  out[ActionKind::kDeleteSnapshot] = make_delete_snapshot(env);
  out[ActionKind::kDeleteBranch] = make_delete_branch(env);
  out[ActionKind::kStartCompute] = make_start_compute(env);
  out[ActionKind::kSuspendCompute] = make_suspend_compute(env);
  out[ActionKind::kApplyConfig] = make_apply_config(env);
  return out;
}

}  // namespace argon::ops
