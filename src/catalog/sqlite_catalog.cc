#include "catalog/sqlite_catalog.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>

namespace argon::catalog {
namespace {

// Numbered migrations; index + 1 is the schema version. Never edit one that has shipped: append.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE projects(
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
  region_id TEXT NOT NULL, pg_version INTEGER NOT NULL, store_passwords INTEGER NOT NULL,
  history_retention_seconds INTEGER NOT NULL, settings TEXT NOT NULL,
  default_endpoint_settings TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  deleted_at INTEGER);
CREATE TABLE branches(
  id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, parent_id TEXT,
  parent_lsn TEXT, parent_timestamp INTEGER, is_default INTEGER NOT NULL,
  is_protected INTEGER NOT NULL, current_state TEXT NOT NULL, pending_state TEXT,
  state_changed_at INTEGER NOT NULL, expires_at INTEGER, ttl_interval_seconds INTEGER,
  init_source TEXT NOT NULL, logical_size INTEGER, restored_from TEXT, restored_as TEXT,
  restore_status TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  deleted INTEGER NOT NULL);
CREATE INDEX branches_project ON branches(project_id);
CREATE TABLE endpoints(
  id TEXT PRIMARY KEY, project_id TEXT NOT NULL, branch_id TEXT NOT NULL, type TEXT NOT NULL,
  name TEXT, current_state TEXT NOT NULL, pending_state TEXT, disabled INTEGER NOT NULL,
  passwordless_access INTEGER NOT NULL, suspend_timeout_seconds INTEGER NOT NULL,
  min_cu REAL NOT NULL, max_cu REAL NOT NULL, settings TEXT NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, last_active INTEGER,
  started_at INTEGER, suspended_at INTEGER, deleted INTEGER NOT NULL);
CREATE INDEX endpoints_project ON endpoints(project_id);
CREATE INDEX endpoints_branch ON endpoints(branch_id);
CREATE TABLE roles(
  branch_id TEXT NOT NULL, name TEXT NOT NULL, project_id TEXT NOT NULL, password TEXT NOT NULL,
  is_protected INTEGER NOT NULL, no_login INTEGER NOT NULL, created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL, pending_delete INTEGER NOT NULL, PRIMARY KEY(branch_id, name));
CREATE TABLE databases(
  id INTEGER PRIMARY KEY AUTOINCREMENT, project_id TEXT NOT NULL, branch_id TEXT NOT NULL,
  name TEXT NOT NULL, owner_name TEXT NOT NULL, created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL, pending_delete INTEGER NOT NULL);
CREATE INDEX databases_branch ON databases(branch_id);
CREATE TABLE operations(
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, project_id TEXT NOT NULL,
  branch_id TEXT, endpoint_id TEXT, action TEXT NOT NULL, status TEXT NOT NULL,
  failures_count INTEGER NOT NULL, error TEXT, params TEXT NOT NULL, step INTEGER NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, total_duration_ms INTEGER NOT NULL,
  retry_at INTEGER);
CREATE INDEX operations_project ON operations(project_id, seq);
CREATE INDEX operations_pending ON operations(status) WHERE status IN ('scheduling', 'running');
CREATE TABLE api_keys(
  id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL, last_used_at INTEGER, last_used_from_addr TEXT NOT NULL,
  revoked INTEGER NOT NULL);
)sql",
    R"sql(
CREATE TABLE snapshots(
  id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, source_branch_id TEXT NOT NULL,
  lsn TEXT, timestamp INTEGER, state TEXT NOT NULL, expires_at INTEGER, full_size INTEGER,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, deleted INTEGER NOT NULL);
CREATE INDEX snapshots_project ON snapshots(project_id, created_at);
ALTER TABLE branches ADD COLUMN restore_target TEXT;
)sql",
    // Operations record the kind of work (ops/params.h) beside Neon's action name, which several
    // kinds share; rows from before are given theirs by the parameters they hold. `step` and
    // `retry_at` were never used.
    R"sql(
