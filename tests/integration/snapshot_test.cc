// Snapshots and restores against real computes, through the proxy and the connection string the
// API returned: the agent-versioning pattern (snapshot each version, restore in place, the string
// never changes) and a preview restore finalized later.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "common/clock.h"
#include "common/pg_control.h"
#include "common/pg_install.h"
#include "common/process_runner.h"
#include "harness.h"

namespace argon::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

using Project = TestProject;

Project create_project(Argond& a) { return argon::testing::create_project(a, {{"name", "agent"}}); }

std::string conninfo(const Argond& a, const Project& p, const std::string& endpoint) {
  return a.owner_conninfo(p.password, endpoint);
}

// Columns of table `t` as "a,b,c", or "-" when there is no such table.
std::string columns(const std::string& info) {
  auto c = PgConn::connect(info);
  EXPECT_TRUE(c) << (c ? "" : c.error().message);
  if (!c) return "?";
  auto r = c->exec(
      "SELECT coalesce(string_agg(column_name, ',' ORDER BY ordinal_position), '-') FROM "
      "information_schema.columns "
      "WHERE table_name = 't'");
  EXPECT_TRUE(r);
  return r ? r->value() : "?";
}

void exec(const std::string& info, const std::string& sql) {
  auto c = PgConn::connect(info);
  ASSERT_TRUE(c) << c.error().message;
  auto r = c->exec(sql);
  ASSERT_TRUE(r) << r.error().message;
}

std::string snapshot(Argond& a, const Project& p, const std::string& branch,
                     const std::string& name) {
  // As Neon's CLI sends it: query parameters, no body.
  auto r =
      a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot?name={}", p.id, branch, name));
  EXPECT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(str(r.body.at("snapshot"), "name"), name);
  EXPECT_EQ(str(r.body.at("snapshot"), "source_branch_id"), branch);
  for (const auto& s : a.wait_operations(p.id, r.body.at("operations"))) EXPECT_EQ(s, "finished");
  return str(r.body.at("snapshot"), "id");
}

json::value restore(Argond& a, const Project& p, const std::string& snapshot_id,
                    const std::string& body) {
  auto r =
      a.call("POST", fmt::format("/projects/{}/snapshots/{}/restore", p.id, snapshot_id), body);
  EXPECT_EQ(r.status, 200) << r.raw;
  for (const auto& s : a.wait_operations(p.id, r.body.at("operations")))
    EXPECT_EQ(s, "finished") << a.log_tail();
  return r.body;
}

std::string default_branch_id(Argond& a, const Project& p) {
  auto r = a.get(fmt::format("/projects/{}/branches", p.id));
  for (const auto& b : r.body.at("branches").as_array()) {
    if (b.at("default").as_bool()) return str(b, "id");
  }
  return "";
}

TEST(SnapshotTest, AgentVersionsRestoreInPlaceBehindAnUnchangedConnectionString) {
  Argond a;
  auto p = create_project(a);
  const std::string info = conninfo(a, p, p.endpoint);

  std::vector<std::string> versions;
  versions.push_back(snapshot(a, p, p.branch, "v0"));
  exec(info, "CREATE TABLE t (a int)");
  versions.push_back(snapshot(a, p, p.branch, "v1"));
  exec(info, "ALTER TABLE t ADD COLUMN b text, ADD COLUMN c text");
  versions.push_back(snapshot(a, p, p.branch, "v2"));
  exec(info, "ALTER TABLE t ADD COLUMN d int");
  versions.push_back(snapshot(a, p, p.branch, "v3"));
  const std::vector<std::string> expected = {"-", "a", "a,b,c", "a,b,c,d"};

  auto list = a.get(fmt::format("/projects/{}/snapshots", p.id));
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.body.at("snapshots").as_array().size(), 4u);

  // A client holding a connection open across a restore is told why it ends.
  PGconn* held = PQconnectdb(info.c_str());
  ASSERT_EQ(PQstatus(held), CONNECTION_OK) << PQerrorMessage(held);

  int restores = 0;
  for (int v : {1, 3, 0, 2}) {
    const std::string target = default_branch_id(a, p);
    auto body =
        restore(a, p, versions[v],
                fmt::format(R"({{"target_branch_id":"{}","finalize_restore":true}})", target));
    ++restores;
    const auto& n = body.at("branch");
    EXPECT_NE(str(n, "id"), target) << "a restore always makes a new branch";
    EXPECT_EQ(str(n, "restored_from"), versions[v]);
    EXPECT_EQ(columns(info), expected[v]) << "after restoring v" << v;

    auto now = a.get(fmt::format("/projects/{}/branches/{}", p.id, str(n, "id"))).body.at("branch");
    EXPECT_EQ(str(now, "name"), "main");
    EXPECT_TRUE(now.at("default").as_bool());
    EXPECT_EQ(str(now, "restore_status"), "finalized");
    EXPECT_EQ(str(now, "restored_as"), target);
    EXPECT_FALSE(now.as_object().contains("parent_id"));
    auto old = a.get(fmt::format("/projects/{}/branches/{}", p.id, target)).body.at("branch");
    EXPECT_EQ(str(old, "name"),
              restores == 1 ? "main (old)" : fmt::format("main (old {})", restores));
    EXPECT_FALSE(old.at("default").as_bool());
    auto eps = a.get(fmt::format("/projects/{}/branches/{}/endpoints", p.id, target));
    EXPECT_TRUE(eps.body.at("endpoints").as_array().empty()) << "the old branch keeps no endpoint";
  }
  PGresult* r = PQexec(held, "SELECT 1");
  EXPECT_NE(PQresultStatus(r), PGRES_TUPLES_OK);
  EXPECT_NE(std::string(PQerrorMessage(held)).find("was restored from a snapshot"),
            std::string::npos)
      << PQerrorMessage(held);
  PQclear(r);
  PQfinish(held);

  // The snapshots stay attached to the branch they were taken from (now "main (old)").
  list = a.get(fmt::format("/projects/{}/snapshots", p.id));
  for (const auto& s : list.body.at("snapshots").as_array())
    EXPECT_EQ(str(s, "source_branch_id"), p.branch);
}

