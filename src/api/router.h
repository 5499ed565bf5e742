// Matches a request's method and path to one of the API's routes ("/api/v2/projects/{project_id}").
// A pure function of its table, so tests/fuzz/router_fuzz.cc drives it on its own.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace argon::api {

class Router {
 public:
  struct Match {
    int route = -1;           // the id given to add(); -1 when nothing matched
    bool path_known = false;  // some route has this path with another method (405)
    std::map<std::string, std::string> captures;  // "{name}" segments, percent-decoded
  };

  // `pattern` is split at '/'; a segment "{name}" captures.
  void add(std::string method, std::string_view pattern, int route);
  // `encoded_path` is the target's path as sent (percent-encoded).
  Match match(std::string_view method, std::string_view encoded_path) const;
  // A 404 naming the capture when its value cannot exist: ids have Neon's shape (lower case,
  // digits and '-', up to 60 bytes); role and database names are 1 to 63 bytes.
  static Status check_captures(const std::map<std::string, std::string>& captures);

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    int id;
  };
  std::vector<Route> routes_;
};

}  // namespace argon::api
