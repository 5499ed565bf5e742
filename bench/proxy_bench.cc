// Proxy benchmark: in one run, against one compute,
//   - pgbench -S throughput through the Argon proxy (TLS and plaintext), directly on the compute's
//     unix socket, and through PgBouncer (session mode, SCRAM, same TLS certificate);
//   - connection setup latency (connect + SELECT 1 + close), p50/p99, over the same paths;
//   - wake latency: connect + first query on a suspended endpoint, p50/p99;
//   - the same throughput and latency on a plain PostgreSQL cluster with no proxy, over its unix
//     socket, loopback TCP and TLS: what TCP and TLS cost on this machine by themselves.
// Needs root (PgBouncer and Postgres run as the postgres user) and this build's argond.
//
// Throughput runs go round-robin over the paths, --rounds times, and the median is reported, so a
// slow moment of the machine does not land on one path only.
//
//   argon_bench_proxy [--clients 8] [--seconds 10] [--rounds 3] [--connects 300] [--wakes 20]
//   [--scale 10]
#include <arpa/inet.h>
#include <fmt/format.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "common/pg_conn.h"
#include "harness.h"

namespace fs = std::filesystem;
namespace json = boost::json;
using argon::bench::pg_env;
using argon::bench::run_capture;
using argon::testing::Argond;
using argon::testing::p50_p99;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

struct Target {
  std::string name;
  std::string conninfo;  // libpq keywords
};

double pgbench_tps(const Target& t, int clients, int seconds) {
  auto out = run_capture(fmt::format("{} pgbench -S -n -c {} -j {} -T {}", pg_env(t.conninfo),
                                     clients, std::min(clients, 2), seconds));
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(R"(tps = ([0-9.]+) \((without|excluding))"))) {
    throw std::runtime_error("no tps in pgbench output:\n" + out);
  }
  return std::stod(m[1]);
}

double connect_and_query_ms(const std::string& conninfo) {
  auto start = Clock::now();
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string err = PQerrorMessage(c);
    PQfinish(c);
    throw std::runtime_error("connect failed: " + err);
  }
  PGresult* r = PQexec(c, "SELECT 1");
  bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
  PQclear(r);
  PQfinish(c);
  if (!ok) throw std::runtime_error("SELECT 1 failed");
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

passwd* postgres_user() {
  passwd* pw = ::getpwnam("postgres");
  if (!pw) throw std::runtime_error("no postgres user");
  return pw;
}

// Gives `dir` and everything in it to the postgres user.
void chown_to_postgres(const fs::path& dir) {
  passwd* pw = postgres_user();
  for (const auto& e : fs::recursive_directory_iterator(dir))
    (void)::chown(e.path().c_str(), pw->pw_uid, pw->pw_gid);
  (void)::chown(dir.c_str(), pw->pw_uid, pw->pw_gid);
}

// Starts argv[0] as the postgres user; its output goes to `log`.
pid_t spawn_as_postgres(const std::vector<std::string>& argv, const fs::path& log) {
  passwd* pw = postgres_user();
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0) ::_exit(126);
    if (FILE* f = std::freopen(log.c_str(), "a", stdout)) {
      (void)f;
      ::dup2(STDOUT_FILENO, STDERR_FILENO);
    }
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  if (pid < 0) throw std::runtime_error("fork failed");
  return pid;
}

// Copies of the proxy's certificate and key in `dir`, as server.crt and server.key, for a server
// that runs as the postgres user (chown_to_postgres) and wants its key private.
void copy_tls_files(const fs::path& cert, const fs::path& key, const fs::path& dir) {
  fs::copy_file(cert, dir / "server.crt", fs::copy_options::overwrite_existing);
  fs::copy_file(key, dir / "server.key", fs::copy_options::overwrite_existing);
  fs::permissions(dir / "server.key", fs::perms::owner_read | fs::perms::owner_write);
}

void stop_child(pid_t pid, int signal) {
  if (pid <= 0) return;
  ::kill(pid, signal);
  ::waitpid(pid, nullptr, 0);
}

