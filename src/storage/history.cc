#include "storage/history.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <set>

#include "common/clock.h"
#include "common/file_util.h"
#include "common/pg_control.h"

namespace argon::storage {

namespace fs = std::filesystem;

namespace {

// A path inside a restore_command: single-quoted for the shell, `%` doubled for PostgreSQL.
std::string command_path(const fs::path& p) {
  std::string out = "'";
  for (char c : p.string()) {
    if (c == '\'') {
      out += "'\\''";
    } else if (c == '%') {
      out += "%%";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::unexpected<Error> before_window(std::string_view what, const std::string& asked,
                                     const HistoryWindow& window, const std::string& earliest) {
  return fail(ErrorCode::kBadRequest,
              fmt::format("{} is before retention window; {}:\"{}\", retention_window:\"{}\"; the "
                          "branch's history is available from {}",
                          what, what, asked, go_duration(window.retention_seconds), earliest));
}

}  // namespace

std::vector<BaseImage> list_images(const fs::path& branch_dir) {
  std::vector<BaseImage> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(branch_dir / kImagesDir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (!fs::exists(e.path() / "pgdata" / "PG_VERSION", ec)) continue;
    BaseImage image;
    image.pgdata = e.path() / "pgdata";
    image.taken_ms = std::stoll(name);
    if (auto stop = read_file(e.path() / "stop-lsn")) image.stop_lsn = parse_lsn(*stop);
    out.push_back(std::move(image));
  }
  std::ranges::sort(out, {}, &BaseImage::taken_ms);
  return out;
}

Result<ImagePoint> image_point(const PgInstall& pg, ProcessRunner& runner, const BaseImage& image,
                               const fs::path& scratch) {
  ARGON_ASSIGN_OR_RETURN(auto control, read_controldata(pg, runner, image.pgdata, scratch));
  ImagePoint at;
  at.timeline = control.timeline;
  at.segment_bytes = control.segment_bytes;
  if (image.stop_lsn) {
    at.lsn = *image.stop_lsn;
  } else if (control.shut_down) {
    at.lsn = control.checkpoint_lsn;
  } else {
    return fail(ErrorCode::kInternal,
                fmt::format("base image {} is neither a backup nor shut down cleanly",
                            image.pgdata.string()));
  }
  return at;
}

Result<RecoveryPlan> plan_recovery(const PgInstall& pg, ProcessRunner& runner,
                                   const fs::path& branch_dir, const PointInTime& point,
                                   const HistoryWindow& window, const fs::path& view_dir,
                                   const fs::path& scratch) {
  const auto images = list_images(branch_dir);
  std::optional<ImagePoint> oldest_at;
  if (!images.empty()) {
    ARGON_ASSIGN_OR_RETURN(oldest_at, image_point(pg, runner, images.front(), scratch));
  }
  const int64_t earliest_us =
      images.empty() ? window.now_us : std::max(window.floor_us, images.front().taken_ms * 1000);
  const std::string earliest =
      images.empty()
          ? std::string("its next start (it has no base image yet)")
          : fmt::format("{} (LSN {})", format_time_us(earliest_us), format_lsn(oldest_at->lsn));

  RecoveryPlan plan;
  if (point.time) {
    const int64_t t = point.time->last_us();
    if (point.time->first_us > window.now_us) {
      return fail(ErrorCode::kBadRequest, fmt::format("timestamp: {} is in the future",
                                                      format_time_us(point.time->first_us)));
    }
    if (t < earliest_us)
      return before_window("timestamp", go_time(point.time->first_us), window, earliest);
    // The newest image complete by T: every commit it holds was stamped before T.
    auto it = std::ranges::find_if(images.rbegin(), images.rend(),
                                   [&](const BaseImage& i) { return i.taken_ms * 1000 <= t; });
    if (it == images.rend())
      return before_window("timestamp", go_time(point.time->first_us), window, earliest);
    plan.image = *it;
    ARGON_ASSIGN_OR_RETURN(plan.at, image_point(pg, runner, plan.image, scratch));
  } else if (point.lsn) {
    if (!oldest_at || *point.lsn < oldest_at->lsn)
      return before_window("lsn", format_lsn(*point.lsn), window, earliest);
    // Newest first; the oldest qualifies (checked above), so the loop always picks one.
    for (auto it = images.rbegin(); it != images.rend(); ++it) {
      ARGON_ASSIGN_OR_RETURN(auto at, std::next(it) == images.rend()
                                          ? Result<ImagePoint>(*oldest_at)
                                          : image_point(pg, runner, *it, scratch));
      if (at.lsn <= *point.lsn) {
        plan.image = *it;
        plan.at = at;
        break;
      }
    }
  } else {
    return fail(ErrorCode::kInternal, "plan_recovery: no point given");
  }

  // The WAL from the image on: the archive, and the files of pg_wal not archived yet.
  ARGON_RETURN_IF_ERROR(remove_tree(view_dir));
  ARGON_RETURN_IF_ERROR(make_dir(view_dir, 0700));
  std::set<std::string> linked;
  for (const fs::path& dir : {branch_dir / kArchiveDir, branch_dir / "pgdata" / "pg_wal"}) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (!(is_wal_segment_name(name) || is_timeline_history_name(name)) ||
          !linked.insert(name).second)
        continue;
      fs::create_symlink(e.path(), view_dir / name, ec);
      if (ec)
        return fail(ErrorCode::kInternal,
                    fmt::format("cannot link {} into {}: {}", e.path().string(), view_dir.string(),
                                ec.message()));
    }
  }
  std::optional<CommitRecord> last;
  bool cut_found = false;
  auto history = dump_commits(pg, runner, view_dir, plan.at.timeline, plan.at.segment_bytes,
                              plan.at.lsn, std::nullopt, scratch, [&](const CommitRecord& c) {
                                const bool after = point.time ? c.time_us > point.time->last_us()
                                                              : c.lsn >= *point.lsn;
                                if (after) {
                                  cut_found = true;
                                  return false;
                                }
                                last = c;
                                return true;
                              });
  (void)remove_tree(view_dir);
  if (!history) return std::unexpected(history.error());
  if (point.lsn && *point.lsn > history->end_lsn) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("lsn: {} is beyond the end of the branch's WAL ({})",
                            format_lsn(*point.lsn), format_lsn(history->end_lsn)));
  }
  // Reading must have reached the branch's latest checkpoint: WAL ending before it means a file
  // is missing, and a point after the gap cannot be told.
  if (!cut_found) {
    ARGON_ASSIGN_OR_RETURN(auto live, read_controldata(pg, runner, branch_dir / "pgdata", scratch));
    if (live.timeline == plan.at.timeline && history->end_lsn < live.checkpoint_lsn) {
      return fail(ErrorCode::kInternal,
                  fmt::format("the branch's WAL from {} to {} is missing; its history after {} "
                              "cannot be recovered",
                              format_lsn(history->end_lsn), format_lsn(live.checkpoint_lsn),
                              format_lsn(history->end_lsn)));
    }
  }
  if (last && last->lsn >= plan.at.lsn) {
    plan.through = last->lsn;
    plan.last_commit = last;
  }
  return plan;
}

