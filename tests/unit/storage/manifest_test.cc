#include "storage/manifest.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

namespace argon::storage {
namespace {

namespace fs = std::filesystem;

TEST(ManifestTest, Crc32cMatchesTheStandardCheckValue) {
  EXPECT_EQ(crc32c(0, "123456789", 9), 0xE3069283u);  // RFC 3720 / iSCSI check value
  EXPECT_EQ(crc32c(0, "", 0), 0u);
  // Incremental equals one-shot, whatever the split (the 8-byte loop and the byte tail).
  const std::string text = "the quick brown fox jumps over the lazy dog, 0123456789";
  for (size_t split = 0; split <= text.size(); ++split) {
    EXPECT_EQ(crc32c(crc32c(0, text.data(), split), text.data() + split, text.size() - split),
              crc32c(0, text.data(), text.size()));
  }
}

class ManifestDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "argon-manifest-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    fs::create_directories(dir_ / "data" / "base" / "1");
    write("base/1/1259", std::string(100000, 'x'));
    write("PG_VERSION", "15\n");
    write("global/pg_control", std::string(8192, '\1'));
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& rel, const std::string& content) {
    fs::create_directories((dir_ / "data" / rel).parent_path());
    std::ofstream(dir_ / "data" / rel, std::ios::binary | std::ios::trunc) << content;
  }
  Status seal_and_verify() {
    auto entries = build_manifest(dir_ / "data");
    EXPECT_TRUE(entries);
    EXPECT_EQ(entries->size(), 3u);
    EXPECT_TRUE(write_manifest(dir_ / "manifest", *entries));
    return verify_manifest(dir_ / "data", dir_ / "manifest");
  }
  fs::path dir_;
};

TEST_F(ManifestDirTest, AnUntouchedTreeVerifies) { EXPECT_TRUE(seal_and_verify()); }

TEST_F(ManifestDirTest, EveryKindOfDamageIsNamed) {
  ASSERT_TRUE(seal_and_verify());
  write("base/1/1259", std::string(99999, 'x') + "y");  // same size, one byte changed
  auto changed = verify_manifest(dir_ / "data", dir_ / "manifest");
  ASSERT_FALSE(changed);
  EXPECT_NE(changed.error().message.find("base/1/1259 does not match its checksum"),
            std::string::npos)
      << changed.error().message;

  write("base/1/1259", std::string(100000, 'x'));
  ASSERT_TRUE(verify_manifest(dir_ / "data", dir_ / "manifest"));
  write("PG_VERSION", "15\n\n");  // size changed
  EXPECT_FALSE(verify_manifest(dir_ / "data", dir_ / "manifest"));

  write("PG_VERSION", "15\n");
  fs::remove(dir_ / "data" / "global" / "pg_control");
  auto missing = verify_manifest(dir_ / "data", dir_ / "manifest");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("global/pg_control is missing"), std::string::npos);

  write("global/pg_control", std::string(8192, '\1'));
  write("stray", "x");
  auto extra = verify_manifest(dir_ / "data", dir_ / "manifest");
  ASSERT_FALSE(extra);
  EXPECT_NE(extra.error().message.find("stray was not in it"), std::string::npos);

  EXPECT_FALSE(verify_manifest(dir_ / "data", dir_ / "no-such-manifest"));
}

// With stamps, a file whose stamp did not move is not read again: a manifest line made wrong
// afterwards goes unnoticed for it (what shows that nothing read it), while a file written after
// the stamps were taken is read and its damage named, same size or not.
TEST_F(ManifestDirTest, StampsSkipTheReadOfUnchangedFilesOnly) {
  ASSERT_TRUE(seal_and_verify());
  ASSERT_TRUE(write_stamps(dir_ / "data", dir_ / "stamps"));
  EXPECT_TRUE(verify_manifest(dir_ / "data", dir_ / "manifest", dir_ / "stamps"));

  // The manifest claims another checksum for PG_VERSION: only a full check reads the file.
  auto entries = build_manifest(dir_ / "data");
  ASSERT_TRUE(entries);
  for (auto& e : *entries) {
    if (e.path == "PG_VERSION") e.crc32c ^= 1;
  }
  fs::remove(dir_ / "manifest");
  ASSERT_TRUE(write_manifest(dir_ / "manifest", *entries));
  EXPECT_TRUE(verify_manifest(dir_ / "data", dir_ / "manifest", dir_ / "stamps"));
  EXPECT_FALSE(verify_manifest(dir_ / "data", dir_ / "manifest"));
  EXPECT_FALSE(verify_manifest(dir_ / "data", dir_ / "manifest", dir_ / "no-such-stamps"))
      << "no stamps: a full check";

  write("base/1/1259", std::string(99999, 'x') + "y");  // same size, written after the stamps
  auto changed = verify_manifest(dir_ / "data", dir_ / "manifest", dir_ / "stamps");
  ASSERT_FALSE(changed);
  EXPECT_NE(changed.error().message.find("base/1/1259 does not match its checksum"),
            std::string::npos)
      << changed.error().message;
  write("base/1/1259", std::string(100000, 'x'));  // the right bytes again, a moved stamp
  EXPECT_TRUE(verify_manifest(dir_ / "data", dir_ / "manifest", dir_ / "stamps"));
}