// What a client in a reconnect loop on `info` sees across four restores in place, each made by
// `restore(to_a)` (which answers the API's reply): connections made before the restore's
// operations finished may read either version (the new state is prepared while the old one
// serves), and every connection made after they finished reads the new version ('A' or 'B').
void expect_no_old_reads_once_finished(Argond& a, const TestProject& p, const std::string& info,
                                       const std::function<ApiReply(bool to_a)>& restore) {
  std::mutex mu;
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>> reads;
  std::atomic<bool> stop{false};
  std::thread client([&] {
    while (!stop) {
      // Stamped when the client starts connecting: that is what "a new connection" means.
      const auto started = std::chrono::steady_clock::now();
      PGconn* c = PQconnectdb(info.c_str());
      if (PQstatus(c) == CONNECTION_OK) {
        PGresult* r = PQexec(c, "SELECT v FROM t");
        if (PQresultStatus(r) == PGRES_TUPLES_OK) {
          std::lock_guard l(mu);
          reads.emplace_back(started, PQgetvalue(r, 0, 0));
        }
        PQclear(r);
      }
      PQfinish(c);
    }
  });
  StopAndJoin joiner{stop, client};
  for (int i = 0; i < 4; ++i) {
    const bool to_a = i % 2 == 0;
    // Reads under way before the call, then reads begun after its operations finished (bounded
    // waits).
    auto reads_after = [&](std::chrono::steady_clock::time_point since) {
      std::lock_guard l(mu);
      return std::count_if(reads.begin(), reads.end(),
                           [&](const auto& r) { return r.first > since; });
    };
    const auto before = std::chrono::steady_clock::now();
    for (int w = 0; w < 1000 && reads_after(before) < 2; ++w)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto r = restore(to_a);
    ASSERT_EQ(r.status, 200) << r.raw;
    for (const auto& st : a.wait_operations(p.id, r.body.at("operations"), 120s, 5ms))
      EXPECT_EQ(st, "finished");
    const auto finished = std::chrono::steady_clock::now();
    for (int w = 0; w < 1000 && reads_after(finished) < 3; ++w)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::lock_guard l(mu);
    int after = 0;
    for (const auto& [t, v] : reads) {
      // A connection that started after the operations finished sees the new version only.
      if (t <= finished) continue;
      ++after;
      EXPECT_EQ(v, to_a ? "A" : "B")
          << "restore " << i << ": a connection made after the restore finished saw old data";
    }
    EXPECT_GT(after, 0);
    reads.clear();
  }
}

// Finalized snapshot restores onto the endpoint's branch.
TEST(SnapshotTest, NoConnectionReachesTheOldDataOnceTheRestoreFinished) {
  Argond a;
  auto p = create_project(a);
  const std::string info = conninfo(a, p, p.endpoint);
  exec(info, "CREATE TABLE t (v text); INSERT INTO t VALUES ('A')");
  const std::string snap_a = snapshot(a, p, p.branch, "A");
  exec(info, "UPDATE t SET v = 'B'");
  const std::string snap_b = snapshot(a, p, p.branch, "B");
  expect_no_old_reads_once_finished(a, p, info, [&](bool to_a) {
    return a.call("POST",
                  fmt::format("/projects/{}/snapshots/{}/restore", p.id, to_a ? snap_a : snap_b),
                  fmt::format(R"({{"target_branch_id":"{}","finalize_restore":true}})",
                              default_branch_id(a, p)));
  });
}

// Resets of a child from its parent after each change of the parent, while the child's compute
// serves: the copy's compute is started beside it and swapped in.
TEST(SnapshotTest, NoConnectionReachesTheOldDataOnceTheResetFinished) {
  Argond a;
  auto p = create_project(a);
  const std::string main_info = conninfo(a, p, p.endpoint);
  exec(main_info, "CREATE TABLE t (v text); INSERT INTO t VALUES ('B')");
  auto kid = a.post(fmt::format("/projects/{}/branches", p.id),
                    {{"branch", {{"name", "kid"}, {"parent_id", p.branch}}},
                     {"endpoints", {{{"type", "read_write"}}}}});
  ASSERT_EQ(kid.status, 201) << kid.raw;
  a.wait_operations(p.id, kid.body.at("operations"));
  const std::string kid_id(kid.body.at("branch").at("id").as_string());
  const std::string kid_ep(kid.body.at("endpoints").as_array()[0].at("id").as_string());
  expect_no_old_reads_once_finished(a, p, conninfo(a, p, kid_ep), [&](bool to_a) {
    exec(main_info, to_a ? "UPDATE t SET v = 'A'" : "UPDATE t SET v = 'B'");
    return a.call("POST", fmt::format("/projects/{}/branches/{}/restore", p.id, kid_id),
                  fmt::format(R"({{"source_branch_id":"{}"}})", p.branch));
  });
}

