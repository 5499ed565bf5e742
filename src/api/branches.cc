// Branch handlers: /projects/{id}/branches...
#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/endpoint_fields.h"
#include "api/handlers.h"
#include "api/input.h"
#include "api/lookups.h"

namespace argon::api {

namespace json = boost::json;
using catalog::Tx;

Result<Reply> BranchHandlers::list_branches(Request& c) {
  const std::string sort_by = c.q("sort_by").value_or("updated_at");
  const std::string sort_order = c.q("sort_order").value_or("desc");
  if (sort_by != "name" && sort_by != "created_at" && sort_by != "updated_at") {
    return fail(ErrorCode::kBadRequest, "sort_by: must be one of name, created_at, updated_at");
  }
  if (sort_order != "asc" && sort_order != "desc") {
    return fail(ErrorCode::kBadRequest, "sort_order: must be asc or desc");
  }
  ARGON_ASSIGN_OR_RETURN(const std::optional<int64_t> limit,
                         parse_int_param(c.q("limit"), "limit", 1, 10000));
  ARGON_ASSIGN_OR_RETURN(const int64_t cursor, parse_cursor(c.q("cursor"), "o"));
  const size_t offset = static_cast<size_t>(cursor);
  const std::string search = c.q("search").value_or("");
  return ctx_.catalog.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    auto all = tx.list_branches(p.id);
    std::vector<catalog::Branch> branches;
    for (auto& b : all) {
      if (search.empty() || b.name.find(search) != std::string::npos ||
          b.id.find(search) != std::string::npos) {
        branches.push_back(std::move(b));
      }
    }
    auto key = [&](const catalog::Branch& b) {
      if (sort_by == "name") return b.name;
      return fmt::format("{:020}", sort_by == "created_at" ? b.created_at : b.updated_at);
    };
    std::stable_sort(branches.begin(), branches.end(), [&](const auto& a, const auto& b) {
      auto ka = key(a), kb = key(b);
      if (ka == kb) return sort_order == "asc" ? a.id < b.id : a.id > b.id;
      return sort_order == "asc" ? ka < kb : ka > kb;
    });
    json::array items;
    const size_t end =
        limit ? std::min(branches.size(), offset + static_cast<size_t>(*limit)) : branches.size();
    for (size_t i = offset; i < end; ++i) items.push_back(branch_json(branches[i]));
    json::object pagination{{"sort_by", sort_by}, {"sort_order", sort_order}};
    if (end < branches.size()) pagination["next"] = fmt::format("o{}", end);
    return Reply{200, json::object{{"branches", std::move(items)},
                                   {"annotations", json::object{}},
                                   {"pagination", std::move(pagination)}}};
  });
}

Result<Reply> BranchHandlers::count_branches(Request& c) {
  const std::string search = c.q("search").value_or("");
  return ctx_.catalog.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    int64_t n = 0;
    for (const auto& b : tx.list_branches(p.id)) {
      n += search.empty() || b.name.find(search) != std::string::npos ||
           b.id.find(search) != std::string::npos;
    }
    return Reply{200, json::object{{"count", n}}};
  });
}

