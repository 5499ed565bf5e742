// Startup reconciliation and the last step of deleting a project: the two places where the engine
// makes the disk and the catalog agree again after whatever happened before.
#pragma once

#include "common/error.h"
#include "ops/action_env.h"

namespace argon::ops {

// Before any request is served: removes leftovers of interrupted creates, stops stray postmasters,
// marks endpoints idle, puts interrupted operations back to `scheduling`, and removes branch and
// snapshot directories the catalog does not know.
[[nodiscard]] Status recover(ActionEnv& env);

// Removes the rows of deleted projects whose branches, snapshots and operations are all gone. Runs
// after every operation and at recovery; a project is removed whole or not at all.
[[nodiscard]] Status remove_deleted_projects(ActionEnv& env);

}  // namespace argon::ops