// Killed while the restore has its target's endpoints switching: the mark is catalog state, so the
// restarted argond holds new connections until the restore, run again, has swapped; a connection
// made meanwhile waits and reads the restored data, never the data being replaced.
TEST(SnapshotTest, AConnectionAfterAKillMidSwitchReadsTheRestoredData) {
  Argond a;
  auto p = create_project(a);
  exec(conninfo(a, p, p.endpoint), "CREATE TABLE t (v text); INSERT INTO t VALUES ('A')");
  const std::string snap_a = snapshot(a, p, p.branch, "A");
  exec(conninfo(a, p, p.endpoint), "UPDATE t SET v = 'B'");
  a.terminate();
  ::setenv("ARGON_CRASH_AT", "swap.gated", 1);
  a.start();
  ::unsetenv("ARGON_CRASH_AT");
  auto r = a.call("POST", fmt::format("/projects/{}/snapshots/{}/restore", p.id, snap_a),
                  fmt::format(R"({{"target_branch_id":"{}","finalize_restore":true}})", p.branch));
  ASSERT_EQ(r.status, 200) << r.raw;
  ASSERT_TRUE(a.wait_exit(120s)) << "argond never reached swap.gated\n" << a.log_tail();
  for (int i = 0; i < 200 && postmasters_under(a.data_dir()) > 0; ++i)
    std::this_thread::sleep_for(25ms);
  // The re-run takes 6 s longer before it swaps, so the connection below comes while it runs.
  ::setenv("ARGON_DELAY_AT", "swap.new_started:6000", 1);
  a.start();
  ::unsetenv("ARGON_DELAY_AT");
  const auto pending = a.get(fmt::format("/projects/{}/operations", p.id));
  size_t unfinished = 0;
  for (const auto& op : pending.body.at("operations").as_array()) {
    unfinished += str(op, "status") != "finished";
  }
  ASSERT_GT(unfinished, 0u) << "the restore ended before the restart; the test holds nothing";
  auto c = PgConn::connect(conninfo(a, p, p.endpoint));
  ASSERT_TRUE(c) << c.error().message;
  auto v = c->exec("SELECT v FROM t");
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(v->value(), "A");
  a.wait_idle(p.id);
}

TEST(SnapshotTest, PreviewRestoreIsANewRootBranchFinalizedLater) {
  Argond a;
  auto p = create_project(a);
  const std::string info = conninfo(a, p, p.endpoint);
  exec(info, "CREATE TABLE t (a int); INSERT INTO t VALUES (1)");
  const std::string v1 = snapshot(a, p, p.branch, "v1");
  exec(info, "INSERT INTO t VALUES (2)");

  auto body = restore(a, p, v1, R"({"name":"preview-v1"})");
  const std::string preview = str(body.at("branch"), "id");
  EXPECT_EQ(str(body.at("branch"), "name"), "preview-v1");
  EXPECT_FALSE(body.as_object().contains("endpoints")) << "a preview restore gets no compute";
  auto ep = a.post(fmt::format("/projects/{}/endpoints", p.id),
                   {{"endpoint", {{"branch_id", preview}, {"type", "read_write"}}}});
  ASSERT_EQ(ep.status, 201) << ep.raw;
  a.wait_idle(p.id);
  const std::string preview_info = conninfo(a, p, str(ep.body.at("endpoint"), "id"));
  {
    auto c = PgConn::connect(preview_info);
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->exec("SELECT string_agg(a::text, ',' ORDER BY a) FROM t")->value(), "1");
  }
  {
    auto c = PgConn::connect(info);
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->exec("SELECT string_agg(a::text, ',' ORDER BY a) FROM t")->value(), "1,2")
        << "the target is untouched";
  }

  // Deleting the snapshot never affects a branch restored from it.
  auto del = a.call("DELETE", fmt::format("/projects/{}/snapshots/{}", p.id, v1));
  ASSERT_EQ(del.status, 202) << del.raw;
  a.wait_operations(p.id, del.body.at("operations"));
  EXPECT_TRUE(
      a.get(fmt::format("/projects/{}/snapshots", p.id)).body.at("snapshots").as_array().empty());
  {
    auto c = PgConn::connect(preview_info);
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->exec("SELECT count(*) FROM t")->value(), "1");
  }

  // Finalized later: the preview takes main's place behind main's unchanged connection string; the
  // replaced branch gets the name given to finalize.
  auto fin = a.call("POST", fmt::format("/projects/{}/branches/{}/finalize_restore", p.id, preview),
                    R"({"name":"main-before-preview"})");
  ASSERT_EQ(fin.status, 200) << fin.raw;
  for (const auto& st : a.wait_operations(p.id, fin.body.at("operations")))
    EXPECT_EQ(st, "finished") << a.log_tail();
  {
    auto c = PgConn::connect(info);
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->exec("SELECT string_agg(a::text, ',' ORDER BY a) FROM t")->value(), "1");
  }
  auto now = a.get(fmt::format("/projects/{}/branches/{}", p.id, preview)).body.at("branch");
  EXPECT_EQ(str(now, "name"), "main");
  EXPECT_TRUE(now.at("default").as_bool());
  EXPECT_EQ(str(now, "restore_status"), "finalized");
  auto old = a.get(fmt::format("/projects/{}/branches/{}", p.id, p.branch)).body.at("branch");
  EXPECT_EQ(str(old, "name"), "main-before-preview");
  auto again =
      a.call("POST", fmt::format("/projects/{}/branches/{}/finalize_restore", p.id, preview), "{}");
  EXPECT_EQ(again.status, 409) << "finalizing twice is refused: " << again.raw;
}