ALTER TABLE operations ADD COLUMN kind TEXT NOT NULL DEFAULT '';
UPDATE operations SET kind = CASE
  WHEN action = 'swap_binding_id' THEN 'finalize_restore'
  WHEN action = 'create_timeline' AND json_extract(params, '$.source') = 'snapshot' THEN 'restore_branch'
  WHEN action = 'create_timeline' AND json_extract(params, '$.source') = 'reset' THEN 'reset_branch'
  WHEN action = 'create_timeline' AND json_extract(params, '$.source') IS NULL
       AND json_extract(params, '$.snapshot_id') IS NOT NULL THEN 'create_snapshot'
  WHEN action = 'create_timeline' THEN 'create_branch'
  WHEN action = 'delete_timeline' AND json_extract(params, '$.snapshot_id') IS NOT NULL THEN 'delete_snapshot'
  WHEN action = 'delete_timeline' THEN 'delete_branch'
  ELSE action END;
ALTER TABLE operations DROP COLUMN step;
ALTER TABLE operations DROP COLUMN retry_at;
)sql",
    // The restore gate as endpoint state (model.h Endpoint::switching_op).
    R"sql(
ALTER TABLE endpoints ADD COLUMN switching_op TEXT;
)sql",
};

// A prepared statement with positional binding (1-based, in call order) and column reading.
class Stmt {
 public:
  Stmt(sqlite3* db, std::string_view sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &st_, nullptr) !=
        SQLITE_OK) {
      throw std::runtime_error(fmt::format("prepare failed: {}: {}", sqlite3_errmsg(db), sql));
    }
  }
  ~Stmt() { sqlite3_finalize(st_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(std::string_view v) {
    sqlite3_bind_text(st_, ++bi_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(const std::string& v) { return bind(std::string_view(v)); }
  Stmt& bind(const char* v) { return bind(std::string_view(v)); }
  Stmt& bind(int64_t v) {
    sqlite3_bind_int64(st_, ++bi_, v);
    return *this;
  }
  Stmt& bind(int v) { return bind(static_cast<int64_t>(v)); }
  Stmt& bind(bool v) { return bind(static_cast<int64_t>(v ? 1 : 0)); }
  Stmt& bind(double v) {
    sqlite3_bind_double(st_, ++bi_, v);
    return *this;
  }
  template <typename T>
  Stmt& bind(const std::optional<T>& v) {
    if (v) return bind(*v);
    sqlite3_bind_null(st_, ++bi_);
    return *this;
  }

  // Returns true while a row is available.
  bool step() {
    int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) {
      ci_ = 0;
      return true;
    }
    if (rc == SQLITE_DONE) return false;
    throw std::runtime_error(fmt::format("sqlite step failed: {}", sqlite3_errmsg(db_)));
  }
  void exec() {
    while (step()) {
    }
  }

  std::string text() {
    auto* p = sqlite3_column_text(st_, ci_);
    int n = sqlite3_column_bytes(st_, ci_++);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n)) : "";
  }
  std::optional<std::string> opt_text() {
    if (sqlite3_column_type(st_, ci_) == SQLITE_NULL) {
      ++ci_;
      return std::nullopt;
    }
    return text();
  }
  int64_t i64() { return sqlite3_column_int64(st_, ci_++); }
  std::optional<int64_t> opt_i64() {
    if (sqlite3_column_type(st_, ci_) == SQLITE_NULL) {
      ++ci_;
      return std::nullopt;
    }
    return i64();
  }
  bool boolean() { return i64() != 0; }
  double real() { return sqlite3_column_double(st_, ci_++); }

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
  int bi_ = 0;
  int ci_ = 0;
};

constexpr std::string_view kProjectCols =
    "seq, id, name, region_id, pg_version, store_passwords, history_retention_seconds, settings, "
    "default_endpoint_settings, created_at, updated_at, deleted_at";
constexpr std::string_view kBranchCols =
    "id, project_id, name, parent_id, parent_lsn, parent_timestamp, is_default, is_protected, "
    "current_state, pending_state, state_changed_at, expires_at, ttl_interval_seconds, "
    "init_source, logical_size, restored_from, restored_as, restore_status, created_at, "
    "updated_at, deleted, restore_target";
constexpr std::string_view kEndpointCols =
    "id, project_id, branch_id, type, name, current_state, pending_state, disabled, "
    "passwordless_access, suspend_timeout_seconds, min_cu, max_cu, settings, created_at, "
    "updated_at, last_active, started_at, suspended_at, deleted, switching_op";
