// A small blocking HTTP/1.1 client for the CLI: one request at a time over a kept-alive
// connection, `http://` or `https://` (certificate and host name verified against the system's
// trust store, as Neon's cloud needs), every step under a deadline. The only file of the CLI that
// includes Beast.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"

namespace argon::cli {

struct HttpResponse {
  int status = 0;
  std::string body;
};

class HttpClient {
 public:
  // `base_url` such as "http://127.0.0.1:8420/api/v2"; request paths are appended to it.
  static Result<HttpClient> make(const std::string& base_url,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(30));
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;
  ~HttpClient();

  // kUnavailable when the server cannot be reached or the exchange fails midway.
  Result<HttpResponse> request(const std::string& method, const std::string& path,
                               const std::string& body,
                               const std::vector<std::pair<std::string, std::string>>& headers);
  const std::string& base_url() const;

 private:
  struct Impl;
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace argon::cli
