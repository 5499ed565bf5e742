// The reflink clone driver on a real copy-on-write filesystem: an XFS image (reflink=1) that the
// test makes and loop-mounts. Needs root; under CI=true it must run, not skip.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdlib>

#include "common/process_runner.h"
#include "harness.h"
#include "loop_filesystem.h"

namespace argon::testing {
namespace {

namespace fs = std::filesystem;

TEST(ReflinkTest, BranchesOnXfsShareBlocks) {
  const bool ci = running_under_ci();
  if (::geteuid() != 0) {
    if (ci) FAIL() << "CI=true: the reflink tests must run; run them as root";
    GTEST_SKIP() << "needs root to loop-mount an XFS image";
  }
  LoopFilesystem xfs(LoopFsType::kXfsReflink);
  ASSERT_TRUE(xfs.ok()) << "could not create and mount an XFS image (xfsprogs, loop devices)";
  auto data = xfs.mount_point() / "argon";
  {
    Argond a({"--clone-driver", "reflink"}, data);
    EXPECT_NE(a.log_tail().find("clone driver: reflink"), std::string::npos) << a.log_tail();
    auto r = a.post("/projects", {{"project", {{"name", "cow"}}}});
    ASSERT_EQ(r.status, 201);
    const std::string p(r.body.at("project").at("id").as_string());
    const std::string main_branch(r.body.at("branch").at("id").as_string());
    a.wait_idle(p);
    auto conn = a.connect(main_branch, "neondb");
    ASSERT_TRUE(
        conn.exec("CREATE TABLE big AS SELECT g AS id, repeat('z', 500) AS pad FROM "
                  "generate_series(1, 200000) g"));
    ASSERT_TRUE(conn.exec("VACUUM (FREEZE) big"));
    auto suspend =
        a.call("POST", fmt::format("/projects/{}/endpoints/{}/suspend", p,
                                   std::string(r.body.at("endpoints").at(0).at("id").as_string())));
    a.wait_operations(p, suspend.body.at("operations"));

    struct statvfs before {
    }, after{};
    ::statvfs(data.c_str(), &before);
    auto b = a.post(fmt::format("/projects/{}/branches", p),
                    {{"branch", {{"name", "clone"}}}, {"endpoints", {{{"type", "read_write"}}}}});
    ASSERT_EQ(b.status, 201);
    for (const auto& s : a.wait_operations(p, b.body.at("operations")))
      EXPECT_EQ(s, "finished") << a.log_tail();
    const std::string child(b.body.at("branch").at("id").as_string());
    // A reflinked copy of a ~130 MB cluster costs far less than its size. Measured once the
    // create and the child's start finished (the start writes a little of its own).
    ::statvfs(data.c_str(), &after);
    EXPECT_EQ(a.connect(child, "neondb").exec("SELECT count(*) FROM big")->value(), "200000");
    const double used_mb =
        (static_cast<double>(before.f_bfree) - static_cast<double>(after.f_bfree)) *
        static_cast<double>(before.f_frsize) / 1e6;
    EXPECT_LT(used_mb, 60.0) << "the clone used " << used_mb << " MB";
    std::fprintf(stderr, "reflink branch of a ~130 MB cluster used %.1f MB of new space\n",
                 used_mb);

    // Where clones share blocks, a snapshot is settled after its operation, on a copy that takes
    // its place.
    auto snap = a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot?name=s", p, child));
    ASSERT_EQ(snap.status, 200) << snap.raw;
    for (const auto& s : a.wait_operations(p, snap.body.at("operations")))
      EXPECT_EQ(s, "finished") << a.log_tail();
    const std::string sid(snap.body.at("snapshot").at("id").as_string());
    ASSERT_TRUE(wait_settled(a, sid)) << a.log_tail();
    EXPECT_NE(a.log_tail().find(fmt::format("snapshot {}: settled beside", sid)), std::string::npos)
        << a.log_tail();
  }
  std::error_code ec;
  fs::remove_all(data, ec);
}

TEST(ReflinkTest, AskingForReflinkWhereItDoesNotWorkIsAClearError) {
  // A tmpfs-backed or ext4 temp dir has no FICLONE; argond must refuse with a reason, not fall
  // back.
  std::string tmpl = (fs::temp_directory_path() / "argon-noreflink-XXXXXX").string();
  fs::path dir = ::mkdtemp(tmpl.data());
  std::string out = dir / "out.txt";
  int rc = std::system(
      fmt::format("{} --data-dir {} --listen 127.0.0.1:0 --clone-driver reflink > {} 2>&1",
                  argond_path(), (dir / "d").string(), out)
          .c_str());
  std::string text = argon::tail_file(out);
  fs::remove_all(dir);
  if (text.find("clone driver: reflink") != std::string::npos)
    GTEST_SKIP() << "temp dir supports reflink";
  EXPECT_NE(rc, 0);
  EXPECT_NE(text.find("--clone-driver reflink"), std::string::npos) << text;
  EXPECT_NE(text.find("not supported"), std::string::npos) << text;
}

}  // namespace
}  // namespace argon::testing
