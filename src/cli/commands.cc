#include "cli/commands.h"

#include <fmt/format.h>

#include <boost/url/url.hpp>
#include <cctype>

#include "common/clock.h"

namespace argon::cli {

namespace json = boost::json;

int exit_code_for(const Error& e) {
  switch (e.code) {
    case ErrorCode::kBadRequest:
      return kExitUsage;
    case ErrorCode::kNotFound:
      return kExitNotFound;
    case ErrorCode::kUnavailable:
      return kExitUnreachable;
    case ErrorCode::kUnauthorized:
    case ErrorCode::kForbidden:
      return kExitAuth;
    default:
      return kExitFailed;
  }
}

Result<int64_t> parse_duration(const std::string& text) {
  size_t used = 0;
  int64_t n = 0;
  try {
    n = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const std::string unit = used ? text.substr(used) : "";
  const int64_t scale = unit == "s"   ? 1
                        : unit == "m" ? 60
                        : unit == "h" ? 3600
                        : unit == "d" ? 86400
                                      : 0;
  if (!used || !scale || n <= 0) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("'{}' is not a duration such as 90s, 30m, 24h or 7d", text));
  }
  return n * scale;
}

namespace {

const std::vector<Column> kProjectColumns = {
    {"ID", "id"}, {"NAME", "name"}, {"PG", "pg_version"}, {"CREATED", "created_at"}};
const std::vector<Column> kBranchColumns = {{"ID", "id"},
                                            {"NAME", "name"},
                                            {"DEFAULT", "default"},
                                            {"PROTECTED", "protected"},
                                            {"PARENT", "parent_id"},
                                            {"STATE", "current_state"},
                                            {"EXPIRES", "expires_at"}};
const std::vector<Column> kSnapshotColumns = {{"ID", "id"},
                                              {"NAME", "name"},
                                              {"SOURCE BRANCH", "source_branch_id"},
                                              {"CREATED", "created_at"},
                                              {"EXPIRES", "expires_at"}};
const std::vector<Column> kOperationColumns = {{"ID", "id"},
                                               {"ACTION", "action"},
                                               {"STATUS", "status"},
                                               {"BRANCH", "branch_id"},
                                               {"UPDATED", "updated_at"},
                                               {"ERROR", "error"}};
const std::vector<Column> kEndpointColumns = {{"ID", "id"},
                                              {"BRANCH", "branch_id"},
                                              {"TYPE", "type"},
                                              {"STATE", "current_state"},
                                              {"HOST", "host"}};

std::string iso_in(int64_t seconds) { return format_time(std::time(nullptr) + seconds); }

// After waiting, the branch as it is now (its state, and the name a finalized restore gave it);
// without waiting, as the reply had it.
Result<json::value> current_branch(Session& ss, const json::value& reply) {
  const json::value& b = reply.at("branch");
  if (!ss.waits()) return b;
  ARGON_ASSIGN_OR_RETURN(auto project, ss.project_id());
  ARGON_ASSIGN_OR_RETURN(
      auto r, ss.api().get(fmt::format("/projects/{}/branches/{}", project, field(b, "id"))));
  return r.at("branch");
}

// POST that answers with a branch and operations: waits (unless --no-wait) and prints the branch.
Status post_and_show_branch(Session& ss, const std::string& path, const json::value& body,
                            const std::string& what) {
  ARGON_ASSIGN_OR_RETURN(auto r, ss.api().call("POST", path, body));
  ARGON_RETURN_IF_ERROR(ss.settle(r, what));
  ARGON_ASSIGN_OR_RETURN(auto now, current_branch(ss, r));
  print(ss.format(), kBranchColumns, now);
  return {};
}

}  // namespace