TEST(SnapshotTest, ExpiredSnapshotsAreDeletedWithTheirOperationsRecorded) {
  Argond a({"--expiry-check-seconds", "1"});
  auto p = create_project(a);
  const std::string expires = format_time(std::chrono::duration_cast<std::chrono::seconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count() +
                                          3);
  auto r = a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot", p.id, p.branch),
                  fmt::format(R"({{"name":"short-lived","expires_at":"{}"}})", expires));
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(str(r.body.at("snapshot"), "expires_at"), expires);
  const std::string kept = snapshot(a, p, p.branch, "kept");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (a.get(fmt::format("/projects/{}/snapshots", p.id)).body.at("snapshots").as_array().size() >
             1 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  auto list = a.get(fmt::format("/projects/{}/snapshots", p.id)).body.at("snapshots").as_array();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(str(list[0], "id"), kept);
  a.wait_idle(p.id);
  bool recorded = false;
  auto ops = a.get(fmt::format("/projects/{}/operations", p.id));
  for (const auto& op : ops.body.at("operations").as_array()) {
    recorded |= op.at("action").as_string() == "delete_timeline" &&
                op.at("status").as_string() == "finished";
  }
  EXPECT_TRUE(recorded) << ops.raw;
}

TEST(SnapshotTest, PerProjectLimitsAnswerWithNeonCodes) {
  Argond a({"--max-snapshots-per-project", "2", "--max-root-branches-per-project", "2"});
  auto p = create_project(a);
  const std::string s1 = snapshot(a, p, p.branch, "one");
  snapshot(a, p, p.branch, "two");
  auto third =
      a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot?name=three", p.id, p.branch));
  EXPECT_EQ(third.status, 422) << third.raw;
  EXPECT_EQ(str(third.body, "code"), "SNAPSHOTS_LIMIT_EXCEEDED");
  EXPECT_NE(str(third.body, "message").find("--max-snapshots-per-project"), std::string::npos);

  restore(a, p, s1, R"({"name":"second-root"})");  // two root branches now: main and this one
  auto r = a.call("POST", fmt::format("/projects/{}/snapshots/{}/restore", p.id, s1),
                  R"({"name":"third-root"})");
  EXPECT_EQ(r.status, 422) << r.raw;
  EXPECT_EQ(str(r.body, "code"), "ROOT_BRANCHES_LIMIT_EXCEEDED");
  EXPECT_EQ(a.get(fmt::format("/projects/{}/branches", p.id)).body.at("branches").as_array().size(),
            2u);
  EXPECT_EQ(
      a.get(fmt::format("/projects/{}/snapshots", p.id)).body.at("snapshots").as_array().size(),
      2u);
}

TEST(SnapshotTest, ADamagedSnapshotIsRefusedAndTheTargetKeepsServing) {
  Argond a;
  auto p = create_project(a);
  const std::string info = conninfo(a, p, p.endpoint);
  exec(info, "CREATE TABLE t (a int); INSERT INTO t VALUES (1)");
  const std::string s = snapshot(a, p, p.branch, "to-damage");
  // Once its checksums are written in the background, flip one byte of PG_VERSION inside the
  // snapshot (it is read-only; root writes anyway).
  const auto manifest = a.data_dir() / "snapshots" / s / "manifest";
  for (int i = 0; i < 600 && !std::filesystem::exists(manifest); ++i)
    std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(std::filesystem::exists(manifest)) << a.log_tail();
  {
    const auto file = a.data_dir() / "snapshots" / s / "pgdata" / "PG_VERSION";
    ASSERT_TRUE(std::filesystem::exists(file));
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f.put('9');
  }
  auto r = a.call("POST", fmt::format("/projects/{}/snapshots/{}/restore", p.id, s),
                  fmt::format(R"({{"target_branch_id":"{}","finalize_restore":true}})", p.branch));
  ASSERT_EQ(r.status, 200) << r.raw;
  auto statuses = a.wait_operations(p.id, r.body.at("operations"));
  EXPECT_EQ(statuses.at(0), "failed");
  auto op = a.get(
      fmt::format("/projects/{}/operations/{}", p.id, str(r.body.at("operations").at(0), "id")));
  EXPECT_NE(str(op.body.at("operation"), "error").find("PG_VERSION does not match its checksum"),
            std::string::npos)
      << op.raw;
  // Nothing half-made, and the target still serves its own data through the same string.
  auto branches = a.get(fmt::format("/projects/{}/branches", p.id)).body.at("branches").as_array();
  ASSERT_EQ(branches.size(), 1u);
  EXPECT_EQ(str(branches[0], "id"), p.branch);
  EXPECT_EQ(str(branches[0], "name"), "main");
  auto c = PgConn::connect(info);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->exec("SELECT count(*) FROM t")->value(), "1");
}

std::string compute_log(Argond& a, const std::string& branch_id) {
  std::ifstream log(a.data_dir() / "logs" / (branch_id + ".log"));
  return std::string((std::istreambuf_iterator<char>(log)), {});
}