Result<Reply> BranchHandlers::create_branch(Request& c) {
  ARGON_ASSIGN_OR_RETURN(auto body, parse_body(c.http));
  Fields root(&body, "");
  ARGON_ASSIGN_OR_RETURN(Fields f, root.object("branch"));
  ARGON_ASSIGN_OR_RETURN(auto parent_id, f.string("parent_id", 1, 60));
  ARGON_ASSIGN_OR_RETURN(auto name, f.string("name", 1, 256));
  ARGON_ASSIGN_OR_RETURN(auto parent_lsn, f.string("parent_lsn", 1, 32));
  ARGON_ASSIGN_OR_RETURN(auto parent_ts, f.time_or_null("parent_timestamp"));
  ARGON_ASSIGN_OR_RETURN(auto is_protected, f.boolean("protected"));
  ARGON_ASSIGN_OR_RETURN(auto archived, f.boolean("archived"));
  ARGON_ASSIGN_OR_RETURN(auto init_source, f.string("init_source", 1, 32));
  ARGON_ASSIGN_OR_RETURN(auto expires_at, f.time_or_null("expires_at"));
  ARGON_ASSIGN_OR_RETURN(const json::array* endpoints, root.array("endpoints"));
  // A point of the parent's history (storage/history.h): a time names the interval its text
  // does, and includes every commit stamped within it.
  storage::PointInTime point;
  std::optional<std::string> point_time;
  if (parent_lsn && parent_ts && *parent_ts) {
    return fail(ErrorCode::kBadRequest,
                "branch.parent_lsn and branch.parent_timestamp cannot be combined");
  }
  if (parent_lsn && !(point.lsn = storage::parse_lsn(*parent_lsn))) {
    return fail(ErrorCode::kBadRequest, "branch.parent_lsn: must be an LSN such as 0/1A2B3C8");
  }
  if (parent_ts && *parent_ts) {
    ARGON_ASSIGN_OR_RETURN(point_time, f.string("parent_timestamp", 1, 64));
    if (!point_time || !(point.time = parse_time_span(*point_time)))
      return fail(ErrorCode::kBadRequest, "branch.parent_timestamp: must be an RFC 3339 time");
  }
  if (init_source && *init_source != "parent-data") {
    if (*init_source == "schema-only") {
      return fail(ErrorCode::kBadRequest,
                  "branch.init_source: schema-only branches are not supported yet");
    }
    return fail(ErrorCode::kBadRequest, "branch.init_source: must be parent-data or schema-only");
  }
  if (archived.value_or(false)) {
    return fail(ErrorCode::kBadRequest, "branch.archived: archived branches are not supported");
  }
  const int64_t now = ctx_.clock.now_ms();
  if (expires_at && *expires_at && **expires_at <= now) {
    return fail(ErrorCode::kBadRequest, "branch.expires_at: must be in the future");
  }
  struct EndpointRequest {
    Fields fields;
  };
  std::vector<EndpointRequest> eps;
  if (endpoints) {
    for (size_t i = 0; i < endpoints->size(); ++i) {
      const auto& v = (*endpoints)[i];
      const std::string path = fmt::format("endpoints[{}]", i);
      if (!v.is_object())
        return fail(ErrorCode::kBadRequest, fmt::format("{}: must be an object", path));
      Fields ef(&v.as_object(), path);
      ARGON_ASSIGN_OR_RETURN(auto type, ef.string("type", 1, 32));
      if (!type)
        return fail(ErrorCode::kBadRequest, fmt::format("{}.type: required (read_write)", path));
      if (*type == "read_only") {
        return fail(ErrorCode::kBadRequest,
                    fmt::format("{}.type: read_only endpoints are not supported yet", path));
      }
      if (*type != "read_write") {
        return fail(ErrorCode::kBadRequest,
                    fmt::format("{}.type: must be read_write or read_only", path));
      }
      ARGON_RETURN_IF_ERROR(check_endpoint_pg_settings(ctx_, ef, c.param("project_id")));
      eps.push_back({ef});
    }
    if (eps.size() > 1) {
      return fail(ErrorCode::kBadRequest,
                  "endpoints: a branch can have only one read_write endpoint");
    }
  }

  // The parent named, or the project's default branch.
  auto find_parent = [&](Tx& tx, const catalog::Project& p) -> Result<catalog::Branch> {
    if (parent_id) {
      auto pb = tx.get_branch(p.id, *parent_id);
      if (!pb) {
        return fail(
            ErrorCode::kNotFound,
            fmt::format("branch.parent_id: branch {} not found in project {}", *parent_id, p.id));
      }
      return *pb;
    }
    for (const auto& b : tx.list_branches(p.id)) {
      if (b.is_default) return b;
    }
    return fail(ErrorCode::kConflict, "the project has no default branch to branch from");
  };
  if (point.lsn || point.time) {
    // The window and the point are checked before anything is planned: a point outside it is a
    // 400 now, not a failed operation later. (The operation reads the WAL again.)
    ARGON_ASSIGN_OR_RETURN(auto parent, ctx_.catalog.read([&](Tx& tx) -> Result<catalog::Branch> {
      ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
      return find_parent(tx, p);
    }));
    ARGON_RETURN_IF_ERROR(ctx_.engine.check_history_point(parent, point));
  }
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(std::optional<catalog::Branch> parent, find_parent(tx, p));
    catalog::Branch b;
    b.id = ctx_.ids.make("br");
    b.project_id = p.id;
    b.name = name.value_or(b.id);
    ARGON_RETURN_IF_ERROR(check_branch_name_free(tx, p.id, b.name, b.id));
    b.parent_id = parent->id;
    // At an LSN the time is not known (Neon may leave it empty too); parent_lsn is set when the
    // branch is built.
    if (point.time) {
      b.parent_timestamp = point.time->first_us / 1000;
    } else if (!point.lsn) {
      b.parent_timestamp = now;
    }
    b.is_protected = is_protected.value_or(false);
    b.pending_state = std::string(catalog::branch_state::kReady);
    if (expires_at && *expires_at) {
      b.expires_at = **expires_at;
      b.ttl_interval_seconds = (**expires_at - now) / 1000;
    }
    b.state_changed_at = b.created_at = b.updated_at = now;
    ARGON_RETURN_IF_ERROR(tx.put_branch(b));
    ARGON_RETURN_IF_ERROR(copy_roles_and_databases(tx, parent->id, b.id, now));

    std::vector<catalog::Operation> ops;
    ARGON_ASSIGN_OR_RETURN(
        ops.emplace_back(),
        ctx_.engine.planner().add(
            tx, p.id, b.id, std::nullopt,
            ops::params::CreateBranch{
                ops::params::CreateBranch::Source::kParent, parent->id,
                point.lsn ? std::optional(storage::format_lsn(*point.lsn)) : std::nullopt,
                point_time}));
    json::array eps_json;
    std::optional<catalog::Endpoint> rw;
    for (auto& req : eps) {
      catalog::Endpoint e = new_endpoint(ctx_, p, b.id);
      ARGON_RETURN_IF_ERROR(apply_endpoint_fields(req.fields, e));
      ARGON_RETURN_IF_ERROR(tx.put_endpoint(e));
      if (!e.disabled) {
        ARGON_ASSIGN_OR_RETURN(ops.emplace_back(), ctx_.engine.planner().start_endpoint(tx, e));
      }
      eps_json.push_back(endpoint_json(e, ctx_.options.address));
      rw = e;
    }
    json::array roles, dbs;
    for (const auto& r : tx.list_roles(b.id)) roles.push_back(role_json(r, false));
    for (const auto& d : tx.list_databases(b.id)) dbs.push_back(database_json(d));
    json::object out{{"branch", branch_json(b)},
                     {"endpoints", std::move(eps_json)},
                     {"operations", operations_json(ops)},
                     {"roles", std::move(roles)},
                     {"databases", std::move(dbs)}};
    if (rw) out["connection_uris"] = ctx_.connection_uris(tx, b, rw);
    return Reply{201, std::move(out)};
  });
}

