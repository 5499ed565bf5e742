// An endpoint's fields as requests set them: at project and branch creation (which create an
// endpoint) and on the endpoint's own routes.
#pragma once

#include <string>

#include "api/context.h"
#include "api/input.h"

namespace argon::api {

// A new read_write endpoint of `branch_id` with the project's default endpoint settings.
catalog::Endpoint new_endpoint(ApiContext& ctx, const catalog::Project& p,
                               const std::string& branch_id);
// The endpoint fields of a request onto `e` (no I/O: runs inside the transaction).
Status apply_endpoint_fields(const Fields& f, catalog::Endpoint& e);
// Before the transaction: PostgreSQL's verdict on the request's settings.pg_settings, judged by
// the project's PostgreSQL (postgres -C, up to seconds), so nothing slow runs while the catalog
// is locked.
Status check_endpoint_pg_settings(ApiContext& ctx, const Fields& f, const std::string& project_id);
Result<int> project_pg_version(ApiContext& ctx, const std::string& project_id);

}  // namespace argon::api
