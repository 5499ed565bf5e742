// Storage::trim_settled_wal on real 16 MB segment files: after a clean shutdown only the
// checkpoint's segment stays, and in it only the first page and the checkpoint record's pages
// hold blocks; the rest reads as zeros and the file keeps its size.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "common/process_runner.h"
#include "storage/storage.h"

namespace argon::storage {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kSeg = 16ull << 20;
constexpr uint64_t kPage = 8192;

class SettledWalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "argon-settled-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    storage_ = std::make_unique<Storage>(StorageOptions{dir_ / "data", current_user(), false},
                                         std::make_unique<CopyCloneDriver>(), runner_);
    pgdata_ = dir_ / "pgdata";
    fs::create_directories(pgdata_ / "pg_wal" / "archive_status");
    for (const char* seg : {"000000010000000000000004", "000000010000000000000005",
                            "000000010000000000000006", "000000010000000000000007"})
      fill(pgdata_ / "pg_wal" / seg);
    std::ofstream(pgdata_ / "pg_wal" / "00000002.history") << "1\t0/4000000\tno reason\n";
    std::ofstream(pgdata_ / "pg_wal" / "archive_status" / "000000010000000000000004.done");
    std::ofstream(pgdata_ / "backup_label.old") << "START WAL LOCATION: 0/4000028\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  static void fill(const fs::path& p) {
    std::ofstream out(p, std::ios::binary);
    const std::string chunk(1 << 20, 'w');
    for (uint64_t i = 0; i < kSeg / chunk.size(); ++i) out << chunk;
  }
  std::set<std::string> wal() const {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(pgdata_ / "pg_wal"))
      if (e.is_regular_file()) out.insert(e.path().filename().string());
    return out;
  }
  // Bytes the file really holds on disk.
  static uint64_t allocated(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0);
    return static_cast<uint64_t>(st.st_blocks) * 512;
  }
  static std::string bytes_at(const fs::path& p, uint64_t off, size_t n) {
    std::ifstream in(p, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(off));
    std::string out(n, '?');
    in.read(out.data(), static_cast<std::streamsize>(n));
    return out;
  }
  static ControlData shut_down_at(uint64_t checkpoint) {
    ControlData c;
    c.shut_down = true;
    c.checkpoint_lsn = c.redo_lsn = checkpoint;
    return c;
  }

  fs::path dir_, pgdata_;
  PosixProcessRunner runner_;
  std::unique_ptr<Storage> storage_;
};

TEST_F(SettledWalTest, OnlyTheCheckpointsPagesOfItsSegmentStay) {
  const uint64_t checkpoint = 5 * kSeg + 3 * kPage + 0x60;  // 0/50060 + 3 pages
  ASSERT_TRUE(storage_->trim_settled_wal(pgdata_, shut_down_at(checkpoint)));
  EXPECT_EQ(wal(), (std::set<std::string>{"000000010000000000000005", "00000002.history"}));
  EXPECT_FALSE(fs::exists(pgdata_ / "pg_wal" / "archive_status" / "000000010000000000000004.done"));
  EXPECT_FALSE(fs::exists(pgdata_ / "backup_label.old"));
  const fs::path seg = pgdata_ / "pg_wal" / "000000010000000000000005";
  EXPECT_EQ(fs::file_size(seg), kSeg);
  EXPECT_EQ(bytes_at(seg, 0, kPage), std::string(kPage, 'w')) << "the segment's long header page";
  EXPECT_EQ(bytes_at(seg, kPage, kPage), std::string(kPage, '\0'));
  EXPECT_EQ(bytes_at(seg, 3 * kPage, 2 * kPage), std::string(2 * kPage, 'w'))
      << "the checkpoint's page and the next";
  EXPECT_EQ(bytes_at(seg, 5 * kPage, kPage), std::string(kPage, '\0'));
  EXPECT_EQ(bytes_at(seg, kSeg - kPage, kPage), std::string(kPage, '\0'));
  EXPECT_LE(allocated(seg), 3 * kPage + 4096) << "the rest is freed, not zero-filled";

  // Again (a re-run after a crash) changes nothing.
  ASSERT_TRUE(storage_->trim_settled_wal(pgdata_, shut_down_at(checkpoint)));
  EXPECT_EQ(bytes_at(seg, 3 * kPage, 2 * kPage), std::string(2 * kPage, 'w'));
}