Result<Reply> BranchHandlers::get_branch(Request& c) {
  return ctx_.catalog.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    json::object annotation{{"object", json::object{{"type", "console/branch"}, {"id", b.id}}},
                            {"value", json::object{}}};
    return Reply{200,
                 json::object{{"branch", branch_json(b)}, {"annotation", std::move(annotation)}}};
  });
}

Result<Reply> BranchHandlers::update_branch(Request& c) {
  ARGON_ASSIGN_OR_RETURN(auto body, parse_body(c.http));
  if (!body.contains("branch")) return fail(ErrorCode::kBadRequest, "branch: required");
  ARGON_ASSIGN_OR_RETURN(Fields f, Fields(&body, "").object("branch"));
  ARGON_ASSIGN_OR_RETURN(auto name, f.string("name", 1, 256));
  ARGON_ASSIGN_OR_RETURN(auto is_protected, f.boolean("protected"));
  ARGON_ASSIGN_OR_RETURN(auto expires_at, f.time_or_null("expires_at"));
  const int64_t now = ctx_.clock.now_ms();
  if (expires_at && *expires_at && **expires_at <= now) {
    return fail(ErrorCode::kBadRequest, "branch.expires_at: must be in the future");
  }
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    if (name) {
      ARGON_RETURN_IF_ERROR(check_branch_name_free(tx, p.id, *name, b.id));
      b.name = *name;
    }
    if (is_protected) b.is_protected = *is_protected;
    if (expires_at) {
      if (*expires_at && b.is_default) {
        return fail(ErrorCode::kBadRequest, "branch.expires_at: the default branch cannot expire");
      }
      b.expires_at = *expires_at;
      b.ttl_interval_seconds.reset();
      if (*expires_at) b.ttl_interval_seconds = (**expires_at - now) / 1000;
    }
    b.updated_at = now;
    ARGON_RETURN_IF_ERROR(tx.put_branch(b));
    return Reply{200, json::object{{"branch", branch_json(b)}, {"operations", json::array{}}}};
  });
}

