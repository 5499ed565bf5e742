// A branch's history: the WAL its compute archives and the base images a recovery starts from,
// and how a point of that history (a time or an LSN) becomes a recovery target. Layout, beside
// the branch's data directory (so it follows the directory through renames and a reset's
// exchange):
//   branches/<id>/wal/                  the archive: basic_archive writes `../wal` from pgdata
//   branches/<id>/images/<ms>/pgdata    a base image, taken when the branch's data was built (a
//                                       backup capture with its label, or a cleanly shut down
//                                       copy), never started
//   branches/<id>/images/<ms>/stop-lsn  a backup capture's consistency point (pg_backup_stop)
// <ms> is the wall-clock time (ms) once the image was complete: every commit it holds is older.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/pg_install.h"
#include "common/process_runner.h"
#include "storage/wal_history.h"

namespace argon::storage {

inline constexpr std::string_view kArchiveDir = "wal";
inline constexpr std::string_view kImagesDir = "images";

struct BaseImage {
  std::filesystem::path pgdata;
  int64_t taken_ms = 0;
  std::optional<uint64_t> stop_lsn;  // a backup capture's; a clean copy's point is its checkpoint
};
// The complete images under a branch directory, oldest first.
std::vector<BaseImage> list_images(const std::filesystem::path& branch_dir);

// Where an image's state is consistent (the backup's stop LSN, or a clean copy's checkpoint) and
// the timeline it is on.
struct ImagePoint {
  uint64_t lsn = 0;
  int timeline = 1;
  uint64_t segment_bytes = 16 * 1024 * 1024;
};
Result<ImagePoint> image_point(const PgInstall& pg, ProcessRunner& runner, const BaseImage& image,
                               const std::filesystem::path& scratch);

// How to recover a point of a branch's history: clone `image`, then replay its archive through
// the commit record at `through` (recovery_target_lsn, inclusive), or, with no commit between the
// image and the point, stop where the image becomes consistent (recovery_target = immediate).
struct RecoveryPlan {
  BaseImage image;
  ImagePoint at;
  std::optional<uint64_t> through;
  std::optional<CommitRecord> last_commit;  // the newest commit the result holds, if read
};

// The window a point must fall in: not before `floor_us` (now minus the project's retention),
// nor before the branch's oldest image, nor after `now_us` or the end of its WAL.
struct HistoryWindow {
  int64_t floor_us = 0;
  int64_t now_us = 0;
  int64_t retention_seconds = 0;
};

// Resolves `point` on the branch whose directory is `branch_dir`: a time T is every commit up to
// the first one (in WAL order) stamped after T, as PostgreSQL's recovery_target_time with
// recovery_target_inclusive=on; an LSN L is every record that starts before L (Neon's
// parent_lsn). The WAL is read from the archive and, for what is not archived yet, from the
// branch's pg_wal (`view_dir`, a scratch directory, holds links to both). A point outside the
// window is kBadRequest in Neon's words ("timestamp is before retention window; ...") with the
// earliest point available.
Result<RecoveryPlan> plan_recovery(const PgInstall& pg, ProcessRunner& runner,
                                   const std::filesystem::path& branch_dir,
                                   const PointInTime& point, const HistoryWindow& window,
                                   const std::filesystem::path& view_dir,
                                   const std::filesystem::path& scratch);

// PostgreSQL settings that recover a clone of `plan.image` (with recovery.signal) from the
// branch's archive, falling back to its pg_wal for what is not archived yet, then promote it to a
// new timeline. For Computes::settle (postgres --single): it ends cleanly shut down.
std::vector<std::pair<std::string, std::string>> recovery_settings(
    const RecoveryPlan& plan, const std::filesystem::path& branch_dir);

// The point a recovered cluster branched off: the switch point its newest timeline's history
// file records (the end of the last record replayed).
Result<uint64_t> switch_point(const std::filesystem::path& pgdata);

// Go's time.Duration text of whole seconds ("24h0m0s", "1m30s", "0s"), as Neon's errors show.
std::string go_duration(int64_t seconds);
// Go's time.Time text in UTC ("2026-06-04 00:25:59 +0000 UTC"), as Neon's errors show.
std::string go_time(int64_t us);

}  // namespace argon::storage