TEST_F(SettledWalTest, ACheckpointAtASegmentsEndKeepsTheNextSegmentsFirstPages) {
  const uint64_t checkpoint = 6 * kSeg - 0x40;  // its record runs on into segment 7
  ASSERT_TRUE(storage_->trim_settled_wal(pgdata_, shut_down_at(checkpoint)));
  EXPECT_EQ(wal(), (std::set<std::string>{"000000010000000000000005", "000000010000000000000006",
                                          "00000002.history"}));
  const fs::path last = pgdata_ / "pg_wal" / "000000010000000000000006";
  EXPECT_EQ(bytes_at(last, 0, kPage), std::string(kPage, 'w'));
  EXPECT_EQ(bytes_at(last, kPage, kPage), std::string(kPage, '\0'));
  const fs::path first = pgdata_ / "pg_wal" / "000000010000000000000005";
  EXPECT_EQ(bytes_at(first, kSeg - kPage, kPage), std::string(kPage, 'w'));
}

TEST_F(SettledWalTest, AClusterNotShutDownCleanlyKeepsAllItsWal) {
  ControlData crashed = shut_down_at(5 * kSeg + 0x60);
  crashed.shut_down = false;
  EXPECT_FALSE(storage_->trim_settled_wal(pgdata_, crashed));
  EXPECT_EQ(wal().size(), 5u);
}

// A restore with the copy driver copies a trimmed segment's data and keeps its holes, so the
// restored branch does not write 16 MB of zeros.
TEST_F(SettledWalTest, TheCopyDriverKeepsHolesAndData) {
  const uint64_t checkpoint = 5 * kSeg + 3 * kPage + 0x60;
  ASSERT_TRUE(storage_->trim_settled_wal(pgdata_, shut_down_at(checkpoint)));
  const fs::path seg = pgdata_ / "pg_wal" / "000000010000000000000005";
  const fs::path copy = dir_ / "copy";
  const int in = ::open(seg.c_str(), O_RDONLY | O_CLOEXEC);
  const int out = ::open(copy.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  ASSERT_GE(in, 0);
  ASSERT_GE(out, 0);
  CopyCloneDriver driver;
  ASSERT_TRUE(driver.clone_file(in, out, kSeg));
  ::close(in);
  ::close(out);
  EXPECT_EQ(fs::file_size(copy), kSeg);
  EXPECT_EQ(bytes_at(copy, 0, 5 * kPage), bytes_at(seg, 0, 5 * kPage));
  EXPECT_EQ(bytes_at(copy, kSeg - kPage, kPage), std::string(kPage, '\0'));
  EXPECT_LE(allocated(copy), 3 * kPage + 4096);

  // A file that is all data is copied whole.
  const fs::path full = pgdata_ / "pg_wal" / "00000002.history";
  const fs::path full_copy = dir_ / "history-copy";
  const int fin = ::open(full.c_str(), O_RDONLY | O_CLOEXEC);
  const int fout = ::open(full_copy.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  ASSERT_TRUE(driver.clone_file(fin, fout, fs::file_size(full)));
  ::close(fin);
  ::close(fout);
  EXPECT_EQ(bytes_at(full_copy, 0, fs::file_size(full)), bytes_at(full, 0, fs::file_size(full)));
}

TEST(WalSegmentNameTest, NamesTheFileThatHoldsAnLsn) {
  EXPECT_EQ(wal_segment_name(1, 0x70000A0, kSeg), "000000010000000000000007");
  EXPECT_EQ(wal_segment_name(3, 0x1FF000000ull, kSeg), "0000000300000001000000FF");
  EXPECT_EQ(wal_segment_name(1, 0x100000000ull, 64ull << 20), "000000010000000100000000");
}

}  // namespace
}  // namespace argon::storage
