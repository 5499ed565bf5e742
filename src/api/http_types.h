// Transport-neutral HTTP request/response, so handlers and tests never include Beast.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace argon::api {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // raw request target, e.g. "/api/v2/projects?limit=5"
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::string remote_addr;

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct HttpResponse {
  int status = 200;
  std::string body;  // JSON unless content_type says otherwise
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

}  // namespace argon::api
