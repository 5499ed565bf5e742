// What PostgreSQL's own tools say about a cluster directory, read without starting it: LSNs as
// text, and pg_controldata's view of the latest checkpoint. Storage reads it to know a branch's
// history; the computes to know where a cluster they shut down will start from.
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

namespace argon {

// "16/B374D848" ↔ 0x16B374D848.
std::optional<uint64_t> parse_lsn(std::string_view text);
std::string format_lsn(uint64_t lsn);

// pg_controldata output (run with TZ=UTC).
struct ControlData {
  uint64_t redo_lsn = 0;
  uint64_t checkpoint_lsn = 0;  // where the latest checkpoint record starts
  int timeline = 1;
  uint64_t segment_bytes = 16 * 1024 * 1024;
  uint64_t wal_block_bytes = 8192;
  int64_t checkpoint_time_us = 0;
  bool shut_down = false;  // "Database cluster state: shut down": it starts with no WAL replay
};
Result<ControlData> parse_controldata(std::string_view text);

// Runs one of PostgreSQL's tools (argv[0] absolute) with its output (stdout and stderr) into
// `scratch`, a file path that is removed afterwards; returns the text, whatever the exit status.
Result<std::string> run_pg_tool(ProcessRunner& runner, std::vector<std::string> argv,
                                const std::filesystem::path& scratch);

// pg_controldata of `pgdata`.
Result<ControlData> read_controldata(const PgInstall& pg, ProcessRunner& runner,
                                     const std::filesystem::path& pgdata,
                                     const std::filesystem::path& scratch);

// The WAL segment file name that holds `lsn` on `timeline`.
std::string wal_segment_name(int timeline, uint64_t lsn, uint64_t segment_bytes);
// Whether `name` is a WAL segment file's name (24 upper-case hex digits), and the segment's number
// in the whole WAL (its LSN divided by the segment size, whatever its timeline).
bool is_wal_segment_name(std::string_view name);
uint64_t wal_segment_number(std::string_view name, uint64_t segment_bytes);
// Whether `name` is a timeline history file's name ("0000000N.history").
bool is_timeline_history_name(std::string_view name);

}  // namespace argon
