// Storage owns the data directory layout (ARCHITECTURE.md §3) and every write to cluster data
// directories: the per-version template cluster, branch data directories cloned from a template, a
// stopped branch, or a running one (backup API), and their removal. It knows nothing about HTTP,
// endpoints or the catalog. Every create is idempotent: it builds under a temp name and renames
// into place, so a crash leaves either nothing or a complete directory.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/file_util.h"
#include "common/pg_conn.h"
#include "common/pg_control.h"
#include "common/pg_install.h"
#include "common/process_runner.h"
#include "storage/clone_driver.h"
#include "storage/history.h"
#include "storage/manifest.h"
#include "storage/tree_cloner.h"
#include "storage/wal_history.h"

namespace argon::storage {

struct StorageOptions {
  std::filesystem::path data_dir;
  OsUser pg_user;     // owner of every cluster directory
  bool fsync = true;  // false only in tests (--unsafe-no-fsync)
};

// What a capture of a running cluster produced (for branch metadata).
struct CaptureInfo {
  std::string start_lsn;
  std::string stop_lsn;
  CloneStats stats;
};

class Storage {
 public:
  Storage(StorageOptions options, std::unique_ptr<CloneDriver> driver, ProcessRunner& runner);

  CloneDriver& driver() { return *driver_; }
  const std::filesystem::path& data_dir() const { return options_.data_dir; }

  std::filesystem::path branch_dir(std::string_view branch_id) const;
  std::filesystem::path branch_pgdata(std::string_view branch_id) const;
  std::filesystem::path template_pgdata(int major) const;
  std::filesystem::path run_dir(std::string_view compute_id) const;
  std::filesystem::path log_path(std::string_view compute_id) const;

  // Creates the directories of the layout with their permissions; checks that the Postgres user
  // can reach the data directory.
  Status prepare_layout();
  // initdb once per major version (cheap when it exists).
  Status ensure_template(const PgInstall& pg);
  // A copy of a library built for computes (`built`) in <data-dir>/lib, owned by the Postgres user
  // (0600), who can read it wherever argond's build lives; replaced atomically when it changed.
  Result<std::filesystem::path> install_library(const std::filesystem::path& built,
                                                std::string_view name);

