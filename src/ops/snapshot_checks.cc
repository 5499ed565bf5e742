#include "ops/snapshot_checks.h"

#include <spdlog/spdlog.h>

namespace argon::ops {

using namespace std::chrono_literals;

void SnapshotChecks::start() {
  settles_.start(
      60s, [this] { settle_pass(); }, /*run_now=*/true);
  thread_.start(
      60s, [this] { pass(); }, /*run_now=*/true);
}

void SnapshotChecks::stop() {
  settles_.stop();
  thread_.stop();
}

void SnapshotChecks::notify() {
  settles_.wake();
  thread_.wake();
}

bool SnapshotChecks::settle_failed(const std::string& id) {
  std::lock_guard lock(failed_mu_);
  return settle_failed_.contains(id);
}

void SnapshotChecks::settle_pass() {
  if (!settle_) return;
  bool settled = false;
  for (const auto& id : storage_.list_snapshot_dirs()) {
    if (settles_.stopping()) return;
    if (!storage_.awaiting_settle(id) || !storage_.snapshot_sealed(id) || settle_failed(id))
      continue;
    auto done = settle_(id);
    if (!done && settles_.stopping()) return;  // cut short: the next start settles it
    if (!done) {
      spdlog::error(
          "snapshot {}: settling it failed; it stays as captured (a restore of it replays its WAL "
          "when its compute starts) until argond starts again: {}{}",
          id, done.error().message,
          done.error().detail.empty() ? "" : " (" + done.error().detail + ")");
      std::lock_guard lock(failed_mu_);
      settle_failed_.insert(id);
    }
    settled = true;
  }
  if (settled) thread_.wake();  // their checksums
}

void SnapshotChecks::pass() {
  const int64_t scrub_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(scrub_interval_).count();
  // Between two reads: wait while operations run; give up when argond stops.
  const storage::Pace pace = [this] {
    return foreground_.pace([this] { return thread_.stopping(); });
  };
  for (const auto& id : storage_.list_snapshot_dirs()) {
    if (thread_.stopping()) return;
    // Not sealed yet: its operation is still settling it. Awaiting settling: the copy that
    // replaces it is what gets checksums.
    if (!storage_.snapshot_sealed(id) || storage_.snapshot_damaged(id)) continue;
    if (storage_.awaiting_settle(id) && !settle_failed(id)) continue;
    const auto began = std::chrono::steady_clock::now();
    auto elapsed_ms = [&] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - began)
          .count();
    };
    Status st;
    const auto checked = storage_.snapshot_checked_at(id);
    if (!std::filesystem::exists(storage_.snapshot_manifest(id))) {
      st = storage_.checksum_snapshot(id, clock_.now_ms(), pace);
      if (st && !storage_.snapshot_damaged(id))
        spdlog::info("snapshot {}: checksums written in {} ms", id, elapsed_ms());
    } else if (scrub_ms > 0 && (!checked || clock_.now_ms() - *checked >= scrub_ms)) {
      st = storage_.scrub_snapshot(id, clock_.now_ms(), pace);
      if (st && !storage_.snapshot_damaged(id))
        spdlog::info("snapshot {}: read in full in {} ms, matches its checksums", id, elapsed_ms());
    }
    // Tried again at the next pass (or at the next start, when argond is stopping).
    if (!st && thread_.stopping()) return;
    if (!st) spdlog::error("snapshot {}: checking it failed: {}", id, st.error().message);
  }
}

}  // namespace argon::ops
