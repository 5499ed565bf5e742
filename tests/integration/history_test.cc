// Point-in-time history against real computes: every branch's compute archives its WAL, every
// branch keeps a base image from its creation, and a branch at a past time or LSN of its parent is
// that base image recovered by PostgreSQL through the last commit the point includes. The test
// keeps its own record of what committed where and when, and checks each branch holds exactly
// the rows committed up to its point, none after.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/pg_conn.h"
#include "common/pg_control.h"
#include "harness.h"

namespace argon::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

// One committed row: the WAL insert position and the server's clock read right after its commit
// returned (no later commit started before them).
struct Committed {
  int row = 0;
  std::string lsn;
  std::string time;
};

std::string exec_value(PgConn& c, const std::string& sql) {
  auto r = c.exec(sql);
  if (!r) throw std::runtime_error(sql + ": " + r.error().message);
  return r->value();
}

// Inserts rows from..to, one transaction each, recording where each ended.
std::vector<Committed> insert_rows(PgConn& c, int from, int to) {
  std::vector<Committed> out;
  for (int i = from; i <= to; ++i) {
    exec_value(c, fmt::format("INSERT INTO t VALUES ({})", i));
    auto r = c.exec(
        "SELECT pg_current_wal_insert_lsn()::text, to_char(clock_timestamp() AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
    if (!r) throw std::runtime_error(r.error().message);
    out.push_back({i, r->value(0, 0), r->value(0, 1)});
  }
  return out;
}

struct NewBranch {
  int status = 0;
  std::string id, endpoint, message, raw;
};

// POST /branches with a read_write endpoint at `point` ({"parent_lsn": ...} or
// {"parent_timestamp": ...}) of `parent`; waits for the operations when accepted.
NewBranch branch_at(Argond& a, const TestProject& p, const std::string& parent,
                    json::object point) {
  point["parent_id"] = parent;
  json::object body{{"branch", point},
                    {"endpoints", json::array{json::object{{"type", "read_write"}}}}};
  auto r = a.post(fmt::format("/projects/{}/branches", p.id), body);
  NewBranch out;
  out.status = r.status;
  out.raw = r.raw;
  if (r.status >= 400) {
    out.message = str(r.body, "message");
    return out;
  }
  out.id = str(r.body.at("branch"), "id");
  out.endpoint = str(r.body.at("endpoints").as_array().at(0), "id");
  for (const auto& s : a.wait_operations(p.id, r.body.at("operations")))
    EXPECT_EQ(s, "finished") << a.log_tail();
  return out;
}

// "count,max" of table t through the branch's endpoint and the connection string's password.
std::string rows_of(Argond& a, const TestProject& p, const std::string& endpoint) {
  return query_value(a.owner_conninfo(p.password, endpoint),
                     "SELECT count(*) || ',' || coalesce(max(i), 0) FROM t");
}

std::string expect_rows(int upto) { return fmt::format("{},{}", upto, upto); }

class HistoryTest : public ::testing::Test {
 protected:
  Argond a;  // started by its constructor

  // A new project whose branch has table t with rows 1..`rows`, and the connection that wrote them.
  struct Written {
    TestProject p;
    PgConn c;
    std::vector<Committed> rows;
  };
  Written start_writing(const std::string& name, int rows) {
    auto p = create_project(a, {{"name", name}});
    auto c = PgConn::connect(a.owner_conninfo(p.password, p.endpoint));
    if (!c) throw std::runtime_error(c.error().message);
    exec_value(*c, "CREATE TABLE t (i int)");
    auto committed = insert_rows(*c, 1, rows);
    return Written{std::move(p), std::move(*c), std::move(committed)};
  }
};

TEST_F(HistoryTest, BranchesAtPastTimesAndLsnsHoldExactlyTheCommitsUpToThem) {
  auto p = create_project(a, {{"name", "history"}});
  auto c = PgConn::connect(a.owner_conninfo(p.password, p.endpoint));
  ASSERT_TRUE(c) << c.error().message;
  exec_value(*c, "CREATE TABLE t (i int)");
  auto first = insert_rows(*c, 1, 10);
  // Part of the history is archived, the rest is still in the compute's pg_wal.
  {
    auto admin = a.connect(p.branch);
    exec_value(admin, "SELECT pg_switch_wal()::text");
  }
  auto second = insert_rows(*c, 11, 20);
  std::vector<Committed> all = first;
  all.insert(all.end(), second.begin(), second.end());

  struct Case {
    const char* kind;
    int upto;
  };
  for (const Case& k : {Case{"time", 3}, Case{"lsn", 7}, Case{"time", 10}, Case{"lsn", 14},
                        Case{"time", 19}, Case{"lsn", 20}}) {
    const Committed& at = all[k.upto - 1];
    json::object point;
    if (std::string(k.kind) == "time") {
      point["parent_timestamp"] = at.time;
    } else {
      point["parent_lsn"] = at.lsn;
    }
    SCOPED_TRACE(fmt::format("{} after row {}: {}", k.kind, k.upto, json::serialize(point)));
    auto b = branch_at(a, p, p.branch, point);
    ASSERT_EQ(b.status, 201) << b.raw;
    EXPECT_EQ(rows_of(a, p, b.endpoint), expect_rows(k.upto));
    // The branch says where it came from.
    auto got = a.get(fmt::format("/projects/{}/branches/{}", p.id, b.id));
    ASSERT_EQ(got.status, 200);
    const auto& branch = got.body.at("branch");
    EXPECT_EQ(str(branch, "parent_id"), p.branch);
    const auto parent_lsn = parse_lsn(str(branch, "parent_lsn"));
    ASSERT_TRUE(parent_lsn);
    EXPECT_LE(*parent_lsn, *parse_lsn(at.lsn))
        << "the switch point is the end of row " << k.upto << "'s commit";
    if (k.upto > 1) {
      EXPECT_GT(*parent_lsn, *parse_lsn(all[k.upto - 2].lsn));
    }
  }
  // The parent kept writing meanwhile and is unchanged.
  EXPECT_EQ(rows_of(a, p, p.endpoint), expect_rows(20));
}

TEST_F(HistoryTest, ABranchAtAPointHasHistoryOfItsOwnOnItsNewTimeline) {
  auto w = start_writing("timelines", 6);
  auto& p = w.p;
  auto& rows = w.rows;
  auto child = branch_at(a, p, p.branch, {{"parent_lsn", rows[2].lsn}});
  ASSERT_EQ(child.status, 201) << child.raw;
  // The child diverges on its own timeline: rows 100.. after the parent's 1..3.
  auto cc = PgConn::connect(a.owner_conninfo(p.password, child.endpoint));
  ASSERT_TRUE(cc) << cc.error().message;
  EXPECT_EQ(exec_value(*cc, "SELECT timeline_id::text FROM pg_control_checkpoint()"), "2");
  auto mine = insert_rows(*cc, 100, 104);
  // A point of the child's own history: the parent's three rows and the child's first two.
  auto grandchild = branch_at(a, p, child.id, {{"parent_timestamp", mine[1].time}});
  ASSERT_EQ(grandchild.status, 201) << grandchild.raw;
  EXPECT_EQ(query_value(a.owner_conninfo(p.password, grandchild.endpoint),
                        "SELECT string_agg(i::text, ',' ORDER BY i) FROM t"),
            "1,2,3,100,101");
  // Its parent_lsn lies on the child's timeline, after the child's own start.
  auto got = a.get(fmt::format("/projects/{}/branches/{}", p.id, grandchild.id));
  ASSERT_EQ(got.status, 200);
  EXPECT_GT(*parse_lsn(str(got.body.at("branch"), "parent_lsn")), *parse_lsn(rows[2].lsn));
}

// "Undo the agent's last five minutes": POST /branches/{id}/restore with the branch itself as the
// source and a point of its past. The connection string stays, the state it has now is kept under
// preserve_under_name (with its own history), and that branch becomes the restored one's parent.
TEST_F(HistoryTest, ABranchRestoredToItsOwnPastKeepsItsConnectionString) {
  auto w = start_writing("undo", 8);
  auto& p = w.p;
  auto& rows = w.rows;
  const std::string restore_path = fmt::format("/projects/{}/branches/{}/restore", p.id, p.branch);

  // Its own past needs a point and a name for the state it has now.
  auto no_point = a.post(restore_path, {{"source_branch_id", p.branch}});
  EXPECT_EQ(no_point.status, 400) << no_point.raw;
  auto no_name =
      a.post(restore_path, {{"source_branch_id", p.branch}, {"source_timestamp", rows[4].time}});
  EXPECT_EQ(no_name.status, 400) << no_name.raw;
  EXPECT_NE(no_name.raw.find("preserve_under_name"), std::string::npos) << no_name.raw;

  auto r = a.post(restore_path, {{"source_branch_id", p.branch},
                                 {"source_timestamp", rows[4].time},
                                 {"preserve_under_name", "before-undo"}});
  ASSERT_EQ(r.status, 200) << r.raw;
  for (const auto& s : a.wait_operations(p.id, r.body.at("operations")))
    EXPECT_EQ(s, "finished") << a.log_tail();
  // The same connection string reaches the restored state, and its compute (started beside the
  // branch's, its directory exchanged into place while it ran) checkpoints where its data now is.
  EXPECT_EQ(rows_of(a, p, p.endpoint), expect_rows(5));
  {
    auto admin = a.connect(p.branch);
    exec_value(admin, "CHECKPOINT");
  }
  EXPECT_EQ(rows_of(a, p, p.endpoint), expect_rows(5));
  auto got = a.get(fmt::format("/projects/{}/branches/{}", p.id, p.branch));
  ASSERT_EQ(got.status, 200);
  std::string preserved;
  const auto branches = a.get(fmt::format("/projects/{}/branches", p.id));
  for (const auto& b : branches.body.at("branches").as_array()) {
    if (str(b, "name") == "before-undo") preserved = str(b, "id");
  }
  ASSERT_FALSE(preserved.empty());
  EXPECT_EQ(str(got.body.at("branch"), "parent_id"), preserved);
  EXPECT_LE(*parse_lsn(str(got.body.at("branch"), "parent_lsn")), *parse_lsn(rows[4].lsn));

  // Writes continue on the restored branch; the preserved one has everything it had, and its own
  // history: a branch at a point of it still works.
  auto again = PgConn::connect(a.owner_conninfo(p.password, p.endpoint));
  ASSERT_TRUE(again) << again.error().message;
  auto after = insert_rows(*again, 50, 51);
  auto old = branch_at(a, p, preserved, {{"parent_lsn", rows[6].lsn}});
  ASSERT_EQ(old.status, 201) << old.raw;
  EXPECT_EQ(rows_of(a, p, old.endpoint), expect_rows(7));
  // And a point of the restored branch's new timeline, after the undo.
  auto later = branch_at(a, p, p.branch, {{"parent_timestamp", after[0].time}});
  ASSERT_EQ(later.status, 201) << later.raw;
  EXPECT_EQ(query_value(a.owner_conninfo(p.password, later.endpoint),
                        "SELECT string_agg(i::text, ',' ORDER BY i) FROM t"),
            "1,2,3,4,5,50");
}

// A branch restored in place to a point of another branch (its parent), and a snapshot at a past
// point of a branch that kept writing: both hold exactly that point.
TEST_F(HistoryTest, RestoreFromAnotherBranchAndSnapshotAtAPastPoint) {
  auto w = start_writing("from-parent", 6);
  auto& p = w.p;
  auto& rows = w.rows;
  auto dev = branch_at(a, p, p.branch, {{"parent_lsn", rows[5].lsn}});
  ASSERT_EQ(dev.status, 201) << dev.raw;
  auto r = a.post(fmt::format("/projects/{}/branches/{}/restore", p.id, dev.id),
                  {{"source_branch_id", p.branch}, {"source_lsn", rows[1].lsn}});
  ASSERT_EQ(r.status, 200) << r.raw;
  for (const auto& s : a.wait_operations(p.id, r.body.at("operations")))
    EXPECT_EQ(s, "finished") << a.log_tail();
  EXPECT_EQ(rows_of(a, p, dev.endpoint), expect_rows(2));

  auto snap = a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot?name=past&timestamp={}",
                                         p.id, p.branch, rows[2].time));
  ASSERT_EQ(snap.status, 200) << snap.raw;
  for (const auto& s : a.wait_operations(p.id, snap.body.at("operations")))
    EXPECT_EQ(s, "finished") << a.log_tail();
  const auto& snapshot = snap.body.at("snapshot");
  auto listed = a.get(fmt::format("/projects/{}/snapshots", p.id));
  ASSERT_EQ(listed.status, 200);
  for (const auto& s : listed.body.at("snapshots").as_array()) {
    if (str(s, "id") != str(snapshot, "id")) continue;
    EXPECT_LE(*parse_lsn(str(s, "lsn")), *parse_lsn(rows[2].lsn)) << listed.raw;
  }
  auto restored =
      a.post(fmt::format("/projects/{}/snapshots/{}/restore", p.id, str(snapshot, "id")),
             {{"name", "check"}});
  ASSERT_EQ(restored.status, 200) << restored.raw;
  a.wait_operations(p.id, restored.body.at("operations"));
  auto ep =
      a.post(fmt::format("/projects/{}/endpoints", p.id),
             {{"endpoint",
               {{"branch_id", str(restored.body.at("branch"), "id")}, {"type", "read_write"}}}});
  ASSERT_EQ(ep.status, 201) << ep.raw;
  a.wait_operations(p.id, ep.body.at("operations"));
  EXPECT_EQ(rows_of(a, p, str(ep.body.at("endpoint"), "id")), expect_rows(3));
}