  bool branch_exists(std::string_view branch_id) const;
  // With `history`, a branch's data is built with the beginning of its history (history.h): an
  // empty archive and a base image, a clone of the data as built, before any compute starts it.
  Status create_branch_from_template(std::string_view branch_id, int major, bool history);
  // Source cluster is not running (clean shutdown or never started).
  Result<CloneStats> create_branch_from_stopped(std::string_view branch_id,
                                                const std::filesystem::path& src_pgdata,
                                                bool history);
  // Source cluster is running: a base backup through `admin` (a superuser connection to it).
  Result<CaptureInfo> create_branch_from_running(std::string_view branch_id,
                                                 const std::filesystem::path& src_pgdata,
                                                 PgConn& admin, int major, bool history);
  // Brings a clone of `pgdata` to a clean shutdown and returns its control data.
  using SettleFn = std::function<Result<ControlData>(const std::filesystem::path& pgdata)>;
  // A branch at a point of another branch's history: `image` (a base image of that branch) is
  // cloned into the new branch's place with recovery.signal, and `recover` brings it to the point
  // (Computes::settle with history.h's recovery_settings): it ends cleanly shut down on a timeline
  // of its own. Then, with `history`, its own history begins (an archive and a base image).
  Result<CloneStats> create_branch_at_point(std::string_view branch_id,
                                            const std::filesystem::path& image_pgdata,
                                            const SettleFn& recover, bool history);
  // The same built as a reset's copy (capture_reset_*): a branch restored to a point in place.
  Result<CloneStats> capture_reset_at_point(std::string_view branch_id,
                                            const std::filesystem::path& image_pgdata,
                                            const SettleFn& recover, const std::string& op_id,
                                            bool history);
  // The same built as a snapshot, settled (trimmed like a settled capture) but not yet sealed.
  Result<CloneStats> create_snapshot_at_point(std::string_view snapshot_id,
                                              const std::filesystem::path& image_pgdata,
                                              const SettleFn& recover);
  // A periodic base image of the branch's running compute (a backup capture through `admin`, a
  // superuser connection to it), named by the time it was complete. kConflict, keeping nothing,
  // when the branch's directory was exchanged meanwhile (a reset): the image would be another
  // line of WAL's.
  Result<BaseImage> take_image(std::string_view branch_id, PgConn& admin, int major);
  // What pruning removed.
  struct Pruned {
    size_t images = 0;
    size_t wal_files = 0;
    uint64_t bytes = 0;
  };
  // Removes what no point at or after `floor_ms` needs: every image older than the newest one
  // complete by then (that one stays, with all newer), and every archived segment before the one
  // it starts replaying from. With `everything` (history off), all images and the whole archive.
  // Also removes what an interrupted take_image left: call it on the thread that takes images.
  // Takes the branch's history lock exclusively: a recovery planning or building from an image
  // holds it shared.
  Result<Pruned> prune_history(std::string_view branch_id, const PgInstall& pg, int64_t floor_ms,
                               bool everything);
  // A branch's history lock (striped by id): shared while a point is planned and built from its
  // images and archive, exclusive while pruning removes some.
  std::shared_mutex& history_mu(std::string_view branch_id);
  // The directory a compute archives into (`../wal` from its data directory), made if missing.
  Status prepare_archive(const std::filesystem::path& pgdata);
  // A scratch directory for history.h's plan_recovery (a .tmp-* name: startup removes leftovers).
  std::filesystem::path wal_view_dir(std::string_view branch_id) const;
  // A scratch file path for PostgreSQL's tools' output.
  std::filesystem::path tool_scratch() const;
  ProcessRunner& runner() { return runner_; }
  Status remove_branch(std::string_view branch_id);

  // A branch reset in place (same id) to another branch's current state. The new data is built
  // beside the branch (branches/.reset-<id>, with a `reset-op` file naming the operation), then
  // exchanged with the branch's directory in one atomic rename; the old data is left at
  // .reset-<id> until finish_reset moves it to a branch that preserves it, or removes it. Every
  // step is idempotent, so an operation interrupted anywhere can run again.
  Result<CloneStats> capture_reset_from_stopped(std::string_view branch_id,
                                                const std::filesystem::path& src_pgdata,
                                                const std::string& op_id, bool history);
  Result<CaptureInfo> capture_reset_from_running(std::string_view branch_id,
                                                 const std::filesystem::path& src_pgdata,
                                                 PgConn& admin, int major, const std::string& op_id,
                                                 bool history);
  // Where the new data is built (the branch's directory is `reset_dir`, its cluster
  // `reset_pgdata`); after the exchange, where the old data waits for finish_reset.
  std::filesystem::path reset_dir(std::string_view branch_id) const;
  std::filesystem::path reset_pgdata(std::string_view branch_id) const;
  // True once the exchange for `op_id` has happened.
  bool reset_exchanged(std::string_view branch_id, const std::string& op_id) const;
  Status exchange_reset(std::string_view branch_id);
  Status finish_reset(std::string_view branch_id,
                      const std::optional<std::string>& preserve_branch_id);
  // Removes what an abandoned reset built (before its exchange).
  Status abandon_reset(std::string_view branch_id);