// Option storage lives here, so the callbacks CLI11 runs during parsing can fill it.
struct Commands::State {
  GlobalOptions globals;
  std::function<Status(Session&)> action;
  bool needs_session = true;
  std::function<Status()> plain_action;  // commands without a session (set-context)
  // Arguments and flags of the chosen command.
  std::string ref, ref2, name, parent, expires_in, expires_at,
      role = "neondb_owner", database = "neondb", to, to_time, to_lsn;
  bool flag = false, never = false, no_compute = false, pooled = false;
  int pg_version = 15;
};

Commands::~Commands() = default;

Commands::Commands(CLI::App& app) : s_(std::make_unique<State>()) {
  State* s = s_.get();  // owned by this object; the callbacks it registers never outlive it
  app.require_subcommand(1);
  app.fallthrough();  // global options may also come after the command, as with neonctl
  app.add_option(
      "--api-host", s->globals.api_host,
      fmt::format("API base URL (env ARGON_API_HOST, NEON_API_HOST; default {})", kDefaultApiHost));
  app.add_option("--api-key", s->globals.api_key, "API key (env ARGON_API_KEY, NEON_API_KEY)");
  app.add_option("--project-id", s->globals.project_id,
                 "project to act on (default: argon set-context)");
  app.add_option("-o,--output", s->globals.output, "table | json")
      ->check(CLI::IsMember({"table", "json"}));
  app.add_flag("--no-wait", s->globals.no_wait,
               "return once the API accepted the request, without waiting");

  auto on = [s](CLI::App* cmd, std::function<Status(Session&)> fn) {
    cmd->callback([s, fn] { s->action = fn; });
  };

  // set-context
  auto* ctx = app.add_subcommand("set-context", "remember the project later commands act on");
  ctx->add_option("--project-id", s->ref, "project id")->required();
  ctx->callback([s] {
    s->needs_session = false;
    s->plain_action = [s]() -> Status {
      ARGON_RETURN_IF_ERROR(save_context(s->ref));
      say(fmt::format("project {} is the context ({})", s->ref, context_path().string()));
      return {};
    };
  });

  // projects
  auto* projects = app.add_subcommand("projects", "list, show, create and delete projects");
  projects->require_subcommand(1);
  on(projects->add_subcommand("list", "list projects"), [s](Session& ss) -> Status {
    ARGON_ASSIGN_OR_RETURN(auto r, ss.api().get("/projects"));
    print(ss.format(), kProjectColumns, r.at("projects"));
    return {};
  });
  auto* pget = projects->add_subcommand("get", "show a project (default: the context's)");
  pget->add_option("id", s->ref, "project id");
  on(pget, [s](Session& ss) -> Status {
    std::string id = s->ref;
    if (id.empty()) {
      ARGON_ASSIGN_OR_RETURN(id, ss.project_id());
    }
    ARGON_ASSIGN_OR_RETURN(auto r, ss.api().get("/projects/" + id));
    print(ss.format(), kProjectColumns, r.at("project"));
    return {};
  });
  auto* pcreate =
      projects->add_subcommand("create", "create a project with its default branch and compute");
  pcreate->add_option("--name", s->name, "project name")->required();
  pcreate->add_option("--pg-version", s->pg_version, "PostgreSQL major version");
  on(pcreate, [s](Session& ss) -> Status {
    json::object body{{"project", {{"name", s->name}, {"pg_version", s->pg_version}}}};
    ARGON_ASSIGN_OR_RETURN(auto r, ss.api().call("POST", "/projects", json::value(body)));
    const std::string id = field(r.at("project"), "id");
    ARGON_RETURN_IF_ERROR(ss.settle(r, "creating project " + id, id));
    print(ss.format(), kProjectColumns, r.at("project"));
    return {};
  });
  auto* pdelete = projects->add_subcommand("delete", "delete a project and everything in it");
  pdelete->add_option("id", s->ref, "project id")->required();
  on(pdelete, [s](Session& ss) -> Status {
    ARGON_ASSIGN_OR_RETURN(auto r, ss.api().call("DELETE", "/projects/" + s->ref));
    say(fmt::format("project {} deleted", s->ref));
    (void)r;
    return {};
  });

  // branches
  auto* branches =
      app.add_subcommand("branches", "list, create and change branches (by id or name)");
  branches->require_subcommand(1);
  on(branches->add_subcommand("list", "list branches"), [](Session& ss) -> Status {
    ARGON_ASSIGN_OR_RETURN(auto project, ss.project_id());
    ARGON_ASSIGN_OR_RETURN(auto r, ss.api().get(fmt::format("/projects/{}/branches", project)));
    print(ss.format(), kBranchColumns, r.at("branches"));
    return {};
  });
  auto* bget = branches->add_subcommand("get", "show a branch");
  bget->add_option("branch", s->ref, "branch id or name")->required();
  on(bget, [s](Session& ss) -> Status {
    ARGON_ASSIGN_OR_RETURN(auto b, ss.find_branch(s->ref));
    print(ss.format(), kBranchColumns, b);
    return {};
  });
  auto* bcreate =
      branches->add_subcommand("create", "create a child branch with a read-write compute");
  bcreate->add_option("--name", s->name, "branch name")->required();
  bcreate->add_option("--parent", s->parent,
                      "parent branch id or name (default: the default branch)");
  bcreate->add_option("--expires-in", s->expires_in,
                      "delete it after this long: 90s, 30m, 24h, 7d");
  bcreate->add_flag("--no-compute", s->no_compute, "create no compute endpoint");
  on(bcreate, [s](Session& ss) -> Status {
    ARGON_ASSIGN_OR_RETURN(auto project, ss.project_id());
    json::object branch{{"name", s->name}};
    if (!s->parent.empty()) {
      ARGON_ASSIGN_OR_RETURN(auto parent, ss.find_branch(s->parent));
      branch["parent_id"] = field(parent, "id");
    }
    if (!s->expires_in.empty()) {
      ARGON_ASSIGN_OR_RETURN(auto seconds, parse_duration(s->expires_in));
      branch["expires_at"] = iso_in(seconds);
    }
    json::object body{{"branch", branch}};
    if (!s->no_compute) body["endpoints"] = json::array{json::object{{"type", "read_write"}}};
    return post_and_show_branch(ss, fmt::format("/projects/{}/branches", project),
                                json::value(body), "creating branch " + s->name);
  });
  // PATCH /branches/{id} with one field, after resolving the reference.
  auto patch_branch = [](Session& ss, const std::string& ref, json::object fields) -> Status {
    ARGON_ASSIGN_OR_RETURN(auto project, ss.project_id());
    ARGON_ASSIGN_OR_RETURN(auto b, ss.find_branch(ref));
    ARGON_ASSIGN_OR_RETURN(
        auto r,
        ss.api().call("PATCH", fmt::format("/projects/{}/branches/{}", project, field(b, "id")),
                      json::value(json::object{{"branch", std::move(fields)}})));
    ARGON_RETURN_IF_ERROR(ss.settle(r, "updating branch " + ref));
    print(ss.format(), kBranchColumns, r.at("branch"));
    return {};
  };
  auto* brename = branches->add_subcommand("rename", "rename a branch");
  brename->add_option("branch", s->ref, "branch id or name")->required();
  brename->add_option("new-name", s->ref2, "its new name")->required();
  on(brename, [s, patch_branch](Session& ss) {
    return patch_branch(ss, s->ref, {{"name", s->ref2}});
  });
  auto* bprotect =
      branches->add_subcommand("protect", "protect a branch from deletion (--off lifts it)");
  bprotect->add_option("branch", s->ref, "branch id or name")->required();
  bprotect->add_flag("--off", s->flag, "remove the protection");
  on(bprotect, [s, patch_branch](Session& ss) {
    return patch_branch(ss, s->ref, {{"protected", !s->flag}});
  });
  auto* bexpiry = branches->add_subcommand("set-expiry", "delete a branch automatically at a time");
  bexpiry->add_option("branch", s->ref, "branch id or name")->required();
  auto* in = bexpiry->add_option("--in", s->expires_in, "after this long: 90s, 30m, 24h, 7d");
  auto* at = bexpiry->add_option("--at", s->expires_at, "at this RFC 3339 time");
  auto* never = bexpiry->add_flag("--never", s->never, "never: clear the expiry");
  in->excludes(at)->excludes(never);
  at->excludes(never);
  on(bexpiry, [s, patch_branch](Session& ss) -> Status {
    json::value when = nullptr;
    if (!s->expires_in.empty()) {
      ARGON_ASSIGN_OR_RETURN(auto seconds, parse_duration(s->expires_in));
      when = iso_in(seconds);
    } else if (!s->expires_at.empty()) {
      if (!parse_time(s->expires_at))
        return fail(ErrorCode::kBadRequest, "--at: must be an RFC 3339 time");
      when = s->expires_at;
    } else if (!s->never) {
      return fail(ErrorCode::kBadRequest, "set-expiry: give --in, --at or --never");
    }
    return patch_branch(ss, s->ref, {{"expires_at", when}});
  });
  auto* bdefault = branches->add_subcommand("set-default", "make a branch the project's default");
  bdefault->add_option("branch", s->ref, "branch id or name")->required();
  on(bdefault, [s](Session& ss) -> Status {
    ARGON_ASSIGN_OR_RETURN(auto project, ss.project_id());
    ARGON_ASSIGN_OR_RETURN(auto b, ss.find_branch(s->ref));
    ARGON_ASSIGN_OR_RETURN(
        auto r, ss.api().call("POST", fmt::format("/projects/{}/branches/{}/set_as_default",
                                                  project, field(b, "id"))));
    print(ss.format(), kBranchColumns, r.at("branch"));
    return {};
  });
  auto* breset = branches->add_subcommand(
      "reset-from-parent",
      "replace a branch's data with its parent's current state (same id and connection string)");
  breset->add_option("branch", s->ref, "branch id or name")->required();
  breset->add_option("--preserve-under-name", s->name,
                     "keep the current state as a branch of this name");
  on(breset, [s](Session& ss) -> Status {
    ARGON_ASSIGN_OR_RETURN(auto project, ss.project_id());
    ARGON_ASSIGN_OR_RETURN(auto b, ss.find_branch(s->ref));
    if (field(b, "parent_id") == "-") {
      return fail(ErrorCode::kBadRequest,
                  fmt::format("branch {} is a root branch: it has no parent to reset from",
                              field(b, "name")));
    }
    json::object body{{"source_branch_id", field(b, "parent_id")}};
    if (!s->name.empty()) body["preserve_under_name"] = s->name;
    return post_and_show_branch(
        ss, fmt::format("/projects/{}/branches/{}/restore", project, field(b, "id")),
        json::value(body), "resetting " + field(b, "name"));
  });
  auto* brestore = branches->add_subcommand(
      "restore",
      "put a branch back to a past point of its own history, or of another branch's, in place "
      "(same id and connection string)");
  brestore->add_option("branch", s->ref, "branch id or name")->required();
  auto* to_time = brestore->add_option("--to-time", s->to_time,
                                       "the point: an RFC 3339 time (every commit up to it)");
  auto* to_lsn = brestore->add_option("--to-lsn", s->to_lsn,
                                      "the point: an LSN (every record that starts before it)");
  to_time->excludes(to_lsn);
  brestore->add_option("--source", s->ref2,
                       "the branch whose history it comes from (default: "
                       "the branch itself)");
  brestore->add_option("--preserve-under-name", s->name,
                       "keep the current state as a branch of this name (for its own past, "
                       "default '<branch> (before <time now>)')");
  on(brestore, [s](Session& ss) -> Status {
    if (s->to_time.empty() && s->to_lsn.empty())
      return fail(ErrorCode::kBadRequest, "--to-time or --to-lsn: required");
    ARGON_ASSIGN_OR_RETURN(auto project, ss.project_id());
    ARGON_ASSIGN_OR_RETURN(auto b, ss.find_branch(s->ref));
    json::value source = b;
    if (!s->ref2.empty()) {
      ARGON_ASSIGN_OR_RETURN(source, ss.find_branch(s->ref2));
    }
    json::object body{{"source_branch_id", field(source, "id")}};
    if (!s->to_time.empty()) body["source_timestamp"] = s->to_time;
    if (!s->to_lsn.empty()) body["source_lsn"] = s->to_lsn;
    if (!s->name.empty()) {
      body["preserve_under_name"] = s->name;
    } else if (field(source, "id") == field(b, "id")) {
      body["preserve_under_name"] =
          fmt::format("{} (before {})", field(b, "name"), format_time(std::time(nullptr)));
    }
    return post_and_show_branch(
        ss, fmt::format("/projects/{}/branches/{}/restore", project, field(b, "id")),
        json::value(body), "restoring " + field(b, "name"));
  });
  auto* bdelete = branches->add_subcommand("delete", "delete a branch and its computes");
  bdelete->add_option("branch", s->ref, "branch id or name")->required();
  on(bdelete, [s](Session& ss) -> Status {
    ARGON_ASSIGN_OR_RETURN(auto project, ss.project_id());
    ARGON_ASSIGN_OR_RETURN(auto b, ss.find_branch(s->ref));
    ARGON_ASSIGN_OR_RETURN(auto r, ss.api().call("DELETE", fmt::format("/projects/{}/branches/{}",
                                                                       project, field(b, "id"))));
    ARGON_RETURN_IF_ERROR(ss.settle(r, "deleting branch " + s->ref));
    say(fmt::format("branch {} ({}) deleted", field(b, "name"), field(b, "id")));
    return {};
  });

  // snapshots
  auto* snapshots =
      app.add_subcommand("snapshots", "take, list, restore and delete snapshots (by id or name)");
  snapshots->require_subcommand(1);
  on(snapshots->add_subcommand("list", "list snapshots"), [](Session& ss) -> Status {
    ARGON_ASSIGN_OR_RETURN(auto project, ss.project_id());
    ARGON_ASSIGN_OR_RETURN(auto r, ss.api().get(fmt::format("/projects/{}/snapshots", project)));
    print(ss.format(), kSnapshotColumns, r.at("snapshots"));
    return {};
  });
  auto* screate = snapshots->add_subcommand("create", "snapshot a branch's current state");
  screate->add_option("branch", s->ref, "branch id or name")->required();
  screate->add_option("--name", s->name, "snapshot name");
  screate->add_option("--expires-in", s->expires_in,
                      "delete it after this long: 90s, 30m, 24h, 7d");
  on(screate, [s](Session& ss) -> Status {
    ARGON_ASSIGN_OR_RETURN(auto project, ss.project_id());
    ARGON_ASSIGN_OR_RETURN(auto b, ss.find_branch(s->ref));
    boost::urls::url u(fmt::format("/projects/{}/branches/{}/snapshot", project, field(b, "id")));
    if (!s->name.empty()) u.params().append({"name", s->name});
    if (!s->expires_in.empty()) {
      ARGON_ASSIGN_OR_RETURN(auto seconds, parse_duration(s->expires_in));
      u.params().append({"expires_at", iso_in(seconds)});
    }
    ARGON_ASSIGN_OR_RETURN(auto r, ss.api().call("POST", std::string(u.buffer())));
    ARGON_RETURN_IF_ERROR(ss.settle(r, "snapshotting " + field(b, "name")));
    print(ss.format(), kSnapshotColumns, r.at("snapshot"));
    return {};
  });
  auto* srename = snapshots->add_subcommand("rename", "rename a snapshot");
  srename->add_option("snapshot", s->ref, "snapshot id or name")->required();
  srename->add_option("new-name", s->ref2, "its new name")->required();
  on(srename, [s](Session& ss) -> Status {
    ARGON_ASSIGN_OR_RETURN(auto project, ss.project_id());
    ARGON_ASSIGN_OR_RETURN(auto snap, ss.find_snapshot(s->ref));
    ARGON_ASSIGN_OR_RETURN(
        auto r,
        ss.api().call("PATCH", fmt::format("/projects/{}/snapshots/{}", project, field(snap, "id")),
                      json::value(json::object{{"snapshot", {{"name", s->ref2}}}})));
    print(ss.format(), kSnapshotColumns, r.at("snapshot"));
    return {};
  });
  auto* sdelete =
      snapshots->add_subcommand("delete", "delete a snapshot (branches restored from it stay)");
  sdelete->add_option("snapshot", s->ref, "snapshot id or name")->required();
  on(sdelete, [s](Session& ss) -> Status {
    ARGON_ASSIGN_OR_RETURN(auto project, ss.project_id());
    ARGON_ASSIGN_OR_RETURN(auto snap, ss.find_snapshot(s->ref));
    ARGON_ASSIGN_OR_RETURN(auto r,
                           ss.api().call("DELETE", fmt::format("/projects/{}/snapshots/{}", project,
                                                               field(snap, "id"))));
    ARGON_RETURN_IF_ERROR(ss.settle(r, "deleting snapshot " + s->ref));
    say(fmt::format("snapshot {} ({}) deleted", field(snap, "name"), field(snap, "id")));
    return {};
  });
  auto* srestore = snapshots->add_subcommand(
      "restore",
      "restore a snapshot in place onto a branch (--to), or as a new branch (the default)");
  srestore->add_option("snapshot", s->ref, "snapshot id or name")->required();
  srestore->add_option("--to", s->to,
                       "replace this branch (id or name) in place: same connection string; it is "
                       "kept as '<name> (old)'");
  srestore->add_option("--name", s->name, "name of the new branch (without --to)");
  on(srestore, [s](Session& ss) -> Status {
    ARGON_ASSIGN_OR_RETURN(auto project, ss.project_id());
    ARGON_ASSIGN_OR_RETURN(auto snap, ss.find_snapshot(s->ref));
    json::object body{{"finalize_restore", !s->to.empty()}};
    if (!s->to.empty()) {
      // Always by the target's current id: a snapshot's own source may be '<name> (old)' by now.
      ARGON_ASSIGN_OR_RETURN(auto target, ss.find_branch(s->to));
      body["target_branch_id"] = field(target, "id");
    } else if (!s->name.empty()) {
      body["name"] = s->name;
    }
    return post_and_show_branch(
        ss, fmt::format("/projects/{}/snapshots/{}/restore", project, field(snap, "id")),
        json::value(body), "restoring " + field(snap, "name"));
  });

  // endpoints
  auto* endpoints = app.add_subcommand("endpoints", "list, start and suspend computes");
  endpoints->require_subcommand(1);
  on(endpoints->add_subcommand("list", "list endpoints"), [](Session& ss) -> Status {
    ARGON_ASSIGN_OR_RETURN(auto project, ss.project_id());
    ARGON_ASSIGN_OR_RETURN(auto r, ss.api().get(fmt::format("/projects/{}/endpoints", project)));
    print(ss.format(), kEndpointColumns, r.at("endpoints"));
    return {};
  });
  for (const char* verb : {"start", "suspend", "restart"}) {
    auto* cmd = endpoints->add_subcommand(verb, fmt::format("{} an endpoint's compute", verb));
    cmd->add_option("endpoint", s->ref, "endpoint id")->required();
    on(cmd, [s, verb = std::string(verb)](Session& ss) -> Status {
      ARGON_ASSIGN_OR_RETURN(auto project, ss.project_id());
      ARGON_ASSIGN_OR_RETURN(
          auto r, ss.api().call(
                      "POST", fmt::format("/projects/{}/endpoints/{}/{}", project, s->ref, verb)));
      ARGON_RETURN_IF_ERROR(ss.settle(r, fmt::format("{} {}", verb, s->ref)));
      print(ss.format(), kEndpointColumns, r.at("endpoint"));
      return {};
    });
  }

  auto* ecreate = endpoints->add_subcommand("create", "give a branch a read-write compute");
  ecreate->add_option("--branch", s->ref, "branch id or name (default: the default branch)");
  on(ecreate, [s](Session& ss) -> Status {
    ARGON_ASSIGN_OR_RETURN(auto project, ss.project_id());
    ARGON_ASSIGN_OR_RETURN(auto b, ss.find_branch_or_default(s->ref));
    json::object body{{"endpoint", {{"branch_id", field(b, "id")}, {"type", "read_write"}}}};
    ARGON_ASSIGN_OR_RETURN(
        auto r,
        ss.api().call("POST", fmt::format("/projects/{}/endpoints", project), json::value(body)));
    ARGON_RETURN_IF_ERROR(ss.settle(r, "creating an endpoint for " + field(b, "name")));
    print(ss.format(), kEndpointColumns, r.at("endpoint"));
    return {};
  });
  auto* edelete =
      endpoints->add_subcommand("delete", "delete an endpoint (the branch's data stays)");
  edelete->add_option("endpoint", s->ref, "endpoint id")->required();
  on(edelete, [s](Session& ss) -> Status {
    ARGON_ASSIGN_OR_RETURN(auto project, ss.project_id());
    ARGON_ASSIGN_OR_RETURN(
        auto r, ss.api().call("DELETE", fmt::format("/projects/{}/endpoints/{}", project, s->ref)));
    ARGON_RETURN_IF_ERROR(ss.settle(r, "deleting endpoint " + s->ref));
    say(fmt::format("endpoint {} deleted", s->ref));
    return {};
  });

  // roles and databases of a branch (default: the default branch)
  struct Kind {
    const char* command;
    const char* collection;
    const char* one;
    std::vector<Column> columns;
  };
  for (const Kind& k :
       {Kind{"roles",
             "roles",
             "role",
             {{"NAME", "name"}, {"PROTECTED", "protected"}, {"CREATED", "created_at"}}},
        Kind{"databases",
             "databases",
             "database",
             {{"NAME", "name"}, {"OWNER", "owner_name"}, {"CREATED", "created_at"}}}}) {
    auto* group = app.add_subcommand(
        k.command, fmt::format("list, create and delete a branch's {}", k.command));
    group->require_subcommand(1);
    auto path = [s, k](Session& ss) -> Result<std::string> {
      ARGON_ASSIGN_OR_RETURN(auto project, ss.project_id());
      ARGON_ASSIGN_OR_RETURN(auto b, ss.find_branch_or_default(s->parent));
      return fmt::format("/projects/{}/branches/{}/{}", project, field(b, "id"), k.collection);
    };
    auto* list = group->add_subcommand("list", fmt::format("list {}", k.command));
    list->add_option("--branch", s->parent, "branch id or name (default: the default branch)");
    on(list, [k, path](Session& ss) -> Status {
      ARGON_ASSIGN_OR_RETURN(auto p, path(ss));
      ARGON_ASSIGN_OR_RETURN(auto r, ss.api().get(p));
      print(ss.format(), k.columns, r.at(k.collection));
      return {};
    });
    auto* create = group->add_subcommand("create", fmt::format("create a {}", k.one));
    create->add_option("name", s->name, "its name")->required();
    create->add_option("--branch", s->parent, "branch id or name (default: the default branch)");
    if (std::string_view(k.one) == "database")
      create->add_option("--owner", s->role, "owning role")->capture_default_str();
    on(create, [s, k, path](Session& ss) -> Status {
      ARGON_ASSIGN_OR_RETURN(auto p, path(ss));
      json::object obj{{"name", s->name}};
      if (std::string_view(k.one) == "database") obj["owner_name"] = s->role;
      ARGON_ASSIGN_OR_RETURN(auto r,
                             ss.api().call("POST", p, json::value(json::object{{k.one, obj}})));
      ARGON_RETURN_IF_ERROR(ss.settle(r, fmt::format("creating {} {}", k.one, s->name)));
      print(ss.format(), k.columns, r.at(k.one));
      return {};
    });
    auto* remove = group->add_subcommand("delete", fmt::format("delete a {}", k.one));
    remove->add_option("name", s->name, "its name")->required();
    remove->add_option("--branch", s->parent, "branch id or name (default: the default branch)");
    on(remove, [s, k, path](Session& ss) -> Status {
      ARGON_ASSIGN_OR_RETURN(auto p, path(ss));
      boost::urls::url u(p);
      u.segments().push_back(s->name);
      ARGON_ASSIGN_OR_RETURN(auto r, ss.api().call("DELETE", std::string(u.buffer())));
      ARGON_RETURN_IF_ERROR(ss.settle(r, fmt::format("deleting {} {}", k.one, s->name)));
      say(fmt::format("{} {} deleted", k.one, s->name));
      return {};
    });
  }

  add_workflow_commands(app,
                        [s](std::function<Status(Session&)> fn) { s->action = std::move(fn); });

  // operations
  auto* operations = app.add_subcommand("operations", "list and show operations");
  operations->require_subcommand(1);
  on(operations->add_subcommand("list", "list the project's operations, newest first"),
     [](Session& ss) -> Status {
       ARGON_ASSIGN_OR_RETURN(auto project, ss.project_id());
       ARGON_ASSIGN_OR_RETURN(auto r,
                              ss.api().get(fmt::format("/projects/{}/operations", project)));
       print(ss.format(), kOperationColumns, r.at("operations"));
       return {};
     });
  auto* oget = operations->add_subcommand("get", "show an operation");
  oget->add_option("id", s->ref, "operation id")->required();
  on(oget, [s](Session& ss) -> Status {
    ARGON_ASSIGN_OR_RETURN(auto project, ss.project_id());
    ARGON_ASSIGN_OR_RETURN(
        auto r, ss.api().get(fmt::format("/projects/{}/operations/{}", project, s->ref)));
    print(ss.format(), kOperationColumns, r.at("operation"));
    return {};
  });

  // connection-string
  auto* cs = app.add_subcommand("connection-string", "print a branch's connection string");
  cs->add_option("branch", s->ref, "branch id or name (default: the default branch)");
  cs->add_option("--role", s->role, "role")->capture_default_str();
  cs->add_option("--database", s->database, "database")->capture_default_str();
  cs->add_flag("--pooled", s->pooled, "the pooled host");
  on(cs, [s](Session& ss) -> Status {
    ARGON_ASSIGN_OR_RETURN(auto project, ss.project_id());
    boost::urls::url u(fmt::format("/projects/{}/connection_uri", project));
    if (!s->ref.empty()) {
      ARGON_ASSIGN_OR_RETURN(auto b, ss.find_branch(s->ref));
      u.params().append({"branch_id", field(b, "id")});
    }
    u.params().append({"database_name", s->database});
    u.params().append({"role_name", s->role});
    if (s->pooled) u.params().append({"pooled", "true"});
    ARGON_ASSIGN_OR_RETURN(auto r, ss.api().get(std::string(u.buffer())));
    if (ss.format() == Format::kJson) {
      print_json(r);
    } else {
      fmt::print("{}\n", field(r, "uri"));
    }
    return {};
  });
}

Status Commands::run() {
  if (!s_->needs_session) return s_->plain_action();
  if (!s_->action) return fail(ErrorCode::kBadRequest, "no command given; see --help");
  ARGON_ASSIGN_OR_RETURN(auto session, Session::open(s_->globals));
  return s_->action(session);
}

}  // namespace argon::cli
