#include "bench_util.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <regex>
#include <stdexcept>

namespace argon::bench {

namespace fs = std::filesystem;

double elapsed_s(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string str(const boost::json::value& v, std::string_view key) {
  return std::string(v.at(key).as_string());
}

void expect_status(const testing::ApiReply& r, int want, std::string_view what) {
  if (r.status != want)
    throw std::runtime_error(fmt::format("{}: HTTP {} {}", what, r.status, r.raw));
}

void exec(PgConn& c, std::string_view sql) {
  if (auto r = c.exec(sql); !r)
    throw std::runtime_error(fmt::format("{}: {}", sql, r.error().message));
}

double query_double(PgConn& c, std::string_view sql) {
  auto r = c.exec(sql);
  if (!r) throw std::runtime_error(fmt::format("{}: {}", sql, r.error().message));
  return std::stod(r->value());
}

void wait_finished(testing::Argond& a, const std::string& project, const boost::json::value& ops) {
  for (const auto& status :
       a.wait_operations(project, ops, std::chrono::seconds(1800), std::chrono::milliseconds(5))) {
    if (status != "finished")
      throw std::runtime_error("an operation ended " + status + "\n" + a.log_tail());
  }
}

void wait_until_settled(const testing::Argond& a, const std::string& snapshot_id) {
  if (!testing::wait_settled(a, snapshot_id))
    throw std::runtime_error("snapshot " + snapshot_id + " was not settled within two minutes\n" +
                             a.log_tail());
}

double fill(testing::Argond& a, const std::string& branch_id, double mb) {
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

double tree_mb(const fs::path& dir) {
  std::uintmax_t bytes = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) bytes += e.file_size();
  }
  return bytes / 1048576.0;
}

double allocated_mb(const fs::path& dir) {
  std::uintmax_t bytes = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    struct stat st {};
    if (e.is_regular_file() && ::lstat(e.path().c_str(), &st) == 0)
      bytes += static_cast<std::uintmax_t>(st.st_blocks) * 512;
  }
  return bytes / 1048576.0;
}

double fs_used_mb(const fs::path& path) {
  struct statvfs v {};
  if (::statvfs(path.c_str(), &v) != 0) throw std::runtime_error("statvfs " + path.string());
  return static_cast<double>(v.f_blocks - v.f_bfree) * v.f_frsize / 1048576.0;
}

fs::path postgres_workdir(const fs::path& under) {
  const fs::path dir = under / "diy";
  fs::create_directories(dir);
  const std::string cmd =
      fmt::format("chown postgres: {} && chmod 700 {}", dir.string(), dir.string());
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
  return dir;
}

void run_as_postgres(const std::string& command) {
  const std::string cmd = fmt::format("runuser -u postgres -- sh -c '{}' >/dev/null 2>&1", command);
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
}

double basebackup(testing::Argond& a, const std::string& branch_id, const fs::path& target) {
  const std::string cmd =
      fmt::format("pg_basebackup -h {} -p 5432 -U argon_admin -D {} -X stream -c fast",
                  a.socket_dir(branch_id).string(), target.string());
  auto start = Clock::now();
  run_as_postgres(cmd);
  return elapsed_s(start);
}

void SweepOptions::add_to(CLI::App& app) {
  app.add_option("--sizes-mb", sizes_mb, "database sizes to measure, in MB")->delimiter(',');
  app.add_option("--drivers", drivers, "clone drivers to measure")->delimiter(',');
  app.add_option("--reps", reps, "repetitions per figure")->check(CLI::Range(1, 100));
  app.add_option("--image-gb", image_gb, "size of each sparse loop image")
      ->check(CLI::Range(2, 1024));
}

std::unique_ptr<testing::LoopFilesystem> driver_image(const std::string& driver, int image_gb) {
  const auto type =
      driver == "reflink" ? testing::LoopFsType::kXfsReflink : testing::LoopFsType::kExt4;
  auto image = std::make_unique<testing::LoopFilesystem>(type, std::uint64_t(image_gb) << 30);
  if (!image->ok())
    throw std::runtime_error("could not create and mount a loop filesystem image (loop devices?)");
  return image;
}

void print_samples(const std::vector<Sample>& samples) {
  fmt::print("{:<8} {:>8} {:>9}  {:<20} {:>4} {:>8} {:>8} {:>8}\n", "driver", "db MB", "pgdata MB",
             "measured", "reps", "median s", "min s", "max s");
  for (const auto& s : samples) {
    std::vector<double> v = s.seconds;
    std::sort(v.begin(), v.end());
    fmt::print("{:<8} {:>8.1f} {:>9.1f}  {:<20} {:>4} {:8.3f} {:8.3f} {:8.3f}\n", s.driver,
               s.size_mb, s.pgdata_mb, s.what, v.size(), v[v.size() / 2], v.front(), v.back());
  }
}

std::string run_capture(const std::string& cmd) {
  FILE* f = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!f) throw std::runtime_error("cannot run " + cmd);
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  int rc = ::pclose(f);
  if (rc != 0) throw std::runtime_error(fmt::format("{} failed ({}):\n{}", cmd, rc, out));
  return out;
}

std::string pg_env(const std::string& conninfo) {
  std::string env;
  std::regex kv(R"((\w+)=('[^']*'|\S+))");
  for (std::sregex_iterator it(conninfo.begin(), conninfo.end(), kv), end; it != end; ++it) {
    std::string k = (*it)[1], v = (*it)[2];
    if (v.size() >= 2 && v.front() == '\'') v = v.substr(1, v.size() - 2);
    static const std::map<std::string, std::string> names = {
        {"host", "PGHOST"},         {"port", "PGPORT"},       {"user", "PGUSER"},
        {"password", "PGPASSWORD"}, {"dbname", "PGDATABASE"}, {"sslmode", "PGSSLMODE"},
        {"options", "PGOPTIONS"}};
    if (auto n = names.find(k); n != names.end()) env += fmt::format("{}='{}' ", n->second, v);
  }
  return env;
}

}  // namespace argon::bench