// A settled snapshot on disk: shut down cleanly, with one WAL segment that is mostly holes.
void expect_settled(Argond& a, const std::string& snapshot_id) {
  const auto pgdata = a.data_dir() / "snapshots" / snapshot_id / "pgdata";
  std::vector<std::filesystem::path> segments;
  for (const auto& e : std::filesystem::directory_iterator(pgdata / "pg_wal"))
    if (e.is_regular_file()) segments.push_back(e.path());
  ASSERT_EQ(segments.size(), 1u) << "only the shutdown checkpoint's segment";
  struct stat st {};
  ASSERT_EQ(::stat(segments[0].c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 16 << 20);
  EXPECT_LE(st.st_blocks * 512, 64 << 10) << "the segment's unused pages are freed";
  EXPECT_FALSE(std::filesystem::exists(pgdata / "backup_label"));
  auto pg = PgInstalls::discover({});
  ASSERT_TRUE(pg) << pg.error().message;
  PosixProcessRunner runner;
  auto control = read_controldata(pg->newest(), runner, pgdata,
                                  a.data_dir() / "logs" / "controldata-test.out");
  ASSERT_TRUE(control) << control.error().message;
  EXPECT_TRUE(control->shut_down) << "a restore starts it with no WAL replay";
}

// A snapshot is recovered once, when taken: it is stored shut down cleanly with one WAL segment
// that is mostly holes, and a branch restored from it starts without replaying WAL. What the
// recovery needs of the endpoint's settings (prepared transactions) is honoured, and a prepared
// transaction in the snapshot is still there to commit after the restore.
TEST(SnapshotTest, ASnapshotIsSettledOnceSoARestoreReplaysNoWal) {
  Argond a;
  auto p = create_project(a);
  auto patch =
      a.call("PATCH", fmt::format("/projects/{}/endpoints/{}", p.id, p.endpoint),
             R"({"endpoint":{"settings":{"pg_settings":{"max_prepared_transactions":"4"}}}})");
  ASSERT_EQ(patch.status, 200) << patch.raw;
  a.wait_operations(p.id, patch.body.at("operations"));
  const std::string info = conninfo(a, p, p.endpoint);
  exec(info, "CREATE TABLE t (a int); INSERT INTO t SELECT generate_series(1, 50000)");
  exec(info, "BEGIN; INSERT INTO t VALUES (-1); PREPARE TRANSACTION 'kept'");
  const std::string s = snapshot(a, p, p.branch, "settled");
  exec(info, "COMMIT PREPARED 'kept'");
  exec(info, "DELETE FROM t");

  expect_settled(a, s);

  auto restored = restore(
      a, p, s, fmt::format(R"({{"target_branch_id":"{}","finalize_restore":true}})", p.branch));
  const std::string new_branch = str(restored.at("branch"), "id");
  EXPECT_EQ(query_value(info, "SELECT count(*) FROM t"), "50000");
  EXPECT_EQ(query_value(info, "SELECT gid FROM pg_prepared_xacts"), "kept");
  exec(info, "COMMIT PREPARED 'kept'");
  EXPECT_EQ(query_value(info, "SELECT count(*) FROM t"), "50001");
  const std::string text = compute_log(a, new_branch);
  EXPECT_NE(text.find("database system was shut down at"), std::string::npos) << text;
  EXPECT_EQ(text.find("redo starts at"), std::string::npos) << "no WAL replayed at the start\n"
                                                            << text;
}

// With --snapshot-settle after (the default on reflink), the operation finishes once the capture
// is sealed; a restore made before the settling is done starts from the capture itself, replaying
// its WAL; then the settled copy takes the capture's place, and its checksums follow.
TEST(SnapshotTest, SettlingAfterTheOperationKeepsTheCaptureRestorableUntilTheCopyTakesItsPlace) {
  // The settling is held, before it begins, long enough for the restore below to clone the
  // capture (a restore waits for a settling under way).
  ::setenv("ARGON_DELAY_AT", "snapshot.settle_begins:15000", 1);
  Argond a({"--snapshot-settle", "after"});
  ::unsetenv("ARGON_DELAY_AT");
  auto p = create_project(a);
  const std::string info = conninfo(a, p, p.endpoint);
  exec(info, "CREATE TABLE t (a int); INSERT INTO t SELECT generate_series(1, 50000)");
  const std::string s = snapshot(a, p, p.branch, "captured");
  exec(info, "DELETE FROM t");
  const auto dir = a.data_dir() / "snapshots" / s;
  EXPECT_TRUE(std::filesystem::exists(dir / "pgdata" / "backup_label")) << "not settled yet";
  EXPECT_FALSE(std::filesystem::exists(dir / "settled"));

  auto restored = restore(
      a, p, s, fmt::format(R"({{"target_branch_id":"{}","finalize_restore":true}})", p.branch));
  EXPECT_EQ(query_value(info, "SELECT count(*) FROM t"), "50000");
  std::string text = compute_log(a, str(restored.at("branch"), "id"));
  EXPECT_NE(text.find("redo starts at"), std::string::npos) << "the capture's WAL replayed\n"
                                                            << text;

  ASSERT_TRUE(wait_settled(a, s)) << a.log_tail();
  expect_settled(a, s);
  for (int i = 0; i < 600 && !std::filesystem::exists(dir / "manifest"); ++i)
    std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(std::filesystem::exists(dir / "manifest")) << "the settled copy gets checksums";
  exec(info, "DELETE FROM t");
  // The endpoint now serves the branch the first restore made.
  restored = restore(a, p, s,
                     fmt::format(R"({{"target_branch_id":"{}","finalize_restore":true}})",
                                 str(restored.at("branch"), "id")));
  EXPECT_EQ(query_value(info, "SELECT count(*) FROM t"), "50000");
  text = compute_log(a, str(restored.at("branch"), "id"));
  EXPECT_EQ(text.find("redo starts at"), std::string::npos) << "no WAL replayed at the start\n"
                                                            << text;
}

// WAL segment files in a data directory, by name.
std::set<std::string> wal_segments(const std::filesystem::path& pgdata) {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(pgdata / "pg_wal")) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.size() == 24 &&
        name.find_first_not_of("0123456789ABCDEF") == std::string::npos)
      out.insert(name);
  }
  return out;
}

