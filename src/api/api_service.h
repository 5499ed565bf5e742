// The Neon API v2 surface: routing, authentication, validation and the handlers. A mutating
// handler validates, then writes the catalog rows and their operations (through ops::Planner) in
// ONE catalog transaction and answers at once; the operations engine does the slow work. Handlers
// never touch Postgres or data directories.
#pragma once

#include <boost/json/value.hpp>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "api/http_types.h"
#include "api/input.h"
#include "api/router.h"
#include "api/serialize.h"
#include "catalog/catalog.h"
#include "common/clock.h"
#include "common/id_generator.h"
#include "common/pg_install.h"
#include "ops/engine.h"

namespace argon::api {

struct ApiOptions {
  PublicAddress address;
  int default_pg_version = 15;
  // Per-project limits (Neon's plans cap these; a self-hosted server chooses).
  int max_snapshots = 100;
  int max_root_branches = 25;
};

class ApiService {
 public:
  ApiService(catalog::Catalog& catalog, ops::Engine& engine, IdGenerator& ids, const Clock& clock,
             const PgInstalls& pg, ApiOptions options);

  HttpResponse handle(const HttpRequest& req);

  // Stores the hash of `token` as an API key named `name` unless it is already there.
  Status ensure_api_key(std::string_view token, std::string_view name);

 private:
  struct Ctx {
    const HttpRequest& req;
    std::map<std::string, std::string> path;
    std::multimap<std::string, std::string> query;
    std::string param(const std::string& k) const {
      auto it = path.find(k);
      return it == path.end() ? std::string() : it->second;
    }
    std::optional<std::string> q(const std::string& k) const {
      auto it = query.find(k);
      if (it == query.end()) return std::nullopt;
      return it->second;
    }
  };
  struct Reply {
    int status = 200;
    boost::json::value body;
  };
  using Handler = Result<Reply> (ApiService::*)(Ctx&);
  void add(std::string method, std::string pattern, Handler h);
  Status authenticate(const HttpRequest& req);
  // Runs `fn` in a catalog transaction and wakes the engine if it committed.
  Result<Reply> mutate(const std::function<Result<Reply>(catalog::Tx&)>& fn);

  // Lookups that answer 404 with a message naming what was not found.
  Result<catalog::Project> find_project(catalog::Tx& tx, const std::string& id);
  Result<catalog::Branch> find_branch(catalog::Tx& tx, const catalog::Project& p,
                                      const std::string& id);
  Result<catalog::Endpoint> find_endpoint(catalog::Tx& tx, const catalog::Project& p,
                                          const std::string& id);
  Result<catalog::Role> find_role(catalog::Tx& tx, const catalog::Branch& b,
                                  const std::string& name);
  Result<catalog::Database> find_database(catalog::Tx& tx, const catalog::Branch& b,
                                          const std::string& name);
  // Branch names are unique per project (`except_id` may keep its own).
  Status check_branch_name_free(catalog::Tx& tx, const std::string& project_id,
                                const std::string& name, const std::string& except_id = {});
  Result<catalog::Snapshot> find_snapshot(catalog::Tx& tx, const catalog::Project& p,
                                          const std::string& id);
  boost::json::array ops_json(const std::vector<catalog::Operation>& ops);
  // Connection details for every role x database of a branch through its read_write endpoint.
  boost::json::array connection_uris(catalog::Tx& tx, const catalog::Branch& b,
                                     const std::optional<catalog::Endpoint>& ep);
  catalog::Endpoint new_endpoint(const catalog::Project& p, const std::string& branch_id);
  // `pg_major`: the project's PostgreSQL, which judges settings.pg_settings.
  // The endpoint fields of a request onto `e` (no I/O: runs inside the transaction).
  Status apply_endpoint_fields(const Fields& f, catalog::Endpoint& e);
  // Before the transaction: PostgreSQL's verdict on the request's settings.pg_settings (postgres
  // -C, up to seconds), so that nothing slow runs while the catalog is locked.
  Status check_endpoint_pg_settings(const Fields& f, const std::string& project_id);
  Result<int> project_pg_version(const std::string& project_id);
  // A finalized restore: the target's endpoints are marked switching by `op_id` (in the
  // transaction), and after the commit the proxy holds them (ops::Engine::sync_holds).
  Status mark_switching(catalog::Tx& tx, const std::string& target_id, const std::string& op_id);
  void hold_switching();
  // Copies the catalog's roles (with passwords) and databases of a branch or snapshot to another.
  Status copy_roles_and_databases(catalog::Tx& tx, const std::string& from_id,
                                  const std::string& to_id, int64_t now);

  // Identity and keys.
  Result<Reply> get_auth(Ctx&);
  Result<Reply> get_me(Ctx&);
  Result<Reply> get_my_orgs(Ctx&);
  Result<Reply> list_api_keys(Ctx&);
  Result<Reply> create_api_key(Ctx&);
  Result<Reply> revoke_api_key(Ctx&);
  // Projects.
  Result<Reply> list_projects(Ctx&);
  Result<Reply> list_shared_projects(Ctx&);
  Result<Reply> create_project(Ctx&);
  Result<Reply> get_project(Ctx&);
  Result<Reply> update_project(Ctx&);
  Result<Reply> delete_project(Ctx&);
  Result<Reply> get_connection_uri(Ctx&);
  Result<Reply> list_operations(Ctx&);
  Result<Reply> get_operation(Ctx&);
  // Branches.
  Result<Reply> list_branches(Ctx&);
  Result<Reply> count_branches(Ctx&);
  Result<Reply> create_branch(Ctx&);
  Result<Reply> get_branch(Ctx&);
  Result<Reply> update_branch(Ctx&);
  Result<Reply> delete_branch(Ctx&);
  Result<Reply> set_default_branch(Ctx&);
  Result<Reply> restore_branch(Ctx&);
  Result<Reply> list_branch_endpoints(Ctx&);
  // Endpoints.
  Result<Reply> list_endpoints(Ctx&);
  Result<Reply> create_endpoint(Ctx&);
  Result<Reply> get_endpoint(Ctx&);
  Result<Reply> update_endpoint(Ctx&);
  Result<Reply> delete_endpoint(Ctx&);
  Result<Reply> start_endpoint(Ctx&);
  Result<Reply> suspend_endpoint(Ctx&);
  Result<Reply> restart_endpoint(Ctx&);
  // Roles and databases.
  Result<Reply> list_roles(Ctx&);
  Result<Reply> create_role(Ctx&);
  Result<Reply> get_role(Ctx&);
  Result<Reply> delete_role(Ctx&);
  Result<Reply> reveal_password(Ctx&);
  Result<Reply> reset_password(Ctx&);
  Result<Reply> list_databases(Ctx&);
  Result<Reply> create_database(Ctx&);
  Result<Reply> get_database(Ctx&);
  Result<Reply> update_database(Ctx&);
  Result<Reply> delete_database(Ctx&);

  Result<Reply> create_snapshot(Ctx&);
  Result<Reply> list_snapshots(Ctx&);
  Result<Reply> update_snapshot(Ctx&);
  Result<Reply> delete_snapshot(Ctx&);
  Result<Reply> restore_snapshot(Ctx&);
  Result<Reply> finalize_restore(Ctx&);

  catalog::Catalog& catalog_;
  ops::Engine& engine_;
  IdGenerator& ids_;
  const Clock& clock_;
  const PgInstalls& pg_;
  ApiOptions options_;
  Router router_;
  std::vector<Handler> handlers_;  // by route id
};

}  // namespace argon::api
