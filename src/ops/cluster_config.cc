#include "ops/cluster_config.h"

#include <fmt/format.h>

#include <set>

#include "common/cluster_names.h"
#include "common/pg_conn.h"

namespace argon::ops {

using catalog::Branch;
using catalog::Tx;
using params::ChangeKind;

namespace {

// Roles that belong to Argon or Postgres itself, never listed or managed through the API.
const std::string kSystemRoleFilter = fmt::format(
    "rolname NOT LIKE 'pg\\_%' AND rolname NOT IN ('{}', 'neon_superuser')", kAdminRole);

bool is_database_change(ChangeKind k) {
  return k == ChangeKind::kCreateDatabase || k == ChangeKind::kUpdateDatabase ||
         k == ChangeKind::kDeleteDatabase;
}

}  // namespace

Status ClusterConfig::initialize(const Branch& branch) {
  ARGON_ASSIGN_OR_RETURN(auto conn, PgConn::connect(env_.computes.admin_conninfo(branch.id)));
  auto r = conn.exec(
      "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'neon_superuser') "
      "THEN CREATE ROLE neon_superuser CREATEDB CREATEROLE NOLOGIN REPLICATION BYPASSRLS; "
      "GRANT pg_read_all_data, pg_write_all_data, pg_monitor, pg_signal_backend "
      "TO neon_superuser WITH ADMIN OPTION; END IF; END $$");
  if (!r) return std::unexpected(r.error());
  ARGON_ASSIGN_OR_RETURN(
      auto changes, env_.catalog.transact([&](Tx& tx) -> Result<std::vector<params::ConfigChange>> {
        std::vector<params::ConfigChange> out;
        for (const auto& role : tx.list_roles(branch.id))
          out.push_back({ChangeKind::kCreateRole, role.name, 0, {}});
        for (const auto& d : tx.list_databases(branch.id))
          out.push_back({ChangeKind::kCreateDatabase, {}, d.id, {}});
        return out;
      }));
  return apply(branch, changes);
}

Status ClusterConfig::apply(const Branch& branch,
                            const std::vector<params::ConfigChange>& changes) {
  ARGON_ASSIGN_OR_RETURN(auto conn, PgConn::connect(env_.computes.admin_conninfo(branch.id)));
  for (const auto& c : changes) {
    if (!is_database_change(c.kind)) {
      if (c.kind == ChangeKind::kDeleteRole) {
        auto x = conn.exec(fmt::format("DROP ROLE IF EXISTS {}", conn.quote_ident(c.name)));
        if (!x) {
          log_if_cleanup_failed(env_.catalog.run([&](Tx& tx) -> Status {
            auto r = tx.get_role(branch.id, c.name);
            if (!r) return {};
            r->pending_delete = false;  // the role stays, visible again
            return tx.put_role(*r);
          }),
                                "role stays listed after a failed DROP ROLE");
          return fail(ErrorCode::kConflict,
                      fmt::format("cannot delete role {}: {}", c.name, x.error().message));
        }
        ARGON_RETURN_IF_ERROR(
            env_.catalog.run([&](Tx& tx) { return tx.delete_role_row(branch.id, c.name); }));
        continue;
      }
      ARGON_ASSIGN_OR_RETURN(
          auto role, env_.catalog.transact([&](Tx& tx) -> Result<std::optional<catalog::Role>> {
            return tx.get_role(branch.id, c.name);
          }));
      if (!role) continue;  // deleted since
      auto exists = conn.exec("SELECT 1 FROM pg_roles WHERE rolname = $1", {role->name});
      if (!exists) return std::unexpected(exists.error());
      std::string sql;
      if (exists->rows.empty()) {
        sql =
            fmt::format("CREATE ROLE {} {} PASSWORD {} CREATEDB CREATEROLE IN ROLE neon_superuser",
                        conn.quote_ident(role->name), role->no_login ? "NOLOGIN" : "LOGIN",
                        conn.quote_literal(role->password));
      } else if (c.kind == ChangeKind::kResetPassword) {
        sql = fmt::format("ALTER ROLE {} PASSWORD {}", conn.quote_ident(role->name),
                          conn.quote_literal(role->password));
      }
      if (!sql.empty()) {
        if (auto x = conn.exec(sql); !x) return std::unexpected(x.error());
      }
      if (c.kind == ChangeKind::kResetPassword) {
        // Sessions that logged in with the old password end, as on Neon. Best effort: if this fails
        // they stay until they close, which is what ALTER ROLE alone would do.
        (void)conn.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                        {role->name});
      }
      continue;
    }
    ARGON_ASSIGN_OR_RETURN(
        auto db, env_.catalog.transact([&](Tx& tx) -> Result<std::optional<catalog::Database>> {
          return tx.get_database_by_id(c.id);
        }));
    if (!db) continue;  // deleted since
    const std::string current = c.kind == ChangeKind::kUpdateDatabase ? c.old_name : db->name;
    auto exists = conn.exec("SELECT 1 FROM pg_database WHERE datname = $1", {current});
    if (!exists) return std::unexpected(exists.error());
    const bool present = !exists->rows.empty();
    if (c.kind == ChangeKind::kCreateDatabase) {
      if (!present) {
        auto x = conn.exec(fmt::format("CREATE DATABASE {} OWNER {}", conn.quote_ident(db->name),
                                       conn.quote_ident(db->owner_name)));
        if (!x) return std::unexpected(x.error());
      }
    } else if (c.kind == ChangeKind::kUpdateDatabase) {
      if (present && current != db->name) {
        // Best effort: a session that stays makes the RENAME below fail, with Postgres's reason.
        (void)conn.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                        {current});
        auto x = conn.exec(fmt::format("ALTER DATABASE {} RENAME TO {}", conn.quote_ident(current),
                                       conn.quote_ident(db->name)));
        if (!x) return std::unexpected(x.error());
      }
      auto x = conn.exec(fmt::format("ALTER DATABASE {} OWNER TO {}", conn.quote_ident(db->name),
                                     conn.quote_ident(db->owner_name)));
      if (!x) return std::unexpected(x.error());
    } else {
      if (present) {
        auto x = conn.exec(
            fmt::format("DROP DATABASE IF EXISTS {} WITH (FORCE)", conn.quote_ident(db->name)));
        if (!x) return std::unexpected(x.error());
      }
      ARGON_RETURN_IF_ERROR(env_.catalog.run([&](Tx& tx) { return tx.delete_database_row(c.id); }));
    }
  }
  return {};
}