constexpr std::string_view kRoleCols =
    "branch_id, name, project_id, password, is_protected, no_login, created_at, updated_at, "
    "pending_delete";
constexpr std::string_view kDatabaseCols =
    "id, project_id, branch_id, name, owner_name, created_at, updated_at, pending_delete";
constexpr std::string_view kOperationCols =
    "seq, id, project_id, branch_id, endpoint_id, kind, action, status, failures_count, error, "
    "params, "
    "created_at, updated_at, total_duration_ms";
constexpr std::string_view kSnapshotCols =
    "id, project_id, name, source_branch_id, lsn, timestamp, state, expires_at, full_size, "
    "created_at, "
    "updated_at, deleted";
constexpr std::string_view kApiKeyCols =
    "id, name, hash, created_at, last_used_at, last_used_from_addr, revoked";

std::string placeholders(std::string_view cols) {
  size_t n = static_cast<size_t>(std::count(cols.begin(), cols.end(), ',')) + 1;
  std::string out;
  for (size_t i = 0; i < n; ++i) out += i ? ", ?" : "?";
  return out;
}

std::string upsert_sql(std::string_view table, std::string_view cols) {
  return fmt::format("INSERT OR REPLACE INTO {} ({}) VALUES ({})", table, cols, placeholders(cols));
}

Project read_project(Stmt& s) {
  Project p;
  p.seq = s.i64();
  p.id = s.text();
  p.name = s.text();
  p.region_id = s.text();
  p.pg_version = static_cast<int>(s.i64());
  p.store_passwords = s.boolean();
  p.history_retention_seconds = s.i64();
  p.settings_json = s.text();
  p.default_endpoint_settings_json = s.text();
  p.created_at = s.i64();
  p.updated_at = s.i64();
  p.deleted_at = s.opt_i64();
  return p;
}

Branch read_branch(Stmt& s) {
  Branch b;
  b.id = s.text();
  b.project_id = s.text();
  b.name = s.text();
  b.parent_id = s.opt_text();
  b.parent_lsn = s.opt_text();
  b.parent_timestamp = s.opt_i64();
  b.is_default = s.boolean();
  b.is_protected = s.boolean();
  b.current_state = s.text();
  b.pending_state = s.opt_text();
  b.state_changed_at = s.i64();
  b.expires_at = s.opt_i64();
  b.ttl_interval_seconds = s.opt_i64();
  b.init_source = s.text();
  b.logical_size = s.opt_i64();
  b.restored_from = s.opt_text();
  b.restored_as = s.opt_text();
  b.restore_status = s.opt_text();
  b.created_at = s.i64();
  b.updated_at = s.i64();
  b.deleted = s.boolean();
  b.restore_target = s.opt_text();
  return b;
}

Endpoint read_endpoint(Stmt& s) {
  Endpoint e;
  e.id = s.text();
  e.project_id = s.text();
  e.branch_id = s.text();
  e.type = s.text();
  e.name = s.opt_text();
  e.current_state = s.text();
  e.pending_state = s.opt_text();
  e.disabled = s.boolean();
  e.passwordless_access = s.boolean();
  e.suspend_timeout_seconds = s.i64();
  e.autoscaling_limit_min_cu = s.real();
  e.autoscaling_limit_max_cu = s.real();
  e.settings_json = s.text();
  e.created_at = s.i64();
  e.updated_at = s.i64();
  e.last_active = s.opt_i64();
  e.started_at = s.opt_i64();
  e.suspended_at = s.opt_i64();
  e.deleted = s.boolean();
  e.switching_op = s.opt_text();
  return e;
}

Role read_role(Stmt& s) {
  Role r;
  r.branch_id = s.text();
  r.name = s.text();
  r.project_id = s.text();
  r.password = s.text();
  r.is_protected = s.boolean();
  r.no_login = s.boolean();
  r.created_at = s.i64();
  r.updated_at = s.i64();
  r.pending_delete = s.boolean();
  return r;
}

Database read_database(Stmt& s) {
  Database d;
  d.id = s.i64();
  d.project_id = s.text();
  d.branch_id = s.text();
  d.name = s.text();
  d.owner_name = s.text();
  d.created_at = s.i64();
  d.updated_at = s.i64();
  d.pending_delete = s.boolean();
  return d;
}

