#include "storage/wal_history.h"

#include <gtest/gtest.h>

namespace argon::storage {
namespace {

constexpr int64_t kSec = 1'000'000;
constexpr uint64_t kSeg = 16 * 1024 * 1024;

TEST(WalHistoryTest, LsnRoundTrips) {
  EXPECT_EQ(parse_lsn("0/1516770"), 0x1516770u);
  EXPECT_EQ(parse_lsn("16/B374D848"), 0x16B374D848u);
  EXPECT_EQ(format_lsn(0x16B374D848u), "16/B374D848");
  EXPECT_EQ(parse_lsn("0/0"), 0u);
  EXPECT_FALSE(parse_lsn(""));
  EXPECT_FALSE(parse_lsn("12345"));
  EXPECT_FALSE(parse_lsn("0/1516770x"));
  EXPECT_FALSE(parse_lsn("123456789/0"));
}

TEST(WalHistoryTest, ControlDataGivesRedoTimelineAndCheckpointTime) {
  const char* text =
      "pg_control version number:            1300\n"
      "Latest checkpoint location:           0/1500750\n"
      "Latest checkpoint's REDO location:    0/1500718\n"
      "Latest checkpoint's REDO WAL file:    000000010000000000000001\n"
      "Latest checkpoint's TimeLineID:       2\n"
      "Time of latest checkpoint:            Sat Nov 21 03:40:50 2026\n";
  auto c = parse_controldata(text);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->redo_lsn, 0x1500718u);
  EXPECT_EQ(c->timeline, 2);
  // 2026-11-21T03:40:50Z, plus the second the tool truncated.
  EXPECT_EQ(c->checkpoint_time_us, (1795232450 + 1) * kSec);
  EXPECT_FALSE(parse_controldata("Latest checkpoint location: 0/1\n"));
}

TEST(WalHistoryTest, WaldumpGivesTheNewestCommitAndTheEndOfWal) {
  // As pg_waldump writes it: stderr (the end) may come before buffered stdout.
  const char* text =
      "pg_waldump: error: error in WAL record at 0/15165D8: invalid record length at 0/1516770: "
      "wanted 24, got 0\n"
      "rmgr: Transaction len (rec/tot):    405/   405, tx:        724, lsn: 0/015160D8, prev "
      "0/01516098, "
      "desc: COMMIT 2026-11-21 03:40:50.900000 UTC; inval msgs: catcache 80 relcache 16384\n"
      "rmgr: Transaction len (rec/tot):     34/    34, tx:        725, lsn: 0/015165D8, prev "
      "0/01516598, "
      "desc: COMMIT 2026-11-21 03:40:50.238595 UTC\n"
      "rmgr: Transaction len (rec/tot):     34/    34, tx:        726, lsn: 0/01516600, prev "
      "0/015165D8, "
      "desc: ABORT 2026-11-21 03:40:51.000000 UTC\n";
  auto h = parse_waldump(text, 0x1500718, kSeg);
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_EQ(h->end_lsn, 0x1516770u);
  EXPECT_EQ(h->last_commit_lsn, 0x15165D8u);
  // Commit times need not rise with LSN: the greatest one counts; an abort is not a commit.
  EXPECT_EQ(h->last_commit_time_us, 1795232450 * kSec + 900000);
}

TEST(WalHistoryTest, WaldumpWithNothingAfterTheStartHasNoCommit) {
  auto h = parse_waldump("pg_waldump: error: could not find a valid record after 0/1516770\n",
                         0x1516770, kSeg);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->end_lsn, 0x1516770u);
  EXPECT_FALSE(h->last_commit_lsn);
}

TEST(WalHistoryTest, MissingWalIsAnErrorNotAnEmptyHistory) {
  auto h = parse_waldump(
      "pg_waldump: error: could not find file \"000000010000000000000000\": No such file\n", 0x100,
      kSeg);
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().code, ErrorCode::kConflict);
  EXPECT_FALSE(parse_waldump("", 0x100, kSeg)) << "no end reported: unknown, not empty";
}

TEST(WalHistoryTest, WalEndingAtASegmentBoundaryEndsThere) {
  // After a segment switch the next segment does not exist yet: that is the end, not a gap.
  auto h = parse_waldump(
      "pg_waldump: error: could not find file \"000000010000000100000003\": No such file\n",
      0x102000028, kSeg);
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_EQ(h->end_lsn, 0x103000000u);
}

