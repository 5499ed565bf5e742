// The one-command workflows of the snapshot guides: setup-dev, preview, promote, refresh, rollback,
// checkpoint, cleanup. Each is the sequence of API calls the guides describe, with the traps
// handled: restores always name the target's current id, branch ids are looked up again after a
// restore, backups are cleaned up, and promote refuses to drop production writes silently.
#include <fmt/format.h>

#include <algorithm>
#include <boost/url/url.hpp>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>

#include "cli/commands.h"
#include "cli/workflow.h"
#include "common/clock.h"
#include "common/pg_conn.h"

namespace argon::cli {

namespace json = boost::json;

namespace {

std::string today() { return format_time(std::time(nullptr)).substr(0, 10); }
std::string iso_in(int64_t seconds) { return format_time(std::time(nullptr) + seconds); }

// The API calls the workflows are made of; each waits for its operations.
class Project {
 public:
  Project(Session& ss, std::string id) : ss_(ss), id_(std::move(id)) {}
  const std::string& id() const { return id_; }

  Result<json::value> branch(const std::string& ref) { return ss_.find_branch(ref); }
  Result<json::array> branches() {
    ARGON_ASSIGN_OR_RETURN(auto r, ss_.api().get(fmt::format("/projects/{}/branches", id_)));
    return r.at("branches").as_array();
  }
  Result<json::array> endpoints() {
    ARGON_ASSIGN_OR_RETURN(auto r, ss_.api().get(fmt::format("/projects/{}/endpoints", id_)));
    return r.at("endpoints").as_array();
  }
  Result<json::value> default_branch() {
    ARGON_ASSIGN_OR_RETURN(auto all, branches());
    for (const auto& b : all) {
      if (field(b, "default") == "yes") return b;
    }
    return fail(ErrorCode::kNotFound, fmt::format("project {} has no default branch", id_));
  }
  Result<json::array> snapshots() {
    ARGON_ASSIGN_OR_RETURN(auto r, ss_.api().get(fmt::format("/projects/{}/snapshots", id_)));
    return r.at("snapshots").as_array();
  }
  // As snapshot(), but an interrupted run's snapshot (same name and branch, taken since `since`) is
  // reused, once the operations still running have ended, instead of taking a second one.
  Result<json::value> snapshot_once(const std::string& branch_id, const std::string& name,
                                    std::optional<int64_t> expires_in, const std::string& since) {
    ARGON_ASSIGN_OR_RETURN(auto all, snapshots());
    for (const auto& s : all) {
      if (field(s, "name") == name && field(s, "source_branch_id") == branch_id &&
          field(s, "created_at") >= since) {
        ARGON_RETURN_IF_ERROR(settle_pending("snapshot " + name));
        say(fmt::format("      using snapshot {} that an interrupted run took", field(s, "id")));
        return s;
      }
    }
    return snapshot(branch_id, name, expires_in);
  }
  Result<json::value> snapshot(const std::string& branch_id, const std::string& name,
                               std::optional<int64_t> expires_in) {
    boost::urls::url u(fmt::format("/projects/{}/branches/{}/snapshot", id_, branch_id));
    u.params().append({"name", name});
    if (expires_in) u.params().append({"expires_at", iso_in(*expires_in)});
    ARGON_ASSIGN_OR_RETURN(auto r, ss_.api().call("POST", std::string(u.buffer())));
    ARGON_RETURN_IF_ERROR(wait(r, "snapshot " + name));
    return r.at("snapshot");
  }
  // Branch `b` in place to `time` of its own history; the state it had is kept as its parent.
  Status restore_to_time(const json::value& b, const std::string& time) {
    json::object body{{"source_branch_id", field(b, "id")},
                      {"source_timestamp", time},
                      {"preserve_under_name", fmt::format("{} (before {})", field(b, "name"),
                                                          format_time(std::time(nullptr)))}};
    ARGON_ASSIGN_OR_RETURN(
        auto r,
        ss_.api().call("POST", fmt::format("/projects/{}/branches/{}/restore", id_, field(b, "id")),
                       json::value(body)));
    return wait(r, "restore to " + time);
  }
  // In place onto `target_id` (finalize), or as a new branch named `name`.
  Result<json::value> restore(const std::string& snapshot_id, const std::string& target_id,
                              const std::string& name = "") {
    json::object body{{"finalize_restore", !target_id.empty()}};
    if (!target_id.empty()) body["target_branch_id"] = target_id;
    if (!name.empty()) body["name"] = name;
    ARGON_ASSIGN_OR_RETURN(
        auto r,
        ss_.api().call("POST", fmt::format("/projects/{}/snapshots/{}/restore", id_, snapshot_id),
                       json::value(body)));
    ARGON_RETURN_IF_ERROR(wait(r, "restore"));
    return r.at("branch");
  }
  Status delete_branch(const std::string& id) {
    ARGON_ASSIGN_OR_RETURN(
        auto r, ss_.api().call("DELETE", fmt::format("/projects/{}/branches/{}", id_, id)));
    return wait(r, "delete branch " + id);
  }
  Status delete_snapshot(const std::string& id) {
    ARGON_ASSIGN_OR_RETURN(
        auto r, ss_.api().call("DELETE", fmt::format("/projects/{}/snapshots/{}", id_, id)));
    return wait(r, "delete snapshot " + id);
  }
  Result<json::value> patch_branch(const std::string& id, json::object fields) {
    ARGON_ASSIGN_OR_RETURN(
        auto r, ss_.api().call("PATCH", fmt::format("/projects/{}/branches/{}", id_, id),
                               json::value(json::object{{"branch", std::move(fields)}})));
    ARGON_RETURN_IF_ERROR(wait(r, "update branch " + id));
    return r.at("branch");
  }
  Status add_endpoint(const std::string& branch_id) {
    json::object body{{"endpoint", {{"branch_id", branch_id}, {"type", "read_write"}}}};
    ARGON_ASSIGN_OR_RETURN(
        auto r,
        ss_.api().call("POST", fmt::format("/projects/{}/endpoints", id_), json::value(body)));
    return wait(r, "create endpoint");
  }
  Result<std::string> connection_uri(const std::string& branch_id) {
    boost::urls::url u(fmt::format("/projects/{}/connection_uri", id_));
    u.params().append({"branch_id", branch_id});
    u.params().append({"database_name", "neondb"});
    u.params().append({"role_name", "neondb_owner"});
    ARGON_ASSIGN_OR_RETURN(auto r, ss_.api().get(std::string(u.buffer())));
    return field(r, "uri");
  }
  // The branch a finalized restore of `snapshot_id` made in place of `replaced_id`, if one did: an
  // interrupted step may have been accepted without the CLI hearing back, and may still be
  // running, so the project's operations are waited for first.
  Result<std::optional<json::value>> restored_from(const std::string& snapshot_id,
                                                   const std::string& replaced_id) {
    ARGON_RETURN_IF_ERROR(settle_pending("operations an interrupted run started"));
    ARGON_ASSIGN_OR_RETURN(auto all, branches());
    for (const auto& b : all) {
      if (field(b, "restored_from") == snapshot_id && field(b, "restored_as") == replaced_id)
        return b;
    }
    return std::nullopt;
  }

