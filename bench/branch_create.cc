// Branch-creation benchmark: how long from `POST /branches` to its operations finished, for each
// clone driver and database size, beside `pg_basebackup` of the same running cluster in the same run.
//
// Each driver runs on its own loop-mounted image: reflink on XFS (reflink=1), copy on ext4, where
// copy_file_range really copies (on XFS it would share blocks too). pg_basebackup writes to the same
// filesystem as the driver beside it. argond runs durably (fsync on), with the parent's compute up,
// as a user's would. Needs root (loop mounts) and this build's argond.
//
//   argon_bench_branch [--sizes-mb 10,1024] [--drivers copy,reflink] [--reps 5] [--image-gb 24]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "common/pg_conn.h"
#include "harness.h"
#include "loop_filesystem.h"

namespace fs = std::filesystem;
namespace json = boost::json;
using argon::testing::Argond;
using argon::testing::LoopFilesystem;
using argon::testing::LoopFsType;
using Clock = std::chrono::steady_clock;

namespace {

struct Sample {
  std::string driver;
  std::string what;
  double size_mb = 0;    // the filled database (pg_database_size)
  double pgdata_mb = 0;  // the whole cluster on disk, WAL included
  std::vector<double> seconds;
};

double elapsed_s(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string str(const json::value& v, std::string_view key) { return std::string(v.at(key).as_string()); }

void expect_status(const argon::testing::ApiReply& r, int want, std::string_view what) {
  if (r.status != want) throw std::runtime_error(fmt::format("{}: HTTP {} {}", what, r.status, r.raw));
}

void exec(argon::PgConn& c, std::string_view sql) {
  if (auto r = c.exec(sql); !r) throw std::runtime_error(fmt::format("{}: {}", sql, r.error().message));
}

double query_double(argon::PgConn& c, std::string_view sql) {
  auto r = c.exec(sql);
  if (!r) throw std::runtime_error(fmt::format("{}: {}", sql, r.error().message));
  return std::stod(r->value());
}

// Fills the project's database with incompressible ~1 kB rows until it reaches `mb` megabytes.
double fill(Argond& a, const std::string& branch_id, double mb) {
  auto c = a.connect(branch_id, "neondb");
  exec(c, "CREATE TABLE filler (id bigint PRIMARY KEY, pad text NOT NULL)");
  // 960 random hex characters per row stay inline and uncompressed (below the TOAST threshold);
  // about 900 rows make a megabyte with the index.
  long next = 1;
  for (;;) {
    double missing = mb - query_double(c, "SELECT pg_database_size('neondb') / 1048576.0");
    if (missing <= 0) break;
    long rows = std::clamp(static_cast<long>(missing * 900), 200L, 20'000L);
    exec(c, fmt::format("INSERT INTO filler SELECT g, (SELECT string_agg(md5(random()::text), '') "
                        "FROM generate_series(1, 30) WHERE g > 0) FROM generate_series({}, {}) g",
                        next, next + rows - 1));
    next += rows;
  }
  exec(c, "CHECKPOINT");
  return query_double(c, "SELECT pg_database_size('neondb') / 1048576.0");
}

// Creates a branch of `parent` and waits for its operations; returns the seconds taken and deletes
// the branch again (waiting for that too, untimed) so disk use stays flat.
double time_branch(Argond& a, const std::string& project, const std::string& parent, int n, bool endpoint) {
  json::object body{{"branch", {{"name", fmt::format("bench-{}", n)}, {"parent_id", parent}}}};
  if (endpoint) body["endpoints"] = json::array{json::object{{"type", "read_write"}}};
  auto start = Clock::now();
  auto r = a.post(fmt::format("/projects/{}/branches", project), body);
  expect_status(r, 201, "create branch");
  auto ops = a.wait_operations(project, r.body.at("operations"), std::chrono::seconds(1800), std::chrono::milliseconds(5));
  for (const auto& status : ops) {
    if (status != "finished") throw std::runtime_error("branch creation ended " + status + "\n" + a.log_tail());
  }
  double s = elapsed_s(start);
  auto id = str(r.body.at("branch"), "id");
  auto d = a.call("DELETE", fmt::format("/projects/{}/branches/{}", project, id));
  expect_status(d, 200, "delete branch");
  a.wait_idle(project, std::chrono::seconds(600));
  return s;
}

// pg_basebackup of the running parent into the same filesystem (fast checkpoint, WAL streamed,
// synced to disk as argond's clones are).
double time_basebackup(Argond& a, const std::string& branch_id, int n) {
  fs::path target = a.data_dir().parent_path() / fmt::format("basebackup-{}", n);
  std::string cmd = fmt::format("pg_basebackup -h {} -p 5432 -U argon_admin -D {} -X stream -c fast >/dev/null 2>&1",
                                (a.data_dir() / "run" / branch_id).string(), target.string());
  auto start = Clock::now();
  int rc = std::system(cmd.c_str());
  double s = elapsed_s(start);
  std::error_code ec;
  fs::remove_all(target, ec);
  if (rc != 0) throw std::runtime_error("pg_basebackup failed: " + cmd);
  return s;
}

double tree_mb(const fs::path& dir) {
  std::uintmax_t bytes = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) bytes += e.file_size();
  }
  return bytes / 1048576.0;
}

std::string figures(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return fmt::format("{:8.3f} {:8.3f} {:8.3f}", v[v.size() / 2], v.front(), v.back());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Argon branch-creation benchmark"};
  std::vector<double> sizes_mb{10, 1024};
  std::vector<std::string> drivers{"copy", "reflink"};
  int reps = 5;
  int image_gb = 24;
  app.add_option("--sizes-mb", sizes_mb, "database sizes to measure, in MB")->delimiter(',');
  app.add_option("--drivers", drivers, "clone drivers to measure")->delimiter(',');
  app.add_option("--reps", reps, "repetitions per figure")->check(CLI::Range(1, 100));
  app.add_option("--image-gb", image_gb, "size of the sparse XFS image")->check(CLI::Range(2, 1024));
  CLI11_PARSE(app, argc, argv);

  if (::geteuid() != 0) {
    fmt::print(stderr, "argon_bench_branch: needs root to loop-mount the XFS image it measures on\n");
    return 2;
  }
  std::vector<Sample> samples;
  try {
    for (const auto& driver : drivers) {
      // copy on ext4: copy_file_range on XFS would share blocks and measure a reflink again.
      const auto type = driver == "reflink" ? LoopFsType::kXfsReflink : LoopFsType::kExt4;
      LoopFilesystem fs_image(type, std::uint64_t(image_gb) << 30);
      if (!fs_image.ok()) throw std::runtime_error("could not create and mount a loop filesystem image (loop devices?)");
      Argond a({"--clone-driver", driver}, fs_image.mount_point() / "argon", /*durable=*/true);
      for (double mb : sizes_mb) {
        fmt::print(stderr, "[{}] {} MB: creating and filling the parent\n", driver, mb);
        const auto created = argon::testing::create_project(a, {{"name", fmt::format("bench-{}mb", mb)}});
        const std::string project = created.id;
        const std::string parent = created.branch;
        double actual = fill(a, parent, mb);
        double pgdata = tree_mb(a.data_dir() / "branches" / parent / "pgdata");

        Sample data{driver, "branch (data only)", actual, pgdata, {}};
        Sample with_ep{driver, "branch + compute up", actual, pgdata, {}};
        Sample basebackup{driver, "pg_basebackup", actual, pgdata, {}};
        for (int i = 0; i < reps; ++i) {
          fmt::print(stderr, "[{}] {:.0f} MB: repetition {}/{}\n", driver, actual, i + 1, reps);
          data.seconds.push_back(time_branch(a, project, parent, 2 * i, false));
          with_ep.seconds.push_back(time_branch(a, project, parent, 2 * i + 1, true));
          basebackup.seconds.push_back(time_basebackup(a, parent, i));
        }
        samples.push_back(data);
        samples.push_back(with_ep);
        samples.push_back(basebackup);
        auto d = a.call("DELETE", "/projects/" + project);
        expect_status(d, 200, "delete project");
        a.wait_idle(project, std::chrono::seconds(600));
      }
      a.terminate();
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "argon_bench_branch: {}\n", e.what());
    return 1;
  }

  fmt::print("{:<8} {:>8} {:>9}  {:<20} {:>4} {:>8} {:>8} {:>8}\n", "driver", "db MB", "pgdata MB", "measured",
             "reps", "median s", "min s", "max s");
  for (const auto& s : samples) {
    fmt::print("{:<8} {:>8.1f} {:>9.1f}  {:<20} {:>4} {}\n", s.driver, s.size_mb, s.pgdata_mb, s.what,
               s.seconds.size(), figures(s.seconds));
  }
  return 0;
}
