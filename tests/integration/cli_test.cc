// The `argon` CLI against a real argond: resource commands by id and by name, data checked through
// the connection strings it prints, and the failure paths with their documented exit codes.
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/pg_conn.h"
#include "harness.h"

namespace argon::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

struct CliResult {
  int exit = -1;
  std::string out, err;
  json::value json() const { return json::parse(out); }
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "argon-cli-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs `argon args...` with the test argond's URL and key in the environment (as a user would
  // export them) and a private config directory.
  CliResult run(std::vector<std::string> args, std::vector<std::string> env_extra = {}) {
    return finish(start(std::move(args), std::move(env_extra)));
  }
  pid_t start(std::vector<std::string> args, std::vector<std::string> env_extra = {}) {
    std::vector<std::string> argv = {argon_cli_path()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> env = {"ARGON_API_HOST=" + a_.api_url(), "ARGON_API_KEY=" + a_.key(),
                                    "ARGON_CONFIG_DIR=" + (dir_ / "config").string(),
                                    "PATH=/usr/bin:/bin"};
    env.insert(env.end(), env_extra.begin(), env_extra.end());
    const fs::path out = dir_ / "out", err = dir_ / "err";
    pid_t pid = ::fork();
    if (pid == 0) {
      int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600),
          e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(o, 1);
      ::dup2(e, 2);
      std::vector<char*> a, en;
      for (auto& s : argv) a.push_back(s.data());
      a.push_back(nullptr);
      for (auto& s : env) en.push_back(s.data());
      en.push_back(nullptr);
      ::execve(a[0], a.data(), en.data());
      ::_exit(127);
    }
    return pid;
  }
  CliResult finish(pid_t pid) {
    const fs::path out = dir_ / "out", err = dir_ / "err";
    int status = 0;
    ::waitpid(pid, &status, 0);
    auto slurp = [](const fs::path& p) {
      std::ifstream in(p);
      std::stringstream ss;
      ss << in.rdbuf();
      return ss.str();
    };
    return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), slurp(out),
            slurp(err)};
  }
  CliResult ok(std::vector<std::string> args) {
    auto r = run(args);
    EXPECT_EQ(r.exit, 0) << fmt::format("argon {}\n{}{}", fmt::join(args, " "), r.out, r.err);
    return r;
  }
  std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }

  Argond a_;
  fs::path dir_;
};

