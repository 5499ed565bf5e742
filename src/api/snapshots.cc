// Snapshot handlers (CONTRACT.md §7, §10): create, list, rename/expire, delete, restore, finalize.
#include <fmt/format.h>

#include <boost/json.hpp>
#include <functional>

#include "api/handlers.h"
#include "api/input.h"
#include "api/lookups.h"
#include "common/clock.h"

namespace argon::api {

namespace json = boost::json;
using catalog::Tx;

namespace {

// Parameters of snapshot create come as query parameters (spec, SDK, neonctl) or as a JSON body
// (Neon's docs and demo app); a query parameter wins.
struct SnapshotParams {
  std::optional<std::string> name;
  std::optional<int64_t> expires_at;
  storage::PointInTime point;             // `timestamp` or `lsn`: the state asked for, if not "now"
  std::optional<std::string> point_text;  // the `timestamp` as given (its precision counts)
};

// 422 with Neon's code for the limit, as its API answers.
std::unexpected<Error> limit_exceeded(std::string neon_code, std::string message) {
  return std::unexpected(
      Error(ErrorCode::kLimitExceeded, std::move(message), {}, std::move(neon_code)));
}

using QueryParam = std::function<std::optional<std::string>(const std::string&)>;

Result<SnapshotParams> snapshot_params(const HttpRequest& req, const QueryParam& query) {
  ARGON_ASSIGN_OR_RETURN(auto body, parse_body(req));
  Fields f(&body, "");
  SnapshotParams out;
  auto text = [&](const char* key, size_t max_len) -> Result<std::optional<std::string>> {
    if (auto q = query(key)) {
      if (q->empty() || q->size() > max_len) {
        return fail(ErrorCode::kBadRequest,
                    fmt::format("{}: must be 1 to {} characters", key, max_len));
      }
      return q;
    }
    return f.string(key, 1, max_len);
  };
  ARGON_ASSIGN_OR_RETURN(out.name, text("name", 256));
  ARGON_ASSIGN_OR_RETURN(auto expires, text("expires_at", 64));
  if (expires) {
    auto seconds = parse_time(*expires);
    if (!seconds) return fail(ErrorCode::kBadRequest, "expires_at: must be an RFC 3339 time");
    out.expires_at = *seconds * 1000;
  }
  ARGON_ASSIGN_OR_RETURN(auto timestamp, text("timestamp", 64));
  ARGON_ASSIGN_OR_RETURN(auto lsn, text("lsn", 64));
  if (timestamp && lsn) return fail(ErrorCode::kBadRequest, "timestamp and lsn cannot be combined");
  if (timestamp) {
    out.point_text = timestamp;
    out.point.time = parse_time_span(*timestamp);
    if (!out.point.time) return fail(ErrorCode::kBadRequest, "timestamp: must be an RFC 3339 time");
  }
  if (lsn) {
    out.point.lsn = storage::parse_lsn(*lsn);
    if (!out.point.lsn)
      return fail(ErrorCode::kBadRequest, "lsn: must be an LSN such as 0/1A2B3C8");
  }
  return out;
}

}  // namespace

Result<Reply> SnapshotHandlers::create_snapshot(Request& c) {
  ARGON_ASSIGN_OR_RETURN(auto params,
                         snapshot_params(c.http, [&](const std::string& k) { return c.q(k); }));
  const int64_t now = ctx_.clock.now_ms();
  if (params.expires_at && *params.expires_at <= now) {
    return fail(ErrorCode::kBadRequest, "expires_at: must be in the future");
  }
  // A past point is the branch's current state when nothing committed after it (the branch's WAL
  // tells): then a capture of the branch is that state, and the operation checks again that
  // nothing committed between this call and the capture. Any other point of the window, or one
  // where something did commit meanwhile, is built from the branch's history.
  std::optional<std::string> wal_end;
  if (params.point.time || params.point.lsn) {
    ARGON_ASSIGN_OR_RETURN(auto b, ctx_.catalog.read([&](Tx& tx) -> Result<catalog::Branch> {
      ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
      return find_branch(tx, p, c.param("branch_id"));
    }));
    ARGON_ASSIGN_OR_RETURN(auto history, ctx_.engine.branch_wal_history(b));
    if (auto current = storage::point_is_current(history, params.point, now * 1000 + 999,
                                                 b.created_at * 1000)) {
      wal_end = storage::format_lsn(history.end_lsn);
    } else if (current.error().code != ErrorCode::kConflict) {
      return std::unexpected(current.error());
    } else {
      ARGON_RETURN_IF_ERROR(ctx_.engine.check_history_point(b, params.point));
    }
  }
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    if (auto n = tx.list_snapshots(p.id).size();
        n >= static_cast<size_t>(ctx_.options.max_snapshots)) {
      return limit_exceeded(
          "SNAPSHOTS_LIMIT_EXCEEDED",
          fmt::format("project {} has {} snapshots, its limit; delete snapshots you no longer "
                      "need (or start argond with a higher --max-snapshots-per-project)",
                      p.id, n));
    }
    catalog::Snapshot s;
    s.id = ctx_.ids.make("snap");
    s.project_id = p.id;
    s.source_branch_id = b.id;
    s.name = params.name.value_or(fmt::format("{} {}", b.name, format_time(now / 1000)));
    s.expires_at = params.expires_at;
    s.timestamp = params.point.time ? params.point.time->first_us / 1000 : now;
    if (params.point.lsn) s.lsn = storage::format_lsn(*params.point.lsn);
    s.created_at = s.updated_at = now;
    ARGON_RETURN_IF_ERROR(tx.put_snapshot(s));
    // The catalog's view of roles and databases goes with the snapshot, under its id.
    ARGON_RETURN_IF_ERROR(copy_roles_and_databases(tx, b.id, s.id, now));
    ARGON_ASSIGN_OR_RETURN(
        auto op, ctx_.engine.planner().add(
                     tx, p.id, b.id, std::nullopt,
                     ops::params::CreateSnapshot{s.id, wal_end, s.lsn, params.point_text}));
    return Reply{
        200, json::object{{"snapshot", snapshot_json(s)}, {"operations", operations_json({op})}}};
  });
}

