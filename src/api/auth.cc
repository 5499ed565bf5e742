#include "api/auth.h"

#include <algorithm>
#include <cctype>

#include "common/random.h"

namespace argon::api {

using catalog::Tx;

Status authenticate(ApiContext& ctx, const HttpRequest& req) {
  std::string auth = req.header("authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (auth.size() <= kBearer.size() ||
      !std::equal(kBearer.begin(), kBearer.end(), auth.begin(),
                  [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
    return fail(ErrorCode::kUnauthorized,
                "missing API key: send the header 'Authorization: Bearer <api key>'");
  }
  const std::string hash = sha256_hex(std::string_view(auth).substr(kBearer.size()));
  // The lookup reads; the key's last use is written at most once a minute per address.
  ARGON_ASSIGN_OR_RETURN(auto key, ctx.catalog.read([&](Tx& tx) -> Result<catalog::ApiKey> {
    for (auto& k : tx.list_api_keys()) {
      if (constant_time_equal(k.hash, hash)) return k;
    }
    return fail(ErrorCode::kUnauthorized, "invalid or revoked API key");
  }));
  const int64_t now = ctx.clock.now_ms();
  if (key.last_used_at && now - *key.last_used_at <= 60'000 &&
      key.last_used_from_addr == req.remote_addr) {
    return {};
  }
  return ctx.catalog.run([&](Tx& tx) -> Status {
    auto k = tx.get_api_key(key.id);
    if (!k || k->revoked) return fail(ErrorCode::kUnauthorized, "invalid or revoked API key");
    k->last_used_at = now;
    k->last_used_from_addr = req.remote_addr;
    return tx.put_api_key(*k);
  });
}

Status ensure_api_key(ApiContext& ctx, std::string_view token, std::string_view name) {
  const std::string hash = sha256_hex(token);
  return ctx.catalog.run([&](Tx& tx) -> Status {
    for (const auto& k : tx.list_api_keys(true)) {
      if (k.hash == hash) return {};
    }
    catalog::ApiKey k;
    k.name = std::string(name);
    k.hash = hash;
    k.created_at = ctx.clock.now_ms();
    return tx.put_api_key(k);
  });
}

}  // namespace argon::api
