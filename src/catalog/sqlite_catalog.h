// SQLite implementation of the catalog: one connection in WAL mode with synchronous=FULL,
// serialized by a mutex (argond's catalog traffic is small; correctness over concurrency). Schema
// changes are numbered migrations applied at open.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>

#include "catalog/catalog.h"

struct sqlite3;

namespace argon::catalog {

class SqliteCatalog final : public Catalog {
 public:
  // Opens (creating if needed) the database file, mode 0600, and applies migrations.
  static Result<std::unique_ptr<SqliteCatalog>> open(const std::filesystem::path& path);
  ~SqliteCatalog() override;

  Status run(const std::function<Status(Tx&)>& fn) override;

 private:
  explicit SqliteCatalog(sqlite3* db) : db_(db) {}
  Status migrate();

  std::mutex mu_;
  sqlite3* db_;
};

}  // namespace argon::catalog
