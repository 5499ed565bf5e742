// What must stay private on the machine: computes reachable only through the proxy, nothing under
// the data directory readable by other users, API keys only as hashes, role passwords in no log.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "harness.h"

namespace argon::testing {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(IsolationTest, ComputesDataAndSecretsStayPrivate) {
  Argond a;
  auto p = create_project(a, {{"name", "private"}});
  const std::string info = a.owner_conninfo(p.password, p.endpoint);
  // Exercise the paths that handle secrets: a login through the proxy, reveal_password, a reset.
  EXPECT_EQ(query_value(info, "SELECT current_user"), "neondb_owner");
  EXPECT_EQ(query_value(info, "SHOW listen_addresses"), "") << "the compute listens on no TCP port";
  auto revealed = a.get(
      fmt::format("/projects/{}/branches/{}/roles/neondb_owner/reveal_password", p.id, p.branch));
  ASSERT_EQ(revealed.status, 200);
  auto reset = a.call(
      "POST",
      fmt::format("/projects/{}/branches/{}/roles/neondb_owner/reset_password", p.id, p.branch));
  ASSERT_EQ(reset.status, 200) << reset.raw;
  const std::string new_password(reset.body.at("role").at("password").as_string());
  a.wait_idle(p.id);

  // Compute sockets: a private directory per compute, owned by the Postgres user.
  int sockets = 0;
  for (const auto& e : fs::directory_iterator(a.data_dir() / "run")) {
    struct stat st {};
    ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 077, 0u) << e.path() << " is open to other users";
    sockets += fs::exists(e.path() / ".s.PGSQL.5432");
  }
  EXPECT_GE(sockets, 1);

  // Nothing under the data directory is readable or writable by other users; directories may be
  // traversable (the Postgres user must reach its own). The proxy's certificate and its authority's
  // are public.
  for (auto it = fs::recursive_directory_iterator(a.data_dir(),
                                                  fs::directory_options::skip_permission_denied);
       it != fs::recursive_directory_iterator(); ++it) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || S_ISLNK(st.st_mode) || S_ISSOCK(st.st_mode))
      continue;
    if (it->path().filename() == "proxy.crt" || it->path().filename() == "ca.crt") continue;
    EXPECT_EQ(st.st_mode & (S_IROTH | S_IWOTH), 0u)
        << it->path() << fmt::format(" has mode {:o}", st.st_mode & 07777);
  }

  // The API key only as a hash, in the catalog and its WAL.
  for (const char* file : {"catalog.db", "catalog.db-wal"}) {
    if (!fs::exists(a.data_dir() / file)) continue;
    EXPECT_EQ(slurp(a.data_dir() / file).find(a.key()), std::string::npos)
        << file << " holds the API key";
  }
  // Role passwords in no log: argond's, the computes', the tools'.
  std::vector<fs::path> logs = {a.data_dir() / "argond.stdout"};
  for (const auto& e : fs::directory_iterator(a.data_dir() / "logs")) logs.push_back(e.path());
  for (const auto& log : logs) {
    const std::string text = slurp(log);
    EXPECT_EQ(text.find(p.password), std::string::npos) << log << " holds a role password";
    EXPECT_EQ(text.find(new_password), std::string::npos) << log << " holds a role password";
    EXPECT_EQ(text.find(a.key()), std::string::npos) << log << " holds the API key";
  }
}

}  // namespace
}  // namespace argon::testing