  // Snapshots: the same captures into <data-dir>/snapshots/<id>, made read-only once complete. A
  // branch restored from one is a writable clone of it.
  std::filesystem::path snapshot_dir(std::string_view snapshot_id) const;
  std::filesystem::path snapshot_pgdata(std::string_view snapshot_id) const;
  std::filesystem::path snapshot_manifest(std::string_view snapshot_id) const;
  bool snapshot_exists(std::string_view snapshot_id) const;
  Result<CloneStats> create_snapshot_from_stopped(std::string_view snapshot_id,
                                                  const std::filesystem::path& src_pgdata);
  Result<CaptureInfo> create_snapshot_from_running(std::string_view snapshot_id,
                                                   const std::filesystem::path& src_pgdata,
                                                   PgConn& admin, int major);
  // A snapshot is settled before it is sealed (ops/actions/create_snapshot.cc): brought to a
  // clean shutdown (Computes::settle), then trimmed to the WAL a clean start reads. The marker
  // says settling began, after which the capture's own WAL is no longer all there.
  Status begin_settling(std::string_view snapshot_id);
  bool settling_begun(std::string_view snapshot_id) const;
  // Settling and trimming are done: from here on the data is made read-only (so never settled
  // again).
  Status end_settling(std::string_view snapshot_id);
  bool settled(std::string_view snapshot_id) const;
  bool snapshot_sealed(std::string_view snapshot_id) const;
  // After a clean shutdown whose control data is `control`: removes every WAL segment file but
  // the checkpoint's, and within that one frees (punches out) all but its first page and the
  // pages of the checkpoint record, so a snapshot keeps kilobytes of WAL, not 16 MB files that
  // its source recycles. Idempotent. Refuses a cluster that was not shut down cleanly.
  Status trim_settled_wal(const std::filesystem::path& pgdata, const ControlData& control);
  // Makes the snapshot's data read-only and records its files' stamps (manifest.h). Idempotent.
  // The checksums come after, off the snapshot's path (checksum_snapshot).
  Status seal_snapshot(std::string_view snapshot_id);
  // Settling after the operation (ops/actions/create_snapshot.cc): the operation seals the capture
  // as it is, marked unsettled (a restore of it replays its WAL when its compute starts); later,
  // off every operation's path, settle_beside settles a copy of it and puts that in its place.
  Status mark_unsettled(std::string_view snapshot_id);
  bool awaiting_settle(std::string_view snapshot_id) const;
  // Clones the unsettled snapshot (its stamps checked first) into snapshots/.tmp-settle-<id>,
  // settles and trims that, seals it, and exchanges the two directories in one rename: a restore
  // (which clones under the snapshot's lock) sees the one or the other, whole. A crash anywhere
  // leaves the unsettled snapshot in place and a .tmp-* leftover that startup removes. A snapshot
  // removed meanwhile is left alone. Returns false when there was nothing to settle.
  Result<bool> settle_beside(std::string_view snapshot_id, const SettleFn& settle);
  // How long a restore waits for a settle_beside of its snapshot that is under way (it clones the
  // settled copy then, instead of the capture whose WAL its compute would replay beside the
  // settling); a restore of a snapshot whose settling has not begun does not wait.
  static constexpr std::chrono::seconds kSettleWait{30};
  // Writes the manifest (every file's size and CRC-32C) of a sealed snapshot that has none,
  // reading it all. If a file's stamp moved since sealing, no manifest is written and the
  // snapshot is marked damaged instead. Idempotent; a snapshot removed meanwhile is left alone.
  // `now_ms` is recorded as the time of the full read.
  Status checksum_snapshot(std::string_view snapshot_id, int64_t now_ms, const Pace& pace = {});
  // Reads the whole snapshot against its manifest (a scrub: what the stamps cannot see, such as
  // the medium returning other bytes); a difference marks it damaged. Records when it ran.
  Status scrub_snapshot(std::string_view snapshot_id, int64_t now_ms, const Pace& pace = {});
  // Milliseconds since the epoch of the last full read (the checksum pass or a scrub), if any.
  std::optional<int64_t> snapshot_checked_at(std::string_view snapshot_id) const;
  bool snapshot_damaged(std::string_view snapshot_id) const;
  // Verifies the snapshot first: refused (kConflict, naming the file) when marked damaged, when a
  // file differs from its manifest (files whose stamp is unchanged are not read), or, before
  // the manifest is written, when a file's stamp moved.
  Result<CloneStats> create_branch_from_snapshot(std::string_view branch_id,
                                                 std::string_view snapshot_id, bool history);
  Status remove_snapshot(std::string_view snapshot_id);
  // storage/wal_history.h on a cluster directory of this layout (a branch's or a snapshot's).
  Result<WalHistory> wal_history(const PgInstall& pg, const std::filesystem::path& pgdata,
                                 std::optional<uint64_t> from = std::nullopt,
                                 std::optional<uint64_t> until = std::nullopt);
  // Ids of complete branch directories on disk.
  std::vector<std::string> list_branch_dirs() const { return list_dirs("branches"); }
  std::vector<std::string> list_snapshot_dirs() const { return list_dirs("snapshots"); }
  // Removes leftovers of interrupted creates (".tmp-*").
  Status remove_temp_dirs();

