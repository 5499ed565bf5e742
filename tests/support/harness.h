// Test and benchmark kit: starts a real argond (real PostgreSQL underneath) in a private temp data
// dir on ports the OS picks, talks to its API, and connects to computes through their private
// sockets. Failures throw std::runtime_error (GoogleTest reports an escaping exception as a failed
// test; the benchmark stops), so this kit does not depend on a test framework.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/cluster_names.h"
#include "common/pg_conn.h"

namespace argon::testing {

struct ApiReply {
  int status = 0;
  boost::json::value body;
  std::string raw;
};

// When set and returning true at destruction, an Argond keeps its temp data dir for inspection
// (the integration tests set it to "the current test has failed").
inline std::function<bool()> keep_data_dir_if;

class Argond {
 public:
  // Extra flags are appended to the defaults (temp data dir, port 0, --log-level debug and, unless
  // `durable`, --unsafe-no-fsync).
  explicit Argond(std::vector<std::string> extra_flags = {}, std::filesystem::path data_dir = {},
                  bool durable = false);
  ~Argond();

  void start();
  void kill9();
  // Waits for argond to exit by itself (a crash point); false if it still runs at the deadline.
  bool wait_exit(std::chrono::seconds timeout);
  void terminate();  // SIGTERM and wait
  pid_t pid() const { return pid_; }

  const std::filesystem::path& data_dir() const { return data_dir_; }
  int proxy_port() const { return proxy_port_; }
  std::string api_url() const;  // "http://127.0.0.1:<port>/api/v2"
  // libpq conninfo for `password`'s owner role (neondb_owner) through the proxy with TLS, the
  // endpoint named in the startup options.
  std::string owner_conninfo(const std::string& password, const std::string& endpoint) const;
  const std::string& key() const { return key_; }

  ApiReply call(const std::string& method, const std::string& path, const std::string& body = "",
                const std::vector<std::pair<std::string, std::string>>& headers = {},
                bool auth = true);
  ApiReply get(const std::string& path) { return call("GET", path); }
  ApiReply post(const std::string& path, const boost::json::value& body) {
    return call("POST", path, boost::json::serialize(body));
  }
  // Polls every operation id until terminal; returns their final statuses.
  std::vector<std::string> wait_operations(
      const std::string& project_id, const boost::json::value& ops,
      std::chrono::seconds timeout = std::chrono::seconds(120),
      std::chrono::milliseconds poll = std::chrono::milliseconds(50));
  // Waits until the project has no pending operation.
  void wait_idle(const std::string& project_id,
                 std::chrono::seconds timeout = std::chrono::seconds(120));
  // The socket directory of the compute serving `branch_id`: run/<id>, or run/<id>~ when a reset
  // swapped in a compute started there.
  std::filesystem::path socket_dir(const std::string& branch_id) const;
  // Admin connection to the compute serving `branch_id`.
  PgConn connect(const std::string& branch_id, const std::string& dbname = "postgres",
                 const std::string& user = std::string(kAdminRole));
  std::string log_tail() const;

 private:
  std::vector<std::string> flags_;
  std::filesystem::path data_dir_;
  bool durable_ = false;
  bool own_dir_ = false;
  std::string key_;
  pid_t pid_ = -1;
  std::string host_;
  int port_ = 0;
  int proxy_port_ = 0;
};

// The string member `key` of a JSON object from the API (throws when missing or not a string).
std::string str(const boost::json::value& v, std::string_view key);

// What tests and benchmarks need of a new project.
struct TestProject {
  std::string id, branch, endpoint, password, uri;
};
// POST /projects with `project` as the body's project object; waits for its operations. Throws
// unless the project was created and every operation finished.
TestProject create_project(Argond& a, const boost::json::object& project);

// Stops and joins a background thread on scope exit, so an early return (a failed assertion)
// never leaves it running.
struct StopAndJoin {
  std::atomic<bool>& stop;
  std::thread& thread;
  ~StopAndJoin() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
};

// Median and 99th percentile (nearest rank) of samples; `samples` must not be empty.
std::pair<double, double> p50_p99(std::vector<double> samples);

// The first value of `sql` run over a new connection (libpq conninfo or URI); throws with the
// reason when it cannot connect or the statement fails.
std::string query_value(const std::string& conninfo, const std::string& sql);

// The argond binary under test: this build's, or $ARGON_ARGOND (scripts/sanitize.sh runs these
// tests against a TSan build of argond).
const char* argond_path();
// The `argon` CLI binary of this build.
const char* argon_cli_path();

// Whether a bound on argond's RSS means anything: not under a sanitizer, whose quarantine (ASan)
// or shadow memory (TSan) holds memory on purpose; LeakSanitizer looks for leaks there instead.
// False for this build under ASan, and when $ARGON_ARGOND names another argond (the TSan one).
bool rss_bounds_apply();

// Raw TCP for tests that speak a protocol by hand. tcp_connect: a connection to 127.0.0.1:`port`
// from `source` (any 127.0.0.0/8 address: tests that open many connections spread them over
// several, so the server's TIME_WAIT sockets do not exhaust one address's ports); -1 on failure.
int tcp_connect(int port, const char* source = nullptr);
bool send_all(int fd, const std::string& data);
// Reads until the peer closes or `timeout` passes.
std::string read_all(int fd, std::chrono::milliseconds timeout);

// SQL over HTTP by hand: a `POST /sql` request for `uri` (raw text, array mode), and one request on
// a new connection with the whole answer once the proxy closes it.
std::string post_sql(const std::string& uri, const std::string& body, bool close = true);
struct HttpReply {
  int status = 0;
  boost::json::value body;
};
HttpReply http_exchange(int port, const std::string& request);
std::string message(const HttpReply& r);  // the error body's "message"

// Open descriptors and resident memory (kB) of a process, from /proc.
int open_fds(pid_t pid);
long rss_kb(pid_t pid);

// Number of postmaster processes whose data directory is under `dir`.
int postmasters_under(const std::filesystem::path& dir);

// Waits (up to two minutes) until a snapshot settled after its operation (--snapshot-settle
// after) is in place: its settled copy exchanged in and the replaced capture removed. False at
// the deadline.
bool wait_settled(const Argond& a, const std::string& snapshot_id);

}  // namespace argon::testing