Result<Reply> SnapshotHandlers::list_snapshots(Request& c) {
  return ctx_.catalog.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    json::array out;
    for (const auto& s : tx.list_snapshots(p.id)) out.push_back(snapshot_json(s));
    return Reply{200, json::object{{"snapshots", std::move(out)}}};
  });
}

Result<Reply> SnapshotHandlers::update_snapshot(Request& c) {
  ARGON_ASSIGN_OR_RETURN(auto body, parse_body(c.http));
  if (!body.contains("snapshot")) return fail(ErrorCode::kBadRequest, "snapshot: required");
  ARGON_ASSIGN_OR_RETURN(Fields f, Fields(&body, "").object("snapshot"));
  ARGON_ASSIGN_OR_RETURN(auto name, f.string("name", 1, 256));
  ARGON_ASSIGN_OR_RETURN(auto expires_at, f.time_or_null("expires_at"));
  const int64_t now = ctx_.clock.now_ms();
  if (expires_at && *expires_at && **expires_at <= now) {
    return fail(ErrorCode::kBadRequest, "snapshot.expires_at: must be in the future");
  }
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto s, find_snapshot(tx, p, c.param("snapshot_id")));
    if (name) s.name = *name;
    if (expires_at) s.expires_at = *expires_at;
    s.updated_at = now;
    ARGON_RETURN_IF_ERROR(tx.put_snapshot(s));
    return Reply{200, json::object{{"snapshot", snapshot_json(s)}}};
  });
}

Result<Reply> SnapshotHandlers::delete_snapshot(Request& c) {
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto s, find_snapshot(tx, p, c.param("snapshot_id")));
    ARGON_ASSIGN_OR_RETURN(auto op, ctx_.engine.planner().delete_snapshot(tx, s));
    return Reply{202, json::object{{"operations", operations_json({op})}}};
  });
}

