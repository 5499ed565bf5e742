#include "ops/history_keeper.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/crash_point.h"
#include "common/pg_conn.h"

namespace argon::ops {

namespace fs = std::filesystem;
using catalog::Tx;

void HistoryKeeper::start() {
  thread_.start(env_.options.history_interval, [this] { pass(); });
}

void HistoryKeeper::stop() { thread_.stop(); }

void HistoryKeeper::pass() {
  auto branches = env_.catalog.read([&](Tx& tx) -> Result<std::vector<Branch>> {
    std::vector<Branch> out;
    ARGON_RETURN_IF_ERROR(for_each_project(tx, [&](const catalog::Project& p) -> Status {
      for (const auto& b : tx.list_branches(p.id)) {
        if (b.current_state == catalog::branch_state::kReady)
          out.push_back({b.id, p.pg_version, p.history_retention_seconds});
      }
      return {};
    }));
    return out;
  });
  if (!branches) {
    spdlog::error("history: cannot read the catalog: {}", branches.error().message);
    return;
  }
  for (const auto& b : *branches) {
    if (thread_.stopping()) return;
    keep(b);
  }
}

void HistoryKeeper::keep(const Branch& b) {
  if (!env_.storage.branch_exists(b.id)) return;
  auto pg = env_.install(b.pg_major);
  if (!pg) return;
  const int64_t floor_ms = env_.clock.now_ms() - b.retention_seconds * 1000;
  auto pruned = env_.storage.prune_history(b.id, **pg, floor_ms, b.retention_seconds == 0);
  if (!pruned) {
    spdlog::warn("history of branch {}: pruning failed: {}", b.id, pruned.error().message);
  } else if (pruned->images || pruned->wal_files) {
    crash_point("history.pruned");
    spdlog::info(
        "history of branch {}: removed {} base image(s) and {} archived WAL file(s), "
        "{:.1f} MB, older than its window",
        b.id, pruned->images, pruned->wal_files, static_cast<double>(pruned->bytes) / (1 << 20));
  }
  if (b.retention_seconds == 0 || !env_.computes.running(b.id)) return;
  auto admin = PgConn::connect(env_.computes.admin_conninfo(b.id));
  if (!admin) return;  // stopping or stopped meanwhile: the next pass looks again
  auto due = image_due(b, **pg, *admin);
  if (!due) {
    spdlog::warn("history of branch {}: {}", b.id, due.error().message);
    return;
  }
  if (!*due) return;
  const auto began = std::chrono::steady_clock::now();
  auto image = env_.storage.take_image(b.id, *admin, b.pg_major);
  if (!image) {
    spdlog::info("history of branch {}: no base image this time: {}", b.id, image.error().message);
    return;
  }
  crash_point("history.imaged");
  spdlog::info(
      "history of branch {}: base image {} taken in {:.0f} ms (consistent at {})", b.id,
      image->pgdata.parent_path().filename().string(),
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began).count(),
      image->stop_lsn ? format_lsn(*image->stop_lsn) : std::string("?"));
}

Result<bool> HistoryKeeper::image_due(const Branch& b, const PgInstall& pg, PgConn& admin) {
  const auto images = storage::list_images(env_.storage.branch_dir(b.id));
  if (images.empty()) return true;
  const auto& newest = images.back();
  storage::ImagePoint at;
  {
    std::lock_guard lock(points_mu_);
    auto it = points_.find(newest.pgdata.string());
    if (it != points_.end()) at = it->second;
  }
  if (at.lsn == 0) {
    ARGON_ASSIGN_OR_RETURN(
        at, storage::image_point(pg, env_.storage.runner(), newest, env_.storage.tool_scratch()));
    std::lock_guard lock(points_mu_);
    if (points_.size() > 10000) points_.clear();
    points_[newest.pgdata.string()] = at;
  }
  ARGON_ASSIGN_OR_RETURN(auto now,
                         admin.exec("SELECT pg_current_wal_lsn()::text, "
                                    "(SELECT timeline_id FROM pg_control_checkpoint())::text"));
  const auto current = parse_lsn(now.value(0, 0));
  if (!current) return fail(ErrorCode::kInternal, "pg_current_wal_lsn: unreadable answer");
  if (std::to_string(at.timeline) != now.value(0, 1)) return true;
  const uint64_t written = *current > at.lsn ? *current - at.lsn : 0;
  uint64_t threshold = env_.options.history_image_wal_bytes;
  if (threshold == 0) {
    // Where clones share blocks an image costs little: one per 64 MB of WAL keeps a recovery's
    // replay near a second. On the copy driver each image is a whole copy: one per GB.
    threshold = env_.storage.driver().name() == "reflink" ? 64ull << 20 : 1024ull << 20;
  }
  return written >= threshold;
}

}  // namespace argon::ops
