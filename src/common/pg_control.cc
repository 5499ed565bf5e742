#include "common/pg_control.h"

#include <fmt/format.h>

#include <ctime>
#include <regex>

#include "common/file_util.h"

namespace argon {

namespace fs = std::filesystem;

namespace {
const std::regex kLsn(R"(([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8}))");
}  // namespace

std::optional<uint64_t> parse_lsn(std::string_view text) {
  std::cmatch m;
  if (!std::regex_match(text.begin(), text.end(), m, kLsn)) return std::nullopt;
  return (std::stoull(m[1].str(), nullptr, 16) << 32) | std::stoull(m[2].str(), nullptr, 16);
}

std::string format_lsn(uint64_t lsn) {
  return fmt::format("{:X}/{:X}", lsn >> 32, lsn & 0xffffffffu);
}

Result<ControlData> parse_controldata(std::string_view text) {
  ControlData out;
  bool redo = false, when = false;
  std::string_view rest = text;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string key(line.substr(0, colon));
    std::string value(line.substr(colon + 1));
    value.erase(0, value.find_first_not_of(' '));
    if (key == "Latest checkpoint's REDO location") {
      auto lsn = parse_lsn(value);
      if (!lsn)
        return fail(ErrorCode::kInternal,
                    fmt::format("pg_controldata: bad REDO location '{}'", value));
      out.redo_lsn = *lsn;
      redo = true;
    } else if (key == "Latest checkpoint location") {
      auto lsn = parse_lsn(value);
      if (!lsn)
        return fail(ErrorCode::kInternal,
                    fmt::format("pg_controldata: bad checkpoint location '{}'", value));
      out.checkpoint_lsn = *lsn;
    } else if (key == "Database cluster state") {
      out.shut_down = value == "shut down";
    } else if (key == "WAL block size") {
      out.wal_block_bytes = std::stoull(value);
    } else if (key == "Bytes per WAL segment") {
      out.segment_bytes = std::stoull(value);
    } else if (key == "Latest checkpoint's TimeLineID") {
      out.timeline = std::atoi(value.c_str());
    } else if (key == "Time of latest checkpoint") {
      std::tm tm{};
      if (!::strptime(value.c_str(), "%a %b %d %H:%M:%S %Y", &tm)) {
        return fail(ErrorCode::kInternal,
                    fmt::format("pg_controldata: bad checkpoint time '{}'", value));
      }
      // Whole seconds, truncated when written: a commit before the redo point is no later than
      // the next second.
      out.checkpoint_time_us = (static_cast<int64_t>(::timegm(&tm)) + 1) * 1'000'000;
      when = true;
    }
  }
  if (!redo || !when)
    return fail(ErrorCode::kInternal, "pg_controldata: checkpoint fields missing from its output");
  return out;
}

Result<std::string> run_pg_tool(ProcessRunner& runner, std::vector<std::string> argv,
                                const fs::path& scratch) {
  ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.env = {"TZ=UTC", "LC_ALL=C"};
  spec.log_file = scratch;
  std::error_code ec;
  fs::remove(scratch, ec);
  auto rc = runner.run(spec, std::chrono::seconds(60));
  auto text = read_file(scratch);
  fs::remove(scratch, ec);
  if (!rc) return std::unexpected(rc.error());
  if (!text) return std::unexpected(text.error());
  return *text;
}

Result<ControlData> read_controldata(const PgInstall& pg, ProcessRunner& runner,
                                     const fs::path& pgdata, const fs::path& scratch) {
  ARGON_ASSIGN_OR_RETURN(
      auto text,
      run_pg_tool(runner, {pg.bin("pg_controldata").string(), pgdata.string()}, scratch));
  return parse_controldata(text);
}

bool is_wal_segment_name(std::string_view name) {
  return name.size() == 24 && name.find_first_not_of("0123456789ABCDEF") == std::string_view::npos;
}

uint64_t wal_segment_number(std::string_view name, uint64_t segment_bytes) {
  const uint64_t per_id = 0x100000000ull / segment_bytes;
  return std::stoull(std::string(name.substr(8, 8)), nullptr, 16) * per_id +
         std::stoull(std::string(name.substr(16, 8)), nullptr, 16);
}

bool is_timeline_history_name(std::string_view name) {
  return name.size() == 16 && name.ends_with(".history") &&
         name.substr(0, 8).find_first_not_of("0123456789ABCDEF") == std::string_view::npos;
}

std::string wal_segment_name(int timeline, uint64_t lsn, uint64_t segment_bytes) {
  const uint64_t segno = lsn / segment_bytes;
  const uint64_t per_id = 0x100000000ull / segment_bytes;
  return fmt::format("{:08X}{:08X}{:08X}", static_cast<uint32_t>(timeline), segno / per_id,
                     segno % per_id);
}

}  // namespace argon
