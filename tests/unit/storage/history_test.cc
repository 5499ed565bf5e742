#include "storage/history.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>

#include "common/file_util.h"

namespace argon::storage {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kSeg = 16 * 1024 * 1024;

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/argon-history-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

TEST(HistoryPlanTest, NeonsErrorsShowGoDurationsAndTimes) {
  EXPECT_EQ(go_duration(86400), "24h0m0s");
  EXPECT_EQ(go_duration(21600), "6h0m0s");
  EXPECT_EQ(go_duration(2592000), "720h0m0s");
  EXPECT_EQ(go_duration(90), "1m30s");
  EXPECT_EQ(go_duration(5), "5s");
  EXPECT_EQ(go_duration(0), "0s");
  // 2026-06-04T00:25:59.5Z
  EXPECT_EQ(go_time(1780532759'500000), "2026-06-04 00:25:59 +0000 UTC");
}

TEST(HistoryPlanTest, ImagesAreListedOldestFirstWithTheirStopLsn) {
  TempDir d;
  for (const char* name : {"1700000000200", "1700000000100", ".tmp-", "junk"}) {
    fs::create_directories(d.path / "images" / name / "pgdata");
    ASSERT_TRUE(write_file_atomic(d.path / "images" / name / "pgdata" / "PG_VERSION", "15\n"));
  }
  fs::create_directories(d.path / "images" / "1700000000300" / "pgdata");  // incomplete
  ASSERT_TRUE(write_file_atomic(d.path / "images" / "1700000000200" / "stop-lsn", "0/3000100"));
  auto images = list_images(d.path);
  ASSERT_EQ(images.size(), 2u);
  EXPECT_EQ(images[0].taken_ms, 1700000000100);
  EXPECT_FALSE(images[0].stop_lsn);
  EXPECT_EQ(images[1].taken_ms, 1700000000200);
  EXPECT_EQ(images[1].stop_lsn, 0x3000100u);
}

TEST(HistoryPlanTest, RecoveryStopsAfterTheLastCommitOrAtTheImage) {
  RecoveryPlan plan;
  plan.through = 0x4000138;
  auto settings = recovery_settings(plan, "/data/branches/br-1");
  std::map<std::string, std::string> m(settings.begin(), settings.end());
  EXPECT_EQ(m["recovery_target_lsn"], "0/4000138");
  EXPECT_EQ(m["recovery_target_inclusive"], "on");
  EXPECT_EQ(m["recovery_target_action"], "promote");
  EXPECT_EQ(m["recovery_target_timeline"], "current");
  EXPECT_FALSE(m.contains("recovery_target"));
  // The archive first, then pg_wal, then the archive again (archived in between).
  EXPECT_EQ(m["restore_command"],
            "cp '/data/branches/br-1/wal'/%f \"%p\" 2>/dev/null || "
            "cp '/data/branches/br-1/pgdata/pg_wal'/%f \"%p\" 2>/dev/null || "
            "cp '/data/branches/br-1/wal'/%f \"%p\"");

  plan.through.reset();
  settings = recovery_settings(plan, "/d/it's 100%");
  m = {settings.begin(), settings.end()};
  EXPECT_EQ(m["recovery_target"], "immediate");
  EXPECT_FALSE(m.contains("recovery_target_lsn"));
  EXPECT_EQ(m["restore_command"].substr(0, 26), "cp '/d/it'\\''s 100%%/wal'/");
}

TEST(HistoryPlanTest, TheSwitchPointIsTheNewestTimelinesLastEntry) {
  TempDir d;
  fs::create_directories(d.path / "pg_wal");
  EXPECT_FALSE(switch_point(d.path)) << "no history file: not a recovered cluster";
  ASSERT_TRUE(
      write_file_atomic(d.path / "pg_wal" / "00000002.history", "1\t0/3000140\tbefore 2026\n"));
  ASSERT_TRUE(write_file_atomic(d.path / "pg_wal" / "00000003.history",
                                "1\t0/3000140\tbefore 2026\n2\t0/50001B8\tafter LSN 0/5000190\n"));
  auto at = switch_point(d.path);
  ASSERT_TRUE(at) << at.error().message;
  EXPECT_EQ(*at, 0x50001B8u);
}

TEST(HistoryPlanTest, ReadingStopsAtTheFirstCommitPastThePoint) {
  const char* text =
      "rmgr: Transaction len (rec/tot):     34/    34, tx:        725, lsn: 0/04000068, prev "
      "0/04000028, desc: COMMIT 2026-12-07 22:46:28.602576 UTC\n"
      "rmgr: Transaction len (rec/tot):     34/    34, tx:        726, lsn: 0/040000D0, prev "
      "0/04000090, desc: COMMIT 2026-12-07 22:46:28.829864 UTC\n"
      "rmgr: Transaction len (rec/tot):     34/    34, tx:        727, lsn: 0/04000138, prev "
      "0/040000F8, desc: COMMIT 2026-12-07 22:46:29.044115 UTC\n"
      "pg_waldump: error: error in WAL record at 0/4000138: invalid record length at "
      "0/4000160: wanted 24, got 0\n";
  std::vector<uint64_t> seen;
  auto h = parse_waldump(text, 0x4000028, kSeg, std::nullopt, [&](const CommitRecord& c) {
    if (c.lsn >= 0x40000D0) return false;
    seen.push_back(c.lsn);
    return true;
  });
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_EQ(seen, std::vector<uint64_t>{0x4000068});
  EXPECT_EQ(h->last_commit_lsn, 0x4000068u) << "only what was read counts";
  EXPECT_EQ(h->end_lsn, 0x4000160u) << "the end of the WAL is still known";
}

}  // namespace
}  // namespace argon::storage
