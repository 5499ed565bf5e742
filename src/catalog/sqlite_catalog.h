// SQLite implementation of the catalog: one writing connection in WAL mode with synchronous=FULL,
// serialized by a mutex (argond's catalog traffic is small; correctness over concurrency), and one
// read-only connection with a mutex of its own, whose transactions see the last commit and never
// wait for the writer. Schema changes are numbered migrations applied at open.
#pragma once

#include <atomic>
#include <cstdint>
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
  Status run_read(const std::function<Status(Tx&)>& fn) override;
  std::uint64_t generation() const override { return generation_.load(); }

 private:
  explicit SqliteCatalog(sqlite3* db) : db_(db) {}
  Status migrate();
  // One transaction on `db`: BEGIN `begin`, fn, COMMIT (ROLLBACK on failure).
  static Status transaction(sqlite3* db, const char* begin, const std::function<Status(Tx&)>& fn);

  std::mutex mu_;
  sqlite3* db_;  // guarded by mu_
  std::mutex read_mu_;
  sqlite3* reader_ = nullptr;                 // guarded by read_mu_
  std::atomic<std::uint64_t> generation_{0};  // db_'s count of changed rows after its last run()
};

}  // namespace argon::catalog