std::vector<std::pair<std::string, std::string>> recovery_settings(const RecoveryPlan& plan,
                                                                   const fs::path& branch_dir) {
  const std::string archive = command_path(branch_dir / kArchiveDir) + "/%f";
  const std::string wal = command_path(branch_dir / "pgdata" / "pg_wal") + "/%f";
  // A segment archived (then removed from pg_wal) between the first two tries is in the archive
  // for the third.
  std::vector<std::pair<std::string, std::string>> out = {
      {"restore_command",
       fmt::format("cp {0} \"%p\" 2>/dev/null || cp {1} \"%p\" 2>/dev/null || cp {0} \"%p\"",
                   archive, wal)},
      {"recovery_target_timeline", "current"},
      {"recovery_target_action", "promote"},
      {"hot_standby", "off"},
      // The result's own WAL (its new timeline's history file first) is marked for archiving; its
      // branch's compute archives it into the branch's own archive.
      {"archive_mode", "on"},
  };
  if (plan.through) {
    out.emplace_back("recovery_target_lsn", format_lsn(*plan.through));
    out.emplace_back("recovery_target_inclusive", "on");
  } else {
    out.emplace_back("recovery_target", "immediate");
  }
  return out;
}

Result<uint64_t> switch_point(const fs::path& pgdata) {
  int newest = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(pgdata / "pg_wal", ec)) {
    const std::string name = e.path().filename().string();
    if (is_timeline_history_name(name))
      newest = std::max(newest, static_cast<int>(std::stoul(name.substr(0, 8), nullptr, 16)));
  }
  if (newest == 0)
    return fail(ErrorCode::kInternal,
                fmt::format("{} has no timeline history file", pgdata.string()));
  ARGON_ASSIGN_OR_RETURN(auto text,
                         read_file(pgdata / "pg_wal" / fmt::format("{:08X}.history", newest)));
  // Lines "<parent tli>\t<switch lsn>\t<reason>"; the last one is this timeline's own.
  std::optional<uint64_t> lsn;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = std::min(text.find('\n', pos), text.size());
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    const auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    const auto end = line.find('\t', tab + 1);
    if (auto l = parse_lsn(line.substr(tab + 1, end == std::string::npos ? end : end - tab - 1)))
      lsn = l;
  }
  if (!lsn)
    return fail(
        ErrorCode::kInternal,
        fmt::format("{}: no switch point in timeline {}'s history file", pgdata.string(), newest));
  return *lsn;
}

std::string go_duration(int64_t seconds) {
  if (seconds == 0) return "0s";
  const int64_t h = seconds / 3600, m = seconds % 3600 / 60, s = seconds % 60;
  if (h > 0) return fmt::format("{}h{}m{}s", h, m, s);
  if (m > 0) return fmt::format("{}m{}s", m, s);
  return fmt::format("{}s", s);
}

std::string go_time(int64_t us) {
  const std::time_t secs = static_cast<std::time_t>(us / 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return fmt::format("{} +0000 UTC", buf);
}

}  // namespace argon::storage
