// The Neon API v2 surface: dispatch. A request is routed, its API key checked, its path ids
// checked for shape, and then handed to the handler group of its resource (handlers.h), which
// works through the shared ApiContext. A mutating handler validates, then writes the catalog rows
// and their operations (through ops::Planner) in ONE catalog transaction and answers at once; the
// operations engine does the slow work. Handlers never touch Postgres or data directories.
#pragma once

#include <string_view>

#include "api/context.h"
#include "api/handlers.h"
#include "api/http_types.h"

namespace argon::api {

class ApiService {
 public:
  ApiService(catalog::Catalog& catalog, ops::Engine& engine, IdGenerator& ids, const Clock& clock,
             const PgInstalls& pg, ApiOptions options);

  HttpResponse handle(const HttpRequest& req);

  // Stores the hash of `token` as an API key named `name` unless it is already there.
  Status ensure_api_key(std::string_view token, std::string_view name);

 private:
  ApiContext ctx_;
  IdentityHandlers identity_{ctx_};
  ProjectHandlers projects_{ctx_};
  BranchHandlers branches_{ctx_};
  RoleDatabaseHandlers roles_databases_{ctx_};
  EndpointHandlers endpoints_{ctx_};
  SnapshotHandlers snapshots_{ctx_};
  Routes routes_;
};

}  // namespace argon::api
