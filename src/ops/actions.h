// Operation actions (Neon's OperationAction values we use) and their parameters.
//   create_timeline  {source: "template"|"parent"}            branch_id set
//   create_timeline  {source: "snapshot", snapshot_id}         branch_id set (a restore)
//   create_timeline  {snapshot_id}                             branch_id = the source (a snapshot)
//   delete_timeline  {snapshot_id}                             deletes a snapshot
//   swap_binding_id  {target_branch_id, old_name?}            branch_id = the restored branch:
//                    finalize a restore (endpoints, name and flags move from the target)
//   start_compute    {}                                         endpoint_id set
//   suspend_compute  {branch_id}                               endpoint_id set (may be deleted)
//   apply_config     {changes: [{kind, name, id, old_name}]}   branch_id set
//   delete_timeline  {}                                         branch_id set
#pragma once

#include <string_view>

namespace argon::ops::action {
inline constexpr std::string_view kCreateTimeline = "create_timeline";
inline constexpr std::string_view kStartCompute = "start_compute";
inline constexpr std::string_view kSuspendCompute = "suspend_compute";
inline constexpr std::string_view kApplyConfig = "apply_config";
inline constexpr std::string_view kDeleteTimeline = "delete_timeline";
inline constexpr std::string_view kSwapBindingId = "swap_binding_id";
}  // namespace argon::ops::action

namespace argon::ops::change {
inline constexpr std::string_view kCreateRole = "create_role";
inline constexpr std::string_view kResetPassword = "reset_password";
inline constexpr std::string_view kDeleteRole = "delete_role";
inline constexpr std::string_view kCreateDatabase = "create_database";
inline constexpr std::string_view kUpdateDatabase = "update_database";
inline constexpr std::string_view kDeleteDatabase = "delete_database";
}  // namespace argon::ops::change