// A live capture (here a branch of a serving parent) copies the WAL of its backup, not the
// segments PostgreSQL recycled for later use, which carry old bytes and can add up to max_wal_size.
TEST(SnapshotTest, ALiveCaptureCopiesItsBackupsWalNotTheRecycledSegments) {
  Argond a;
  auto p = create_project(a);
  const std::string info = conninfo(a, p, p.endpoint);
  exec(info, "CREATE TABLE t (a int); INSERT INTO t VALUES (1)");
  // Past wal_keep_size (256 MB: 16 segments), so the checkpoint recycles the oldest ones under
  // names after the current segment.
  // As argond's admin: the project's roles may not switch segments or checkpoint.
  auto admin = a.connect(p.branch, "neondb");
  for (int i = 0; i < 24; ++i)
    ASSERT_TRUE(admin.exec("INSERT INTO t VALUES (2); SELECT pg_switch_wal()"));
  ASSERT_TRUE(admin.exec("CHECKPOINT"));
  auto cur = admin.exec("SELECT pg_walfile_name(pg_current_wal_lsn())");
  ASSERT_TRUE(cur);
  const std::string current = cur->value();
  const auto parent = wal_segments(a.data_dir() / "branches" / p.branch / "pgdata");
  const auto recycled = std::count_if(parent.begin(), parent.end(), [&](const std::string& n) {
    return n.substr(8) > current.substr(8);
  });
  EXPECT_GE(recycled, 3) << "with the recycled ones, the old capture copied at least 3";

  auto r = a.post(fmt::format("/projects/{}/branches", p.id),
                  {{"branch", {{"name", "kid"}, {"parent_id", p.branch}}}});
  ASSERT_EQ(r.status, 201) << r.raw;
  a.wait_operations(p.id, r.body.at("operations"));
  const std::string kid = str(r.body.at("branch"), "id");
  // No endpoint yet: its data directory is the capture as written.
  EXPECT_LE(wal_segments(a.data_dir() / "branches" / kid / "pgdata").size(), 2u)
      << "the backup's start and stop segments at most";

  auto ep = a.post(fmt::format("/projects/{}/endpoints", p.id),
                   {{"endpoint", {{"branch_id", kid}, {"type", "read_write"}}}});
  ASSERT_EQ(ep.status, 201) << ep.raw;
  a.wait_operations(p.id, ep.body.at("operations"));
  EXPECT_EQ(
      query_value(conninfo(a, p, str(ep.body.at("endpoint"), "id")), "SELECT count(*) FROM t"),
      "25");
}

// RFC 3339 with microseconds, as a client stamps "now".
int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
std::string iso_now() { return format_time_us(now_us()); }