 private:
  Status settle_pending(const std::string& what) {
    ARGON_ASSIGN_OR_RETURN(auto ops, ss_.api().get(fmt::format("/projects/{}/operations", id_)));
    json::array pending;
    for (const auto& o : ops.at("operations").as_array()) {
      if (field(o, "status") == "running" || field(o, "status") == "scheduling")
        pending.push_back(o);
    }
    return wait(json::value(json::object{{"operations", pending}}), what);
  }
  Status wait(const json::value& reply, const std::string& what) {
    TerminalProgress progress(what);
    return ss_.api().wait(id_, reply.at("operations"), progress);
  }
  Session& ss_;
  std::string id_;
};

Result<PgRows> sql(const std::string& uri, const std::string& statement) {
  ARGON_ASSIGN_OR_RETURN(auto c, PgConn::connect(uri));
  return c.exec(statement);
}

// Where prod's transaction ids stand: the next one to be given out and those still running. Any of
// them that commits later is a write the rollback snapshot does not hold.
Result<json::value> write_position(const std::string& uri) {
  ARGON_ASSIGN_OR_RETURN(
      auto r,
      sql(uri,
          "WITH c AS (SELECT pg_current_snapshot() AS s) SELECT pg_snapshot_xmax(s)::text, "
          "coalesce((SELECT string_agg(x::text, ',') FROM pg_snapshot_xip(s) x), '') FROM c"));
  return json::value(json::object{{"xmax", r.value(0, 0)}, {"xip", r.value(0, 1)}});
}

// Transactions that committed on prod since `pos`, with the tables that changed (approximately,
// from the statistics counters), as a sentence; empty when none did.
Result<std::string> writes_since(const std::string& uri, const json::value& pos) {
  const std::string xmax = field(pos, "xmax"), xip = field(pos, "xip");
  const std::string running =
      xip.empty() || xip == "-" ? "" : fmt::format(" UNION SELECT unnest('{{{}}}'::text[])", xip);
  ARGON_ASSIGN_OR_RETURN(
      auto r,
      sql(uri,
          fmt::format("SELECT count(*) FROM (SELECT x::text AS x FROM generate_series({}::bigint, "
                      "pg_snapshot_xmax(pg_current_snapshot())::text::bigint - 1) x{}) t "
                      "WHERE pg_xact_status(t.x::xid8) = 'committed'",
                      xmax, running)));
  const std::string n = r.value();
  if (n == "0") return std::string();
  return fmt::format(
      "{} transaction(s) committed on the target after its rollback snapshot was taken; the "
      "promotion "
      "replaces them with the candidate's data (they stay in the '(old)' backup until it is "
      "deleted)",
      n);
}

Result<int64_t> duration_or(const std::string& text, int64_t fallback) {
  if (text.empty()) return fallback;
  return parse_duration(text);
}

constexpr const char* kCheckpointPrefix = "checkpoint/";

struct Args {
  std::string from, to, name, verify_sql, retention, snapshot, branch, expires_in = "24h", to_time;
  bool keep_backup = false, accept_write_loss = false, protect = false, dry_run = false,
       restart = false;
};

// Deletes the backup a finalized restore left ('<name> (old)'), unless it has children or an
// endpoint someone added; says what it did.
Status drop_backup(Project& p, const std::string& old_id) {
  ARGON_ASSIGN_OR_RETURN(auto all, p.branches());
  for (const auto& b : all) {
    if (field(b, "parent_id") == old_id) {
      say(fmt::format("      kept backup {}: branch {} is its child", old_id, field(b, "name")));
      return {};
    }
  }
  return p.delete_branch(old_id);
}

}  // namespace

void add_workflow_commands(CLI::App& app,
                           const std::function<void(std::function<Status(Session&)>)>& select) {
  auto a = std::make_shared<Args>();

  // promote --from dev --to prod
  auto* promote = app.add_subcommand(
      "promote", "replace a branch (prod) with another's current state (dev), in place");
  promote->add_option("--from", a->from, "the candidate branch (id or name)")->required();
  promote
      ->add_option("--to", a->to, "the branch to replace (id or name); its connection string stays")
      ->required();
  promote->add_option("--verify-sql", a->verify_sql,
                      "SQL file run through the target's connection string afterwards");
  promote->add_option("--retention", a->retention,
                      "how long the rollback snapshot is kept (default 30d)");
  promote->add_flag("--keep-backup", a->keep_backup, "keep the '<to> (old)' backup branch");
  promote->add_flag("--restart", a->restart,
                    "forget an unfinished earlier run of this command and start over");
  promote->add_flag("--accept-prod-write-loss", a->accept_write_loss,
                    "promote even if the target committed writes after its rollback snapshot");
  promote->callback([a, select] {
    select([a](Session& ss) -> Status {
      ARGON_ASSIGN_OR_RETURN(auto pid, ss.project_id());
      Project p(ss, pid);
      Workflow wf(ss, pid, fmt::format("promote-{}-to-{}", a->from, a->to),
                  fmt::format("argon promote --from '{}' --to '{}'{}", a->from, a->to,
                              a->accept_write_loss ? " --accept-prod-write-loss" : ""),
                  7, a->restart);
      ARGON_ASSIGN_OR_RETURN(auto retention, duration_or(a->retention, 30 * 86400));
      ARGON_ASSIGN_OR_RETURN(auto target, wf.step("target", fmt::format("look up {}", a->to),
                                                  [&] { return p.branch(a->to); }));
      const std::string target_name = field(target, "name");
      // Not kept in the journal: it holds the password.
      auto uri = p.connection_uri(field(target, "id"));
      if (!uri && uri.error().code == ErrorCode::kNotFound && wf.resumed()) {
        return fail(ErrorCode::kConflict,
                    fmt::format("an unfinished earlier run of this command began when {} was "
                                "branch {}, which no longer "
                                "exists (another restore replaced it); start over with --restart",
                                a->to, field(target, "id")));
      }
      if (!uri) return std::unexpected(uri.error());
      const std::string target_uri = *uri;
      ARGON_ASSIGN_OR_RETURN(auto pos, wf.step("position", "record where the target's writes stand",
                                               [&] { return write_position(target_uri); }));
      ARGON_ASSIGN_OR_RETURN(
          auto rollback,
          wf.step("rollback", fmt::format("snapshot {} (the rollback point)", target_name), [&] {
            return p.snapshot_once(field(target, "id"),
                                   fmt::format("{}_snap_{}_pre-promotion", target_name, today()),
                                   retention, wf.started_at());
          }));
      wf.set_undo(fmt::format("argon snapshots delete {}  (nothing else has changed yet)",
                              field(rollback, "id")));
      ARGON_ASSIGN_OR_RETURN(
          auto candidate,
          wf.step("candidate", fmt::format("snapshot {} (the candidate)", a->from),
                  [&]() -> Result<json::value> {
                    ARGON_ASSIGN_OR_RETURN(auto from, p.branch(a->from));
                    return p.snapshot_once(
                        field(from, "id"),
                        fmt::format("{}_snap_{}_candidate", field(from, "name"), today()), 86400,
                        wf.started_at());
                  }));
      ARGON_ASSIGN_OR_RETURN(
          auto restored,
          wf.step("restore", fmt::format("restore the candidate onto {}", target_name),
                  [&]() -> Result<json::value> {
                    ARGON_ASSIGN_OR_RETURN(auto now, p.branch(a->to));
                    // Done already if an interrupted run got this far: the restore is in the API's
                    // state.
                    ARGON_ASSIGN_OR_RETURN(
                        auto earlier, p.restored_from(field(candidate, "id"), field(target, "id")));
                    if (earlier)
                      return json::value(json::object{{"id", field(*earlier, "id")},
                                                      {"replaced", field(target, "id")}});
                    if (field(now, "id") != field(target, "id")) {
                      return fail(
                          ErrorCode::kConflict,
                          fmt::format(
                              "branch {} changed id since this run began (another restore?)",
                              a->to));
                    }
                    ARGON_ASSIGN_OR_RETURN(auto lost, writes_since(target_uri, pos));
                    if (!lost.empty() && !a->accept_write_loss) {
                      return fail(
                          ErrorCode::kConflict,
                          lost +
                              "; pass --accept-prod-write-loss to promote anyway, or snapshot and "
                              "restore those writes into the candidate first");
                    }
                    if (!lost.empty()) say("      " + lost + " (accepted)");
                    ARGON_ASSIGN_OR_RETURN(auto b,
                                           p.restore(field(candidate, "id"), field(target, "id")));
                    return json::value(
                        json::object{{"id", field(b, "id")}, {"replaced", field(target, "id")}});
                  }));
      wf.set_undo(fmt::format("argon rollback '{}' --to {}", target_name, field(rollback, "id")));
      ARGON_ASSIGN_OR_RETURN(
          auto verified,
          wf.step("verify", "verify through the unchanged connection string",
                  [&]() -> Result<json::value> {
                    if (a->verify_sql.empty()) return json::value("skipped");
                    std::ifstream in(a->verify_sql);
                    if (!in)
                      return fail(ErrorCode::kBadRequest,
                                  fmt::format("--verify-sql: cannot read {}", a->verify_sql));
                    std::stringstream text;
                    text << in.rdbuf();
                    ARGON_ASSIGN_OR_RETURN(auto rows, sql(target_uri, text.str()));
                    (void)rows;
                    return json::value("ok");
                  }));
      (void)verified;
      ARGON_ASSIGN_OR_RETURN(
          auto cleaned,
          wf.step("cleanup", "delete the backup branch and the candidate snapshot",
                  [&]() -> Result<json::value> {
                    if (!a->keep_backup)
                      ARGON_RETURN_IF_ERROR(drop_backup(p, field(restored, "replaced")));
                    ARGON_RETURN_IF_ERROR(p.delete_snapshot(field(candidate, "id")));
                    return json::value("ok");
                  }));
      (void)cleaned;
      wf.finish();
      say(
          fmt::format("promoted {} onto {}; its connection string is unchanged. To roll back: "
                      "argon rollback '{}'",
                      a->from, target_name, target_name));
      return {};
    });
  });

  // rollback prod [--to SNAPSHOT]
  auto* rollback =
      app.add_subcommand("rollback",
                         "restore a branch in place to a snapshot (default: its newest "
                         "pre-promotion snapshot)");
  rollback->add_option("branch", a->branch, "the branch to roll back (id or name)")->required();
  rollback->add_option("--to", a->snapshot, "snapshot id or name");
  rollback->add_flag("--keep-backup", a->keep_backup, "keep the '<branch> (old)' backup branch");
  rollback->callback([a, select] {
    select([a](Session& ss) -> Status {
      ARGON_ASSIGN_OR_RETURN(auto pid, ss.project_id());
      Project p(ss, pid);
      ARGON_ASSIGN_OR_RETURN(auto current, p.branch(a->branch));
      const std::string name = field(current, "name");
      json::value snap;
      if (!a->snapshot.empty()) {
        ARGON_ASSIGN_OR_RETURN(snap, ss.find_snapshot(a->snapshot));
      } else {
        ARGON_ASSIGN_OR_RETURN(auto all, p.snapshots());
        const std::string prefix = name + "_snap_";
        for (const auto& s : all) {
          const std::string n = field(s, "name");
          if (n.starts_with(prefix) && n.ends_with("_pre-promotion") &&
              (snap.is_null() || field(s, "created_at") >= field(snap, "created_at"))) {
            snap = s;
          }
        }
        if (snap.is_null()) {
          return fail(ErrorCode::kNotFound,
                      fmt::format("no pre-promotion snapshot of {} ({}*_pre-promotion); pass --to",
                                  name, prefix));
        }
      }
      Workflow wf(ss, pid, fmt::format("rollback-{}-{}", name, field(snap, "id")),
                  fmt::format("argon rollback '{}' --to {}", name, field(snap, "id")), 3, false);
      // By id from the journal on a re-run: once restored, the name belongs to the new branch.
      ARGON_ASSIGN_OR_RETURN(
          auto target, wf.step("target", "look up " + name, [&] { return json::value(current); }));
      ARGON_ASSIGN_OR_RETURN(
          auto restored,
          wf.step("restore", fmt::format("restore {} onto {}", field(snap, "name"), name),
                  [&]() -> Result<json::value> {
                    ARGON_ASSIGN_OR_RETURN(auto earlier,
                                           p.restored_from(field(snap, "id"), field(target, "id")));
                    if (earlier) return json::value(field(target, "id"));
                    ARGON_ASSIGN_OR_RETURN(auto b,
                                           p.restore(field(snap, "id"), field(target, "id")));
                    (void)b;
                    return json::value(field(target, "id"));
                  }));
      ARGON_ASSIGN_OR_RETURN(
          auto cleaned,
          wf.step("cleanup", "delete the backup branch", [&]() -> Result<json::value> {
            if (!a->keep_backup)
              ARGON_RETURN_IF_ERROR(drop_backup(p, std::string(restored.as_string())));
            return json::value("ok");
          }));
      (void)cleaned;
      wf.finish();
      say(fmt::format("{} is back at {}; its connection string is unchanged", name,
                      field(snap, "name")));
      return {};
    });
  });

  // refresh dev --from prod
  auto* refresh = app.add_subcommand(
      "refresh", "replace a branch (dev) with another's current state (prod), in place");
  refresh->add_option("branch", a->branch, "the branch to refresh (id or name)")->required();
  refresh->add_option("--from", a->from, "where its data comes from (id or name)")->required();
  refresh->add_flag("--keep-backup", a->keep_backup, "keep the '<branch> (old)' backup branch");
  refresh->callback([a, select] {
    select([a](Session& ss) -> Status {
      ARGON_ASSIGN_OR_RETURN(auto pid, ss.project_id());
      Project p(ss, pid);
      Workflow wf(ss, pid, fmt::format("refresh-{}-from-{}", a->branch, a->from),
                  fmt::format("argon refresh '{}' --from '{}'", a->branch, a->from), 4, false);
      ARGON_ASSIGN_OR_RETURN(auto target, wf.step("target", "look up " + a->branch,
                                                  [&] { return p.branch(a->branch); }));
      ARGON_ASSIGN_OR_RETURN(
          auto snap,
          wf.step("snapshot", fmt::format("snapshot {}", a->from), [&]() -> Result<json::value> {
            ARGON_ASSIGN_OR_RETURN(auto from, p.branch(a->from));
            return p.snapshot_once(field(from, "id"),
                                   fmt::format("{}_snap_{}_refresh", field(from, "name"), today()),
                                   86400, wf.started_at());
          }));
      ARGON_ASSIGN_OR_RETURN(
          auto restored, wf.step("restore", fmt::format("restore it onto {}", a->branch),
                                 [&]() -> Result<json::value> {
                                   ARGON_ASSIGN_OR_RETURN(
                                       auto earlier,
                                       p.restored_from(field(snap, "id"), field(target, "id")));
                                   if (!earlier) {
                                     ARGON_ASSIGN_OR_RETURN(
                                         auto b, p.restore(field(snap, "id"), field(target, "id")));
                                     (void)b;
                                   }
                                   return json::value(field(target, "id"));
                                 }));
      ARGON_ASSIGN_OR_RETURN(
          auto cleaned,
          wf.step("cleanup", "delete the backup branch and the snapshot",
                  [&]() -> Result<json::value> {
                    if (!a->keep_backup)
                      ARGON_RETURN_IF_ERROR(drop_backup(p, std::string(restored.as_string())));
                    ARGON_RETURN_IF_ERROR(p.delete_snapshot(field(snap, "id")));
                    return json::value("ok");
                  }));
      (void)cleaned;
      wf.finish();
      say(fmt::format("{} now has {}'s data; its connection string is unchanged", a->branch,
                      a->from));
      return {};
    });
  });

  // setup-dev --from prod --name dev [--protect-prod]
  auto* setup = app.add_subcommand(
      "setup-dev", "make a second root branch (dev) from a branch (prod), with a compute");
  setup->add_option("--from", a->from, "the branch to copy (id or name)")->required();
  setup->add_option("--name", a->name, "the new branch's name")->required();
  setup->add_flag("--protect-prod", a->protect, "also protect the --from branch");
  setup->callback([a, select] {
    select([a](Session& ss) -> Status {
      ARGON_ASSIGN_OR_RETURN(auto pid, ss.project_id());
      Project p(ss, pid);
      Workflow wf(ss, pid, fmt::format("setup-dev-{}-from-{}", a->name, a->from),
                  fmt::format("argon setup-dev --from '{}' --name '{}'{}", a->from, a->name,
                              a->protect ? " --protect-prod" : ""),
                  5, false);
      ARGON_ASSIGN_OR_RETURN(auto from, p.branch(a->from));
      ARGON_ASSIGN_OR_RETURN(
          auto baseline,
          wf.step("snapshot", fmt::format("snapshot {}", field(from, "name")),
                  [&]() -> Result<json::value> {
                    if (p.branch(a->name)) {
                      return fail(ErrorCode::kConflict,
                                  fmt::format("a branch named '{}' already exists", a->name));
                    }
                    return p.snapshot_once(
                        field(from, "id"),
                        fmt::format("{}_snap_{}_baseline", field(from, "name"), today()),
                        std::nullopt, wf.started_at());
                  }));
      ARGON_ASSIGN_OR_RETURN(
          auto dev,
          wf.step("restore", fmt::format("restore it as a new root branch '{}'", a->name),
                  [&]() -> Result<json::value> {
                    if (auto existing = p.branch(a->name);
                        existing && field(*existing, "restored_from") == field(baseline, "id")) {
                      return json::value(field(*existing, "id"));
                    }
                    ARGON_ASSIGN_OR_RETURN(auto b, p.restore(field(baseline, "id"), "", a->name));
                    return json::value(field(b, "id"));
                  }));
      const std::string dev_id(dev.as_string());
      ARGON_ASSIGN_OR_RETURN(
          auto ep, wf.step("endpoint", fmt::format("give '{}' a read-write compute", a->name),
                           [&]() -> Result<json::value> {
                             ARGON_ASSIGN_OR_RETURN(auto eps, p.endpoints());
                             for (const auto& e : eps) {
                               if (field(e, "branch_id") == dev_id)
                                 return json::value(field(e, "id"));
                             }
                             ARGON_RETURN_IF_ERROR(p.add_endpoint(dev_id));
                             return json::value("created");
                           }));
      (void)ep;
      ARGON_ASSIGN_OR_RETURN(
          auto dropped,
          wf.step("cleanup", "delete the baseline snapshot", [&]() -> Result<json::value> {
            ARGON_RETURN_IF_ERROR(p.delete_snapshot(field(baseline, "id")));
            return json::value("ok");
          }));
      (void)dropped;
      ARGON_ASSIGN_OR_RETURN(
          auto prot, wf.step("protect", fmt::format("protect {}", field(from, "name")),
                             [&]() -> Result<json::value> {
                               if (!a->protect) return json::value("skipped");
                               ARGON_ASSIGN_OR_RETURN(
                                   auto b,
                                   p.patch_branch(field(from, "id"), {{"protected", true}}));
                               (void)b;
                               return json::value("ok");
                             }));
      (void)prot;
      wf.finish();
      ARGON_ASSIGN_OR_RETURN(auto uri, p.connection_uri(dev_id));
      say(fmt::format("'{}' is ready, a root branch with {}'s data:", a->name,
                      field(from, "name")));
      fmt::print("{}\n", uri);
      return {};
    });
  });

  // preview create|list|delete
  auto* preview =
      app.add_subcommand("preview", "short-lived child branches with a compute and an expiry");
  preview->require_subcommand(1);
  auto* pcreate =
      preview->add_subcommand("create", "create a preview branch and print its connection string");
  pcreate->add_option("--from", a->from, "its parent (id or name)")->required();
  pcreate->add_option("--name", a->name, "its name (default: <from>_preview_<time>)");
  pcreate->add_option("--expires-in", a->expires_in, "delete it after this long")
      ->capture_default_str();
  pcreate->callback([a, select] {
    select([a](Session& ss) -> Status {
      ARGON_ASSIGN_OR_RETURN(auto pid, ss.project_id());
      Project p(ss, pid);
      ARGON_ASSIGN_OR_RETURN(auto from, p.branch(a->from));
      ARGON_ASSIGN_OR_RETURN(auto seconds, parse_duration(a->expires_in));
      std::string name = a->name;
      if (name.empty()) {
        std::string stamp = format_time(std::time(nullptr));
        std::erase_if(stamp, [](char c) { return c == '-' || c == ':' || c == 'Z'; });
        name = fmt::format("{}_preview_{}", field(from, "name"), stamp);
      }
      json::object body{
          {"branch",
           {{"name", name}, {"parent_id", field(from, "id")}, {"expires_at", iso_in(seconds)}}},
          {"endpoints", json::array{json::object{{"type", "read_write"}}}}};
      ARGON_ASSIGN_OR_RETURN(
          auto r,
          ss.api().call("POST", fmt::format("/projects/{}/branches", pid), json::value(body)));
      ARGON_RETURN_IF_ERROR(ss.settle(r, "creating preview " + name));
      ARGON_ASSIGN_OR_RETURN(auto uri, p.connection_uri(field(r.at("branch"), "id")));
      say(fmt::format("preview '{}' of {} expires at {}:", name, field(from, "name"),
                      iso_in(seconds)));
      fmt::print("{}\n", uri);
      return {};
    });
  });
  auto* plist = preview->add_subcommand("list", "list preview branches (children with an expiry)");
  plist->add_option("--from", a->from, "only previews of this branch");
  plist->callback([a, select] {
    select([a](Session& ss) -> Status {
      ARGON_ASSIGN_OR_RETURN(auto pid, ss.project_id());
      Project p(ss, pid);
      std::string parent;
      if (!a->from.empty()) {
        ARGON_ASSIGN_OR_RETURN(auto from, p.branch(a->from));
        parent = field(from, "id");
      }
      ARGON_ASSIGN_OR_RETURN(auto all, p.branches());
      json::array out;
      for (const auto& b : all) {
        if (field(b, "parent_id") != "-" && field(b, "expires_at") != "-" &&
            (parent.empty() || field(b, "parent_id") == parent)) {
          out.push_back(b);
        }
      }
      print(ss.format(),
            {{"ID", "id"}, {"NAME", "name"}, {"PARENT", "parent_id"}, {"EXPIRES", "expires_at"}},
            out);
      return {};
    });
  });
  auto* pdelete = preview->add_subcommand("delete", "delete a preview branch");
  pdelete->add_option("name", a->name, "the preview (id or name)")->required();
  pdelete->callback([a, select] {
    select([a](Session& ss) -> Status {
      ARGON_ASSIGN_OR_RETURN(auto pid, ss.project_id());
      Project p(ss, pid);
      ARGON_ASSIGN_OR_RETURN(auto b, p.branch(a->name));
      ARGON_RETURN_IF_ERROR(p.delete_branch(field(b, "id")));
      say(fmt::format("preview '{}' deleted", field(b, "name")));
      return {};
    });
  });

  // checkpoint save|list|restore|preview: versions of the active (default) branch as snapshots.
  auto* checkpoint = app.add_subcommand(
      "checkpoint", "versions of a database: save, list, restore in place, preview");
  checkpoint->require_subcommand(1);
  auto active = [a](Project& p) -> Result<json::value> {
    return a->branch.empty() ? p.default_branch() : p.branch(a->branch);
  };
  auto find_checkpoint = [](Project& p, const std::string& name) -> Result<json::value> {
    ARGON_ASSIGN_OR_RETURN(auto all, p.snapshots());
    for (const auto& s : all) {
      if (field(s, "name") == kCheckpointPrefix + name) return s;
    }
    return fail(ErrorCode::kNotFound,
                fmt::format("no checkpoint '{}' (argon checkpoint list)", name));
  };
  auto* csave =
      checkpoint->add_subcommand("save", "save the active branch's current state as a checkpoint");
  csave->add_option("name", a->name, "checkpoint name")->required();
  csave->add_option("--branch", a->branch,
                    "the active branch (default: the project's default branch)");
  csave->callback([a, select, active, find_checkpoint] {
    select([a, active, find_checkpoint](Session& ss) -> Status {
      ARGON_ASSIGN_OR_RETURN(auto pid, ss.project_id());
      Project p(ss, pid);
      if (find_checkpoint(p, a->name)) {
        return fail(ErrorCode::kConflict,
                    fmt::format("checkpoint '{}' exists already; pick another name", a->name));
      }
      ARGON_ASSIGN_OR_RETURN(auto b, active(p));
      ARGON_ASSIGN_OR_RETURN(auto s,
                             p.snapshot(field(b, "id"), kCheckpointPrefix + a->name, std::nullopt));
      say(fmt::format("checkpoint '{}' saved ({}, of {})", a->name, field(s, "id"),
                      field(b, "name")));
      return {};
    });
  });
  auto* clist = checkpoint->add_subcommand("list", "list checkpoints, oldest first");
  clist->callback([select] {
    select([](Session& ss) -> Status {
      ARGON_ASSIGN_OR_RETURN(auto pid, ss.project_id());
      Project p(ss, pid);
      ARGON_ASSIGN_OR_RETURN(auto all, p.snapshots());
      json::array out;
      for (const auto& s : all) {
        if (!field(s, "name").starts_with(kCheckpointPrefix)) continue;
        json::object row = s.as_object();
        row["checkpoint"] = field(s, "name").substr(std::string_view(kCheckpointPrefix).size());
        out.push_back(std::move(row));
      }
      std::sort(out.begin(), out.end(), [](const json::value& x, const json::value& y) {
        return field(x, "created_at") < field(y, "created_at");
      });
      print(ss.format(),
            {{"CHECKPOINT", "checkpoint"}, {"SNAPSHOT", "id"}, {"CREATED", "created_at"}}, out);
      return {};
    });
  });
  auto* crestore = checkpoint->add_subcommand(
      "restore", "put the active branch back to a checkpoint, or to a time, in place");
  auto* cname = crestore->add_option("name", a->name, "checkpoint name");
  auto* ctime = crestore->add_option(
      "--to-time", a->to_time,
      "a time instead of a checkpoint (RFC 3339): every commit up to it; the state before the "
      "restore is kept as '<branch> (before <time now>)', the restored branch's parent");
  cname->excludes(ctime);
  crestore->add_option("--branch", a->branch,
                       "the active branch (default: the project's default branch)");
  crestore->add_flag("--keep-backup", a->keep_backup, "keep the '<branch> (old)' backup branch");
  crestore->callback([a, select, active, find_checkpoint] {
    select([a, active, find_checkpoint](Session& ss) -> Status {
      ARGON_ASSIGN_OR_RETURN(auto pid, ss.project_id());
      Project p(ss, pid);
      ARGON_ASSIGN_OR_RETURN(auto b, active(p));
      if (!a->to_time.empty()) {
        ARGON_RETURN_IF_ERROR(p.restore_to_time(b, a->to_time));
        say(fmt::format("{} is at {}; its connection string is unchanged", field(b, "name"),
                        a->to_time));
        return {};
      }
      if (a->name.empty())
        return fail(ErrorCode::kBadRequest, "a checkpoint name or --to-time: required");
      ARGON_ASSIGN_OR_RETURN(auto s, find_checkpoint(p, a->name));
      ARGON_ASSIGN_OR_RETURN(auto restored, p.restore(field(s, "id"), field(b, "id")));
      (void)restored;
      if (!a->keep_backup) ARGON_RETURN_IF_ERROR(drop_backup(p, field(b, "id")));
      say(fmt::format("{} is at checkpoint '{}'; its connection string is unchanged",
                      field(b, "name"), a->name));
      return {};
    });
  });
  auto* cpreview = checkpoint->add_subcommand(
      "preview", "open a checkpoint as a new branch with its own compute");
  cpreview->add_option("name", a->name, "checkpoint name")->required();
  cpreview->callback([a, select, find_checkpoint] {
    select([a, find_checkpoint](Session& ss) -> Status {
      ARGON_ASSIGN_OR_RETURN(auto pid, ss.project_id());
      Project p(ss, pid);
      ARGON_ASSIGN_OR_RETURN(auto s, find_checkpoint(p, a->name));
      const std::string name = "checkpoint-preview-" + a->name;
      ARGON_ASSIGN_OR_RETURN(auto b, p.restore(field(s, "id"), "", name));
      ARGON_RETURN_IF_ERROR(p.add_endpoint(field(b, "id")));
      ARGON_ASSIGN_OR_RETURN(auto uri, p.connection_uri(field(b, "id")));
      say(fmt::format(
          "checkpoint '{}' is open as branch '{}' (delete it with argon preview delete '{}'):",
          a->name, name, name));
      fmt::print("{}\n", uri);
      return {};
    });
  });

  // cleanup [--dry-run]
  auto* cleanup = app.add_subcommand(
      "cleanup", "delete '(old)' backups, expired previews and expired snapshots");
  cleanup->add_flag("--dry-run", a->dry_run, "only list what would be deleted");
  cleanup->callback([a, select] {
    select([a](Session& ss) -> Status {
      ARGON_ASSIGN_OR_RETURN(auto pid, ss.project_id());
      Project p(ss, pid);
      ARGON_ASSIGN_OR_RETURN(auto branches, p.branches());
      ARGON_ASSIGN_OR_RETURN(auto endpoints, p.endpoints());
      ARGON_ASSIGN_OR_RETURN(auto snapshots, p.snapshots());
      const std::string now = format_time(std::time(nullptr));
      std::set<std::string> replaced, parents, served;
      for (const auto& b : branches) {
        if (field(b, "restored_as") != "-") replaced.insert(field(b, "restored_as"));
        parents.insert(field(b, "parent_id"));
      }
      for (const auto& e : endpoints) served.insert(field(e, "branch_id"));
      int count = 0;
      for (const auto& b : branches) {
        const std::string id = field(b, "id");
        std::string why;
        if (replaced.contains(id) && !served.contains(id) && !parents.contains(id) &&
            field(b, "protected") != "yes") {
          why = "a backup a restore left";
        } else if (field(b, "expires_at") != "-" && field(b, "expires_at") <= now &&
                   !parents.contains(id)) {
          why = "expired at " + field(b, "expires_at");
        }
        if (why.empty()) continue;
        ++count;
        say(fmt::format("{}branch {} ({}): {}", a->dry_run ? "would delete " : "deleting ",
                        field(b, "name"), id, why));
        if (!a->dry_run) ARGON_RETURN_IF_ERROR(p.delete_branch(id));
      }
      for (const auto& s : snapshots) {
        if (field(s, "expires_at") == "-" || field(s, "expires_at") > now) continue;
        ++count;
        say(fmt::format("{}snapshot {} ({}): expired at {}",
                        a->dry_run ? "would delete " : "deleting ", field(s, "name"),
                        field(s, "id"), field(s, "expires_at")));
        if (!a->dry_run) ARGON_RETURN_IF_ERROR(p.delete_snapshot(field(s, "id")));
      }
      say(count == 0 ? "nothing to clean up"
                     : fmt::format("{} item(s) {}", count, a->dry_run ? "to delete" : "deleted"));
      return {};
    });
  });
}

}  // namespace argon::cli
