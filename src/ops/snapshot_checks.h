// The snapshots' checksums, off every operation's path, on one thread of their own. A snapshot is
// sealed (read-only, stamped) by its operation; this thread then reads it once to write its
// manifest (every file's CRC-32C), and again in full every `scrub_interval` (a scrub: the medium
// returning other bytes under unchanged stamps). A difference marks the snapshot damaged, which a
// restore then refuses with the file's name. Woken when a snapshot operation finishes, and at
// least once a minute; a pass over thousands of snapshots is a few stats each when nothing is due.
// While operations run, its reading pauses (ops/foreground.h).
#pragma once

#include <chrono>

#include "common/clock.h"
#include "ops/foreground.h"
#include "ops/periodic_thread.h"
#include "storage/storage.h"

namespace argon::ops {

class SnapshotChecks {
 public:
  // scrub_interval zero: snapshots are read once, for their manifest, and never again. The reads
  // pause while `foreground` counts running operations.
  SnapshotChecks(storage::Storage& storage, const Clock& clock, std::chrono::seconds scrub_interval,
                 Foreground& foreground)
      : storage_(storage),
        clock_(clock),
        scrub_interval_(scrub_interval),
        foreground_(foreground) {}

  // The first pass comes at once: snapshots sealed before a crash or restart.
  void start();
  void stop();
  // A snapshot may have been sealed: look now.
  void notify();
  // One pass, on the caller's thread: what the thread runs (tests call it directly).
  void pass();

 private:
  storage::Storage& storage_;
  const Clock& clock_;
  const std::chrono::seconds scrub_interval_;
  Foreground& foreground_;
  PeriodicThread thread_;  // last: stopped before the members its job uses go
};

}  // namespace argon::ops
