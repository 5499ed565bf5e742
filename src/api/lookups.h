// Catalog reads that answer 404 with a message naming what was not found, and the branch-name
// check; every handler group uses them inside its transaction.
#pragma once

#include <string>

#include "catalog/catalog.h"
#include "common/error.h"

namespace argon::api {

Result<catalog::Project> find_project(catalog::Tx& tx, const std::string& id);
Result<catalog::Branch> find_branch(catalog::Tx& tx, const catalog::Project& p,
                                    const std::string& id);
Result<catalog::Endpoint> find_endpoint(catalog::Tx& tx, const catalog::Project& p,
                                        const std::string& id);
Result<catalog::Role> find_role(catalog::Tx& tx, const catalog::Branch& b, const std::string& name);
Result<catalog::Database> find_database(catalog::Tx& tx, const catalog::Branch& b,
                                        const std::string& name);
Result<catalog::Snapshot> find_snapshot(catalog::Tx& tx, const catalog::Project& p,
                                        const std::string& id);
// Branch names are unique per project (`except_id` may keep its own): 409 otherwise.
Status check_branch_name_free(catalog::Tx& tx, const std::string& project_id,
                              const std::string& name, const std::string& except_id = {});

}  // namespace argon::api