// Before the manifest exists, the stamps alone vouch for a tree: a written, removed or added
// file is named; a file with no stamp is refused unless the caller can do without (the checksum
// pass, which records it as it reads).
TEST_F(ManifestDirTest, StampsAloneNameEveryChange) {
  ASSERT_TRUE(write_stamps(dir_ / "data", dir_ / "stamps"));
  EXPECT_TRUE(verify_stamps(dir_ / "data", dir_ / "stamps"));

  write("base/1/1259", std::string(99999, 'x') + "y");
  auto changed = verify_stamps(dir_ / "data", dir_ / "stamps");
  ASSERT_FALSE(changed);
  EXPECT_NE(changed.error().message.find("base/1/1259 was changed after it was taken"),
            std::string::npos)
      << changed.error().message;

  fs::remove(dir_ / "stamps");
  ASSERT_TRUE(write_stamps(dir_ / "data", dir_ / "stamps"));
  fs::remove(dir_ / "data" / "PG_VERSION");
  auto missing = verify_stamps(dir_ / "data", dir_ / "stamps");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("PG_VERSION is missing"), std::string::npos);

  write("PG_VERSION", "15\n");  // back, but a new file: not the one stamped
  EXPECT_FALSE(verify_stamps(dir_ / "data", dir_ / "stamps"));
  fs::remove(dir_ / "stamps");
  ASSERT_TRUE(write_stamps(dir_ / "data", dir_ / "stamps"));
  write("stray", "x");
  auto extra = verify_stamps(dir_ / "data", dir_ / "stamps");
  ASSERT_FALSE(extra);
  EXPECT_NE(extra.error().message.find("stray has no stamp"), std::string::npos);
  EXPECT_TRUE(verify_stamps(dir_ / "data", dir_ / "stamps", /*unstamped_ok=*/true));
  EXPECT_FALSE(verify_stamps(dir_ / "data", dir_ / "no-such-stamps"));
}

// A damaged manifest (a line that is not "<hex> <size> <path>") is an answer, never a throw.
TEST_F(ManifestDirTest, AGarbledManifestIsNamedDamaged) {
  ASSERT_TRUE(seal_and_verify());
  for (const std::string line : {"", "zz 3 PG_VERSION", "12 x PG_VERSION", "-1 3 PG_VERSION"}) {
    fs::remove(dir_ / "manifest");
    std::ofstream(dir_ / "manifest") << line << "\n";
    auto st = verify_manifest(dir_ / "data", dir_ / "manifest");
    ASSERT_FALSE(st) << line;
    EXPECT_EQ(st.error().code, ErrorCode::kConflict) << line << ": " << st.error().message;
  }
}

// The checksum pass reads a snapshot that a deletion may remove under it at any moment: every
// reader answers an error (or success, when it won the race) and never throws.
TEST_F(ManifestDirTest, ATreeRemovedWhileReadIsAnErrorNotACrash) {
  ASSERT_TRUE(write_stamps(dir_ / "data", dir_ / "stamps"));
  ASSERT_TRUE(write_manifest(dir_ / "manifest", *build_manifest(dir_ / "data")));
  std::atomic<bool> done{false};
  std::thread remover([&] {
    while (!done) {
      std::error_code ec;
      fs::remove_all(dir_ / "data" / "base", ec);
      fs::create_directories(dir_ / "data" / "base" / "1" / "2" / "3", ec);
      std::ofstream(dir_ / "data" / "base" / "1" / "2" / "3" / "f") << "x";
    }
  });
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  int rounds = 0;
  while (std::chrono::steady_clock::now() < until) {
    ++rounds;
    EXPECT_NO_THROW((void)build_manifest(dir_ / "data"));
    EXPECT_NO_THROW((void)verify_stamps(dir_ / "data", dir_ / "stamps", true));
    EXPECT_NO_THROW((void)verify_manifest(dir_ / "data", dir_ / "manifest", dir_ / "stamps"));
    EXPECT_NO_THROW((void)write_stamps(dir_ / "data", dir_ / "stamps-again"));
  }
  done = true;
  remover.join();
  EXPECT_GT(rounds, 0);
}

// The pace is asked before every read of a megabyte: a background reader waits in it, and a
// true from it stops the reading with an error that says so (argond stopping).
TEST_F(ManifestDirTest, EachReadAsksThePaceWhichMayStopIt) {
  write("base/1/big", std::string((3 << 20) + 5, 'b'));  // four reads
  int asked = 0;
  auto all = build_manifest(dir_ / "data", [&] { return ++asked, false; });
  ASSERT_TRUE(all);
  EXPECT_GE(asked, static_cast<int>(all->size()) + 3) << "one per file, and per further megabyte";

  asked = 0;
  auto stopped = build_manifest(dir_ / "data", [&] { return ++asked == 2; });
  ASSERT_FALSE(stopped);
  EXPECT_EQ(stopped.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(stopped.error().message.find("was stopped"), std::string::npos)
      << stopped.error().message;
  EXPECT_EQ(asked, 2) << "nothing read after the stop";
}

}  // namespace
}  // namespace argon::storage