// Always a new root branch N with `restored_from`. With finalize_restore, N then takes the target's
// place (name, flags, endpoints) in a swap_binding_id operation; without, N waits for
// POST /branches/{N}/finalize_restore.
Result<Reply> SnapshotHandlers::restore_snapshot(Request& c) {
  ARGON_ASSIGN_OR_RETURN(auto body, parse_body(c.http));
  Fields f(&body, "");
  ARGON_ASSIGN_OR_RETURN(auto name, f.string("name", 1, 256));
  if (!name) {
    if (auto q = c.q("name"); q && !q->empty()) name = *q;  // deprecated query form
  }
  ARGON_ASSIGN_OR_RETURN(auto target_id, f.string("target_branch_id", 1, 60));
  ARGON_ASSIGN_OR_RETURN(auto finalize, f.boolean("finalize_restore"));
  const int64_t now = ctx_.clock.now_ms();
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto s, find_snapshot(tx, p, c.param("snapshot_id")));
    const std::string target_ref = target_id.value_or(s.source_branch_id);
    auto target = tx.get_branch(p.id, target_ref);
    if (finalize.value_or(false) && !target) {
      return fail(
          ErrorCode::kNotFound,
          target_id
              ? fmt::format("target_branch_id: branch {} not found in project {}", *target_id, p.id)
              : fmt::format(
                    "the snapshot's source branch {} no longer exists; pass target_branch_id",
                    s.source_branch_id));
    }
    if (target_id && !target) {
      return fail(
          ErrorCode::kNotFound,
          fmt::format("target_branch_id: branch {} not found in project {}", *target_id, p.id));
    }
    size_t roots = 0;
    for (const auto& other : tx.list_branches(p.id)) roots += !other.parent_id;
    if (roots >= static_cast<size_t>(ctx_.options.max_root_branches)) {
      return limit_exceeded(
          "ROOT_BRANCHES_LIMIT_EXCEEDED",
          fmt::format("project {} has {} root branches, its limit (a restore makes a new one); "
                      "delete branches you no longer need, such as '(old)' backups (or start "
                      "argond with a higher --max-root-branches-per-project)",
                      p.id, roots));
    }
    catalog::Branch n;
    n.id = ctx_.ids.make("br");
    n.project_id = p.id;
    n.init_source = "parent-data";
    n.restored_from = s.id;
    n.restore_target = target ? target->id : s.source_branch_id;
    n.restore_status = "restored";
    n.created_at = n.updated_at = n.state_changed_at = now;
    n.current_state = std::string(catalog::branch_state::kInit);
    n.pending_state = std::string(catalog::branch_state::kReady);
    // The name the new branch shows until a finalize hands it the target's.
    if (name) {
      n.name = *name;
      ARGON_RETURN_IF_ERROR(check_branch_name_free(tx, p.id, n.name));
    } else {
      // Generated, so it must not collide: two restores of one snapshot in the same second differ.
      const std::string base = fmt::format("{} (restored {})", s.name, format_time(now / 1000));
      n.name = base;
      for (int i = 2; !check_branch_name_free(tx, p.id, n.name); ++i)
        n.name = fmt::format("{} {}", base, i);
    }
    ARGON_RETURN_IF_ERROR(tx.put_branch(n));
    // Roles and databases as the snapshot recorded them (passwords for reveal_password); its
    // source branch may be long gone.
    ARGON_RETURN_IF_ERROR(copy_roles_and_databases(tx, s.id, n.id, now));
    std::vector<catalog::Operation> ops;
    ARGON_ASSIGN_OR_RETURN(
        ops.emplace_back(),
        ctx_.engine.planner().add(tx, p.id, n.id, std::nullopt, ops::params::RestoreBranch{s.id}));
    json::array endpoints;
    if (finalize.value_or(false)) {
      ARGON_ASSIGN_OR_RETURN(ops.emplace_back(),
                             ctx_.engine.planner().add(tx, p.id, n.id, std::nullopt,
                                                       ops::params::FinalizeRestore{target->id}));
      for (const auto& ep : tx.list_branch_endpoints(target->id)) {
        endpoints.push_back(endpoint_json(ep, ctx_.options.address));
      }
    }
    json::object out{{"branch", branch_json(n)}, {"operations", operations_json(ops)}};
    if (!endpoints.empty()) out["endpoints"] = std::move(endpoints);
    return Reply{200, std::move(out)};
  });
}

Result<Reply> SnapshotHandlers::finalize_restore(Request& c) {
  ARGON_ASSIGN_OR_RETURN(auto body, parse_body(c.http));
  Fields f(&body, "");
  ARGON_ASSIGN_OR_RETURN(auto old_name, f.string("name", 1, 256));
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto n, find_branch(tx, p, c.param("branch_id")));
    if (!n.restored_from) {
      return fail(ErrorCode::kConflict,
                  fmt::format("branch {} was not restored from a snapshot", n.id));
    }
    if (n.restore_status == std::string("finalized")) {
      return fail(ErrorCode::kConflict,
                  fmt::format("the restore of branch {} is already finalized", n.id));
    }
    auto target = tx.get_branch(p.id, n.restore_target.value_or(""));
    if (!target) {
      return fail(ErrorCode::kConflict,
                  fmt::format("branch {}, which this restore would replace, no longer exists",
                              n.restore_target.value_or("?")));
    }
    if (old_name) ARGON_RETURN_IF_ERROR(check_branch_name_free(tx, p.id, *old_name, target->id));
    ARGON_ASSIGN_OR_RETURN(
        auto op, ctx_.engine.planner().add(tx, p.id, n.id, std::nullopt,
                                           ops::params::FinalizeRestore{target->id, old_name}));
    return Reply{200,
                 json::object{{"branch", branch_json(n)}, {"operations", operations_json({op})}}};
  });
}

void SnapshotHandlers::add_routes(Routes& routes) {
  routes.add("POST", kBranchPath + "/snapshot", this, &SnapshotHandlers::create_snapshot);
  routes.add("POST", kBranchPath + "/finalize_restore", this, &SnapshotHandlers::finalize_restore);
  routes.add("GET", kProjectPath + "/snapshots", this, &SnapshotHandlers::list_snapshots);
  routes.add("PATCH", kProjectPath + "/snapshots/{snapshot_id}", this,
             &SnapshotHandlers::update_snapshot);
  routes.add("DELETE", kProjectPath + "/snapshots/{snapshot_id}", this,
             &SnapshotHandlers::delete_snapshot);
  routes.add("POST", kProjectPath + "/snapshots/{snapshot_id}/restore", this,
             &SnapshotHandlers::restore_snapshot);
}

}  // namespace argon::api
