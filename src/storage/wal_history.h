// What a cluster's own WAL says about when its data last changed: the newest commit record (its
// LSN and commit time) since the latest checkpoint, read with pg_controldata and pg_waldump. This
// is how a snapshot asked for a past `timestamp` or `lsn` is known to be exact: if nothing
// committed after that point, the state now is the state then.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/error.h"
#include "common/pg_control.h"
#include "common/pg_install.h"
#include "common/process_runner.h"

namespace argon::storage {

using argon::format_lsn;
using argon::parse_lsn;

struct WalHistory {
  uint64_t redo_lsn = 0;           // the latest checkpoint's redo point; WAL is read from here
  int64_t checkpoint_time_us = 0;  // every commit before the redo point is no later than this
  uint64_t end_lsn = 0;            // where valid WAL ends (the next record would go here)
  // Over the commit records read (from where reading began): the greatest start LSN and the
  // greatest commit time (µs since the epoch); commit times need not rise with LSN.
  std::optional<uint64_t> last_commit_lsn;
  std::optional<int64_t> last_commit_time_us;
};

// One commit record: where it starts and the commit time it carries (µs since the epoch).
struct CommitRecord {
  uint64_t lsn = 0;
  int64_t time_us = 0;
};
// Called for each commit record in LSN order; returning false stops reading there.
using OnCommit = std::function<bool(const CommitRecord&)>;

// pg_waldump -r Transaction output (TZ=UTC), read from `from` (to `until` if given): the newest
// commit and the end of valid WAL. A missing segment is an error: what is in it is unknown.
// `on_commit`, if given, sees every commit record; once it returns false the rest is not read
// (end_lsn is then the place reading would have ended).
Result<WalHistory> parse_waldump(std::string_view text, uint64_t from, uint64_t segment_bytes,
                                 std::optional<uint64_t> until = std::nullopt,
                                 const OnCommit& on_commit = {});

// pg_waldump -r Transaction over `wal_dir` (segment files of `timeline`) from `from` to the end of
// valid WAL (or `until`). `scratch` is a file path for the tool's output (removed).
Result<WalHistory> dump_commits(const PgInstall& pg, ProcessRunner& runner,
                                const std::filesystem::path& wal_dir, int timeline,
                                uint64_t segment_bytes, uint64_t from,
                                std::optional<uint64_t> until, const std::filesystem::path& scratch,
                                const OnCommit& on_commit = {});

// Reads `pgdata` (running or stopped) from `from` (default: the latest checkpoint's redo point) to
// the end of its WAL, or to `until`. `scratch` is a file path for the tools' output (removed).
Result<WalHistory> read_wal_history(const PgInstall& pg, ProcessRunner& runner,
                                    const std::filesystem::path& pgdata,
                                    std::optional<uint64_t> from, std::optional<uint64_t> until,
                                    const std::filesystem::path& scratch);

// A point in a branch's history asked for by a snapshot: a time or an LSN. A time is the interval
// its text names (parse_time_span): "10:32:13.197Z", stamped by a client's millisecond clock just
// after a commit at 10:32:13.197010, includes that commit.
struct PointInTime {
  std::optional<TimeSpan> time;
  std::optional<uint64_t> lsn;
};
// Whether the state now is exactly the state at `point`. An error says why not in words for the
// API user: kBadRequest for a point in the future or before the branch existed, kConflict when
// something committed after it or when the WAL kept cannot tell.
Status point_is_current(const WalHistory& h, const PointInTime& point, int64_t now_us,
                        int64_t branch_created_us);

}  // namespace argon::storage