// PgBouncer in session mode in front of the compute's socket, as the postgres user.
class Bouncer {
 public:
  Bouncer(const fs::path& dir, const fs::path& compute_socket_dir, const std::string& verifier,
          const fs::path& cert, const fs::path& key, int port)
      : dir_(dir), port_(port) {
    fs::create_directories(dir);
    copy_tls_files(cert, key, dir);
    std::ofstream(dir / "userlist.txt") << fmt::format("\"neondb_owner\" \"{}\"\n", verifier);
    std::ofstream(dir / "pgbouncer.ini") << fmt::format(
        "[databases]\nneondb = host={} port=5432 dbname=neondb\n"
        "[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {}\nunix_socket_dir =\n"
        "auth_type = scram-sha-256\nauth_file = {}/userlist.txt\npool_mode = session\n"
        "max_client_conn = 1000\ndefault_pool_size = 100\nlogfile = {}/pgbouncer.log\npidfile = "
        "{}/pgbouncer.pid\n"
        "client_tls_sslmode = allow\nclient_tls_cert_file = {}/server.crt\nclient_tls_key_file = "
        "{}/server.key\n",
        compute_socket_dir.string(), port, dir.string(), dir.string(), dir.string(), dir.string(),
        dir.string());
    chown_to_postgres(dir);
    pid_ = spawn_as_postgres({"/usr/sbin/pgbouncer", "-q", (dir / "pgbouncer.ini").string()},
                             dir / "stdout.log");
  }
  ~Bouncer() { stop_child(pid_, SIGTERM); }
  int port() const { return port_; }

 private:
  fs::path dir_;
  int port_;
  pid_t pid_ = -1;
};

// A plain PostgreSQL cluster of the compute's version, listening on loopback TCP (with TLS, the
// proxy's certificate) as well as on its unix socket, with no proxy in front. It shows what TCP and
// TLS cost on this machine by themselves: a ceiling for any proxy that clients reach over TCP.
// Local connections are trusted, as on the compute; TCP ones use SCRAM, as through the proxy.
class ReferencePostgres {
 public:
  ReferencePostgres(const fs::path& dir, const fs::path& bindir, const std::string& password,
                    const fs::path& cert, const fs::path& key, int port)
      : dir_(dir), port_(port) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    copy_tls_files(cert, key, dir);
    std::ofstream(dir / "pwfile") << password << "\n";
    chown_to_postgres(dir);
    pid_t initdb =
        spawn_as_postgres({(bindir / "initdb").string(), "-D", (dir / "data").string(), "-U",
                           "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
                           "--pwfile=" + (dir / "pwfile").string()},
                          dir / "initdb.log");
    int status = 0;
    ::waitpid(initdb, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      throw std::runtime_error("initdb of the reference cluster failed; see " +
                               (dir / "initdb.log").string());
    }
    pid_ = spawn_as_postgres({(bindir / "postgres").string(), "-D", (dir / "data").string(), "-c",
                              "listen_addresses=127.0.0.1", "-c", fmt::format("port={}", port),
                              "-c", "unix_socket_directories=" + dir.string(), "-c", "ssl=on", "-c",
                              "ssl_cert_file=" + (dir / "server.crt").string(), "-c",
                              "ssl_key_file=" + (dir / "server.key").string()},
                             dir / "postgres.log");
  }
  ~ReferencePostgres() {
    stop_child(pid_, SIGINT);  // fast shutdown
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string unix_conninfo() const {
    return fmt::format("host={} port={} dbname=postgres user=postgres", dir_.string(), port_);
  }
  std::string tcp_conninfo(const std::string& password) const {
    return fmt::format("host=127.0.0.1 port={} dbname=postgres user=postgres password={}", port_,
                       password);
  }

 private:
  fs::path dir_;
  int port_;
  pid_t pid_ = -1;
};

int free_port() {
  // Bind port 0, read the port, release it (PgBouncer cannot report an ephemeral port itself).
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

void wait_connectable(const std::string& conninfo) {
  auto deadline = Clock::now() + 20s;
  for (;;) {
    try {
      connect_and_query_ms(conninfo);
      return;
    } catch (const std::exception& e) {
      if (Clock::now() > deadline) throw;
      std::this_thread::sleep_for(100ms);
    }
  }
}

}  // namespace