Operation read_operation(Stmt& s) {
  Operation o;
  o.seq = s.i64();
  o.id = s.text();
  o.project_id = s.text();
  o.branch_id = s.opt_text();
  o.endpoint_id = s.opt_text();
  o.kind = s.text();
  o.action = s.text();
  o.status = s.text();
  o.failures_count = static_cast<int>(s.i64());
  o.error = s.opt_text();
  o.params_json = s.text();
  o.created_at = s.i64();
  o.updated_at = s.i64();
  o.total_duration_ms = s.i64();
  return o;
}

Snapshot read_snapshot(Stmt& s) {
  Snapshot n;
  n.id = s.text();
  n.project_id = s.text();
  n.name = s.text();
  n.source_branch_id = s.text();
  n.lsn = s.opt_text();
  n.timestamp = s.opt_i64();
  n.state = s.text();
  n.expires_at = s.opt_i64();
  n.full_size = s.opt_i64();
  n.created_at = s.i64();
  n.updated_at = s.i64();
  n.deleted = s.boolean();
  return n;
}

ApiKey read_api_key(Stmt& s) {
  ApiKey k;
  k.id = s.i64();
  k.name = s.text();
  k.hash = s.text();
  k.created_at = s.i64();
  k.last_used_at = s.opt_i64();
  k.last_used_from_addr = s.text();
  k.revoked = s.boolean();
  return k;
}

template <typename T, typename Reader>
std::vector<T> collect(Stmt& s, Reader read) {
  std::vector<T> out;
  while (s.step()) out.push_back(read(s));
  return out;
}

template <typename T, typename Reader>
std::optional<T> first(Stmt& s, Reader read) {
  if (s.step()) return read(s);
  return std::nullopt;
}

class SqliteTx final : public Tx {
 public:
  explicit SqliteTx(sqlite3* db) : db_(db) {}

  Stmt q(std::string_view sql) { return Stmt(db_, sql); }

  Status put_project(Project& p) override {
    Stmt s(db_, upsert_sql("projects", kProjectCols));
    if (p.seq == 0) {
      s.bind(std::optional<int64_t>{});
    } else {
      s.bind(p.seq);
    }
    s.bind(p.id).bind(p.name).bind(p.region_id).bind(p.pg_version).bind(p.store_passwords);
    s.bind(p.history_retention_seconds)
        .bind(p.settings_json)
        .bind(p.default_endpoint_settings_json);
    s.bind(p.created_at).bind(p.updated_at).bind(p.deleted_at);
    s.exec();
    if (p.seq == 0) p.seq = sqlite3_last_insert_rowid(db_);
    return {};
  }
  std::optional<Project> get_project(std::string_view id, bool include_deleted) override {
    Stmt s(db_, fmt::format("SELECT {} FROM projects WHERE id = ?{}", kProjectCols,
                            include_deleted ? "" : " AND deleted_at IS NULL"));
    s.bind(id);
    return first<Project>(s, read_project);
  }
  std::vector<Project> list_projects(int64_t after_seq, int limit,
                                     std::string_view search) override {
    Stmt s(db_, fmt::format("SELECT {} FROM projects WHERE deleted_at IS NULL AND seq > ? AND "
                            "(? = '' OR instr(lower(name), lower(?)) > 0 OR instr(id, ?) > 0) "
                            "ORDER BY seq LIMIT ?",
                            kProjectCols));
    s.bind(after_seq).bind(search).bind(search).bind(search).bind(limit);
    return collect<Project>(s, read_project);
  }
  std::vector<Project> list_deleted_projects() override {
    Stmt s(db_, fmt::format("SELECT {} FROM projects WHERE deleted_at IS NOT NULL", kProjectCols));
    return collect<Project>(s, read_project);
  }
  Status delete_project_row(std::string_view id) override {
    Stmt(db_, "DELETE FROM projects WHERE id = ?").bind(id).exec();
    return {};
  }

