#include "catalog/sqlite_catalog.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

namespace argon::catalog {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "argon-catalog-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A data directory from before operations had a kind: each pending operation is given the kind its
// Neon action and parameters meant, so it runs as the same action after the upgrade.
TEST(SqliteCatalogTest, OperationsFromBeforeKindsGetTheirKindFromTheirParameters) {
  TempDir dir;
  const fs::path db = dir.path() / "catalog.db";
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  // The operations table as schema version 2 had it; of the others, only what later migrations
  // alter.
  const char* v2 = R"sql(
CREATE TABLE operations(
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, project_id TEXT NOT NULL,
  branch_id TEXT, endpoint_id TEXT, action TEXT NOT NULL, status TEXT NOT NULL,
  failures_count INTEGER NOT NULL, error TEXT, params TEXT NOT NULL, step INTEGER NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, total_duration_ms INTEGER NOT NULL,
  retry_at INTEGER);
CREATE TABLE endpoints(id TEXT PRIMARY KEY);
CREATE INDEX operations_project ON operations(project_id, seq);
CREATE INDEX operations_pending ON operations(status) WHERE status IN ('scheduling', 'running');
INSERT INTO operations(id, project_id, action, status, failures_count, params, step, created_at, updated_at,
                       total_duration_ms) VALUES
  ('o1', 'p', 'create_timeline', 'scheduling', 0, '{"source":"template"}', 0, 1, 1, 0),
  ('o2', 'p', 'create_timeline', 'scheduling', 0, '{"source":"parent"}', 0, 2, 2, 0),
  ('o3', 'p', 'create_timeline', 'scheduling', 0, '{"source":"snapshot","snapshot_id":"s"}', 0, 3, 3, 0),
  ('o4', 'p', 'create_timeline', 'scheduling', 0, '{"source":"reset","source_branch_id":"b"}', 0, 4, 4, 0),
  ('o5', 'p', 'create_timeline', 'running', 0, '{"snapshot_id":"s","wal_end":"0/1"}', 0, 5, 5, 0),
  ('o6', 'p', 'delete_timeline', 'scheduling', 0, '{"snapshot_id":"s"}', 0, 6, 6, 0),
  ('o7', 'p', 'delete_timeline', 'scheduling', 0, '{}', 0, 7, 7, 0),
  ('o8', 'p', 'swap_binding_id', 'scheduling', 0, '{"target_branch_id":"t"}', 0, 8, 8, 0),
  ('o9', 'p', 'start_compute', 'scheduling', 0, '{}', 0, 9, 9, 0),
  ('o10', 'p', 'suspend_compute', 'finished', 0, '{"branch_id":"b"}', 0, 10, 10, 0),
  ('o11', 'p', 'apply_config', 'scheduling', 0, '{"changes":[]}', 0, 11, 11, 0);
PRAGMA user_version = 2;
)sql";
  char* err = nullptr;
  ASSERT_EQ(sqlite3_exec(raw, v2, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_close(raw);

  auto cat = SqliteCatalog::open(db);
  ASSERT_TRUE(cat) << cat.error().message << " " << cat.error().detail;
  auto ops = (*cat)->transact(
      [](Tx& tx) -> Result<std::vector<Operation>> { return tx.list_operations("p", 0, 100); });
  ASSERT_TRUE(ops);
  std::map<std::string, std::pair<std::string, std::string>> got;  // id -> (kind, action)
  for (const auto& op : *ops) got[op.id] = {op.kind, op.action};
  const std::map<std::string, std::pair<std::string, std::string>> want = {
      {"o1", {"create_branch", "create_timeline"}},
      {"o2", {"create_branch", "create_timeline"}},
      {"o3", {"restore_branch", "create_timeline"}},
      {"o4", {"reset_branch", "create_timeline"}},
      {"o5", {"create_snapshot", "create_timeline"}},
      {"o6", {"delete_snapshot", "delete_timeline"}},
      {"o7", {"delete_branch", "delete_timeline"}},
      {"o8", {"finalize_restore", "swap_binding_id"}},
      {"o9", {"start_compute", "start_compute"}},
      {"o10", {"suspend_compute", "suspend_compute"}},
      {"o11", {"apply_config", "apply_config"}},
  };
  EXPECT_EQ(got, want);

  // New rows keep the kind they are written with.
  auto written = (*cat)->transact([](Tx& tx) -> Result<std::optional<Operation>> {
    Operation op;
    op.id = "o12";
    op.project_id = "p";
    op.kind = "create_snapshot";
    op.action = "create_timeline";
    ARGON_RETURN_IF_ERROR(tx.put_operation(op));
    return tx.get_operation("p", "o12");
  });
  ASSERT_TRUE(written && *written);
  EXPECT_EQ((*written)->kind, "create_snapshot");
}

}  // namespace
}  // namespace argon::catalog

