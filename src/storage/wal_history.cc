#include "storage/wal_history.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <ctime>
#include <regex>

#include "common/clock.h"
#include "common/file_util.h"

namespace argon::storage {

namespace fs = std::filesystem;

namespace {

const std::regex kLsn(R"(([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8}))");

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    auto nl = text.find('\n');
    out.push_back(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

}  // namespace

Result<WalHistory> parse_waldump(std::string_view text, uint64_t from, uint64_t segment_bytes,
                                 std::optional<uint64_t> until, const OnCommit& on_commit) {
  static const std::regex missing_segment(
      R"re(could not find file "[0-9A-F]{8}([0-9A-F]{8})([0-9A-F]{8})")re");
  static const std::regex commit(
      R"(^rmgr: Transaction .* lsn: ([0-9A-Fa-f]+/[0-9A-Fa-f]+), .*desc: COMMIT\S*.*?(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d+))? UTC)");
  WalHistory out;
  std::optional<uint64_t> end;
  bool reading = true;
  for (auto view : lines_of(text)) {
    std::string line(view);
    std::smatch m;
    if (std::regex_search(line, m, commit)) {
      auto lsn = parse_lsn(m[1].str());
      auto us = parse_time_us(m[2].str() + "T" + m[3].str() +
                              (m[4].matched ? "." + m[4].str() : "") + "Z");
      if (!lsn || !us)
        return fail(ErrorCode::kInternal,
                    fmt::format("pg_waldump: unreadable commit record: {}", line));
      if (!reading) continue;
      if (on_commit && !on_commit(CommitRecord{*lsn, *us})) {
        reading = false;
        continue;
      }
      out.last_commit_lsn = std::max(out.last_commit_lsn.value_or(0), *lsn);
      out.last_commit_time_us = std::max(out.last_commit_time_us.value_or(0), *us);
      continue;
    }
    if (!line.starts_with("pg_waldump: error: ")) continue;
    // Reading stops where valid WAL ends, with an error naming that place last.
    if (line.find("could not find a valid record after") != std::string::npos ||
        line.find("error in WAL record at") != std::string::npos) {
      std::optional<uint64_t> last;
      for (auto it = std::sregex_iterator(line.begin(), line.end(), kLsn);
           it != std::sregex_iterator(); ++it) {
        last = parse_lsn(it->str());
      }
      if (!last)
        return fail(ErrorCode::kInternal, fmt::format("pg_waldump: no end of WAL in: {}", line));
      end = *last;
    } else if (std::smatch seg; std::regex_search(line, seg, missing_segment)) {
      // WAL that ends exactly at a segment boundary (after a switch) ends with the next segment
      // not there yet; only a missing segment at or before the start leaves something unknown.
      const uint64_t start = std::stoull(seg[1].str(), nullptr, 16) * 0x100000000ull +
                             std::stoull(seg[2].str(), nullptr, 16) * segment_bytes;
      if (start <= from) {
        return fail(ErrorCode::kConflict,
                    fmt::format("the WAL from {} is no longer kept", format_lsn(from)));
      }
      end = start;
    } else {
      return fail(ErrorCode::kConflict,
                  fmt::format("the WAL from {} is not available: {}", format_lsn(from),
                              line.substr(std::string_view("pg_waldump: error: ").size())));
    }
  }
  if (!end) end = until;  // it stopped there without complaint
  if (!end) return fail(ErrorCode::kInternal, "pg_waldump: did not report where the WAL ends");
  out.end_lsn = std::max(*end, from);
  return out;
}

Result<WalHistory> dump_commits(const PgInstall& pg, ProcessRunner& runner, const fs::path& wal_dir,
                                int timeline, uint64_t segment_bytes, uint64_t from,
                                std::optional<uint64_t> until, const fs::path& scratch,
                                const OnCommit& on_commit) {
  std::vector<std::string> argv = {pg.bin("pg_waldump").string(),
                                   "--path",
                                   wal_dir.string(),
                                   "--timeline",
                                   std::to_string(timeline),
                                   "--rmgr",
                                   "Transaction",
                                   "--start",
                                   format_lsn(from)};
  if (until) {
    argv.push_back("--end");
    argv.push_back(format_lsn(*until));
  }
  ARGON_ASSIGN_OR_RETURN(auto dump, run_pg_tool(runner, std::move(argv), scratch));
  return parse_waldump(dump, from, segment_bytes, until, on_commit);
}

Result<WalHistory> read_wal_history(const PgInstall& pg, ProcessRunner& runner,
                                    const fs::path& pgdata, std::optional<uint64_t> from,
                                    std::optional<uint64_t> until, const fs::path& scratch) {
  ARGON_ASSIGN_OR_RETURN(auto control, read_controldata(pg, runner, pgdata, scratch));
  const uint64_t start = from.value_or(control.redo_lsn);
  // pg_waldump waits half a second for a segment that is not there, which is how WAL ending at a
  // segment boundary looks. Stopping at the end of the newest segment file avoids that wait.
  const std::regex segment_name(
      fmt::format("{:08X}([0-9A-F]{{8}})([0-9A-F]{{8}})", control.timeline));
  std::optional<uint64_t> files_end;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(pgdata / "pg_wal", ec)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (!std::regex_match(name, m, segment_name)) continue;
    const uint64_t seg_end = std::stoull(m[1].str(), nullptr, 16) * 0x100000000ull +
                             (std::stoull(m[2].str(), nullptr, 16) + 1) * control.segment_bytes;
    files_end = std::max(files_end.value_or(0), seg_end);
  }
  if (files_end && (!until || *files_end < *until)) until = files_end;
  ARGON_ASSIGN_OR_RETURN(auto history, dump_commits(pg, runner, pgdata / "pg_wal", control.timeline,
                                                    control.segment_bytes, start, until, scratch));
  history.redo_lsn = control.redo_lsn;
  history.checkpoint_time_us = control.checkpoint_time_us;
  // pg_control is rewritten when a checkpoint completes, so its mtime is also no earlier than any
  // commit before the redo point, and finer than the checkpoint time's whole seconds.
  struct stat st {};
  if (::stat((pgdata / "global" / "pg_control").c_str(), &st) == 0) {
    const int64_t mtime_us =
        static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000 + st.st_mtim.tv_nsec / 1000 + 1;
    history.checkpoint_time_us = std::min(history.checkpoint_time_us, mtime_us);
  }
  return history;
}

Status point_is_current(const WalHistory& h, const PointInTime& point, int64_t now_us,
                        int64_t branch_created_us) {
  constexpr const char* kNotAvailable =
      "; point-in-time capture is not available for it (only a point after the branch's last "
      "commit can be "
      "captured exactly); omit timestamp and lsn to snapshot the current state";
  if (point.time) {
    // The first instant the time names must have come; its last one is what commits compare to.
    const int64_t first = point.time->first_us, t = point.time->last_us();
    if (first > now_us) {
      return fail(ErrorCode::kBadRequest,
                  fmt::format("timestamp: {} is in the future", format_time_us(first)));
    }
    if (t < branch_created_us) {
      return fail(ErrorCode::kBadRequest,
                  fmt::format("timestamp: {} is before the branch was created ({})",
                              format_time_us(t), format_time_us(branch_created_us)));
    }
    if (h.last_commit_time_us) {
      if (*h.last_commit_time_us <= t) return {};
      return fail(
          ErrorCode::kConflict,
          fmt::format("timestamp: a transaction committed on the branch at {}, after {}{}",
                      format_time_us(*h.last_commit_time_us), format_time_us(t), kNotAvailable));
    }
    if (h.checkpoint_time_us <= t) return {};
    return fail(
        ErrorCode::kConflict,
        fmt::format(
            "timestamp: {} is before the branch's latest checkpoint ({}), so the WAL kept cannot "
            "tell whether anything committed after it{}",
            format_time_us(t), format_time_us(h.checkpoint_time_us), kNotAvailable));
  }
  if (point.lsn) {
    const uint64_t l = *point.lsn;
    if (l > h.end_lsn) {
      return fail(ErrorCode::kBadRequest,
                  fmt::format("lsn: {} is beyond the end of the branch's WAL ({})", format_lsn(l),
                              format_lsn(h.end_lsn)));
    }
    if (h.last_commit_lsn) {
      if (*h.last_commit_lsn < l) return {};
      return fail(ErrorCode::kConflict,
                  fmt::format("lsn: a transaction committed on the branch at LSN {}, after {}{}",
                              format_lsn(*h.last_commit_lsn), format_lsn(l), kNotAvailable));
    }
    if (l >= h.redo_lsn) return {};
    return fail(
        ErrorCode::kConflict,
        fmt::format(
            "lsn: {} is before the branch's latest checkpoint ({}), so the WAL kept cannot tell "
            "whether anything committed after it{}",
            format_lsn(l), format_lsn(h.redo_lsn), kNotAvailable));
  }
  return {};
}

}  // namespace argon::storage