// `timestamp`/`lsn`: the state at that point, whether or not something committed after it (then
// from the branch's history: history_test.cc); never a different state.
TEST(SnapshotTest, PointInTimeSnapshotsHoldExactlyTheirPoint) {
  Argond a;
  auto p = create_project(a);
  const std::string info = conninfo(a, p, p.endpoint);
  exec(info, "CREATE TABLE t (a int); INSERT INTO t VALUES (1)");
  const std::string after_first = iso_now();
  const std::string lsn_after_first = query_value(info, "SELECT pg_current_wal_insert_lsn()::text");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));

  // By LSN, first: a capture checkpoints, and WAL before the checkpoint can no longer answer.
  auto by_lsn = a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot?name=at-lsn&lsn={}",
                                           p.id, p.branch, lsn_after_first));
  ASSERT_EQ(by_lsn.status, 200) << by_lsn.raw;
  EXPECT_EQ(str(by_lsn.body.at("snapshot"), "lsn"), lsn_after_first);
  for (const auto& s : a.wait_operations(p.id, by_lsn.body.at("operations")))
    EXPECT_EQ(s, "finished");

  // The demo app's call: a JSON body stamped "now". Nothing committed since: exact, also
  // right after another snapshot's checkpoint.
  auto ok = a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot", p.id, p.branch),
                   fmt::format(R"({{"name":"at-now","timestamp":"{}"}})", iso_now()));
  ASSERT_EQ(ok.status, 200) << ok.raw;
  for (const auto& s : a.wait_operations(p.id, ok.body.at("operations"))) {
    EXPECT_EQ(s, "finished") << a.get(fmt::format("/projects/{}/operations", p.id)).raw;
  }
  // A commit after those points: both are still served, from the branch's history.
  exec(info, "INSERT INTO t VALUES (2)");
  std::vector<std::string> past;
  for (const auto& query :
       {fmt::format("timestamp={}", after_first), fmt::format("lsn={}", lsn_after_first)}) {
    auto r =
        a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot?{}", p.id, p.branch, query));
    ASSERT_EQ(r.status, 200) << query << " " << r.raw;
    for (const auto& s : a.wait_operations(p.id, r.body.at("operations")))
      EXPECT_EQ(s, "finished") << a.log_tail();
    past.push_back(str(r.body.at("snapshot"), "id"));
  }

  // Each holds exactly the state at its point.
  auto rows_of_snapshot = [&](const std::string& snapshot_id, const std::string& name) {
    auto preview = restore(a, p, snapshot_id, fmt::format(R"({{"name":"{}"}})", name));
    const std::string check = str(preview.at("branch"), "id");
    auto ep =
        a.call("POST", fmt::format("/projects/{}/endpoints", p.id),
               fmt::format(R"({{"endpoint":{{"branch_id":"{}","type":"read_write"}}}})", check));
    EXPECT_EQ(ep.status, 201) << ep.raw;
    a.wait_operations(p.id, ep.body.at("operations"));
    return query_value(conninfo(a, p, str(ep.body.at("endpoint"), "id")),
                       "SELECT string_agg(a::text, ',' ORDER BY a) FROM t");
  };
  EXPECT_EQ(rows_of_snapshot(str(ok.body.at("snapshot"), "id"), "check"), "1");
  EXPECT_EQ(rows_of_snapshot(past[0], "check-time"), "1");
  EXPECT_EQ(rows_of_snapshot(past[1], "check-lsn"), "1");

  // A stopped compute's WAL answers too.
  auto suspended =
      a.call("POST", fmt::format("/projects/{}/endpoints/{}/suspend", p.id, p.endpoint));
  a.wait_operations(p.id, suspended.body.at("operations"));
  auto idle = a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot?timestamp={}", p.id,
                                         p.branch, iso_now()));
  EXPECT_EQ(idle.status, 200) << idle.raw;
  auto stale = a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot?lsn={}", p.id,
                                          p.branch, lsn_after_first));
  EXPECT_EQ(stale.status, 200) << stale.raw;
  for (const auto& s : a.wait_operations(p.id, stale.body.at("operations")))
    EXPECT_EQ(s, "finished") << a.log_tail();
  EXPECT_EQ(rows_of_snapshot(str(stale.body.at("snapshot"), "id"), "check-stopped"), "1");

  // A client with a millisecond clock (JavaScript's toISOString) stamps "now" right after its
  // commit, in the same millisecond: the stamp names that millisecond, so it covers the commit.
  std::string stamp;
  PGconn* writer = PQconnectdb(info.c_str());
  ASSERT_EQ(PQstatus(writer), CONNECTION_OK) << PQerrorMessage(writer);
  for (int i = 0; i < 200 && stamp.empty(); ++i) {
    const int64_t before = now_us();
    PGresult* r = PQexec(writer, "INSERT INTO t VALUES (10)");
    const int64_t after = now_us();
    ASSERT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQerrorMessage(writer);
    PQclear(r);
    if (before / 1000 == after / 1000) {
      stamp = format_time_us(after).substr(0, 23) + "Z";  // milliseconds, as toISOString() writes
    }
  }
  PQfinish(writer);
  if (stamp.empty()) GTEST_SKIP() << "no insert here took less than a millisecond";
  auto same_ms = a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot", p.id, p.branch),
                        fmt::format(R"({{"name":"same-ms","timestamp":"{}"}})", stamp));
  ASSERT_EQ(same_ms.status, 200) << stamp << " " << same_ms.raw;
  for (const auto& s : a.wait_operations(p.id, same_ms.body.at("operations")))
    EXPECT_EQ(s, "finished");
}

// With a writer committing now and then, a snapshot "at now" holds exactly the rows committed by
// then (captured, or built from the branch's history when something committed meanwhile): never
// a later row, and every call succeeds.
TEST(SnapshotTest, PointInTimeUnderWritesIsExact) {
  Argond a;
  auto p = create_project(a);
  const std::string info = conninfo(a, p, p.endpoint);
  exec(info, "CREATE TABLE w (at timestamptz NOT NULL DEFAULT clock_timestamp())");
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    auto c = PgConn::connect(info);
    while (c && !stop) {
      (void)c->exec("INSERT INTO w DEFAULT VALUES");
      std::this_thread::sleep_for(std::chrono::milliseconds(700));
    }
  });
  std::vector<std::pair<std::string, std::string>> taken;  // snapshot id, timestamp
  for (int i = 0; i < 5; ++i) {
    const std::string t = iso_now();
    auto r = a.call(
        "POST", fmt::format("/projects/{}/branches/{}/snapshot?timestamp={}", p.id, p.branch, t));
    ASSERT_EQ(r.status, 200) << r.raw;
    auto statuses = a.wait_operations(p.id, r.body.at("operations"));
    ASSERT_EQ(statuses.at(0), "finished") << a.log_tail();
    taken.emplace_back(str(r.body.at("snapshot"), "id"), t);
  }
  stop = true;
  writer.join();
  // Once the writes stop, the point "now" is the branch's state: captured, not recovered.
  {
    const std::string t = iso_now();
    auto r = a.call(
        "POST", fmt::format("/projects/{}/branches/{}/snapshot?timestamp={}", p.id, p.branch, t));
    ASSERT_EQ(r.status, 200) << r.raw;
    ASSERT_EQ(a.wait_operations(p.id, r.body.at("operations")),
              std::vector<std::string>{"finished"});
    taken.emplace_back(str(r.body.at("snapshot"), "id"), t);
  }
  for (const auto& [id, t] : taken) {
    auto preview = restore(a, p, id, "{}");
    auto ep = a.call("POST", fmt::format("/projects/{}/endpoints", p.id),
                     fmt::format(R"({{"endpoint":{{"branch_id":"{}","type":"read_write"}}}})",
                                 str(preview.at("branch"), "id")));
    ASSERT_EQ(ep.status, 201) << ep.raw;
    a.wait_operations(p.id, ep.body.at("operations"));
    EXPECT_EQ(query_value(conninfo(a, p, str(ep.body.at("endpoint"), "id")),
                          fmt::format("SELECT count(*) FROM w WHERE at > '{}'", t)),
              "0")
        << "snapshot " << id << " at " << t << " holds a row committed later";
  }
  EXPECT_EQ(
      a.get(fmt::format("/projects/{}/snapshots", p.id)).body.at("snapshots").as_array().size(),
      taken.size());
}

