// RoleCache against files laid out as argon_roles writes them, with this test as the postmaster.
#include "proxy/role_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "compute/endpoint_access.h"

namespace argon::proxy {
namespace {

namespace fs = std::filesystem;

// A postmaster's file: created beside and renamed into place, mapped for writing.
class FakePostmaster {
 public:
  explicit FakePostmaster(const fs::path& dir, std::uint64_t magic = 0x3147524e4f475241ULL) {
    const fs::path path = dir / std::string(compute::kRoleGenerationFile);
    const fs::path tmp = path.string() + ".tmp";
    const int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    const std::uint64_t init[2] = {magic, 1};
    EXPECT_EQ(::pwrite(fd, init, sizeof init, 0), static_cast<ssize_t>(sizeof init));
    counter_ = static_cast<std::uint64_t*>(
        ::mmap(nullptr, sizeof init, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    ::close(fd);
    fs::rename(tmp, path);
  }
  ~FakePostmaster() { ::munmap(counter_, 16); }
  void role_changed() { __atomic_add_fetch(&counter_[1], 1, __ATOMIC_SEQ_CST); }

 private:
  std::uint64_t* counter_;
};

RoleSecret secret(std::string verifier, bool expires = false) {
  return RoleSecret{
      .exists = true, .verifier = std::move(verifier), .can_login = true, .expires = expires};
}

class RoleCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("role-cache-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  RoleCache cache_;
};

TEST_F(RoleCacheTest, AVerifierCountsUntilARoleChanges) {
  FakePostmaster pm(dir_);
  auto before = cache_.stamp(dir_);
  ASSERT_TRUE(before);
  cache_.remember(dir_, "alice", *before, secret("v1"));
  auto hit = cache_.find(dir_, "alice", *cache_.stamp(dir_));
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->verifier, "v1");
  EXPECT_FALSE(cache_.find(dir_, "bob", *cache_.stamp(dir_)));

  pm.role_changed();
  EXPECT_FALSE(cache_.find(dir_, "alice", *cache_.stamp(dir_)));
}

TEST_F(RoleCacheTest, AChangeDuringTheReadMakesTheNextLoginReadAgain) {
  FakePostmaster pm(dir_);
  auto before = cache_.stamp(dir_);  // taken, then a change commits while the verifier is read
  pm.role_changed();
  cache_.remember(dir_, "alice", *before, secret("maybe old"));
  EXPECT_FALSE(cache_.find(dir_, "alice", *cache_.stamp(dir_)));
}

TEST_F(RoleCacheTest, ANewPostmasterOrNoneForgetsEverything) {
  {
    FakePostmaster first(dir_);
    auto before = cache_.stamp(dir_);
    cache_.remember(dir_, "alice", *before, secret("v1"));
    ASSERT_TRUE(cache_.find(dir_, "alice", *cache_.stamp(dir_)));
  }
  FakePostmaster second(dir_);  // same counter value, another file
  auto now = cache_.stamp(dir_);
  ASSERT_TRUE(now);
  EXPECT_FALSE(cache_.find(dir_, "alice", *now));

  fs::remove(dir_ / std::string(compute::kRoleGenerationFile));
  EXPECT_FALSE(cache_.stamp(dir_)) << "a compute without the file is never cached for";
  EXPECT_EQ(cache_.size(), 0u);
}

TEST_F(RoleCacheTest, ForeignFilesAndExpiringRolesAreNotTrusted) {
  { FakePostmaster wrong(dir_, 42); }
  EXPECT_FALSE(cache_.stamp(dir_));
  FakePostmaster pm(dir_);
  auto before = cache_.stamp(dir_);
  cache_.remember(dir_, "temp", *before, secret("v", /*expires=*/true));
  EXPECT_FALSE(cache_.find(dir_, "temp", *cache_.stamp(dir_)));
}

TEST_F(RoleCacheTest, AnyNumberOfRoleNamesKeepsItBounded) {
  FakePostmaster pm(dir_);
  auto before = cache_.stamp(dir_);
  for (int i = 0; i < 5000; ++i) {
    cache_.remember(dir_, "ghost" + std::to_string(i), *before, RoleSecret{});
  }
  EXPECT_LE(cache_.size(), RoleCache::kMaxRolesPerCompute);
  fs::remove(dir_ / std::string(compute::kRoleGenerationFile));
  cache_.sweep();
  EXPECT_EQ(cache_.size(), 0u);
}

}  // namespace
}  // namespace argon::proxy
