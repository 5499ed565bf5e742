// The `argon` CLI against a real argond: resource commands by id and by name, data checked through
// the connection strings it prints, and the failure paths with their documented exit codes.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

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
    std::vector<std::string> argv = {argon_cli_path()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> env = {"ARGON_API_HOST=" + a_.api_url(), "ARGON_API_KEY=" + a_.key(),
                                    "ARGON_CONFIG_DIR=" + (dir_ / "config").string(), "PATH=/usr/bin:/bin"};
    env.insert(env.end(), env_extra.begin(), env_extra.end());
    const fs::path out = dir_ / "out", err = dir_ / "err";
    pid_t pid = ::fork();
    if (pid == 0) {
      int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600), e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
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
    int status = 0;
    ::waitpid(pid, &status, 0);
    auto slurp = [](const fs::path& p) {
      std::ifstream in(p);
      std::stringstream ss;
      ss << in.rdbuf();
      return ss.str();
    };
    return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), slurp(out), slurp(err)};
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
  EXPECT_EQ(ok({"-o", "json", "branches", "get", dev.at("id").as_string().c_str()}).json().at("protected").as_bool(), true);
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
  EXPECT_EQ(query_value(main_uri, "SELECT v FROM t"), "v1") << "restored data outlives its snapshot";

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
      {run({"--project-id", project, "--api-key", "wrong", "branches", "list"}), 5, "API key was refused"},
      {run({"--project-id", project, "--api-host", "http://127.0.0.1:1/api/v2", "branches", "list"}), 4,
       "cannot reach the API"},
      {run({"--project-id", project, "--api-host", "ftp://x", "branches", "list"}), 2, "not an http"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.r.exit, c.exit) << c.r.err;
    EXPECT_NE(c.r.err.find(c.says), std::string::npos) << c.r.err;
    if (c.exit != 2 || !c.says.empty()) {
      EXPECT_EQ(std::count(c.r.err.begin(), c.r.err.end(), '\n'), 1) << "one line: " << c.r.err;
    }
  }
  // Nothing changed: the same two branches and two snapshots.
  EXPECT_EQ(ok({"--project-id", project, "-o", "json", "branches", "list"}).json().as_array().size(), 2u);
  EXPECT_EQ(ok({"--project-id", project, "-o", "json", "snapshots", "list"}).json().as_array().size(), 2u);
}

}  // namespace
}  // namespace argon::testing
