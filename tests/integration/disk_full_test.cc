// A disk too full for a clone (a small loop-mounted ext4 with the copy driver, nearly filled by a
// ballast file, with room left for the serving compute's WAL): branch creation, snapshot and
// restore each fail their operation with a clear error before they copy anything, the branch that
// was serving keeps serving, and nothing half-made is left. Once space is back, the same requests
// succeed.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <set>

#include "harness.h"
#include "loop_filesystem.h"

namespace argon::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

// Leaves about `free_mb` free on the filesystem of `dir`.
fs::path fill_disk(const fs::path& dir, uint64_t free_mb) {
  struct statvfs v {};
  EXPECT_EQ(::statvfs(dir.c_str(), &v), 0);
  const uint64_t avail = static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
  const fs::path ballast = dir / "ballast";
  int fd = ::open(ballast.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  EXPECT_GE(fd, 0);
  if (avail > (free_mb << 20)) {
    EXPECT_EQ(::posix_fallocate(fd, 0, static_cast<off_t>(avail - (free_mb << 20))), 0);
  }
  ::close(fd);
  return ballast;
}

std::set<std::string> entries(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

TEST(DiskFullTest, ClonesThatDoNotFitFailCleanlyAndTheBranchKeepsServing) {
  LoopFilesystem image(LoopFsType::kExt4, std::uint64_t{512} << 20);
  if (!image.ok()) {
    if (running_under_ci()) FAIL() << "could not create the loop filesystem under CI";
    GTEST_SKIP() << "no loop device";
  }
  Argond a({"--clone-driver", "copy"}, image.mount_point() / "argon");
  auto p = create_project(a, {{"name", "full"}});
  const std::string info = a.owner_conninfo(p.password, p.endpoint);
  query_value(info, "CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')");
  auto snap =
      a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot?name=before", p.id, p.branch));
  ASSERT_EQ(snap.status, 200) << snap.raw;
  a.wait_operations(p.id, snap.body.at("operations"));
  const std::string snapshot_id = str(snap.body.at("snapshot"), "id");
  const auto branches_before = entries(a.data_dir() / "branches");
  const auto snapshots_before = entries(a.data_dir() / "snapshots");

  const fs::path ballast = fill_disk(image.mount_point(), 40);  // room for WAL, not for a copy
  auto failed = [&](const ApiReply& r, const std::string& what) {
    ASSERT_TRUE(r.status == 200 || r.status == 201) << what << ": " << r.raw;
    auto statuses = a.wait_operations(p.id, r.body.at("operations"));
    EXPECT_EQ(statuses.at(0), "failed") << what;
    auto ops = a.get(fmt::format("/projects/{}/operations", p.id)).body.at("operations").as_array();
    const std::string error(ops.at(0).at("error").as_string());
    EXPECT_NE(error.find("not enough free space"), std::string::npos) << what << ": " << error;
  };
  failed(a.post(fmt::format("/projects/{}/branches", p.id), {{"branch", {{"name", "dev"}}}}),
         "branch");
  failed(a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot?name=full", p.id, p.branch)),
         "snapshot");
  failed(a.call("POST", fmt::format("/projects/{}/snapshots/{}/restore", p.id, snapshot_id),
                R"({"name":"r"})"),
         "restore");

  // The serving branch serves; nothing half-made is left, in the API or on disk.
  EXPECT_EQ(query_value(info, "SELECT v FROM t"), "kept");
  EXPECT_EQ(a.get(fmt::format("/projects/{}/branches", p.id)).body.at("branches").as_array().size(),
            1u);
  EXPECT_EQ(
      a.get(fmt::format("/projects/{}/snapshots", p.id)).body.at("snapshots").as_array().size(),
      1u);
  EXPECT_EQ(entries(a.data_dir() / "branches"), branches_before);
  EXPECT_EQ(entries(a.data_dir() / "snapshots"), snapshots_before);

  // Space back: the same requests succeed.
  fs::remove(ballast);
  auto dev = a.post(fmt::format("/projects/{}/branches", p.id),
                    {{"branch", {{"name", "dev"}}}, {"endpoints", {{{"type", "read_write"}}}}});
  ASSERT_EQ(dev.status, 201) << dev.raw;
  for (const auto& s : a.wait_operations(p.id, dev.body.at("operations")))
    EXPECT_EQ(s, "finished") << a.log_tail();
}

}  // namespace
}  // namespace argon::testing