Result<Reply> BranchHandlers::delete_branch(Request& c) {
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    auto any = tx.get_branch(p.id, c.param("branch_id"), true);
    if (any && any->deleted) return Reply{204, nullptr};  // already being deleted
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    if (b.is_default) {
      return fail(
          ErrorCode::kConflict,
          fmt::format(
              "branch {} is the project's default branch; make another branch the default first",
              b.id));
    }
    if (b.is_protected) {
      return fail(ErrorCode::kConflict,
                  fmt::format("branch {} is protected; unprotect it first", b.id));
    }
    size_t children = 0;
    for (const auto& other : tx.list_branches(p.id)) children += other.parent_id == b.id;
    if (children) {
      return fail(ErrorCode::kConflict,
                  fmt::format("branch {} has {} child branch{}; delete them first", b.id, children,
                              children == 1 ? "" : "es"));
    }
    ARGON_ASSIGN_OR_RETURN(auto ops, ctx_.engine.planner().delete_branch(tx, b));
    return Reply{200,
                 json::object{{"branch", branch_json(b)}, {"operations", operations_json(ops)}}};
  });
}

Result<Reply> BranchHandlers::set_default_branch(Request& c) {
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    const int64_t now = ctx_.clock.now_ms();
    for (auto other : tx.list_branches(p.id)) {
      if (other.is_default && other.id != b.id) {
        other.is_default = false;
        other.updated_at = now;
        ARGON_RETURN_IF_ERROR(tx.put_branch(other));
      }
    }
    b.is_default = true;
    b.expires_at.reset();
    b.ttl_interval_seconds.reset();
    b.updated_at = now;
    ARGON_RETURN_IF_ERROR(tx.put_branch(b));
    return Reply{200, json::object{{"branch", branch_json(b)}, {"operations", json::array{}}}};
  });
}

