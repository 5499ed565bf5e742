// API keys: a request's bearer key checked against the catalog's hashes, and the key argond
// creates for itself at first start.
#pragma once

#include <string_view>

#include "api/context.h"

namespace argon::api {

// 401 unless the request carries `Authorization: Bearer <key>` of a key that is not revoked. The
// lookup reads; the key's last use is written at most once a minute per address.
Status authenticate(ApiContext& ctx, const HttpRequest& req);
// Stores the hash of `token` as an API key named `name` unless it is already there.
Status ensure_api_key(ApiContext& ctx, std::string_view token, std::string_view name);

}  // namespace argon::api
