#include "storage/page_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

namespace argon::storage {
namespace {

namespace fs = std::filesystem;

const std::uint64_t kPage = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));

class PageCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "argon-page-cache-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    // The same files in the serving cluster ("old") and in its replacement ("new").
    for (const char* side : {"old", "new"}) {
      write(side, "base/5/small", 3);
      write(side, "base/5/large", 64);
      write(side, "pg_wal/000000010000000000000001", 4);
    }
    write("old", "base/5/only_in_old", 2);
    write("new", "global/only_in_new", 2);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& side, const std::string& rel, std::uint64_t pages) {
    const fs::path path = dir_ / side / rel;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary | std::ios::trunc) << std::string(pages * kPage, 'x');
  }
  // Written back and dropped from the cache; false where the filesystem keeps the pages anyway.
  bool drop(const std::string& side, const std::string& rel) {
    const int fd = ::open((dir_ / side / rel).c_str(), O_RDONLY);
    if (fd < 0) return false;
    ::fsync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
    return cached_pages(side, rel) == 0;
  }
  std::uint64_t cached_pages(const std::string& side, const std::string& rel) {
    const fs::path path = dir_ / side / rel;
    const auto size = fs::file_size(path);
    const int fd = ::open(path.c_str(), O_RDONLY);
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    std::vector<unsigned char> resident((size + kPage - 1) / kPage);
    ::mincore(map, size, resident.data());
    ::munmap(map, size);
    ::close(fd);
    std::uint64_t n = 0;
    for (auto r : resident) n += r & 1;
    return n;
  }
  WarmStats warm(std::uint64_t budget) { return warm_like(dir_ / "new", dir_ / "old", budget); }

  fs::path dir_;
};

TEST_F(PageCacheTest, AsksForWhatTheServingClusterHasCachedButNotItsWal) {
  // Every file was just written, so all of "old" is cached; pg_wal and the files that exist on
  // one side only are left out.
  const WarmStats stats = warm(UINT64_MAX);
  EXPECT_EQ(stats.files, 2u);
  EXPECT_EQ(stats.bytes, (3 + 64) * kPage);
}

TEST_F(PageCacheTest, TheBudgetGoesToTheFilesWithTheLeastCachedFirst) {
  WarmStats stats = warm(3 * kPage);
  EXPECT_EQ(stats.files, 1u);  // the small file, whole
  EXPECT_EQ(stats.bytes, 3 * kPage);
  stats = warm(5 * kPage);
  EXPECT_EQ(stats.files, 2u);  // and the start of the large one
  EXPECT_EQ(stats.bytes, 5 * kPage);
  EXPECT_EQ(warm(0).bytes, 0u);
}

TEST_F(PageCacheTest, PagesNotCachedInTheServingClusterAreNotAskedFor) {
  if (!drop("old", "base/5/large")) GTEST_SKIP() << "this filesystem keeps dropped pages cached";
  const WarmStats stats = warm(UINT64_MAX);
  EXPECT_EQ(stats.files, 1u);
  EXPECT_EQ(stats.bytes, 3 * kPage);
}

TEST_F(PageCacheTest, TheNewClustersPagesComeIntoTheCache) {
  if (!drop("new", "base/5/small")) GTEST_SKIP() << "this filesystem keeps dropped pages cached";
  warm(UINT64_MAX);
  // The read-ahead is asynchronous: wait for it (no bound on time is asserted, only the result).
  for (int i = 0; i < 1000 && cached_pages("new", "base/5/small") < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(cached_pages("new", "base/5/small"), 3u);
}

}  // namespace
}  // namespace argon::storage