Status ClusterConfig::sync_from_compute(const Branch& branch) {
  ARGON_ASSIGN_OR_RETURN(const bool pending, env_.catalog.transact([&](Tx& tx) -> Result<bool> {
    for (const auto& op : tx.list_pending_operations()) {
      if (op.branch_id == branch.id && op.kind == to_string(ActionKind::kApplyConfig)) return true;
    }
    return false;
  }));
  if (pending) return {};
  ARGON_ASSIGN_OR_RETURN(auto conn, PgConn::connect(env_.computes.admin_conninfo(branch.id)));
  auto roles = conn.exec(
      fmt::format("SELECT rolname, rolcanlogin FROM pg_roles WHERE {}", kSystemRoleFilter));
  if (!roles) return std::unexpected(roles.error());
  auto dbs = conn.exec(
      "SELECT datname, pg_get_userbyid(datdba) FROM pg_database "
      "WHERE datname NOT IN ('postgres', 'template0', 'template1')");
  if (!dbs) return std::unexpected(dbs.error());
  return env_.catalog.run([&](Tx& tx) -> Status {
    const int64_t now = env_.clock.now_ms();
    std::set<std::string> pg_roles, pg_dbs;
    for (size_t i = 0; i < roles->rows.size(); ++i) {
      std::string name = roles->value(i, 0);
      pg_roles.insert(name);
      if (!tx.get_role(branch.id, name)) {
        catalog::Role r{branch.project_id,         branch.id, name, "",   false,
                        roles->value(i, 1) != "t", now,       now,  false};
        ARGON_RETURN_IF_ERROR(tx.put_role(r));
      }
    }
    for (const auto& r : tx.list_roles(branch.id)) {
      if (!pg_roles.contains(r.name)) ARGON_RETURN_IF_ERROR(tx.delete_role_row(branch.id, r.name));
    }
    for (size_t i = 0; i < dbs->rows.size(); ++i) {
      std::string name = dbs->value(i, 0), owner = dbs->value(i, 1);
      pg_dbs.insert(name);
      auto d = tx.get_database(branch.id, name);
      if (!d) {
        catalog::Database nd{0, branch.project_id, branch.id, name, owner, now, now, false};
        ARGON_RETURN_IF_ERROR(tx.put_database(nd));
      } else if (d->owner_name != owner) {
        d->owner_name = owner;
        d->updated_at = now;
        ARGON_RETURN_IF_ERROR(tx.put_database(*d));
      }
    }
    for (const auto& d : tx.list_databases(branch.id)) {
      if (!pg_dbs.contains(d.name)) ARGON_RETURN_IF_ERROR(tx.delete_database_row(d.id));
    }
    return {};
  });
}

}  // namespace argon::ops