// Off by default (the other tests keep their '(old)' branches); with a retention, a branch a
// finalized restore replaced is deleted once unchanged that long, and nothing else is.
TEST(SnapshotTest, OldBranchesAreDeletedAfterTheConfiguredRetention) {
  Argond a({"--old-branch-retention-seconds", "2", "--expiry-check-seconds", "1"});
  auto p = create_project(a);
  const std::string info = conninfo(a, p, p.endpoint);
  exec(info, "CREATE TABLE t (a int)");
  const std::string s = snapshot(a, p, p.branch, "v1");
  auto preview = restore(a, p, s, R"({"name":"preview"})");  // not finalized: not "old", kept
  auto body = restore(
      a, p, s, fmt::format(R"({{"target_branch_id":"{}","finalize_restore":true}})", p.branch));
  const std::string restored = str(body.at("branch"), "id");
  EXPECT_EQ(a.get(fmt::format("/projects/{}/branches/{}", p.id, p.branch)).status, 200)
      << "kept right after";

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (a.get(fmt::format("/projects/{}/branches/{}", p.id, p.branch)).status == 200 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(a.get(fmt::format("/projects/{}/branches/{}", p.id, p.branch)).status, 404)
      << a.log_tail();
  EXPECT_EQ(
      a.get(fmt::format("/projects/{}/branches/{}", p.id, str(preview.at("branch"), "id"))).status,
      200);
  EXPECT_EQ(default_branch_id(a, p), restored);
  EXPECT_EQ(columns(info), "a") << "the restored branch serves on";
  EXPECT_EQ(
      a.get(fmt::format("/projects/{}/snapshots", p.id)).body.at("snapshots").as_array().size(),
      1u);
}

// Restores without a name get generated ones, which never collide, even within one second.
TEST(SnapshotTest, GeneratedRestoreNamesAreUnique) {
  Argond a;
  auto p = create_project(a);
  const std::string s = snapshot(a, p, p.branch, "same");
  std::set<std::string> names;
  for (int i = 0; i < 3; ++i) {
    auto r = a.call("POST", fmt::format("/projects/{}/snapshots/{}/restore", p.id, s), "{}");
    ASSERT_EQ(r.status, 200) << r.raw;
    names.insert(str(r.body.at("branch"), "name"));
  }
  EXPECT_EQ(names.size(), 3u);
  a.wait_idle(p.id);
}

TEST(SnapshotTest, BadRequestsChangeNothing) {
  Argond a;
  auto p = create_project(a);
  struct Case {
    std::string method, path, body;
    int status;
  };
  const std::vector<Case> cases = {
      {"POST", fmt::format("/projects/{}/branches/br-no-such-1/snapshot", p.id), "", 404},
      {"POST",
       fmt::format("/projects/{}/branches/{}/snapshot?timestamp=2020-01-01T00:00:00Z", p.id,
                   p.branch),
       "", 400},
      {"POST",
       fmt::format("/projects/{}/branches/{}/snapshot?timestamp=2999-01-01T00:00:00Z", p.id,
                   p.branch),
       "", 400},
      {"POST", fmt::format("/projects/{}/branches/{}/snapshot?lsn=yesterday", p.id, p.branch), "",
       400},
      {"POST", fmt::format("/projects/{}/branches/{}/snapshot?lsn=FFFFFFFF/0", p.id, p.branch), "",
       400},
      {"POST",
       fmt::format("/projects/{}/branches/{}/snapshot?lsn=0/1&timestamp=2999-01-01T00:00:00Z", p.id,
                   p.branch),
       "", 400},
      {"POST",
       fmt::format("/projects/{}/branches/{}/snapshot?expires_at=2001-01-01T00:00:00Z", p.id,
                   p.branch),
       "", 400},
      {"POST", fmt::format("/projects/{}/branches/{}/snapshot?expires_at=soon", p.id, p.branch), "",
       400},
      {"POST", fmt::format("/projects/{}/branches/{}/snapshot", p.id, p.branch), R"({"name": 5})",
       400},
      {"PATCH", fmt::format("/projects/{}/snapshots/snap-no-such-1", p.id),
       R"({"snapshot":{"name":"x"}})", 404},
      {"DELETE", fmt::format("/projects/{}/snapshots/snap-no-such-1", p.id), "", 404},
      {"POST", fmt::format("/projects/{}/snapshots/snap-no-such-1/restore", p.id), "{}", 404},
      {"POST", fmt::format("/projects/{}/branches/{}/finalize_restore", p.id, p.branch), "{}", 409},
  };
  for (const auto& c : cases) {
    auto r = a.call(c.method, c.path, c.body);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << " " << r.raw;
    EXPECT_TRUE(r.body.as_object().contains("message")) << r.raw;
  }
  EXPECT_TRUE(
      a.get(fmt::format("/projects/{}/snapshots", p.id)).body.at("snapshots").as_array().empty());
  const std::string s = snapshot(a, p, p.branch, "only");
  auto bad_target = a.call("POST", fmt::format("/projects/{}/snapshots/{}/restore", p.id, s),
                           R"({"target_branch_id":"br-no-such-1","finalize_restore":true})");
  EXPECT_EQ(bad_target.status, 404) << bad_target.raw;
  EXPECT_EQ(a.get(fmt::format("/projects/{}/branches", p.id)).body.at("branches").as_array().size(),
            1u);
}

}  // namespace
}  // namespace argon::testing