 private:
  Result<CloneStats> capture_stopped(const std::filesystem::path& final_dir,
                                     const std::filesystem::path& src, bool writable, bool history);
  Result<CaptureInfo> capture_running(const std::filesystem::path& final_dir,
                                      const std::filesystem::path& src, PgConn& admin, int major,
                                      bool history);
  // The builds at a point: `image` cloned into `final_dir` with recovery.signal, recovered, then
  // `then` on the result (inside the build, before it is renamed into place).
  Result<CloneStats> recover_at_point(
      const std::filesystem::path& final_dir, const std::filesystem::path& image_pgdata,
      const SettleFn& recover, int copies,
      const std::function<Status(const std::filesystem::path& tmp_pgdata, const ControlData&)>&
          then);
  // Inside a build (`dir` is its .tmp-* directory, its data in dir/pgdata): an empty archive and
  // a base image of the data as built. `stop_lsn`: a backup capture's consistency point.
  Status begin_history(const std::filesystem::path& dir,
                       const std::optional<std::string>& stop_lsn);
  Status make_read_only(const std::filesystem::path& dir);
  // seal_snapshot on `dir` (a snapshot's directory, or its settled copy being made): its pgdata
  // made read-only, then its stamps written beside it.
  Status seal_dir(const std::filesystem::path& dir);
  Status check_space(const std::filesystem::path& final_dir, const std::filesystem::path& src,
                     int copies = 1);
  std::vector<std::string> list_dirs(std::string_view sub) const;
  Status remove_dir(const std::filesystem::path& dir, std::string_view id);
  // Builds `final_dir` via `fill(tmp_pgdata)`; no-op when final_dir exists.
  Status build_dir(const std::filesystem::path& final_dir,
                   const std::function<Status(const std::filesystem::path&)>& fill);
  Status sync_fs(const std::filesystem::path& dir);

  // Marks a snapshot damaged with the reason (what a restore then answers).
  Status mark_damaged(std::string_view snapshot_id, const std::string& reason);
  // Writes `name` into the snapshot's directory if it still exists (under its lock, so a
  // removal never races a file into a directory being deleted).
  Status write_snapshot_file(std::string_view snapshot_id, std::string_view name,
                             std::string_view text);

  // A snapshot's lock: shared while a restore checks and clones it, exclusive while it is
  // removed, exchanged for its settled copy, or a file is written beside its data. Striped by id.
  std::shared_mutex& snapshot_mu(std::string_view snapshot_id);

  StorageOptions options_;
  std::array<std::shared_mutex, 16> snapshot_mus_;
  std::array<std::shared_mutex, 16> history_mus_;
  // The snapshots settle_beside works on now, for create_branch_from_snapshot to wait for.
  std::mutex settling_mu_;
  std::condition_variable settling_cv_;
  std::set<std::string, std::less<>> settling_;  // guarded by settling_mu_
  std::unique_ptr<CloneDriver> driver_;
  ProcessRunner& runner_;
};

// Paths a base backup must not copy (PostgreSQL docs, "Making a Base Backup Using the Low Level
// API"): relative to the data directory.
CloneFilter base_backup_filter(const std::filesystem::path& rel, bool is_dir);

}  // namespace argon::storage
