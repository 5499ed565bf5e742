#include "common/pg_conn.h"

#include <fmt/format.h>
#include <libpq-fe.h>

namespace argon {

namespace {
std::string quote_conninfo_value(std::string_view v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::string trim_message(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

Result<PgRows> collect(PGresult* res, pg_conn* conn, std::string_view sql) {
  auto status = PQresultStatus(res);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    std::string msg = trim_message(res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
    const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    PQclear(res);
    // The statement is not in the message: it can contain passwords.
    (void)sql;
    return fail(ErrorCode::kInternal, fmt::format("postgres: {}", msg),
                fmt::format("sqlstate {}", state ? state : "?"));
  }
  PgRows out;
  int n = PQntuples(res), m = PQnfields(res);
  out.rows.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto& row = out.rows[static_cast<size_t>(i)];
    row.resize(static_cast<size_t>(m));
    for (int j = 0; j < m; ++j) {
      if (!PQgetisnull(res, i, j))
        row[static_cast<size_t>(j)] =
            std::string(PQgetvalue(res, i, j), static_cast<size_t>(PQgetlength(res, i, j)));
    }
  }
  PQclear(res);
  return out;
}
}  // namespace

std::string socket_conninfo(std::string_view socket_dir, int port, std::string_view user,
                            std::string_view dbname, int connect_timeout_s) {
  return fmt::format("host={} port={} user={} dbname={} connect_timeout={} application_name=argond",
                     quote_conninfo_value(socket_dir), port, quote_conninfo_value(user),
                     quote_conninfo_value(dbname), connect_timeout_s);
}

Result<PgConn> PgConn::connect(const std::string& conninfo) {
  pg_conn* c = PQconnectdb(conninfo.c_str());
  if (c == nullptr || PQstatus(c) != CONNECTION_OK) {
    std::string msg = trim_message(c ? PQerrorMessage(c) : "out of memory");
    PQfinish(c);
    return fail(ErrorCode::kUnavailable, fmt::format("cannot connect to compute: {}", msg));
  }
  return PgConn(c);
}

PgConn::PgConn(PgConn&& o) noexcept : conn_(o.conn_) { o.conn_ = nullptr; }
PgConn& PgConn::operator=(PgConn&& o) noexcept {
  if (this != &o) {
    PQfinish(conn_);
    conn_ = o.conn_;
    o.conn_ = nullptr;
  }
  return *this;
}
PgConn::~PgConn() { PQfinish(conn_); }

Result<PgRows> PgConn::exec(std::string_view sql) {
  std::string s(sql);
  return collect(PQexec(conn_, s.c_str()), conn_, sql);
}

Result<PgRows> PgConn::exec(std::string_view sql, const std::vector<std::string>& params) {
  std::string s(sql);
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p.c_str());
  return collect(PQexecParams(conn_, s.c_str(), static_cast<int>(values.size()), nullptr,
                              values.data(), nullptr, nullptr, 0),
                 conn_, sql);
}

std::string PgConn::quote_ident(std::string_view s) const {
  char* q = PQescapeIdentifier(conn_, s.data(), s.size());
  std::string out = q ? q : "";
  PQfreemem(q);
  return out;
}

std::string PgConn::quote_literal(std::string_view s) const {
  char* q = PQescapeLiteral(conn_, s.data(), s.size());
  std::string out = q ? q : "";
  PQfreemem(q);
  return out;
}

}  // namespace argon