namespace argon::catalog {
namespace {

// Reads run on a connection of their own: they see every committed write, and cannot write.
TEST(SqliteCatalogTest, ReadTransactionsSeeCommitsAndCannotWrite) {
  TempDir dir;
  auto cat = SqliteCatalog::open(dir.path() / "catalog.db");
  ASSERT_TRUE(cat) << cat.error().detail;
  ASSERT_TRUE((*cat)->run([](Tx& tx) { return tx.set_meta("k", "one"); }));
  auto seen =
      (*cat)->read([](Tx& tx) -> Result<std::string> { return tx.get_meta("k").value_or(""); });
  ASSERT_TRUE(seen);
  EXPECT_EQ(*seen, "one");

  auto wrote = (*cat)->run_read([](Tx& tx) { return tx.set_meta("k", "two"); });
  EXPECT_FALSE(wrote);
  auto after =
      (*cat)->read([](Tx& tx) -> Result<std::string> { return tx.get_meta("k").value_or(""); });
  ASSERT_TRUE(after);
  EXPECT_EQ(*after, "one");

  // A read open across a commit keeps its view; the next one sees the commit.
  ASSERT_TRUE((*cat)->run_read([&](Tx& tx) -> Status {
    EXPECT_EQ(tx.get_meta("k").value_or(""), "one");
    ARGON_RETURN_IF_ERROR((*cat)->run([](Tx& w) { return w.set_meta("k", "three"); }));
    EXPECT_EQ(tx.get_meta("k").value_or(""), "one");  // the writer did not wait for this read
    return {};
  }));
  auto last =
      (*cat)->read([](Tx& tx) -> Result<std::string> { return tx.get_meta("k").value_or(""); });
  ASSERT_TRUE(last);
  EXPECT_EQ(*last, "three");
}

TEST(SqliteCatalogTest, TheGenerationChangesWithEveryWriteAndOnlyThen) {
  TempDir dir;
  auto cat = SqliteCatalog::open(dir.path() / "catalog.db");
  ASSERT_TRUE(cat) << cat.error().detail;
  const auto start = (*cat)->generation();
  ASSERT_TRUE((*cat)->read([](Tx& tx) -> Result<bool> { return tx.get_meta("k").has_value(); }));
  ASSERT_TRUE((*cat)->run([](Tx& tx) -> Status {
    (void)tx.get_meta("k");  // a write transaction that only reads
    return {};
  }));
  EXPECT_EQ((*cat)->generation(), start) << "nothing changed";
  ASSERT_TRUE((*cat)->run([](Tx& tx) { return tx.set_meta("k", "one"); }));
  const auto after_write = (*cat)->generation();
  EXPECT_NE(after_write, start);
  ASSERT_TRUE((*cat)->run([](Tx& tx) { return tx.set_meta("k", "two"); }));
  EXPECT_NE((*cat)->generation(), after_write);
}

}  // namespace
}  // namespace argon::catalog
