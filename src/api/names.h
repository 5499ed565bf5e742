// Names Postgres or Argon reserve for themselves: never created or managed through the API.
#pragma once

#include <string_view>

namespace argon::api {

inline bool reserved_role(std::string_view n) {
  return n.starts_with("pg_") || n.starts_with("argon_") || n == "neon_superuser" ||
         n == "public" || n == "none" || n == "current_user" || n == "session_user" ||
         n == "current_role";
}
inline bool reserved_database(std::string_view n) {
  return n == "postgres" || n == "template0" || n == "template1";
}

}  // namespace argon::api
