// A small synchronous libpq client for argond's own admin work on computes (roles, databases,
// backups). Blocking: call it from the ops worker pool only, never from an I/O thread.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

struct pg_conn;

namespace argon {

struct PgRows {
  std::vector<std::vector<std::optional<std::string>>> rows;
  std::string value(size_t row = 0, size_t col = 0) const {
    if (row >= rows.size() || col >= rows[row].size() || !rows[row][col]) return {};
    return *rows[row][col];
  }
};

class PgConn {
 public:
  // conninfo in libpq keyword form; connect_timeout applies.
  static Result<PgConn> connect(const std::string& conninfo);
  PgConn(PgConn&&) noexcept;
  PgConn& operator=(PgConn&&) noexcept;
  ~PgConn();

  Result<PgRows> exec(std::string_view sql);
  Result<PgRows> exec(std::string_view sql, const std::vector<std::string>& params);
  std::string quote_ident(std::string_view s) const;
  std::string quote_literal(std::string_view s) const;

 private:
  explicit PgConn(pg_conn* c) : conn_(c) {}
  pg_conn* conn_ = nullptr;
};

// "host=/path port=5432 user=u dbname=d" with values quoted for libpq.
std::string socket_conninfo(std::string_view socket_dir, int port, std::string_view user,
                            std::string_view dbname, int connect_timeout_s = 10);

}  // namespace argon
