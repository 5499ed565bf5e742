// What the storage benchmarks share: timing, filling a branch to a size, disk figures, printing.
#pragma once

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/pg_conn.h"
#include "harness.h"
#include "loop_filesystem.h"

namespace argon::bench {

using Clock = std::chrono::steady_clock;

double elapsed_s(Clock::time_point start);
std::string str(const boost::json::value& v, std::string_view key);
// Throws with the reply when the status is not `want`.
void expect_status(const testing::ApiReply& r, int want, std::string_view what);
void exec(PgConn& c, std::string_view sql);
double query_double(PgConn& c, std::string_view sql);
// Waits for `ops`; throws unless every one finished.
void wait_finished(testing::Argond& a, const std::string& project, const boost::json::value& ops);
// testing::wait_settled (a snapshot settled after its operation is in place); throws after it.
void wait_until_settled(const testing::Argond& a, const std::string& snapshot_id);

// Fills the branch's `neondb` with incompressible ~1 kB rows (table `filler`: id, pad) until the
// database reaches `mb` megabytes; returns its size.
double fill(testing::Argond& a, const std::string& branch_id, double mb);
// Sum of file sizes under `dir`, and the blocks really allocated (shared reflink blocks counted
// for every file that shares them).
double tree_mb(const std::filesystem::path& dir);
double allocated_mb(const std::filesystem::path& dir);
// Bytes in use on the filesystem holding `path` (statvfs): what reflink sharing really costs.
double fs_used_mb(const std::filesystem::path& path);
// pg_basebackup of the branch's running compute into `target` (fast checkpoint, WAL streamed,
// synced), as the Postgres user so that the copy can be started; returns the seconds it took.
double basebackup(testing::Argond& a, const std::string& branch_id,
                  const std::filesystem::path& target);
// A directory `<under>/diy` the Postgres user owns, for the do-it-yourself copies.
std::filesystem::path postgres_workdir(const std::filesystem::path& under);
// Runs a shell command as the Postgres user; throws if it fails.
void run_as_postgres(const std::string& command);
// The drivers, sizes and repetitions a storage benchmark sweeps, as command-line options.
struct SweepOptions {
  std::vector<double> sizes_mb{10, 1024};
  std::vector<std::string> drivers{"copy", "reflink"};
  int reps = 3;
  int image_gb = 24;
  void add_to(CLI::App& app);
};
// The loop image a driver is measured on: reflink on XFS, copy on ext4 (copy_file_range on XFS
// would share blocks and measure a reflink again). Throws if it cannot be made.
std::unique_ptr<testing::LoopFilesystem> driver_image(const std::string& driver, int image_gb);

// One row of a benchmark's table: a driver, what was measured, at which size, and the timings.
struct Sample {
  std::string driver;
  std::string what;
  double size_mb = 0;    // the filled database (pg_database_size)
  double pgdata_mb = 0;  // the whole cluster on disk, WAL included
  std::vector<double> seconds;
};
// Prints the table: driver, sizes, what, reps, median, min and max seconds.
void print_samples(const std::vector<Sample>& samples);

// Runs a shell command, returning its output (stdout and stderr); throws if it fails.
std::string run_capture(const std::string& cmd);
// A libpq conninfo as PG* environment assignments for a shell command (pgbench takes no conninfo
// for everything it needs).
std::string pg_env(const std::string& conninfo);

}  // namespace argon::bench
