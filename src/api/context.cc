#include "api/context.h"

#include "common/crash_point.h"

namespace argon::api {

namespace json = boost::json;
using catalog::Tx;

Result<Reply> ApiContext::mutate(const std::function<Result<Reply>(Tx&)>& fn) {
  auto r = catalog.transact(fn);
  if (r) crash_point("api.committed");
  if (r) engine.notify();
  return r;
}

json::array ApiContext::connection_uris(Tx& tx, const catalog::Branch& b,
                                        const std::optional<catalog::Endpoint>& ep) const {
  json::array out;
  if (!ep) return out;
  for (const auto& r : tx.list_roles(b.id)) {
    if (r.password.empty() || r.no_login) continue;
    for (const auto& d : tx.list_databases(b.id)) {
      out.push_back(connection_details_json(*ep, r, d.name, options.address));
    }
  }
  return out;
}

Status copy_roles_and_databases(Tx& tx, const std::string& from_id, const std::string& to_id,
                                int64_t now) {
  for (auto r : tx.list_roles(from_id)) {
    r.branch_id = to_id;
    r.created_at = r.updated_at = now;
    ARGON_RETURN_IF_ERROR(tx.put_role(r));
  }
  for (auto d : tx.list_databases(from_id)) {
    d.id = 0;
    d.branch_id = to_id;
    d.created_at = d.updated_at = now;
    ARGON_RETURN_IF_ERROR(tx.put_database(d));
  }
  return {};
}

}  // namespace argon::api