// POST /branches/{id}/restore: the branch, keeping its id, name and endpoints, takes the state of
// `source_branch_id` at its head (reset from parent is this with the parent as source), or at
// `source_lsn`/`source_timestamp` of the source's history; the source may be the branch itself
// (its own past, with `preserve_under_name` keeping the state it has now, as on Neon).
Result<Reply> BranchHandlers::restore_branch(Request& c) {
  ARGON_ASSIGN_OR_RETURN(auto body, parse_body(c.http));
  Fields f(&body, "");
  ARGON_ASSIGN_OR_RETURN(auto source_id, f.string("source_branch_id", 1, 60));
  ARGON_ASSIGN_OR_RETURN(auto preserve, f.string("preserve_under_name", 1, 256));
  ARGON_ASSIGN_OR_RETURN(auto lsn_text, f.string("source_lsn", 1, 64));
  ARGON_ASSIGN_OR_RETURN(auto time_text, f.string("source_timestamp", 1, 64));
  if (!source_id) return fail(ErrorCode::kBadRequest, "source_branch_id: required");
  if (lsn_text && time_text)
    return fail(ErrorCode::kBadRequest, "source_lsn and source_timestamp cannot be combined");
  storage::PointInTime point;
  if (lsn_text && !(point.lsn = storage::parse_lsn(*lsn_text))) {
    return fail(ErrorCode::kBadRequest, "source_lsn: must be an LSN such as 0/1A2B3C8");
  }
  if (time_text && !(point.time = parse_time_span(*time_text))) {
    return fail(ErrorCode::kBadRequest, "source_timestamp: must be an RFC 3339 time");
  }
  const int64_t now = ctx_.clock.now_ms();
  if (point.lsn || point.time) {
    // The point is checked against the source's history window before anything is planned.
    ARGON_ASSIGN_OR_RETURN(auto source, ctx_.catalog.read([&](Tx& tx) -> Result<catalog::Branch> {
      ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
      return find_branch(tx, p, *source_id);
    }));
    ARGON_RETURN_IF_ERROR(ctx_.engine.check_history_point(source, point));
  }
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    const bool own_past = *source_id == b.id;
    if (own_past && !point.lsn && !point.time) {
      return fail(ErrorCode::kBadRequest,
                  "source_timestamp or source_lsn: required to restore a branch to its own past");
    }
    if (own_past && !preserve) {
      return fail(ErrorCode::kBadRequest,
                  "preserve_under_name: required to restore a branch to its own past (the state "
                  "it has now is kept under that name)");
    }
    ARGON_ASSIGN_OR_RETURN(auto source, find_branch(tx, p, *source_id));
    if (b.current_state != catalog::branch_state::kReady ||
        source.current_state != catalog::branch_state::kReady) {
      return fail(
          ErrorCode::kLocked,
          "the branch or its source is still being created; retry once its operations finish");
    }
    std::vector<catalog::Branch> children;
    for (const auto& other : tx.list_branches(p.id)) {
      if (other.parent_id == b.id) children.push_back(other);
    }
    if (!children.empty() && !preserve) {
      return fail(ErrorCode::kBadRequest,
                  fmt::format("preserve_under_name: required, because branch {} has {} child "
                              "branch{} (they move to "
                              "the preserved branch)",
                              b.id, children.size(), children.size() == 1 ? "" : "es"));
    }
    ops::params::ResetBranch params{
        source.id, std::nullopt,
        point.lsn ? std::optional(storage::format_lsn(*point.lsn)) : std::nullopt, time_text};
    if (preserve) {
      ARGON_RETURN_IF_ERROR(check_branch_name_free(tx, p.id, *preserve));
      catalog::Branch keep;
      keep.id = ctx_.ids.make("br");
      keep.project_id = p.id;
      keep.name = *preserve;
      keep.parent_id = b.parent_id;
      keep.parent_timestamp = b.parent_timestamp;
      keep.init_source = "parent-data";
      keep.current_state = std::string(catalog::branch_state::kInit);
      keep.pending_state = std::string(catalog::branch_state::kReady);
      keep.created_at = keep.updated_at = keep.state_changed_at = now;
      ARGON_RETURN_IF_ERROR(tx.put_branch(keep));
      ARGON_RETURN_IF_ERROR(copy_roles_and_databases(tx, b.id, keep.id, now));
      for (auto child : children) {
        child.parent_id = keep.id;
        child.updated_at = now;
        ARGON_RETURN_IF_ERROR(tx.put_branch(child));
      }
      params.preserve_branch_id = keep.id;
    }
    // The catalog's roles and databases become the source's, as its data will be. (Restored to
    // its own past, the branch's roles are those it has now; the data brings back its past ones,
    // which the next suspend synchronises.)
    if (!own_past) {
      for (const auto& r : tx.list_roles(b.id, true))
        ARGON_RETURN_IF_ERROR(tx.delete_role_row(b.id, r.name));
      for (const auto& d : tx.list_databases(b.id, true))
        ARGON_RETURN_IF_ERROR(tx.delete_database_row(d.id));
      ARGON_RETURN_IF_ERROR(copy_roles_and_databases(tx, source.id, b.id, now));
    }
    b.updated_at = now;
    ARGON_RETURN_IF_ERROR(tx.put_branch(b));
    ARGON_ASSIGN_OR_RETURN(auto op,
                           ctx_.engine.planner().add(tx, p.id, b.id, std::nullopt, params));
    return Reply{200,
                 json::object{{"branch", branch_json(b)}, {"operations", operations_json({op})}}};
  });
}

Result<Reply> BranchHandlers::list_branch_endpoints(Request& c) {
  return ctx_.catalog.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    json::array eps;
    for (const auto& e : tx.list_branch_endpoints(b.id))
      eps.push_back(endpoint_json(e, ctx_.options.address));
    return Reply{200, json::object{{"endpoints", std::move(eps)}}};
  });
}

void BranchHandlers::add_routes(Routes& routes) {
  routes.add("GET", kProjectPath + "/branches", this, &BranchHandlers::list_branches);
  routes.add("POST", kProjectPath + "/branches", this, &BranchHandlers::create_branch);
  routes.add("GET", kProjectPath + "/branches/count", this, &BranchHandlers::count_branches);
  routes.add("GET", kBranchPath, this, &BranchHandlers::get_branch);
  routes.add("PATCH", kBranchPath, this, &BranchHandlers::update_branch);
  routes.add("DELETE", kBranchPath, this, &BranchHandlers::delete_branch);
  routes.add("POST", kBranchPath + "/set_as_default", this, &BranchHandlers::set_default_branch);
  routes.add("POST", kBranchPath + "/set_as_primary", this, &BranchHandlers::set_default_branch);
  routes.add("POST", kBranchPath + "/restore", this, &BranchHandlers::restore_branch);
  routes.add("GET", kBranchPath + "/endpoints", this, &BranchHandlers::list_branch_endpoints);
}

}  // namespace argon::api