  Status put_branch(const Branch& b) override {
    Stmt s(db_, upsert_sql("branches", kBranchCols));
    s.bind(b.id).bind(b.project_id).bind(b.name).bind(b.parent_id).bind(b.parent_lsn);
    s.bind(b.parent_timestamp).bind(b.is_default).bind(b.is_protected).bind(b.current_state);
    s.bind(b.pending_state)
        .bind(b.state_changed_at)
        .bind(b.expires_at)
        .bind(b.ttl_interval_seconds);
    s.bind(b.init_source).bind(b.logical_size).bind(b.restored_from).bind(b.restored_as);
    s.bind(b.restore_status)
        .bind(b.created_at)
        .bind(b.updated_at)
        .bind(b.deleted)
        .bind(b.restore_target);
    s.exec();
    return {};
  }
  std::optional<Branch> get_branch(std::string_view project_id, std::string_view id,
                                   bool include_deleted) override {
    Stmt s(db_, fmt::format("SELECT {} FROM branches WHERE project_id = ? AND id = ?{}",
                            kBranchCols, include_deleted ? "" : " AND deleted = 0"));
    s.bind(project_id).bind(id);
    return first<Branch>(s, read_branch);
  }
  std::vector<Branch> list_branches(std::string_view project_id, bool include_deleted) override {
    Stmt s(db_,
           fmt::format("SELECT {} FROM branches WHERE project_id = ?{} ORDER BY created_at, id",
                       kBranchCols, include_deleted ? "" : " AND deleted = 0"));
    s.bind(project_id);
    return collect<Branch>(s, read_branch);
  }
  std::vector<Branch> list_expired_branches(int64_t now_ms) override {
    Stmt s(db_, fmt::format("SELECT {} FROM branches WHERE deleted = 0 AND expires_at IS NOT NULL "
                            "AND expires_at <= ?",
                            kBranchCols));
    s.bind(now_ms);
    return collect<Branch>(s, read_branch);
  }
  Status delete_branch_row(std::string_view id) override {
    Stmt(db_, "DELETE FROM branches WHERE id = ?").bind(id).exec();
    Stmt(db_, "DELETE FROM roles WHERE branch_id = ?").bind(id).exec();
    Stmt(db_, "DELETE FROM databases WHERE branch_id = ?").bind(id).exec();
    return {};
  }

  Status put_endpoint(const Endpoint& e) override {
    Stmt s(db_, upsert_sql("endpoints", kEndpointCols));
    s.bind(e.id).bind(e.project_id).bind(e.branch_id).bind(e.type).bind(e.name);
    s.bind(e.current_state).bind(e.pending_state).bind(e.disabled).bind(e.passwordless_access);
    s.bind(e.suspend_timeout_seconds).bind(e.autoscaling_limit_min_cu);
    s.bind(e.autoscaling_limit_max_cu).bind(e.settings_json).bind(e.created_at).bind(e.updated_at);
    s.bind(e.last_active)
        .bind(e.started_at)
        .bind(e.suspended_at)
        .bind(e.deleted)
        .bind(e.switching_op);
    s.exec();
    return {};
  }
  std::optional<Endpoint> get_endpoint(std::string_view project_id, std::string_view id,
                                       bool include_deleted) override {
    Stmt s(db_, fmt::format("SELECT {} FROM endpoints WHERE project_id = ? AND id = ?{}",
                            kEndpointCols, include_deleted ? "" : " AND deleted = 0"));
    s.bind(project_id).bind(id);
    return first<Endpoint>(s, read_endpoint);
  }
  std::optional<Endpoint> find_endpoint(std::string_view id) override {
    Stmt s(db_,
           fmt::format("SELECT {} FROM endpoints WHERE id = ? AND deleted = 0", kEndpointCols));
    s.bind(id);
    return first<Endpoint>(s, read_endpoint);
  }
  std::vector<Endpoint> list_endpoints(std::string_view project_id) override {
    Stmt s(db_, fmt::format("SELECT {} FROM endpoints WHERE project_id = ? AND deleted = 0 "
                            "ORDER BY created_at, id",
                            kEndpointCols));
    s.bind(project_id);
    return collect<Endpoint>(s, read_endpoint);
  }
  std::vector<Endpoint> list_branch_endpoints(std::string_view branch_id) override {
    Stmt s(db_, fmt::format("SELECT {} FROM endpoints WHERE branch_id = ? AND deleted = 0 "
                            "ORDER BY created_at, id",
                            kEndpointCols));
    s.bind(branch_id);
    return collect<Endpoint>(s, read_endpoint);
  }
  std::vector<Endpoint> list_all_endpoints() override {
    Stmt s(db_, fmt::format("SELECT {} FROM endpoints", kEndpointCols));
    return collect<Endpoint>(s, read_endpoint);
  }
  Status delete_endpoint_row(std::string_view id) override {
    Stmt(db_, "DELETE FROM endpoints WHERE id = ?").bind(id).exec();
    return {};
  }

