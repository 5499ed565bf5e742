// Restore outage benchmark: what a client in a tight reconnect-and-query loop sees while a
// snapshot is restored onto its branch with finalize_restore (the connection string never
// changes). Per restore it records the longest gap between two successful queries, the API call
// to operations-finished latency, and checks that after the restore every query sees the restored
// data. Prints p50/p99 over --restores runs.
//
//   argon_bench_restore [--restores 20] [--rows 1000]
#include <fmt/format.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "harness.h"

namespace json = boost::json;
using argon::testing::Argond;
using argon::testing::p50_p99;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

std::string str(const json::value& v, std::string_view key) {
  return std::string(v.at(key).as_string());
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Argon finalized-restore outage benchmark"};
  int restores = 20, rows = 1000;
  app.add_option("--restores", restores, "finalized restores to measure")
      ->check(CLI::Range(1, 1000));
  app.add_option("--rows", rows, "rows in the table the client reads")
      ->check(CLI::Range(1, 10000000));
  CLI11_PARSE(app, argc, argv);
  if (::geteuid() != 0) {
    fmt::print(stderr, "argon_bench_restore: run as root (Postgres runs as the postgres user)\n");
    return 2;
  }
  try {
    Argond a({}, {}, /*durable=*/true);
    const auto created = argon::testing::create_project(a, {{"name", "bench-restore"}});
    const auto& project = created.id;
    const auto& endpoint = created.endpoint;
    const auto& password = created.password;
    const std::string info = a.owner_conninfo(password, endpoint);

    // Two versions that differ in one value: v = 'A' or 'B'.
    {
      auto c = argon::PgConn::connect(info);
      if (!c) throw std::runtime_error(c.error().message);
      if (!c->exec(fmt::format(
              "CREATE TABLE t AS SELECT g AS id, 'A'::text AS v FROM generate_series(1, {}) g",
              rows))) {
        throw std::runtime_error("create table");
      }
    }
    auto snapshot = [&](const std::string& name) {
      auto branch =
          a.get(fmt::format("/projects/{}/endpoints/{}", project, endpoint)).body.at("endpoint");
      auto s = a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot?name={}", project,
                                          str(branch, "branch_id"), name));
      if (s.status != 200) throw std::runtime_error("snapshot: " + s.raw);
      a.wait_operations(project, s.body.at("operations"));
      return str(s.body.at("snapshot"), "id");
    };
    const std::string snap_a = snapshot("A");
    {
      auto c = argon::PgConn::connect(info);
      if (!c || !c->exec("UPDATE t SET v = 'B'")) throw std::runtime_error("update");
    }
    const std::string snap_b = snapshot("B");

    // The client: connect, read, disconnect, as fast as it can; records each success.
    std::mutex mu;
    struct Read {
      Clock::time_point started, done;
      char value;
    };
    std::vector<Read> ok;
    std::atomic<bool> stop{false};
    std::atomic<long> failures{0};
    std::thread client([&] {
      while (!stop) {
        const auto started = Clock::now();
        PGconn* c = PQconnectdb(info.c_str());
        if (PQstatus(c) == CONNECTION_OK) {
          PGresult* res = PQexec(c, "SELECT min(v) FROM t");
          if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            std::lock_guard l(mu);
            ok.push_back({started, Clock::now(), PQgetvalue(res, 0, 0)[0]});
          } else {
            ++failures;
          }
          PQclear(res);
        } else {
          ++failures;
        }
        PQfinish(c);
      }
    });

    std::vector<double> outage_ms, restore_ms;
    long stale = 0, stale_after_return = 0;
    for (int i = 0; i < restores; ++i) {
      const bool to_a = i % 2 == 0;
      std::this_thread::sleep_for(300ms);  // steady state before the restore
      auto target = str(
          a.get(fmt::format("/projects/{}/endpoints/{}", project, endpoint)).body.at("endpoint"),
          "branch_id");
      const auto start = Clock::now();
      auto rr = a.call(
          "POST", fmt::format("/projects/{}/snapshots/{}/restore", project, to_a ? snap_a : snap_b),
          fmt::format(R"({{"target_branch_id":"{}","finalize_restore":true}})", target));
      if (rr.status != 200) throw std::runtime_error("restore: " + rr.raw);
      const auto returned = Clock::now();
      for (const auto& st :
           a.wait_operations(project, rr.body.at("operations"), std::chrono::seconds(600), 5ms)) {
        if (st != "finished")
          throw std::runtime_error("restore operation " + st + "\n" + a.log_tail());
      }
      const auto finished = Clock::now();
      restore_ms.push_back(ms_between(start, finished));
      std::this_thread::sleep_for(300ms);
      const auto settled = Clock::now();
      // The longest gap between successful queries around this restore, and any read after the
      // operations finished that still saw the old version.
      std::lock_guard l(mu);
      double gap = 0;
      Clock::time_point prev = start;
      for (const auto& read : ok) {
        const auto t = read.done;
        if (t < start - 200ms || t > settled) continue;
        if (t >= start) gap = std::max(gap, ms_between(prev, t));
        prev = std::max(prev, t);
        // Connections that started after the call returned (or after the operations finished).
        const bool old_value = read.value != (to_a ? 'A' : 'B');
        if (read.started > finished && old_value) ++stale;
        if (read.started > returned && old_value) ++stale_after_return;
      }
      outage_ms.push_back(gap);
      // Clean up the "(old)" branch so the project stays within its root-branch limit.
      auto branches = a.get(fmt::format("/projects/{}/branches", project));
      for (const auto& b : branches.body.at("branches").as_array()) {
        if (str(b, "id") == target) {
          auto d = a.call("DELETE", fmt::format("/projects/{}/branches/{}", project, target));
          if (d.status == 200) a.wait_operations(project, d.body.at("operations"));
        }
      }
    }
    stop = true;
    client.join();

    auto [o50, o99] = p50_p99(outage_ms);
    auto [r50, r99] = p50_p99(restore_ms);
    fmt::print(
        "finalized restores: {} ({} rows), client in a reconnect-and-query loop through the proxy "
        "(TLS)\n",
        restores, rows);
    fmt::print(
        "client-observed outage (longest gap between successful queries): p50 {:.0f} ms, p99 "
        "{:.0f} ms\n",
        o50, o99);
    fmt::print("restore call to operations finished: p50 {:.0f} ms, p99 {:.0f} ms\n", r50, r99);
    fmt::print(
        "queries completed: {}, failed attempts: {}; connections started after the restore call "
        "returned "
        "that read the old version: {} (after its operations finished: {})\n",
        ok.size(), failures.load(), stale_after_return, stale);
  } catch (const std::exception& e) {
    fmt::print(stderr, "argon_bench_restore: {}\n", e.what());
    return 1;
  }
  return 0;
}
