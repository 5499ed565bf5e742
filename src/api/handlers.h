// The API's handler groups, one per resource, each in the file its comment names. A group holds
// the shared ApiContext and adds its routes to the table; a new resource is a group here, a file,
// and a line in ApiService's constructor.
#pragma once

#include "api/context.h"

namespace argon::api {

// The installation's identity (/auth, /users/me) and its API keys. (identity.cc)
class IdentityHandlers {
 public:
  explicit IdentityHandlers(ApiContext& ctx) : ctx_(ctx) {}
  void add_routes(Routes& routes);

 private:
  Result<Reply> get_auth(Request& c);
  Result<Reply> get_me(Request& c);
  Result<Reply> get_my_orgs(Request& c);
  Result<Reply> list_api_keys(Request& c);
  Result<Reply> create_api_key(Request& c);
  Result<Reply> revoke_api_key(Request& c);

  ApiContext& ctx_;
};

// Projects, their connection URI and their operations. (projects.cc)
class ProjectHandlers {
 public:
  explicit ProjectHandlers(ApiContext& ctx) : ctx_(ctx) {}
  void add_routes(Routes& routes);

 private:
  Result<Reply> list_projects(Request& c);
  Result<Reply> list_shared_projects(Request& c);
  Result<Reply> create_project(Request& c);
  Result<Reply> get_project(Request& c);
  Result<Reply> update_project(Request& c);
  Result<Reply> delete_project(Request& c);
  Result<Reply> get_connection_uri(Request& c);
  Result<Reply> list_operations(Request& c);
  Result<Reply> get_operation(Request& c);

  ApiContext& ctx_;
};

// Branches: create (from a parent, at a point in time), rename, delete, set as default, restore.
// (branches.cc)
class BranchHandlers {
 public:
  explicit BranchHandlers(ApiContext& ctx) : ctx_(ctx) {}
  void add_routes(Routes& routes);

 private:
  Result<Reply> list_branches(Request& c);
  Result<Reply> count_branches(Request& c);
  Result<Reply> create_branch(Request& c);
  Result<Reply> get_branch(Request& c);
  Result<Reply> update_branch(Request& c);
  Result<Reply> delete_branch(Request& c);
  Result<Reply> set_default_branch(Request& c);
  Result<Reply> restore_branch(Request& c);
  Result<Reply> list_branch_endpoints(Request& c);

  ApiContext& ctx_;
};

// A branch's roles (and their passwords) and databases. (roles_databases.cc)
class RoleDatabaseHandlers {
 public:
  explicit RoleDatabaseHandlers(ApiContext& ctx) : ctx_(ctx) {}
  void add_routes(Routes& routes);

 private:
  Result<Reply> list_roles(Request& c);
  Result<Reply> create_role(Request& c);
  Result<Reply> get_role(Request& c);
  Result<Reply> delete_role(Request& c);
  Result<Reply> reveal_password(Request& c);
  Result<Reply> reset_password(Request& c);
  Result<Reply> list_databases(Request& c);
  Result<Reply> create_database(Request& c);
  Result<Reply> get_database(Request& c);
  Result<Reply> update_database(Request& c);
  Result<Reply> delete_database(Request& c);

  ApiContext& ctx_;
};

// Endpoints: create, change, delete, and start, suspend or restart their compute. (endpoints.cc)
class EndpointHandlers {
 public:
  explicit EndpointHandlers(ApiContext& ctx) : ctx_(ctx) {}
  void add_routes(Routes& routes);

 private:
  Result<Reply> list_endpoints(Request& c);
  Result<Reply> create_endpoint(Request& c);
  Result<Reply> get_endpoint(Request& c);
  Result<Reply> update_endpoint(Request& c);
  Result<Reply> delete_endpoint(Request& c);
  Result<Reply> start_endpoint(Request& c);
  Result<Reply> suspend_endpoint(Request& c);
  Result<Reply> restart_endpoint(Request& c);

  ApiContext& ctx_;
};

// Snapshots (CONTRACT.md §7, §10): create, list, rename or expire, delete, restore, finalize.
// (snapshots.cc)
class SnapshotHandlers {
 public:
  explicit SnapshotHandlers(ApiContext& ctx) : ctx_(ctx) {}
  void add_routes(Routes& routes);

 private:
  Result<Reply> create_snapshot(Request& c);
  Result<Reply> list_snapshots(Request& c);
  Result<Reply> update_snapshot(Request& c);
  Result<Reply> delete_snapshot(Request& c);
  Result<Reply> restore_snapshot(Request& c);
  Result<Reply> finalize_restore(Request& c);

  ApiContext& ctx_;
};

}  // namespace argon::api
