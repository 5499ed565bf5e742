// What each operation does and with which arguments, as types. An operation row records the kind
// (`operations.kind`, which picks the action that runs it) beside Neon's `action` name (what the
// API shows: several kinds share `create_timeline`), and its parameters as JSON. `to_json` and
// `parse_params` are the only code that knows that JSON: a missing or mistyped key is an error
// naming the operation and the key, never an empty string.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/error.h"

namespace argon::ops {

enum class ActionKind {
  kCreateBranch,     // a new branch from the template (a new project) or from its parent's head
  kRestoreBranch,    // a new root branch, a writable clone of a snapshot
  kFinalizeRestore,  // a restored branch takes its target's place (endpoints, name, flags)
  kResetBranch,      // a branch's data replaced in place by another branch's current state
  kCreateSnapshot,   // an immutable capture of a branch
  kDeleteSnapshot,
  kDeleteBranch,
  kStartCompute,
  kSuspendCompute,  // also removes a deleted endpoint's row once its compute is down
  kApplyConfig,     // roles and databases inside a branch's Postgres
};

// The name stored in `operations.kind`, and back.
std::string_view to_string(ActionKind kind);
std::optional<ActionKind> parse_action_kind(std::string_view name);
// Neon's OperationAction value the API shows for this kind.
std::string_view neon_action(ActionKind kind);
// start_compute and suspend_compute: they run in the compute lane, apart from data operations.
bool is_compute_kind(ActionKind kind);

namespace params {

struct CreateBranch {
  enum class Source { kTemplate, kParent };
  static constexpr ActionKind kKind = ActionKind::kCreateBranch;
  Source source = Source::kParent;
  // The branch copied from (kParent). Rows from before it was recorded lack it: the scheduler then
  // keeps every compute operation of the project waiting behind this one.
  std::optional<std::string> parent_branch_id;
  // A point of the parent's history to branch at (Neon's parent_lsn / parent_timestamp, as the
  // API got them); neither: the parent's current state.
  std::optional<std::string> point_lsn;
  std::optional<std::string> point_time;
};
struct RestoreBranch {
  static constexpr ActionKind kKind = ActionKind::kRestoreBranch;
  std::string snapshot_id;
};
struct FinalizeRestore {
  static constexpr ActionKind kKind = ActionKind::kFinalizeRestore;
  std::string target_branch_id;
  std::optional<std::string> old_name;  // the target's new name; default "<name> (old)"
};
struct ResetBranch {
  static constexpr ActionKind kKind = ActionKind::kResetBranch;
  std::string source_branch_id;
  std::optional<std::string> preserve_branch_id;  // receives the old data (and the children)
  // A point of the source's history (source_lsn / source_timestamp); neither: its current state.
  std::optional<std::string> point_lsn;
  std::optional<std::string> point_time;
};
struct CreateSnapshot {
  static constexpr ActionKind kKind = ActionKind::kCreateSnapshot;
  std::string snapshot_id;
  // Set when the snapshot was asked for at a point in time that was the branch's current state
  // (nothing had committed after it): the branch's WAL end the API call saw. The capture is
  // verified against it; if something committed meanwhile, the point is built from history.
  std::optional<std::string> wal_end;
  // The point asked for (`lsn` / `timestamp`), built from the branch's history unless the
  // capture above serves it.
  std::optional<std::string> point_lsn;
  std::optional<std::string> point_time;
};
struct DeleteSnapshot {
  static constexpr ActionKind kKind = ActionKind::kDeleteSnapshot;
  std::string snapshot_id;
};
struct DeleteBranch {
  static constexpr ActionKind kKind = ActionKind::kDeleteBranch;
};
struct StartCompute {
  static constexpr ActionKind kKind = ActionKind::kStartCompute;
};
struct SuspendCompute {
  static constexpr ActionKind kKind = ActionKind::kSuspendCompute;
  std::string branch_id;  // the compute to stop: the branch the endpoint served when this was asked
  bool delete_endpoint = false;
};

enum class ChangeKind {
  kCreateRole,
  kResetPassword,
  kDeleteRole,
  kCreateDatabase,
  kUpdateDatabase,
  kDeleteDatabase
};
// One change inside a branch's Postgres. Roles are named; databases are catalog rows by id (a
// rename records the name the database had before).
struct ConfigChange {
  ChangeKind kind = ChangeKind::kCreateRole;
  std::string name;      // roles
  int64_t id = 0;        // databases
  std::string old_name;  // kUpdateDatabase
};
struct ApplyConfig {
  static constexpr ActionKind kKind = ActionKind::kApplyConfig;
  std::vector<ConfigChange> changes;
};

}  // namespace params

using ActionParams =
    std::variant<params::CreateBranch, params::RestoreBranch, params::FinalizeRestore,
                 params::ResetBranch, params::CreateSnapshot, params::DeleteSnapshot,
                 params::DeleteBranch, params::StartCompute, params::SuspendCompute,
                 params::ApplyConfig>;

ActionKind kind_of(const ActionParams& p);
boost::json::object to_json(const ActionParams& p);
// kInternal when the JSON does not hold what `kind` needs: a bug or a damaged catalog.
Result<ActionParams> parse_params(ActionKind kind, std::string_view json);

}  // namespace argon::ops
