// The catalog's records: one struct per table. Times are milliseconds since the Unix epoch.
// These are plain data; invariants (one default branch per project, one read_write endpoint per
// branch, ...) are enforced by the api layer inside the same transaction that writes them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace argon::catalog {

struct Project {
  int64_t seq = 0;  // insertion order; pagination cursor
  std::string id;
  std::string name;
  std::string region_id;
  int pg_version = 15;
  bool store_passwords = true;
  int64_t history_retention_seconds = 86400;
  std::string settings_json = "{}";
  std::string default_endpoint_settings_json = "{}";
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::optional<int64_t> deleted_at;  // set by DELETE; rows go when the delete operations finish
};

namespace branch_state {
inline constexpr std::string_view kInit = "init";
inline constexpr std::string_view kReady = "ready";
inline constexpr std::string_view kResetting = "resetting";
}  // namespace branch_state

struct Branch {
  std::string id;
  std::string project_id;
  std::string name;
  std::optional<std::string> parent_id;
  std::optional<std::string> parent_lsn;
  std::optional<int64_t> parent_timestamp;
  bool is_default = false;
  bool is_protected = false;
  std::string current_state{branch_state::kInit};
  std::optional<std::string> pending_state;
  int64_t state_changed_at = 0;
  std::optional<int64_t> expires_at;
  std::optional<int64_t> ttl_interval_seconds;
  std::string init_source = "parent-data";
  std::optional<int64_t> logical_size;
  std::optional<std::string> restored_from;
  std::optional<std::string> restored_as;
  std::optional<std::string> restore_status;
  // A restored branch: the branch a later finalize_restore replaces (the snapshot's source, or
  // target_branch_id), kept here because the snapshot may be deleted before the finalize.
  std::optional<std::string> restore_target;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  bool deleted = false;  // hidden from the API; delete operations pending
};

namespace endpoint_state {
inline constexpr std::string_view kInit = "init";
inline constexpr std::string_view kActive = "active";
inline constexpr std::string_view kIdle = "idle";
}  // namespace endpoint_state

struct Endpoint {
  std::string id;
  std::string project_id;
  std::string branch_id;
  std::string type = "read_write";
  std::optional<std::string> name;
  std::string current_state{endpoint_state::kInit};
  std::optional<std::string> pending_state;
  bool disabled = false;
  bool passwordless_access = false;
  int64_t suspend_timeout_seconds = 0;
  double autoscaling_limit_min_cu = 0.25;
  double autoscaling_limit_max_cu = 0.25;
  std::string settings_json = "{}";
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::optional<int64_t> last_active;
  std::optional<int64_t> started_at;
  std::optional<int64_t> suspended_at;
  // The finalize_restore operation switching this endpoint to the restored branch: set by that
  // operation once the restored branch's compute is ready, cleared by its swap (or its end); while
  // set, new connections wait at the proxy (ops::ActionEnv::sync_holds).
  std::optional<std::string> switching_op;
  bool deleted = false;
};

struct Role {
  std::string project_id;
  std::string branch_id;
  std::string name;
  std::string password;  // needed for reveal_password; the catalog file is 0600
  bool is_protected = false;
  bool no_login = false;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  bool pending_delete = false;
};

struct Database {
  int64_t id = 0;
  std::string project_id;
  std::string branch_id;
  std::string name;
  std::string owner_name;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  bool pending_delete = false;
};

namespace op_status {
inline constexpr std::string_view kScheduling = "scheduling";
inline constexpr std::string_view kRunning = "running";
inline constexpr std::string_view kFinished = "finished";
inline constexpr std::string_view kFailed = "failed";
inline constexpr std::string_view kCancelled = "cancelled";
inline constexpr std::string_view kSkipped = "skipped";
}  // namespace op_status

struct Operation {
  int64_t seq = 0;  // global FIFO order
  std::string id;   // uuid
  std::string project_id;
  std::optional<std::string> branch_id;
  std::optional<std::string> endpoint_id;
  std::string kind;    // what runs it: ops/params.h ActionKind
  std::string action;  // Neon's OperationAction, as the API shows it
  std::string status{op_status::kScheduling};
  int failures_count = 0;
  std::optional<std::string> error;
  std::string params_json = "{}";  // the kind's parameters; see ops/params.h
  int64_t created_at = 0;
  int64_t updated_at = 0;
  int64_t total_duration_ms = 0;

  bool terminal() const {
    return status == op_status::kFinished || status == op_status::kFailed ||
           status == op_status::kCancelled || status == op_status::kSkipped;
  }
};

namespace snapshot_state {
inline constexpr std::string_view kCreating = "creating";  // its create_snapshot operation runs
inline constexpr std::string_view kReady = "ready";
}  // namespace snapshot_state

// A snapshot: an immutable copy of a branch's data at one moment (<data-dir>/snapshots/<id>).
struct Snapshot {
  std::string id;
  std::string project_id;
  std::string name;
  std::string source_branch_id;  // stays pointing at the branch it was taken from
  std::optional<std::string> lsn;
  std::optional<int64_t> timestamp;  // when the captured state was current
  std::string state{snapshot_state::kCreating};
  std::optional<int64_t> expires_at;
  std::optional<int64_t> full_size;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  bool deleted = false;  // hidden from the API; delete operation pending
};

struct ApiKey {
  int64_t id = 0;
  std::string name;
  std::string hash;  // sha256 hex of the token; the token itself is never stored
  int64_t created_at = 0;
  std::optional<int64_t> last_used_at;
  std::string last_used_from_addr;
  bool revoked = false;
};

}  // namespace argon::catalog