// SQL over HTTP as Neon's serverless driver sends it (undici: one kept-alive connection, the
// request in one write, TCP_NODELAY), over TLS verified against argond's certificate authority.
class SqlOverHttp {
 public:
  SqlOverHttp(const fs::path& ca, const std::string& endpoint, int port, std::string uri)
      : host_(endpoint + ".localhost"), uri_(std::move(uri)) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    fd_ = argon::testing::tcp_connect(port);
    if (fd_ < 0) throw std::runtime_error("cannot connect to the proxy");
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, host_.c_str());
    SSL_set1_host(ssl_, host_.c_str());
    if (SSL_connect(ssl_) != 1) throw std::runtime_error("TLS to the proxy failed verification");
  }
  ~SqlOverHttp() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    ::close(fd_);
  }
  void query(const std::string& sql, const std::vector<std::string>& params = {}) {
    json::array p;
    for (const auto& v : params) p.emplace_back(v);
    const std::string body = json::serialize(json::object{{"query", sql}, {"params", p}});
    const std::string req = fmt::format(
        "POST /sql HTTP/1.1\r\nHost: {}\r\nNeon-Connection-String: {}\r\n"
        "Neon-Raw-Text-Output: true\r\nNeon-Array-Mode: true\r\nContent-Type: text/plain\r\n"
        "Content-Length: {}\r\n\r\n{}",
        host_, uri_, body.size(), body);
    if (SSL_write(ssl_, req.data(), static_cast<int>(req.size())) <= 0) {
      throw std::runtime_error("SQL over HTTP: write failed");
    }
    std::string in;
    std::size_t header_end = std::string::npos, length = 0;
    char buf[16384];
    while (header_end == std::string::npos || in.size() < header_end + 4 + length) {
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) throw std::runtime_error("SQL over HTTP: the proxy closed the connection");
      in.append(buf, static_cast<std::size_t>(n));
      if (header_end == std::string::npos && (header_end = in.find("\r\n\r\n")) != in.npos) {
        const auto at = in.find("Content-Length: ");
        length = at < header_end ? std::stoul(in.substr(at + 16)) : 0;
      }
    }
    if (in.rfind("HTTP/1.1 200", 0) != 0) throw std::runtime_error("SQL over HTTP: " + in);
  }

 private:
  std::string host_, uri_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
};

// p50/p99 of each of two queries, timed alternately (which goes first alternates too), so that a
// noisy moment of the machine weighs on both alike and their ratio means something.
std::array<std::pair<double, double>, 2> query_latency(const std::function<void()>& a,
                                                       const std::function<void()>& b,
                                                       int samples) {
  for (int i = 0; i < samples / 10; ++i) a(), b();  // warm: pooled backend, TLS session
  std::array<std::vector<double>, 2> ms;
  for (int i = 0; i < samples; ++i) {
    for (int k = 0; k < 2; ++k) {
      const int which = (i + k) % 2;
      const auto start = Clock::now();
      (which == 0 ? a : b)();
      ms[which].push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    }
  }
  return {p50_p99(ms[0]), p50_p99(ms[1])};
}