// A writer commits rows 1, 2, 3, ... one at a time while argond is killed twice (kill -9, its
// computes go down with it), then the compute alone (SIGKILL to its postmaster), and a segment is
// switched in each phase; the test records the LSN and
// time right after each acknowledged commit. Then branches at random recorded points (half by
// time, half by LSN) each hold exactly rows 1..k. 30 points in the normal build (10 in the
// sanitizer runs, scripts/sanitize.sh): each is a branch with a compute, about 1.7 s, and the
// suite's time is bounded (make test under an hour on CI's two cores); ARGON_HISTORY_POINTS asks
// for another count (the issue's 50 pass too).
TEST_F(HistoryTest, RandomPastPointsAcrossKillsHoldExactlyTheirCommits) {
  auto p = create_project(a, {{"name", "random-points"}});
  // The proxy's port changes with each start of argond.
  auto info = [&] { return a.owner_conninfo(p.password, p.endpoint); };
  {
    auto c = PgConn::connect(info());
    ASSERT_TRUE(c) << c.error().message;
    exec_value(*c, "CREATE TABLE t (i int PRIMARY KEY)");
  }
  std::vector<Committed> recorded;
  int next = 1;
  // Writes for `how_long`, and on until at least 100 commits were recorded in this phase (a woken
  // compute recovers first; a busy machine makes that slow), two minutes at most.
  auto write_for = [&](std::chrono::milliseconds how_long) {
    const auto start = std::chrono::steady_clock::now();
    const size_t from = recorded.size();
    bool switched = false;
    std::optional<PgConn> c;
    while (std::chrono::steady_clock::now() - start < how_long ||
           (recorded.size() < from + 100 && std::chrono::steady_clock::now() - start < 120s)) {
      if (!c) {
        auto fresh = PgConn::connect(info());
        if (!fresh) {
          std::this_thread::sleep_for(50ms);
          continue;
        }
        c = std::move(*fresh);
        // A commit whose answer a kill swallowed may be in: it counts, with no recorded point.
        auto have = c->exec(fmt::format("SELECT count(*) FROM t WHERE i = {}", next));
        if (have && have->value() == "1") ++next;
      }
      auto r = c->exec(fmt::format("INSERT INTO t VALUES ({})", next));
      if (!r) {
        c.reset();
        continue;
      }
      auto at = c->exec(
          "SELECT pg_current_wal_insert_lsn()::text, to_char(clock_timestamp() AT TIME ZONE "
          "'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
      if (at) recorded.push_back({next, at->value(0, 0), at->value(0, 1)});
      ++next;
      // One segment switch per phase, halfway: part of each phase's WAL is archived, the rest
      // read from pg_wal. (Each switch archives a whole 16 MB segment; more would measure that.)
      if (!switched && std::chrono::steady_clock::now() - start > how_long / 2) {
        switched = true;
        try {
          auto admin = a.connect(p.branch);
          (void)admin.exec("SELECT pg_switch_wal()");
        } catch (const std::exception&) {
        }
      }
    }
  };
  write_for(2500ms);
  for (int kill = 0; kill < 2; ++kill) {
    a.kill9();
    for (int i = 0; i < 200 && postmasters_under(a.data_dir()) > 0; ++i)
      std::this_thread::sleep_for(25ms);
    a.start();
    write_for(2500ms);
  }
  // And the compute alone: its postmaster killed with SIGKILL (argond sees it exit; the writer's
  // next connection wakes a new one, which recovers and archives what the old one had not).
  {
    const auto pid_path = a.data_dir() / "branches" / p.branch / "pgdata" / "postmaster.pid";
    std::ifstream pidfile(pid_path);
    pid_t pid = 0;
    pidfile >> pid;
    ASSERT_GT(pid, 0) << pid_path << " exists: " << std::filesystem::exists(pid_path) << " after "
                      << recorded.size() << " commits\n"
                      << a.log_tail();
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
  }
  write_for(2500ms);
  ASSERT_GT(recorded.size(), 100u);
  const int total = next - 1;
  const char* asked = std::getenv("ARGON_HISTORY_POINTS");
  const int points = asked ? std::atoi(asked) : 30;
  std::mt19937 rng(static_cast<unsigned>(std::random_device{}()));
  const unsigned seed = rng();
  rng.seed(seed);
  std::printf("random past points: %zu commits recorded of %d, seed %u\n", recorded.size(), total,
              seed);
  for (int n = 0; n < points; ++n) {
    const Committed& at =
        recorded[std::uniform_int_distribution<size_t>(0, recorded.size() - 1)(rng)];
    const bool by_time = n % 2 == 0;
    SCOPED_TRACE(fmt::format("point {}: row {} by {} (seed {})", n, at.row,
                             by_time ? "time " + at.time : "lsn " + at.lsn, seed));
    json::object point;
    if (by_time) {
      point["parent_timestamp"] = at.time;
    } else {
      point["parent_lsn"] = at.lsn;
    }
    auto b = branch_at(a, p, p.branch, point);
    ASSERT_EQ(b.status, 201) << b.raw;
    EXPECT_EQ(rows_of(a, p, b.endpoint), expect_rows(at.row)) << a.log_tail();
    auto d = a.call("DELETE", fmt::format("/projects/{}/branches/{}", p.id, b.id));
    ASSERT_EQ(d.status, 200) << d.raw;
    a.wait_operations(p.id, d.body.at("operations"));
  }
}

// Base images every megabyte of WAL (--history-image-wal-mb 1), looked at every second, and a
// five-second window: old images and the WAL before the oldest one kept go, a point inside the
// window still holds exactly its commits, one before it is refused, and history turned off
// removes it all.
TEST(HistoryWindowTest, ImagesFollowTheWalAndPruningKeepsOnlyTheWindow) {
  Argond a({"--history-check-seconds", "1", "--history-image-wal-mb", "1"});
  auto p = create_project(a, {{"name", "window"}, {"history_retention_seconds", 5}});
  const auto dir = a.data_dir() / "branches" / p.branch;
  auto images = [&] {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir / "images")) {
      const auto name = e.path().filename().string();
      if (name.find_first_not_of("0123456789") == std::string::npos) out.push_back(name);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  auto archived = [&] {
    std::set<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir / "wal"))
      out.insert(e.path().filename().string());
    return out;
  };
  auto wait_for = [&](const std::function<bool()>& done) {
    for (int i = 0; i < 600 && !done(); ++i) std::this_thread::sleep_for(100ms);
    return done();
  };
  auto c = PgConn::connect(a.owner_conninfo(p.password, p.endpoint));
  ASSERT_TRUE(c) << c.error().message;
  exec_value(*c, "CREATE TABLE t (i int)");
  exec_value(*c,
             "CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM "
             "generate_series(1, 20000) g");
  const auto first = images();
  ASSERT_TRUE(wait_for([&] { return images().size() >= 2; }))
      << "a new base image after a megabyte of WAL";
  auto early = insert_rows(*c, 1, 3);
  // More WAL, archived, and time for the early images to leave the window.
  exec_value(*c, "INSERT INTO filler SELECT g, repeat('y', 200) FROM generate_series(1, 20000) g");
  {
    auto admin = a.connect(p.branch);
    exec_value(admin, "SELECT pg_switch_wal()::text");
  }
  const auto segments_before = archived();
  std::this_thread::sleep_for(6s);
  auto late = insert_rows(*c, 4, 6);
  ASSERT_TRUE(wait_for([&] { return images().front() != first.front(); }))
      << "the branch's first image leaves the window";
  ASSERT_TRUE(wait_for([&] { return !archived().contains(*segments_before.begin()); }))
      << "WAL before the oldest image kept is removed: " << *segments_before.begin();

  // Before the window: Neon's 400. Inside it: exact.
  auto before = a.post(fmt::format("/projects/{}/branches", p.id),
                       {{"branch", {{"parent_timestamp", early[1].time}}}});
  EXPECT_EQ(before.status, 400) << before.raw;
  EXPECT_NE(before.raw.find("timestamp is before retention window"), std::string::npos)
      << before.raw;
  EXPECT_NE(before.raw.find("retention_window:\\\"5s\\\""), std::string::npos) << before.raw;
  auto inside = a.post(fmt::format("/projects/{}/branches", p.id),
                       {{"branch", {{"parent_lsn", late[1].lsn}}},
                        {"endpoints", json::array{json::object{{"type", "read_write"}}}}});
  ASSERT_EQ(inside.status, 201) << inside.raw;
  for (const auto& s : a.wait_operations(p.id, inside.body.at("operations")))
    EXPECT_EQ(s, "finished") << a.log_tail();
  EXPECT_EQ(query_value(a.owner_conninfo(p.password,
                                         str(inside.body.at("endpoints").as_array().at(0), "id")),
                        "SELECT string_agg(i::text, ',' ORDER BY i) FROM t"),
            "1,2,3,4,5");

  // History off: everything goes, and points are refused.
  auto off = a.call("PATCH", fmt::format("/projects/{}", p.id),
                    R"({"project":{"history_retention_seconds":0}})");
  ASSERT_EQ(off.status, 200) << off.raw;
  EXPECT_TRUE(wait_for([&] { return images().empty(); })) << "no base image is kept";
  auto refused = a.post(fmt::format("/projects/{}/branches", p.id),
                        {{"branch", {{"parent_lsn", late[2].lsn}}}});
  EXPECT_EQ(refused.status, 400) << refused.raw;
}