  Status put_role(const Role& r) override {
    Stmt s(db_, upsert_sql("roles", kRoleCols));
    s.bind(r.branch_id).bind(r.name).bind(r.project_id).bind(r.password).bind(r.is_protected);
    s.bind(r.no_login).bind(r.created_at).bind(r.updated_at).bind(r.pending_delete);
    s.exec();
    return {};
  }
  std::optional<Role> get_role(std::string_view branch_id, std::string_view name) override {
    Stmt s(db_, fmt::format("SELECT {} FROM roles WHERE branch_id = ? AND name = ?", kRoleCols));
    s.bind(branch_id).bind(name);
    return first<Role>(s, read_role);
  }
  std::vector<Role> list_roles(std::string_view branch_id, bool include_pending) override {
    Stmt s(db_, fmt::format("SELECT {} FROM roles WHERE branch_id = ?{} ORDER BY created_at, name",
                            kRoleCols, include_pending ? "" : " AND pending_delete = 0"));
    s.bind(branch_id);
    return collect<Role>(s, read_role);
  }
  Status delete_role_row(std::string_view branch_id, std::string_view name) override {
    Stmt(db_, "DELETE FROM roles WHERE branch_id = ? AND name = ?")
        .bind(branch_id)
        .bind(name)
        .exec();
    return {};
  }

  Status put_database(Database& d) override {
    Stmt s(db_, upsert_sql("databases", kDatabaseCols));
    if (d.id == 0) {
      s.bind(std::optional<int64_t>{});
    } else {
      s.bind(d.id);
    }
    s.bind(d.project_id).bind(d.branch_id).bind(d.name).bind(d.owner_name).bind(d.created_at);
    s.bind(d.updated_at).bind(d.pending_delete);
    s.exec();
    if (d.id == 0) d.id = sqlite3_last_insert_rowid(db_);
    return {};
  }
  std::optional<Database> get_database(std::string_view branch_id, std::string_view name) override {
    Stmt s(db_, fmt::format("SELECT {} FROM databases WHERE branch_id = ? AND name = ? "
                            "AND pending_delete = 0",
                            kDatabaseCols));
    s.bind(branch_id).bind(name);
    return first<Database>(s, read_database);
  }
  std::optional<Database> get_database_by_id(int64_t id) override {
    Stmt s(db_, fmt::format("SELECT {} FROM databases WHERE id = ?", kDatabaseCols));
    s.bind(id);
    return first<Database>(s, read_database);
  }
  std::vector<Database> list_databases(std::string_view branch_id, bool include_pending) override {
    Stmt s(db_, fmt::format("SELECT {} FROM databases WHERE branch_id = ?{} ORDER BY id",
                            kDatabaseCols, include_pending ? "" : " AND pending_delete = 0"));
    s.bind(branch_id);
    return collect<Database>(s, read_database);
  }
  Status delete_database_row(int64_t id) override {
    Stmt(db_, "DELETE FROM databases WHERE id = ?").bind(id).exec();
    return {};
  }

