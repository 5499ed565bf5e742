// The factories of the engine's actions, one per file in this folder; ops/action.h's make_actions
// (actions.cc) maps each ActionKind to one of them.
#pragma once

#include <memory>
#include <string>

#include "ops/action.h"

namespace argon::ops {

std::unique_ptr<Action> make_create_branch(ActionEnv& env);
std::unique_ptr<Action> make_restore_branch(ActionEnv& env);
std::unique_ptr<Action> make_finalize_restore(ActionEnv& env);
std::unique_ptr<Action> make_reset_branch(ActionEnv& env);
std::unique_ptr<Action> make_create_snapshot(ActionEnv& env);
std::unique_ptr<Action> make_delete_snapshot(ActionEnv& env);
std::unique_ptr<Action> make_delete_branch(ActionEnv& env);
std::unique_ptr<Action> make_start_compute(ActionEnv& env);
std::unique_ptr<Action> make_suspend_compute(ActionEnv& env);
std::unique_ptr<Action> make_apply_config(ActionEnv& env);

// create_snapshot's deferred step (create_snapshot.cc): settles a snapshot its operation sealed
// unsettled, on a copy put in its place. False when there was nothing to settle.
Result<bool> settle_snapshot_beside(ActionEnv& env, const std::string& snapshot_id);

}  // namespace argon::ops
