// Branch-creation benchmark: how long from `POST /branches` to its operations finished, for each
// clone driver and database size, beside `pg_basebackup` of the same running cluster in the same
// run.
//
// Each driver runs on its own loop-mounted image: reflink on XFS (reflink=1), copy on ext4, where
// copy_file_range really copies (on XFS it would share blocks too). pg_basebackup writes to the
// same filesystem as the driver beside it. argond runs durably (fsync on), with the parent's
// compute up, as a user's would. Needs root (loop mounts) and this build's argond.
//
//   argon_bench_branch [--sizes-mb 10,1024] [--drivers copy,reflink] [--reps 5] [--image-gb 24]
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_util.h"

namespace fs = std::filesystem;
namespace json = boost::json;
using argon::testing::Argond;
using namespace argon::bench;

namespace {

// Creates a branch of `parent` and waits for its operations; returns the seconds taken and deletes
// the branch again (waiting for that too, untimed) so disk use stays flat.
double time_branch(Argond& a, const std::string& project, const std::string& parent, int n,
                   bool endpoint) {
  json::object body{{"branch", {{"name", fmt::format("bench-{}", n)}, {"parent_id", parent}}}};
  if (endpoint) body["endpoints"] = json::array{json::object{{"type", "read_write"}}};
  auto start = Clock::now();
  auto r = a.post(fmt::format("/projects/{}/branches", project), body);
  expect_status(r, 201, "create branch");
  wait_finished(a, project, r.body.at("operations"));
  double s = elapsed_s(start);
  auto id = str(r.body.at("branch"), "id");
  auto d = a.call("DELETE", fmt::format("/projects/{}/branches/{}", project, id));
  expect_status(d, 200, "delete branch");
  a.wait_idle(project, std::chrono::seconds(600));
  return s;
}

// pg_basebackup of the running parent into the same filesystem, removed afterwards.
double time_basebackup(Argond& a, const std::string& branch_id, int n) {
  fs::path target = postgres_workdir(a.data_dir().parent_path()) / fmt::format("basebackup-{}", n);
  double s = basebackup(a, branch_id, target);
  std::error_code ec;
  fs::remove_all(target, ec);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Argon branch-creation benchmark"};
  SweepOptions opt;
  opt.reps = 5;
  opt.add_to(app);
  CLI11_PARSE(app, argc, argv);

  if (::geteuid() != 0) {
    fmt::print(stderr,
               "argon_bench_branch: needs root to loop-mount the XFS image it measures on\n");
    return 2;
  }
  std::vector<Sample> samples;
  try {
    for (const auto& driver : opt.drivers) {
      auto fs_image = driver_image(driver, opt.image_gb);
      Argond a({"--clone-driver", driver}, fs_image->mount_point() / "argon", /*durable=*/true);
      for (double mb : opt.sizes_mb) {
        fmt::print(stderr, "[{}] {} MB: creating and filling the parent\n", driver, mb);
        const auto created =
            argon::testing::create_project(a, {{"name", fmt::format("bench-{}mb", mb)}});
        const std::string project = created.id;
        const std::string parent = created.branch;
        double actual = fill(a, parent, mb);
        double pgdata = tree_mb(a.data_dir() / "branches" / parent / "pgdata");

        Sample data{driver, "branch (data only)", actual, pgdata, {}};
        Sample with_ep{driver, "branch + compute up", actual, pgdata, {}};
        Sample basebackup{driver, "pg_basebackup", actual, pgdata, {}};
        for (int i = 0; i < opt.reps; ++i) {
          fmt::print(stderr, "[{}] {:.0f} MB: repetition {}/{}\n", driver, actual, i + 1, opt.reps);
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

  print_samples(samples);
  return 0;
}