TEST_F(CliTest, ResourceCommandsByIdAndName) {
  auto created = ok({"-o", "json", "projects", "create", "--name", "cli"});
  const std::string project(created.json().at("id").as_string());
  ok({"set-context", "--project-id", project});
  EXPECT_NE(ok({"projects", "get"}).out.find(project), std::string::npos) << "the context is used";

  // A branch by name, its connection string, data through it.
  ok({"branches", "create", "--name", "dev", "--expires-in", "24h"});
  auto dev = ok({"-o", "json", "branches", "get", "dev"}).json();
  EXPECT_EQ(dev.at("name").as_string(), "dev");
  EXPECT_TRUE(dev.as_object().contains("expires_at"));
  EXPECT_EQ(dev.at("current_state").as_string(), "ready") << "it waited for the operations";
  const std::string main_uri = trimmed(ok({"connection-string", "main"}).out);
  const std::string dev_uri = trimmed(ok({"connection-string", "dev"}).out);
  EXPECT_NE(main_uri, dev_uri);
  query_value(main_uri, "CREATE TABLE t (v text); INSERT INTO t VALUES ('v1')");

  ok({"branches", "rename", "dev", "feature"});
  ok({"branches", "protect", "feature"});
  EXPECT_EQ(ok({"-o", "json", "branches", "get", dev.at("id").as_string().c_str()})
                .json()
                .at("protected")
                .as_bool(),
            true);
  auto refused = run({"branches", "delete", "feature"});
  EXPECT_EQ(refused.exit, 1) << refused.err;
  EXPECT_NE(refused.err.find("protected"), std::string::npos) << refused.err;
  ok({"branches", "protect", "feature", "--off"});
  ok({"branches", "set-expiry", "feature", "--never"});
  ok({"branches", "delete", "feature"});
  EXPECT_EQ(ok({"-o", "json", "branches", "list"}).json().as_array().size(), 1u);

  // Snapshots: in place behind the same connection string, and as a new branch.
  ok({"snapshots", "create", "main", "--name", "v1"});
  query_value(main_uri, "UPDATE t SET v = 'v2'");
  ok({"snapshots", "restore", "v1", "--to", "main"});
  EXPECT_EQ(trimmed(ok({"connection-string", "main"}).out), main_uri);
  EXPECT_EQ(query_value(main_uri, "SELECT v FROM t"), "v1");
  auto names = ok({"-o", "json", "branches", "list"}).json();
  std::vector<std::string> got;
  for (const auto& b : names.as_array()) got.push_back(std::string(b.at("name").as_string()));
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"main", "main (old)"}));
  auto preview = ok({"-o", "json", "snapshots", "restore", "v1", "--name", "preview-v1"}).json();
  EXPECT_EQ(preview.at("name").as_string(), "preview-v1");
  ok({"snapshots", "rename", "v1", "version-1"});
  ok({"snapshots", "delete", "version-1"});
  EXPECT_TRUE(ok({"-o", "json", "snapshots", "list"}).json().as_array().empty());
  EXPECT_EQ(query_value(main_uri, "SELECT v FROM t"), "v1")
      << "restored data outlives its snapshot";

  // Roles and databases, applied inside Postgres.
  ok({"roles", "create", "app"});
  ok({"databases", "create", "appdb", "--owner", "app"});
  EXPECT_NE(ok({"databases", "list"}).out.find("appdb"), std::string::npos);
  EXPECT_EQ(query_value(main_uri,
                        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'appdb'"),
            "app");
  ok({"databases", "delete", "appdb"});
  ok({"roles", "delete", "app"});
  EXPECT_EQ(query_value(main_uri, "SELECT count(*) FROM pg_roles WHERE rolname = 'app'"), "0");

  auto ops = ok({"-o", "json", "operations", "list"}).json();
  ASSERT_FALSE(ops.as_array().empty());
  ok({"operations", "get", ops.as_array()[0].at("id").as_string().c_str()});
  EXPECT_NE(ok({"endpoints", "list"}).out.find("read_write"), std::string::npos);
}

TEST_F(CliTest, FailuresExitWithAReasonAndTheirCode) {
  auto created = ok({"-o", "json", "projects", "create", "--name", "cli"});
  const std::string project(created.json().at("id").as_string());
  auto in = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--project-id", project});
    return run(args);
  };
  struct Case {
    CliResult r;
    int exit;
    std::string says;
  };
  ok({"--project-id", project, "branches", "create", "--name", "twin", "--no-compute"});
  ok({"--project-id", project, "branches", "rename", "twin", "twin-2"});
  ok({"--project-id", project, "snapshots", "create", "main", "--name", "same"});
  ok({"--project-id", project, "snapshots", "create", "main", "--name", "same"});
  std::vector<Case> cases = {
      {in({"branches", "get", "nope"}), 3, "no branch 'nope'"},
      {in({"snapshots", "restore", "same", "--to", "main"}), 3, "are named 'same'"},
      {in({"branches", "delete", "main"}), 1, "default"},
      {in({"branches", "create", "--name", "x", "--expires-in", "soon"}), 2, "not a duration"},
      {in({"branches", "frobnicate"}), 2, ""},
      {run({"branches", "list"}), 2, "no project"},
      {run({"--project-id", project, "--api-key", "wrong", "branches", "list"}), 5,
       "API key was refused"},
      {run({"--project-id", project, "--api-host", "http://127.0.0.1:1/api/v2", "branches",
            "list"}),
       4, "cannot reach the API"},
      {run({"--project-id", project, "--api-host", "ftp://x", "branches", "list"}), 2,
       "not an http"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.r.exit, c.exit) << c.r.err;
    EXPECT_NE(c.r.err.find(c.says), std::string::npos) << c.r.err;
    if (c.exit != 2 || !c.says.empty()) {
      EXPECT_EQ(std::count(c.r.err.begin(), c.r.err.end(), '\n'), 1) << "one line: " << c.r.err;
    }
  }
  // Nothing changed: the same two branches and two snapshots.
  EXPECT_EQ(
      ok({"--project-id", project, "-o", "json", "branches", "list"}).json().as_array().size(), 2u);
  EXPECT_EQ(
      ok({"--project-id", project, "-o", "json", "snapshots", "list"}).json().as_array().size(),
      2u);
}