// A time written to the microsecond, or to `unit_us`.
PointInTime at(int64_t us, int64_t unit_us = 1) { return {.time = TimeSpan{us, unit_us}}; }

class PointTest : public ::testing::Test {
 protected:
  WalHistory h_{.redo_lsn = 0x1000,
                .checkpoint_time_us = 100 * kSec,
                .end_lsn = 0x5000,
                .last_commit_lsn = 0x3000,
                .last_commit_time_us = 200 * kSec};
  const int64_t now_ = 300 * kSec;
  const int64_t created_ = 50 * kSec;
  ErrorCode code(PointInTime p) {
    auto st = point_is_current(h_, p, now_, created_);
    return st ? ErrorCode::kInternal : st.error().code;  // kInternal stands for "accepted" here
  }
};

TEST_F(PointTest, TimestampAfterTheLastCommitIsExact) {
  EXPECT_TRUE(point_is_current(h_, at(200 * kSec), now_, created_));
  EXPECT_TRUE(point_is_current(h_, at(250 * kSec), now_, created_));
  EXPECT_TRUE(point_is_current(h_, at(now_), now_, created_));
}

TEST_F(PointTest, TimestampBeforeTheLastCommitIsRefused) {
  EXPECT_EQ(code(at(200 * kSec - 1)), ErrorCode::kConflict);
  EXPECT_EQ(code(at(now_ + 1)), ErrorCode::kBadRequest);
  EXPECT_EQ(code(at(created_ - 1)), ErrorCode::kBadRequest);
}

TEST_F(PointTest, ATimeCoversTheIntervalOfItsLastDigit) {
  // "…:00.199Z" from a millisecond clock, read just after a commit at 200.000000 s: not yet.
  EXPECT_EQ(code(at(200 * kSec - 1000, 1000)), ErrorCode::kConflict);
  // A commit at 200.000000 s is inside the millisecond "…:00.200Z" and inside the second "…:00Z".
  EXPECT_TRUE(point_is_current(h_, at(200 * kSec, 1000), now_, created_));
  h_.last_commit_time_us = 200 * kSec + 999;
  EXPECT_TRUE(point_is_current(h_, at(200 * kSec, 1000), now_, created_));
  h_.last_commit_time_us = 200 * kSec + 1000;
  EXPECT_EQ(code(at(200 * kSec, 1000)), ErrorCode::kConflict);
  EXPECT_TRUE(point_is_current(h_, at(200 * kSec, kSec), now_, created_));
  // The millisecond now is running is not in the future; the next one is.
  EXPECT_TRUE(point_is_current(h_, at(now_, 1000), now_, created_));
  EXPECT_EQ(code(at(now_ + 1, 1000)), ErrorCode::kBadRequest);
  // The second the branch was created in is not before it; the second before is.
  h_.last_commit_time_us.reset();
  h_.checkpoint_time_us = 40 * kSec;
  EXPECT_TRUE(point_is_current(h_, at(50 * kSec, kSec), now_, 50 * kSec + kSec / 2));
  EXPECT_EQ(point_is_current(h_, at(49 * kSec, kSec), now_, 50 * kSec + kSec / 2).error().code,
            ErrorCode::kBadRequest);
}

TEST_F(PointTest, WithNoCommitReadTheCheckpointTimeBounds) {
  h_.last_commit_lsn.reset();
  h_.last_commit_time_us.reset();
  EXPECT_TRUE(point_is_current(h_, at(100 * kSec), now_, created_));
  EXPECT_EQ(code(at(100 * kSec - 1)), ErrorCode::kConflict);
  EXPECT_TRUE(point_is_current(h_, {.lsn = 0x1000}, now_, created_));
  EXPECT_EQ(code({.lsn = 0xfff}), ErrorCode::kConflict);
}

TEST_F(PointTest, LsnAfterTheLastCommitIsExact) {
  EXPECT_TRUE(point_is_current(h_, {.lsn = 0x3001}, now_, created_));
  EXPECT_TRUE(point_is_current(h_, {.lsn = 0x5000}, now_, created_));
  EXPECT_EQ(code({.lsn = 0x3000}), ErrorCode::kConflict);
  EXPECT_EQ(code({.lsn = 0x5001}), ErrorCode::kBadRequest);
}

}  // namespace
}  // namespace argon::storage
