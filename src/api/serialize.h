// Catalog records to Neon API v2 JSON shapes (CONTRACT.md §2). Optional fields are omitted, never
// null (clients distinguish "absent" from null: a root branch has no `parent_id` key at all).
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <vector>

#include "catalog/model.h"

namespace argon::api {

struct PublicAddress {
  std::string proxy_host;      // domain endpoints live under: host = "<endpoint-id>.<proxy_host>"
  uint16_t proxy_port = 5432;  // omitted from URIs when 5432
  std::string hostaddr;        // when set, URIs carry hostaddr= so the name needs no DNS
  std::string region_id = "local";
  std::string owner_id;  // the installation's owner (one account per argond)
};

boost::json::object project_json(const catalog::Project& p, const PublicAddress& a);
boost::json::object project_list_item_json(const catalog::Project& p, const PublicAddress& a);
boost::json::object branch_json(const catalog::Branch& b);
boost::json::object endpoint_json(const catalog::Endpoint& e, const PublicAddress& a);
boost::json::object operation_json(const catalog::Operation& o);
boost::json::array operations_json(const std::vector<catalog::Operation>& ops);
boost::json::object role_json(const catalog::Role& r, bool with_password);
boost::json::object database_json(const catalog::Database& d);

// "<endpoint-id>[-pooler].<proxy_host>", with ":<port>" when the proxy is not on 5432: clients
// that build a connection string from `host` (neonctl connection-string) then reach the proxy.
boost::json::object snapshot_json(const catalog::Snapshot& s);

std::string endpoint_host(std::string_view endpoint_id, const PublicAddress& a,
                          bool pooled = false);
std::string connection_uri(const catalog::Endpoint& e, const catalog::Role& r,
                           std::string_view database, const PublicAddress& a, bool pooled = false);
boost::json::object connection_details_json(const catalog::Endpoint& e, const catalog::Role& r,
                                            std::string_view database, const PublicAddress& a);

std::string ts(int64_t ms);  // RFC 3339 from ms

}  // namespace argon::api
