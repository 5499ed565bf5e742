// Identity and API key handlers: /auth, /users/me, /api_keys.
#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/handlers.h"
#include "api/input.h"
#include "common/random.h"

namespace argon::api {

namespace json = boost::json;
using catalog::Tx;

Result<Reply> IdentityHandlers::get_auth(Request&) {
  return Reply{200, json::object{{"account_id", ctx_.options.address.owner_id},
                                 {"auth_method", "api_key_user"}}};
}

Result<Reply> IdentityHandlers::get_me(Request&) {
  const std::string& id = ctx_.options.address.owner_id;
  return Reply{200, json::object{{"id", id},
                                 {"email", "admin@argon.local"},
                                 {"name", "argon"},
                                 {"last_name", ""},
                                 {"image", ""},
                                 {"login", "argon"},
                                 {"plan", "self_hosted"},
                                 {"projects_limit", 0},
                                 {"branches_limit", 0},
                                 {"max_autoscaling_limit", 0.25},
                                 {"active_seconds_limit", 0},
                                 {"auth_accounts", json::array{}}}};
}

Result<Reply> IdentityHandlers::get_my_orgs(Request&) {
  return Reply{200, json::object{{"organizations", json::array{}}}};
}

Result<Reply> IdentityHandlers::list_api_keys(Request&) {
  return ctx_.catalog.read([&](Tx& tx) -> Result<Reply> {
    json::array a;
    for (const auto& k : tx.list_api_keys()) {
      json::object o{
          {"id", k.id},
          {"name", k.name},
          {"created_at", ts(k.created_at)},
          {"created_by",
           json::object{{"id", ctx_.options.address.owner_id}, {"name", "argon"}, {"image", ""}}},
          {"last_used_from_addr", k.last_used_from_addr}};
      o["last_used_at"] = k.last_used_at ? json::value(ts(*k.last_used_at)) : json::value(nullptr);
      a.push_back(std::move(o));
    }
    return Reply{200, std::move(a)};
  });
}

Result<Reply> IdentityHandlers::create_api_key(Request& c) {
  ARGON_ASSIGN_OR_RETURN(auto body, parse_body(c.http));
  Fields f(&body, "");
  ARGON_ASSIGN_OR_RETURN(auto name, f.string("key_name", 1, 64));
  if (!name) return fail(ErrorCode::kBadRequest, "key_name: required (1 to 64 characters)");
  const std::string token = random_string(64, "abcdefghijklmnopqrstuvwxyz0123456789");
  return ctx_.catalog.transact([&](Tx& tx) -> Result<Reply> {
    catalog::ApiKey k;
    k.name = *name;
    k.hash = sha256_hex(token);
    k.created_at = ctx_.clock.now_ms();
    ARGON_RETURN_IF_ERROR(tx.put_api_key(k));
    return Reply{200, json::object{{"id", k.id},
                                   {"key", token},
                                   {"name", k.name},
                                   {"created_at", ts(k.created_at)},
                                   {"created_by", ctx_.options.address.owner_id}}};
  });
}

Result<Reply> IdentityHandlers::revoke_api_key(Request& c) {
  const std::string raw = c.param("key_id");
  auto parsed = parse_int_param(raw, "key_id", 1, INT64_MAX);
  if (!parsed)
    return fail(ErrorCode::kNotFound, fmt::format("API key {} not found", raw.substr(0, 20)));
  const int64_t id = **parsed;
  return ctx_.catalog.transact([&](Tx& tx) -> Result<Reply> {
    auto k = tx.get_api_key(id);
    if (!k || k->revoked)
      return fail(ErrorCode::kNotFound, fmt::format("API key {} not found", id));
    k->revoked = true;
    ARGON_RETURN_IF_ERROR(tx.put_api_key(*k));
    json::object o{{"id", k->id},
                   {"name", k->name},
                   {"created_at", ts(k->created_at)},
                   {"created_by", ctx_.options.address.owner_id},
                   {"last_used_from_addr", k->last_used_from_addr},
                   {"revoked", true}};
    if (k->last_used_at) o["last_used_at"] = ts(*k->last_used_at);
    return Reply{200, std::move(o)};
  });
}

void IdentityHandlers::add_routes(Routes& routes) {
  routes.add("GET", "/api/v2/auth", this, &IdentityHandlers::get_auth);
  routes.add("GET", "/api/v2/users/me", this, &IdentityHandlers::get_me);
  routes.add("GET", "/api/v2/users/me/organizations", this, &IdentityHandlers::get_my_orgs);
  routes.add("GET", "/api/v2/api_keys", this, &IdentityHandlers::list_api_keys);
  routes.add("POST", "/api/v2/api_keys", this, &IdentityHandlers::create_api_key);
  routes.add("DELETE", "/api/v2/api_keys/{key_id}", this, &IdentityHandlers::revoke_api_key);
}

}  // namespace argon::api