// argond killed while it takes a periodic base image (history.imaged: the image is in place, the
// thread dies after) or right after pruning (history.pruned): after the restart nothing is left
// half-made under images/, and a point of the window is still recovered exactly.
class HistoryKeeperCrashTest : public ::testing::TestWithParam<std::string> {};

TEST_P(HistoryKeeperCrashTest, HistoryStaysWholeAfterRestart) {
  Argond a({"--history-check-seconds", "1", "--history-image-wal-mb", "1"});
  auto p = create_project(a, {{"name", "keeper"}, {"history_retention_seconds", 3}});
  auto c = PgConn::connect(a.owner_conninfo(p.password, p.endpoint));
  ASSERT_TRUE(c) << c.error().message;
  exec_value(*c, "CREATE TABLE t (i int)");
  a.terminate();
  ::setenv("ARGON_CRASH_AT", GetParam().c_str(), 1);
  a.start();
  ::unsetenv("ARGON_CRASH_AT");
  // WAL for a new image, and time for the first one to leave the window.
  bool exited = false;
  for (int i = 0; i < 120 && !exited; ++i) {
    auto w = PgConn::connect(a.owner_conninfo(p.password, p.endpoint));
    if (w) (void)w->exec("INSERT INTO t SELECT -g FROM generate_series(1, 20000) g");
    exited = a.wait_exit(1s);
  }
  ASSERT_TRUE(exited) << "argond never reached " << GetParam() << "\n" << a.log_tail();
  for (int i = 0; i < 200 && postmasters_under(a.data_dir()) > 0; ++i)
    std::this_thread::sleep_for(25ms);
  a.start();
  c = PgConn::connect(a.owner_conninfo(p.password, p.endpoint));
  ASSERT_TRUE(c) << c.error().message;
  auto rows = insert_rows(*c, 1, 3);
  exec_value(*c, "INSERT INTO t VALUES (100)");
  auto b = a.post(fmt::format("/projects/{}/branches", p.id),
                  {{"branch", {{"parent_lsn", rows[1].lsn}}},
                   {"endpoints", json::array{json::object{{"type", "read_write"}}}}});
  ASSERT_EQ(b.status, 201) << b.raw;
  for (const auto& s : a.wait_operations(p.id, b.body.at("operations")))
    EXPECT_EQ(s, "finished") << a.log_tail();
  EXPECT_EQ(
      query_value(a.owner_conninfo(p.password, str(b.body.at("endpoints").as_array().at(0), "id")),
                  "SELECT string_agg(i::text, ',' ORDER BY i) FROM t WHERE i > 0"),
      "1,2");
  // A pass after the restart clears any leftover of the interrupted one. (An image being taken
  // right now has such names too: with nothing more written, one comes when none is.)
  std::string left;
  for (int i = 0; i < 600; ++i) {
    left.clear();
    for (const auto& e :
         std::filesystem::directory_iterator(a.data_dir() / "branches" / p.branch / "images")) {
      const auto name = e.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) left += name + " ";
    }
    if (left.empty()) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(left.empty()) << "left behind: " << left;
}