  Status put_operation(Operation& o) override {
    Stmt s(db_, upsert_sql("operations", kOperationCols));
    if (o.seq == 0) {
      s.bind(std::optional<int64_t>{});
    } else {
      s.bind(o.seq);
    }
    s.bind(o.id)
        .bind(o.project_id)
        .bind(o.branch_id)
        .bind(o.endpoint_id)
        .bind(o.kind)
        .bind(o.action);
    s.bind(o.status).bind(o.failures_count).bind(o.error).bind(o.params_json);
    s.bind(o.created_at).bind(o.updated_at).bind(o.total_duration_ms);
    s.exec();
    if (o.seq == 0) o.seq = sqlite3_last_insert_rowid(db_);
    return {};
  }
  std::optional<Operation> get_operation(std::string_view project_id,
                                         std::string_view id) override {
    Stmt s(db_, fmt::format("SELECT {} FROM operations WHERE project_id = ? AND id = ?",
                            kOperationCols));
    s.bind(project_id).bind(id);
    return first<Operation>(s, read_operation);
  }
  std::vector<Operation> list_operations(std::string_view project_id, int64_t before_seq,
                                         int limit) override {
    Stmt s(db_, fmt::format("SELECT {} FROM operations WHERE project_id = ? AND (? = 0 OR seq < ?) "
                            "ORDER BY seq DESC LIMIT ?",
                            kOperationCols));
    s.bind(project_id).bind(before_seq).bind(before_seq).bind(limit);
    return collect<Operation>(s, read_operation);
  }
  std::vector<Operation> list_pending_operations() override {
    Stmt s(db_, fmt::format("SELECT {} FROM operations WHERE status IN ('scheduling', 'running') "
                            "ORDER BY seq",
                            kOperationCols));
    return collect<Operation>(s, read_operation);
  }
  Status delete_project_operations(std::string_view project_id) override {
    Stmt(db_, "DELETE FROM operations WHERE project_id = ?").bind(project_id).exec();
    return {};
  }

  Status put_snapshot(const Snapshot& n) override {
    Stmt s(db_, upsert_sql("snapshots", kSnapshotCols));
    s.bind(n.id)
        .bind(n.project_id)
        .bind(n.name)
        .bind(n.source_branch_id)
        .bind(n.lsn)
        .bind(n.timestamp);
    s.bind(n.state)
        .bind(n.expires_at)
        .bind(n.full_size)
        .bind(n.created_at)
        .bind(n.updated_at)
        .bind(n.deleted);
    s.exec();
    return {};
  }
  std::optional<Snapshot> get_snapshot(std::string_view project_id, std::string_view id,
                                       bool include_deleted) override {
    Stmt s(db_, fmt::format("SELECT {} FROM snapshots WHERE project_id = ? AND id = ?{}",
                            kSnapshotCols, include_deleted ? "" : " AND deleted = 0"));
    s.bind(project_id).bind(id);
    return first<Snapshot>(s, read_snapshot);
  }
  std::vector<Snapshot> list_snapshots(std::string_view project_id, bool include_deleted) override {
    Stmt s(db_,
           fmt::format("SELECT {} FROM snapshots WHERE project_id = ?{} ORDER BY created_at, id",
                       kSnapshotCols, include_deleted ? "" : " AND deleted = 0"));
    s.bind(project_id);
    return collect<Snapshot>(s, read_snapshot);
  }
  std::vector<Snapshot> list_all_snapshots() override {
    Stmt s(db_, fmt::format("SELECT {} FROM snapshots", kSnapshotCols));
    return collect<Snapshot>(s, read_snapshot);
  }
  Status delete_snapshot_row(std::string_view id) override {
    Stmt(db_, "DELETE FROM snapshots WHERE id = ?").bind(id).exec();
    Stmt(db_, "DELETE FROM roles WHERE branch_id = ?").bind(id).exec();  // its copy, under its id
    Stmt(db_, "DELETE FROM databases WHERE branch_id = ?").bind(id).exec();
    return {};
  }

  Status put_api_key(ApiKey& k) override {
    Stmt s(db_, upsert_sql("api_keys", kApiKeyCols));
    if (k.id == 0) {
      s.bind(std::optional<int64_t>{});
    } else {
      s.bind(k.id);
    }
    s.bind(k.name).bind(k.hash).bind(k.created_at).bind(k.last_used_at);
    s.bind(k.last_used_from_addr).bind(k.revoked);
    s.exec();
    if (k.id == 0) k.id = sqlite3_last_insert_rowid(db_);
    return {};
  }
  std::optional<ApiKey> get_api_key(int64_t id) override {
    Stmt s(db_, fmt::format("SELECT {} FROM api_keys WHERE id = ?", kApiKeyCols));
    s.bind(id);
    return first<ApiKey>(s, read_api_key);
  }
  std::vector<ApiKey> list_api_keys(bool include_revoked) override {
    Stmt s(db_, fmt::format("SELECT {} FROM api_keys{} ORDER BY id", kApiKeyCols,
                            include_revoked ? "" : " WHERE revoked = 0"));
    return collect<ApiKey>(s, read_api_key);
  }