int main(int argc, char** argv) {
  CLI::App app{"Argon proxy benchmark"};
  int clients = 8, seconds = 10, rounds = 3, connects = 300, wakes = 20, scale = 10;
  app.add_option("--clients", clients, "pgbench clients")->check(CLI::Range(1, 200));
  app.add_option("--seconds", seconds, "pgbench duration per path and round")
      ->check(CLI::Range(1, 600));
  app.add_option("--rounds", rounds, "round-robin throughput rounds (median reported)")
      ->check(CLI::Range(1, 20));
  app.add_option("--connects", connects, "connection-latency samples per path")
      ->check(CLI::Range(10, 100000));
  app.add_option("--wakes", wakes, "wake-latency samples")->check(CLI::Range(1, 1000));
  app.add_option("--scale", scale, "pgbench scale factor")->check(CLI::Range(1, 1000));
  int queries = 2000;
  app.add_option("--queries", queries, "single-query latency samples (HTTP, open connection)")
      ->check(CLI::Range(10, 1000000));
  CLI11_PARSE(app, argc, argv);
  if (::geteuid() != 0) {
    fmt::print(
        stderr,
        "argon_bench_proxy: run as root (PgBouncer and Postgres run as the postgres user)\n");
    return 2;
  }
  try {
    Argond a({}, {}, /*durable=*/true);
    const auto created = argon::testing::create_project(a, {{"name", "bench-proxy"}});
    const auto& project = created.id;
    const auto& branch = created.branch;
    const auto& endpoint = created.endpoint;
    const auto& password = created.password;
    auto never = a.call("PATCH", fmt::format("/projects/{}/endpoints/{}", project, endpoint),
                        R"({"endpoint":{"suspend_timeout_seconds":-1}})");
    if (never.status != 200) throw std::runtime_error("patch endpoint: " + never.raw);

    const fs::path socket_dir = a.socket_dir(branch);
    const std::string proxy_base = fmt::format(
        "host=127.0.0.1 port={} dbname=neondb user=neondb_owner password={} "
        "options=endpoint={}",
        a.proxy_port(), password, endpoint);
    std::vector<Target> targets = {
        {"direct (unix socket)",
         fmt::format("host={} port=5432 dbname=neondb user=neondb_owner", socket_dir.string())},
        {"argon proxy, TLS", proxy_base + " sslmode=require"},
        {"argon proxy, plain", proxy_base + " sslmode=disable"},
    };
    fmt::print(stderr, "initializing pgbench tables (scale {})\n", scale);
    run_capture(fmt::format("{} pgbench -i -q -s {}", pg_env(targets[1].conninfo), scale));

    auto admin = a.connect(branch, "postgres");
    auto verifier = admin.exec("SELECT rolpassword FROM pg_authid WHERE rolname = 'neondb_owner'");
    if (!verifier) throw std::runtime_error("read verifier");
    const fs::path bouncer_dir =
        a.data_dir().parent_path() / (a.data_dir().filename().string() + "-pgbouncer");
    Bouncer bouncer(bouncer_dir, socket_dir, verifier->value(), a.data_dir() / "tls" / "proxy.crt",
                    a.data_dir() / "tls" / "proxy.key", free_port());
    const std::string bouncer_base =
        fmt::format("host=127.0.0.1 port={} dbname=neondb user=neondb_owner password={}",
                    bouncer.port(), password);
    targets.push_back({"pgbouncer session, TLS", bouncer_base + " sslmode=require"});
    targets.push_back({"pgbouncer session, plain", bouncer_base + " sslmode=disable"});
    wait_connectable(targets.back().conninfo);

    auto version = admin.exec("SELECT current_setting('server_version_num')::int / 10000");
    if (!version) throw std::runtime_error("read server version");
    const fs::path bindir = fmt::format("/usr/lib/postgresql/{}/bin", version->value(0, 0));
    ReferencePostgres reference(
        a.data_dir().parent_path() / (a.data_dir().filename().string() + "-reference"), bindir,
        password, a.data_dir() / "tls" / "proxy.crt", a.data_dir() / "tls" / "proxy.key",
        free_port());
    const std::string reference_tcp = reference.tcp_conninfo(password);
    targets.push_back({"postgres itself, unix", reference.unix_conninfo()});
    targets.push_back({"postgres itself, TCP", reference_tcp + " sslmode=disable"});
    targets.push_back({"postgres itself, TLS", reference_tcp + " sslmode=require"});
    wait_connectable(targets.back().conninfo);
    fmt::print(stderr, "initializing pgbench tables of the reference cluster (scale {})\n", scale);
    run_capture(fmt::format("{} pgbench -i -q -s {}", pg_env(reference.unix_conninfo()), scale));

    struct Row {
      std::string name;
      double tps = 0, p50 = 0, p99 = 0;
    };
    std::vector<Row> rows;
    std::vector<std::vector<double>> tps(targets.size());
    for (int round = 0; round < rounds; ++round) {
      for (size_t i = 0; i < targets.size(); ++i) {
        fmt::print(stderr, "round {}/{}: pgbench through {}\n", round + 1, rounds, targets[i].name);
        tps[i].push_back(pgbench_tps(targets[i], clients, seconds));
      }
    }
    for (size_t i = 0; i < targets.size(); ++i) {
      fmt::print(stderr, "connection latency through {}\n", targets[i].name);
      Row row{targets[i].name};
      std::sort(tps[i].begin(), tps[i].end());
      row.tps = tps[i][tps[i].size() / 2];
      std::vector<double> ms;
      for (int k = 0; k < connects; ++k) ms.push_back(connect_and_query_ms(targets[i].conninfo));
      std::tie(row.p50, row.p99) = p50_p99(ms);
      rows.push_back(row);
    }

    // SQL over HTTP beside a query on an open connection and a fresh connection, all through the
    // proxy with TLS, and its throughput with as many clients as pgbench had.
    fmt::print(stderr, "SQL over HTTP and open-connection latency ({} samples)\n", queries);
    const fs::path ca = a.data_dir() / "tls" / "ca.crt";
    const std::string uri = fmt::format("postgresql://neondb_owner:{}@{}.localhost:{}/neondb",
                                        password, endpoint, a.proxy_port());
    SqlOverHttp http(ca, endpoint, a.proxy_port(), uri);
    PGconn* open = PQconnectdb(targets[1].conninfo.c_str());
    if (PQstatus(open) != CONNECTION_OK) throw std::runtime_error(PQerrorMessage(open));
    const auto [http_latency, open_latency] =
        query_latency([&] { http.query("SELECT 1"); },
                      [&] {
                        PGresult* r = PQexec(open, "SELECT 1");
                        const bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
                        PQclear(r);
                        if (!ok) throw std::runtime_error("SELECT 1 failed");
                      },
                      queries);
    const auto [http_p50, http_p99] = http_latency;
    const auto [open_p50, open_p99] = open_latency;
    PQfinish(open);
    fmt::print(stderr, "SQL over HTTP throughput, {} clients, {} s\n", clients, seconds);
    std::atomic<long> done{0};
    {
      const auto until = Clock::now() + std::chrono::seconds(seconds);
      std::vector<std::jthread> workers;
      for (int c = 0; c < clients; ++c) {
        workers.emplace_back([&, c] {
          SqlOverHttp mine(ca, endpoint, a.proxy_port(), uri);
          const long accounts = 100000L * scale;
          for (long k = c; Clock::now() < until; k += 7919) {
            mine.query("SELECT abalance FROM pgbench_accounts WHERE aid = $1",
                       {std::to_string(1 + k % accounts)});
            ++done;
          }
        });
      }
    }
    const double http_qps = static_cast<double>(done.load()) / seconds;

    fmt::print(stderr, "measuring wake from suspended ({} samples)\n", wakes);
    std::vector<double> wake_ms;
    for (int i = 0; i < wakes; ++i) {
      auto s = a.post(fmt::format("/projects/{}/endpoints/{}/suspend", project, endpoint),
                      json::object{});
      if (s.status != 200) throw std::runtime_error("suspend: " + s.raw);
      a.wait_idle(project);
      wake_ms.push_back(connect_and_query_ms(targets[1].conninfo));
      a.wait_idle(project);
    }
    auto [wake_p50, wake_p99] = p50_p99(wake_ms);

    const double direct_tps = rows[0].tps;
    fmt::print(
        "pgbench -S, {} clients, median of {} round-robin runs of {} s per path (scale {}); "
        "connect + SELECT 1 + close, {} samples\n",
        clients, rounds, seconds, scale, connects);
    fmt::print("{:<26} {:>10} {:>9} {:>12} {:>12}\n", "path", "tps", "% direct", "connect p50",
               "connect p99");
    for (const auto& row : rows) {
      fmt::print("{:<26} {:>10.0f} {:>8.1f}% {:>10.2f}ms {:>10.2f}ms\n", row.name, row.tps,
                 100.0 * row.tps / direct_tps, row.p50, row.p99);
    }
    fmt::print(
        "postgres itself: a PostgreSQL {} cluster with no proxy (unix socket trusted, TCP and TLS "
        "with "
        "SCRAM): the ceiling for any proxy reached over TCP\n",
        version->value(0, 0));
    fmt::print("SELECT 1 through the proxy with TLS, {} samples:\n", queries);
    fmt::print("{:<42} {:>9.3f}ms p50 {:>9.3f}ms p99\n", "SQL over HTTP (POST /sql, kept alive)",
               http_p50, http_p99);
    fmt::print("{:<42} {:>9.3f}ms p50 {:>9.3f}ms p99\n", "query on an open connection", open_p50,
               open_p99);
    fmt::print("{:<42} {:>9.3f}ms p50 {:>9.3f}ms p99\n", "fresh TLS connect + query + close",
               rows[1].p50, rows[1].p99);
    fmt::print("HTTP p50 is {:.2f}x the open connection's and {:.2f}x the fresh connection's\n",
               http_p50 / open_p50, http_p50 / rows[1].p50);
    fmt::print(
        "SQL over HTTP, {} clients, pgbench -S's statement: {:.0f} queries/s; pgbench -S "
        "through the proxy (TLS): {:.0f} tps\n",
        clients, http_qps, rows[1].tps);
    fmt::print(
        "wake (suspended endpoint: connect + SELECT 1 through the proxy, TLS), {} samples: p50 "
        "{:.0f} ms, "
        "p99 {:.0f} ms\n",
        wakes, wake_p50, wake_p99);
    std::error_code ec;
    fs::remove_all(bouncer_dir, ec);
  } catch (const std::exception& e) {
    fmt::print(stderr, "argon_bench_proxy: {}\n", e.what());
    return 1;
  }
  return 0;
}