INSTANTIATE_TEST_SUITE_P(EachStep, HistoryKeeperCrashTest,
                         ::testing::Values("history.imaged", "history.pruned"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '.', '_');
                           return n;
                         });

TEST_F(HistoryTest, PointsOutsideTheWindowAreRefusedWithNeonsMessage) {
  auto w = start_writing("window", 2);
  auto& p = w.p;
  auto& rows = w.rows;

  auto before = branch_at(a, p, p.branch, {{"parent_timestamp", "2020-01-01T00:00:00Z"}});
  EXPECT_EQ(before.status, 400) << before.raw;
  EXPECT_TRUE(before.message.starts_with(
      "timestamp is before retention window; timestamp:\"2020-01-01 00:00:00 +0000 UTC\", "
      "retention_window:\"24h0m0s\""))
      << before.message;
  EXPECT_NE(before.message.find("(LSN "), std::string::npos)
      << "names the earliest point: " << before.message;

  auto future = branch_at(a, p, p.branch, {{"parent_timestamp", "2999-01-01T00:00:00Z"}});
  EXPECT_EQ(future.status, 400) << future.raw;
  EXPECT_NE(future.message.find("in the future"), std::string::npos) << future.message;

  auto beyond = branch_at(a, p, p.branch, {{"parent_lsn", "FF/0"}});
  EXPECT_EQ(beyond.status, 400) << beyond.raw;
  EXPECT_NE(beyond.message.find("beyond the end of the branch's WAL"), std::string::npos)
      << beyond.message;

  auto early = branch_at(a, p, p.branch, {{"parent_lsn", "0/10"}});
  EXPECT_EQ(early.status, 400) << early.raw;
  EXPECT_TRUE(early.message.starts_with("lsn is before retention window")) << early.message;

  auto both =
      branch_at(a, p, p.branch, {{"parent_lsn", rows[0].lsn}, {"parent_timestamp", rows[0].time}});
  EXPECT_EQ(both.status, 400) << both.raw;

  // Nothing was created by any of them.
  auto list = a.get(fmt::format("/projects/{}/branches", p.id));
  EXPECT_EQ(list.body.at("branches").as_array().size(), 1u) << list.raw;

  // History off: refused, and the project's computes archive nothing.
  auto off = create_project(a, {{"name", "no-history"}, {"history_retention_seconds", 0}});
  auto refused = branch_at(a, off, off.branch, {{"parent_timestamp", rows[0].time}});
  EXPECT_EQ(refused.status, 400) << refused.raw;
  EXPECT_NE(refused.message.find("history_retention_seconds is 0"), std::string::npos)
      << refused.message;
  EXPECT_FALSE(std::filesystem::exists(a.data_dir() / "branches" / off.branch / "images"));
}

}  // namespace
}  // namespace argon::testing