// The snapshot-promotion guide and the agent-versioning pattern, one command per phase, with the
// data checked through the connection strings at each step.
TEST_F(CliTest, WorkflowsFromTheGuides) {
  auto created = ok({"-o", "json", "projects", "create", "--name", "shop"});
  ok({"set-context", "--project-id", std::string(created.json().at("id").as_string())});
  ok({"branches", "rename", "main", "prod"});
  const std::string prod = trimmed(ok({"connection-string", "prod"}).out);
  query_value(prod,
              "CREATE TABLE items (id int PRIMARY KEY, title text); INSERT INTO items VALUES (1, "
              "'prod item')");

  // Phase 1: dev as a second root branch.
  const std::string dev =
      trimmed(ok({"setup-dev", "--from", "prod", "--name", "dev", "--protect-prod"}).out);
  EXPECT_EQ(trimmed(ok({"connection-string", "dev"}).out), dev);
  EXPECT_EQ(query_value(dev, "SELECT title FROM items"), "prod item");
  auto dev_branch = ok({"-o", "json", "branches", "get", "dev"}).json();
  EXPECT_FALSE(dev_branch.as_object().contains("parent_id")) << "a root branch";
  EXPECT_TRUE(ok({"-o", "json", "branches", "get", "prod"}).json().at("protected").as_bool());
  EXPECT_TRUE(ok({"-o", "json", "snapshots", "list"}).json().as_array().empty())
      << "the baseline is deleted";

  // Phase 2: a preview of dev; the change goes to dev.
  const std::string feat = trimmed(
      ok({"preview", "create", "--from", "dev", "--name", "feat", "--expires-in", "2h"}).out);
  EXPECT_EQ(query_value(feat, "SELECT count(*) FROM items"), "1");
  EXPECT_NE(ok({"preview", "list", "--from", "dev"}).out.find("feat"), std::string::npos);
  ok({"preview", "delete", "feat"});
  query_value(
      dev,
      "ALTER TABLE items ADD COLUMN price numeric; INSERT INTO items VALUES (2, 'dev item', 5)");

  // Phase 3: promote; prod's connection string now serves dev's schema and rows.
  ok({"promote", "--from", "dev", "--to", "prod"});
  EXPECT_EQ(query_value(prod, "SELECT string_agg(title, ',' ORDER BY id) FROM items"),
            "prod item,dev item");
  EXPECT_EQ(trimmed(ok({"connection-string", "prod"}).out), prod);
  auto prod_branch = ok({"-o", "json", "branches", "get", "prod"}).json();
  EXPECT_TRUE(prod_branch.at("protected").as_bool());
  EXPECT_TRUE(prod_branch.at("default").as_bool());
  auto names = [&] {
    std::vector<std::string> out;
    const auto list = ok({"-o", "json", "branches", "list"}).json();
    for (const auto& b : list.as_array()) out.emplace_back(b.at("name").as_string());
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(names(), (std::vector<std::string>{"dev", "prod"})) << "the backup is cleaned up";
  auto snaps = ok({"-o", "json", "snapshots", "list"}).json().as_array();
  ASSERT_EQ(snaps.size(), 1u) << "only the rollback point is kept";
  EXPECT_NE(std::string(snaps[0].at("name").as_string()).find("prod_snap_"), std::string::npos);

  // Phase 4: refresh dev from prod.
  query_value(prod, "INSERT INTO items VALUES (3, 'sold', 1)");
  query_value(dev, "CREATE TABLE scratch (x int)");
  ok({"refresh", "dev", "--from", "prod"});
  EXPECT_EQ(query_value(dev, "SELECT count(*) FROM items"), "3");
  EXPECT_EQ(query_value(dev, "SELECT to_regclass('scratch') IS NULL"), "t");
  EXPECT_EQ(names(), (std::vector<std::string>{"dev", "prod"}));

  // Phase 5: roll prod back to before the promotion.
  ok({"rollback", "prod"});
  EXPECT_EQ(query_value(prod, "SELECT string_agg(title, ',' ORDER BY id) FROM items"), "prod item");
  EXPECT_EQ(query_value(
                prod, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items'"),
            "2");
  EXPECT_EQ(names(), (std::vector<std::string>{"dev", "prod"}));

  // The write-loss guard, and resuming an interrupted promotion: the first run stops at the
  // candidate (it does not exist yet), prod takes a write, the re-run refuses to drop it.
  auto stopped = run({"promote", "--from", "cand", "--to", "prod"});
  EXPECT_EQ(stopped.exit, 3) << stopped.err;
  EXPECT_NE(stopped.err.find("step 4/7"), std::string::npos) << stopped.err;
  EXPECT_NE(stopped.err.find("run the same command again"), std::string::npos) << stopped.err;
  query_value(prod, "INSERT INTO items VALUES (4, 'late write')");
  ok({"branches", "create", "--name", "cand", "--parent", "dev"});
  auto refused = run({"promote", "--from", "cand", "--to", "prod"});
  EXPECT_EQ(refused.exit, 1) << refused.err;
  EXPECT_NE(refused.err.find("done in an earlier run"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("committed on the target after its rollback snapshot"),
            std::string::npos)
      << refused.err;
  EXPECT_EQ(query_value(prod, "SELECT count(*) FROM items WHERE id = 4"), "1")
      << "nothing was replaced";
  ok({"promote", "--from", "cand", "--to", "prod", "--accept-prod-write-loss"});
  EXPECT_EQ(query_value(prod, "SELECT count(*) FROM items"), "3")
      << "cand's data: dev's three rows";

  // Checkpoints of the active (default) branch: the history survives in-place restores.
  query_value(prod, "CREATE TABLE contacts (id int)");
  ok({"checkpoint", "save", "v1"});
  query_value(prod, "ALTER TABLE contacts ADD COLUMN email text");
  ok({"checkpoint", "save", "v2"});
  EXPECT_EQ(run({"checkpoint", "save", "v2"}).exit, 1) << "names are unique";
  ok({"checkpoint", "restore", "v1"});
  EXPECT_EQ(
      query_value(prod,
                  "SELECT count(*) FROM information_schema.columns WHERE table_name = 'contacts'"),
      "1");
  const std::string v2 = trimmed(ok({"checkpoint", "preview", "v2"}).out);
  EXPECT_EQ(
      query_value(v2,
                  "SELECT count(*) FROM information_schema.columns WHERE table_name = 'contacts'"),
      "2");
  ok({"preview", "delete", "checkpoint-preview-v2"});
  ok({"checkpoint", "restore", "v2"});
  EXPECT_EQ(
      query_value(prod,
                  "SELECT count(*) FROM information_schema.columns WHERE table_name = 'contacts'"),
      "2");
  auto listed = ok({"checkpoint", "list"}).out;
  EXPECT_NE(listed.find("v1"), std::string::npos);
  EXPECT_NE(listed.find("v2"), std::string::npos);

  // cleanup finds the backup an in-place restore left.
  ok({"checkpoint", "restore", "v1", "--keep-backup"});
  auto dry = ok({"cleanup", "--dry-run"});
  EXPECT_NE(dry.err.find("would delete branch prod (old)"), std::string::npos) << dry.err;
  EXPECT_EQ(names().size(), 4u) << "a dry run deletes nothing";
  ok({"cleanup"});
  EXPECT_EQ(names(), (std::vector<std::string>{"cand", "dev", "prod"}));
  EXPECT_EQ(trimmed(ok({"connection-string", "prod"}).out), prod);
}

// Ctrl-C in the middle of a promotion, at the restore step, then the same command again: it
// finishes, and nothing is doubled or left behind.
TEST_F(CliTest, AnInterruptedPromotionFinishesWhenRunAgain) {
  auto created = ok({"-o", "json", "projects", "create", "--name", "shop"});
  ok({"set-context", "--project-id", std::string(created.json().at("id").as_string())});
  const std::string prod = trimmed(ok({"connection-string", "main"}).out);
  query_value(prod, "CREATE TABLE t (v text); INSERT INTO t VALUES ('prod')");
  const std::string dev = trimmed(ok({"setup-dev", "--from", "main", "--name", "dev"}).out);
  query_value(dev, "UPDATE t SET v = 'dev'");

  int round = 0;
  // Before the rollback snapshot; before the restore call; after the restore was accepted.
  for (const char* at : {"[3/7]", "[5/7]", "restore: waiting"}) {
    SCOPED_TRACE(at);
    ++round;
    pid_t pid = start({"promote", "--from", "dev", "--to", "main"});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::string err;
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(dir_ / "err");
      err.assign(std::istreambuf_iterator<char>(in), {});
      if (err.find(at) != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ::kill(pid, SIGINT);
    auto interrupted = finish(pid);
    EXPECT_NE(interrupted.exit, 0) << interrupted.err;
    auto again = ok({"promote", "--from", "dev", "--to", "main"});
    EXPECT_NE(again.err.find("done in an earlier run"), std::string::npos) << again.err;
    EXPECT_EQ(query_value(prod, "SELECT v FROM t"), query_value(dev, "SELECT v FROM t"));
    std::vector<std::string> branches, snapshots;
    const auto bl = ok({"-o", "json", "branches", "list"}).json();
    for (const auto& b : bl.as_array()) branches.emplace_back(b.at("name").as_string());
    const auto sl = ok({"-o", "json", "snapshots", "list"}).json();
    for (const auto& s : sl.as_array()) snapshots.emplace_back(s.at("name").as_string());
    std::sort(branches.begin(), branches.end());
    EXPECT_EQ(branches, (std::vector<std::string>{"dev", "main"})) << again.err;
    EXPECT_EQ(std::count_if(snapshots.begin(), snapshots.end(),
                            [](const std::string& n) {
                              return n.find("_pre-promotion") != std::string::npos;
                            }),
              round)
        << "one rollback snapshot per promotion";
    EXPECT_EQ(std::count_if(
                  snapshots.begin(), snapshots.end(),
                  [](const std::string& n) { return n.find("_candidate") != std::string::npos; }),
              0);
    query_value(dev, fmt::format("UPDATE t SET v = 'dev {}'", round));
  }
}

// reset-from-parent (POST /branches/{id}/restore from the parent's head): same id and connection
// string, the parent's current data, the old state kept under another name with the children.
TEST_F(CliTest, ResetFromParentKeepsTheBranchAndItsConnectionString) {
  auto created = ok({"-o", "json", "projects", "create", "--name", "reset"});
  ok({"set-context", "--project-id", std::string(created.json().at("id").as_string())});
  const std::string main_uri = trimmed(ok({"connection-string", "main"}).out);
  query_value(main_uri, "CREATE TABLE t (v text); INSERT INTO t VALUES ('parent v1')");
  ok({"branches", "create", "--name", "dev", "--parent", "main"});
  ok({"branches", "create", "--name", "dev-child", "--parent", "dev", "--no-compute"});
  const std::string dev_id(
      ok({"-o", "json", "branches", "get", "dev"}).json().at("id").as_string());
  const std::string dev_uri = trimmed(ok({"connection-string", "dev"}).out);
  query_value(dev_uri, "INSERT INTO t VALUES ('dev only')");
  query_value(main_uri, "UPDATE t SET v = 'parent v2'");

  auto refused = run({"branches", "reset-from-parent", "dev"});
  EXPECT_EQ(refused.exit, 2) << refused.err;
  EXPECT_NE(refused.err.find("preserve_under_name"), std::string::npos) << refused.err;
  EXPECT_EQ(run({"branches", "reset-from-parent", "main"}).exit, 2)
      << "a root branch has no parent";

  auto reset = ok({"-o", "json", "branches", "reset-from-parent", "dev", "--preserve-under-name",
                   "dev-before"})
                   .json();
  EXPECT_EQ(reset.at("id").as_string(), dev_id) << "the branch keeps its id";
  EXPECT_EQ(trimmed(ok({"connection-string", "dev"}).out), dev_uri);
  EXPECT_EQ(query_value(dev_uri, "SELECT string_agg(v, ',' ORDER BY v) FROM t"), "parent v2");
  const std::string before_id(
      ok({"-o", "json", "branches", "get", "dev-before"}).json().at("id").as_string());
  EXPECT_EQ(ok({"-o", "json", "branches", "get", "dev-child"}).json().at("parent_id").as_string(),
            before_id)
      << "the children move to the preserved branch";
  ok({"endpoints", "create", "--branch", "dev-before"});
  EXPECT_EQ(query_value(trimmed(ok({"connection-string", "dev-before"}).out),
                        "SELECT string_agg(v, ',' ORDER BY v) FROM t"),
            "dev only,parent v1");
}

// Point-in-time restores from the CLI: a branch to a time of its own past, to an LSN of another
// branch, and `checkpoint restore --to-time`; the connection string never changes.
TEST_F(CliTest, RestoreToATimeOrAnLsnInPlace) {
  auto created = ok({"-o", "json", "projects", "create", "--name", "undo"});
  ok({"set-context", "--project-id", std::string(created.json().at("id").as_string())});
  const std::string uri = trimmed(ok({"connection-string", "main"}).out);
  query_value(uri, "CREATE TABLE t (v text); INSERT INTO t VALUES ('good')");
  const std::string good_time = query_value(uri,
                                            "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
                                            "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
  const std::string good_lsn = query_value(uri, "SELECT pg_current_wal_lsn()::text");
  query_value(uri, "INSERT INTO t VALUES ('agent mistake')");

  auto missing = run({"branches", "restore", "main"});
  EXPECT_EQ(missing.exit, 2) << missing.err;
  EXPECT_NE(missing.err.find("--to-time or --to-lsn"), std::string::npos) << missing.err;

  ok({"branches", "restore", "main", "--to-time", good_time});
  EXPECT_EQ(trimmed(ok({"connection-string", "main"}).out), uri);
  EXPECT_EQ(query_value(uri, "SELECT string_agg(v, ',' ORDER BY v) FROM t"), "good");

  // dev, from main's history at an LSN.
  ok({"branches", "create", "--name", "dev", "--parent", "main"});
  const std::string dev_uri = trimmed(ok({"connection-string", "dev"}).out);
  query_value(dev_uri, "INSERT INTO t VALUES ('dev')");
  auto to_lsn = run({"branches", "restore", "dev", "--source", "main", "--to-lsn", good_lsn});
  // main was restored since good_lsn was read: that LSN is before main's new history.
  EXPECT_EQ(to_lsn.exit, 2) << to_lsn.err;
  EXPECT_NE(to_lsn.err.find("before retention window"), std::string::npos) << to_lsn.err;

  // checkpoint restore --to-time: the default branch to a time, in place.
  query_value(uri, "INSERT INTO t VALUES ('second')");
  const std::string second_time =
      query_value(uri,
                  "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
                  "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
  query_value(uri, "INSERT INTO t VALUES ('third')");
  ok({"checkpoint", "restore", "--to-time", second_time});
  EXPECT_EQ(query_value(uri, "SELECT string_agg(v, ',' ORDER BY v) FROM t"), "good,second");
}

}  // namespace
}  // namespace argon::testing