  std::optional<std::string> get_meta(std::string_view key) override {
    Stmt s(db_, "SELECT value FROM meta WHERE key = ?");
    s.bind(key);
    if (s.step()) return s.text();
    return std::nullopt;
  }
  Status set_meta(std::string_view key, std::string_view value) override {
    Stmt(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)").bind(key).bind(value).exec();
    return {};
  }

 private:
  sqlite3* db_;
};

Status exec_sql(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown";
    sqlite3_free(err);
    return fail(ErrorCode::kInternal, "catalog error", fmt::format("{}: {}", msg, sql));
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<SqliteCatalog>> SqliteCatalog::open(const std::filesystem::path& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return fail(ErrorCode::kInternal,
                fmt::format("cannot open catalog {}: {}", path.string(), msg));
  }
  ::chmod(path.c_str(), 0600);
  std::unique_ptr<SqliteCatalog> cat(new SqliteCatalog(db));
  sqlite3_busy_timeout(db, 5000);
  for (const char* pragma :
       {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=OFF"}) {
    if (auto st = exec_sql(db, pragma); !st) return std::unexpected(st.error());
  }
  if (auto st = cat->migrate(); !st) return std::unexpected(st.error());
  rc = sqlite3_open_v2(path.c_str(), &cat->reader_, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX,
                       nullptr);
  if (rc != SQLITE_OK) {
    return fail(ErrorCode::kInternal, fmt::format("cannot open catalog {} for reading: {}",
                                                  path.string(), sqlite3_errmsg(cat->reader_)));
  }
  sqlite3_busy_timeout(cat->reader_, 5000);
  return cat;
}

SqliteCatalog::~SqliteCatalog() {
  sqlite3_close(reader_);
  sqlite3_close(db_);
}

Status SqliteCatalog::migrate() {
  int version = 0;
  {
    Stmt s(db_, "PRAGMA user_version");
    if (s.step()) version = static_cast<int>(s.i64());
  }
  const int latest = static_cast<int>(std::size(kMigrations));
  if (version > latest) {
    return fail(
        ErrorCode::kInternal,
        fmt::format("catalog schema version {} is newer than this argond ({}); upgrade argond",
                    version, latest));
  }
  for (int v = version; v < latest; ++v) {
    if (auto st = exec_sql(db_, "BEGIN IMMEDIATE"); !st) return st;
    auto st = exec_sql(db_, kMigrations[v]);
    if (st) st = exec_sql(db_, fmt::format("PRAGMA user_version = {}", v + 1).c_str());
    if (!st) {
      (void)exec_sql(db_, "ROLLBACK");  // the migration's error is the one to report
      return st;
    }
    if (auto c = exec_sql(db_, "COMMIT"); !c) return c;
    spdlog::info("catalog migrated to schema version {}", v + 1);
  }
  return {};
}

Status SqliteCatalog::run(const std::function<Status(Tx&)>& fn) {
  std::lock_guard lock(mu_);
  Status st = transaction(db_, "BEGIN IMMEDIATE", fn);
  // Rows changed and rolled back count too: a change of number where nothing changed is harmless.
  generation_.store(static_cast<std::uint64_t>(sqlite3_total_changes64(db_)));
  return st;
}

Status SqliteCatalog::run_read(const std::function<Status(Tx&)>& fn) {
  std::lock_guard lock(read_mu_);
  return transaction(reader_, "BEGIN", fn);
}

Status SqliteCatalog::transaction(sqlite3* db, const char* begin,
                                  const std::function<Status(Tx&)>& fn) {
  if (auto st = exec_sql(db, begin); !st) return st;
  SqliteTx tx(db);
  Status result;
  try {
    result = fn(tx);
  } catch (const std::exception& e) {
    result = fail(ErrorCode::kInternal, "catalog error", e.what());
  }
  if (!result) {
    (void)exec_sql(db, "ROLLBACK");  // the callback's or COMMIT's error is the one to report
    return result;
  }
  if (auto st = exec_sql(db, "COMMIT"); !st) {
    (void)exec_sql(db, "ROLLBACK");  // the callback's or COMMIT's error is the one to report
    return st;
  }
  return {};
}

}  // namespace argon::catalog
