// The catalog: argond's metadata store. Callers work inside a transaction (`Catalog::transact`),
// through the narrow `Tx` interface below, so that a PostgreSQL-backed catalog can replace SQLite
// without touching callers. A transaction commits when the callback returns a value and rolls back
// when it returns an error (or throws).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/model.h"
#include "common/error.h"

namespace argon::catalog {

class Tx {
 public:
  virtual ~Tx() = default;

  // Projects. get_project skips deleted projects unless include_deleted.
  virtual Status put_project(Project& p) = 0;  // insert (p.seq == 0, assigns seq) or update
  virtual std::optional<Project> get_project(std::string_view id, bool include_deleted = false) = 0;
  virtual std::vector<Project> list_projects(int64_t after_seq, int limit,
                                             std::string_view search) = 0;
  virtual std::vector<Project> list_deleted_projects() = 0;
  virtual Status delete_project_row(std::string_view id) = 0;

  // Branches. Lists skip rows marked deleted unless include_deleted.
  virtual Status put_branch(const Branch& b) = 0;
  virtual std::optional<Branch> get_branch(std::string_view project_id, std::string_view id,
                                           bool include_deleted = false) = 0;
  virtual std::vector<Branch> list_branches(std::string_view project_id,
                                            bool include_deleted = false) = 0;
  virtual std::vector<Branch> list_expired_branches(int64_t now_ms) = 0;
  virtual Status delete_branch_row(std::string_view id) = 0;

  // Endpoints.
  virtual Status put_endpoint(const Endpoint& e) = 0;
  virtual std::optional<Endpoint> get_endpoint(std::string_view project_id, std::string_view id,
                                               bool include_deleted = false) = 0;
  virtual std::optional<Endpoint> find_endpoint(std::string_view id) = 0;  // any project
  virtual std::vector<Endpoint> list_endpoints(std::string_view project_id) = 0;
  virtual std::vector<Endpoint> list_branch_endpoints(std::string_view branch_id) = 0;
  virtual std::vector<Endpoint> list_all_endpoints() = 0;
  virtual Status delete_endpoint_row(std::string_view id) = 0;

  // Roles and databases (per branch; the path key is the name).
  virtual Status put_role(const Role& r) = 0;
  virtual std::optional<Role> get_role(std::string_view branch_id, std::string_view name) = 0;
  virtual std::vector<Role> list_roles(std::string_view branch_id,
                                       bool include_pending = false) = 0;
  virtual Status delete_role_row(std::string_view branch_id, std::string_view name) = 0;
  virtual Status put_database(Database& d) = 0;  // d.id == 0 inserts and assigns the id
  virtual std::optional<Database> get_database(std::string_view branch_id,
                                               std::string_view name) = 0;
  virtual std::optional<Database> get_database_by_id(int64_t id) = 0;
  virtual std::vector<Database> list_databases(std::string_view branch_id,
                                               bool include_pending = false) = 0;
  virtual Status delete_database_row(int64_t id) = 0;

  // Operations.
  virtual Status put_operation(Operation& op) = 0;  // op.seq == 0 inserts and assigns seq
  virtual std::optional<Operation> get_operation(std::string_view project_id,
                                                 std::string_view id) = 0;
  // Newest first, seq < before_seq (0 = from the newest).
  virtual std::vector<Operation> list_operations(std::string_view project_id, int64_t before_seq,
                                                 int limit) = 0;
  // Every operation that is not terminal, oldest first.
  virtual std::vector<Operation> list_pending_operations() = 0;
  virtual Status delete_project_operations(std::string_view project_id) = 0;

  // Snapshots.
  virtual Status put_snapshot(const Snapshot& s) = 0;
  virtual std::optional<Snapshot> get_snapshot(std::string_view project_id, std::string_view id,
                                               bool include_deleted = false) = 0;
  virtual std::vector<Snapshot> list_snapshots(std::string_view project_id,
                                               bool include_deleted = false) = 0;
  virtual std::vector<Snapshot> list_all_snapshots() = 0;       // every project, deleted ones too
  virtual Status delete_snapshot_row(std::string_view id) = 0;  // with its roles/databases copy

  // API keys.
  virtual Status put_api_key(ApiKey& k) = 0;  // k.id == 0 inserts and assigns the id
  virtual std::optional<ApiKey> get_api_key(int64_t id) = 0;
  virtual std::vector<ApiKey> list_api_keys(bool include_revoked = false) = 0;

  // Small key/value settings (e.g. the installation's owner id).
  virtual std::optional<std::string> get_meta(std::string_view key) = 0;
  virtual Status set_meta(std::string_view key, std::string_view value) = 0;
};

class Catalog {
 public:
  virtual ~Catalog() = default;

  // Runs `fn` in one transaction. Commits if it returns success, rolls back otherwise.
  virtual Status run(const std::function<Status(Tx&)>& fn) = 0;
  // Runs `fn` in a read-only transaction: a consistent view that waits for no writer and makes
  // none wait (GETs, the proxy's wake). A write inside it fails. By default the same as run().
  virtual Status run_read(const std::function<Status(Tx&)>& fn) { return run(fn); }
  // Changes whenever a transaction changed a row, before that run() returns; the same number read
  // twice means nothing changed in between. For caches of catalog state that must never be stale
  // (read it before the read that fills the cache). Thread-safe and never blocks.
  virtual std::uint64_t generation() const = 0;

  // Convenience wrappers returning a value from the transaction (read-write, or read-only).
  template <typename F>
  auto transact(F&& fn) -> decltype(fn(std::declval<Tx&>())) {
    return with_value(fn, false);
  }
  template <typename F>
  auto read(F&& fn) -> decltype(fn(std::declval<Tx&>())) {
    return with_value(fn, true);
  }

 private:
  template <typename F>
  auto with_value(F& fn, bool read_only) -> decltype(fn(std::declval<Tx&>())) {
    using R = decltype(fn(std::declval<Tx&>()));
    std::optional<R> out;
    auto body = [&](Tx& tx) -> Status {
      out.emplace(fn(tx));
      if (!out->has_value()) return std::unexpected(out->error());
      return {};
    };
    Status st = read_only ? run_read(body) : run(body);
    if (!st) {
      if (out && !out->has_value()) return *out;
      return std::unexpected(st.error());
    }
    return std::move(*out);
  }
};

}  // namespace argon::catalog
