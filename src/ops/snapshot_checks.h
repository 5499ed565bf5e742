// The snapshots' work off every operation's path, on two threads of their own.
// - Settling: a snapshot its operation sealed unsettled (settling after the operation,
//   ops/actions/create_snapshot.cc) is settled on a copy that takes its place, as soon as the
//   operation has finished. One that fails is left unsettled (a restore of it replays its WAL)
//   and tried again when argond next starts.
// - Checksums: a sealed (and settled, or not to be) snapshot is read once to write its manifest
//   (every file's CRC-32C), and again in full every `scrub_interval` (a scrub: the medium
//   returning other bytes under unchanged stamps). A difference marks the snapshot damaged, which
//   a restore then refuses with the file's name. While operations run, its reading pauses
//   (ops/foreground.h).
// Both are woken when a snapshot operation finishes, and look at least once a minute; a pass over
// thousands of snapshots is a few stats each when nothing is due.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <set>
#include <string>

#include "common/clock.h"
#include "ops/foreground.h"
#include "ops/periodic_thread.h"
#include "storage/storage.h"

namespace argon::ops {

class SnapshotChecks {
 public:
  // Settles one snapshot awaiting it (storage::Storage::awaiting_settle); false when there was
  // nothing to do.
  using Settle = std::function<Result<bool>(const std::string& snapshot_id)>;

  // scrub_interval zero: snapshots are read once, for their manifest, and never again. The reads
  // pause while `foreground` counts running operations. Without `settle`, nothing is settled.
  SnapshotChecks(storage::Storage& storage, const Clock& clock, std::chrono::seconds scrub_interval,
                 Foreground& foreground, Settle settle = {})
      : storage_(storage),
        clock_(clock),
        scrub_interval_(scrub_interval),
        foreground_(foreground),
        settle_(std::move(settle)) {}

  // The first passes come at once: snapshots sealed before a crash or restart.
  void start();
  void stop();
  // A snapshot may have been sealed: look now.
  void notify();
  // One pass of each thread, on the caller's thread (tests call them directly).
  void settle_pass();
  void pass();

 private:
  storage::Storage& storage_;
  const Clock& clock_;
  const std::chrono::seconds scrub_interval_;
  Foreground& foreground_;
  const Settle settle_;
  bool settle_failed(const std::string& id);
  std::mutex failed_mu_;
  std::set<std::string> settle_failed_;  // guarded by failed_mu_; tried again at the next start
  // Last: stopped before the members their jobs use go.
  PeriodicThread settles_;
  PeriodicThread thread_;
};

}  // namespace argon::ops
