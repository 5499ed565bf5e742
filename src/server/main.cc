// argond: wires the subsystems together and runs until SIGTERM/SIGINT. No logic of its own.
#include <fmt/format.h>
#include <signal.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <boost/asio.hpp>
#include <cstdlib>
#include <optional>
#include <thread>

#include "api/api_service.h"
#include "api/http_server.h"
#include "api/names.h"
#include "catalog/sqlite_catalog.h"
#include "common/file_util.h"
#include "common/id_generator.h"
#include "common/pg_install.h"
#include "common/process_runner.h"
#include "common/random.h"
#include "compute/compute_manager.h"
#include "ops/engine.h"
#include "proxy/proxy_server.h"
#include "proxy/tls_context.h"
#include "storage/storage.h"

namespace {

using namespace argon;
namespace fs = std::filesystem;

struct Flags {
  std::string data_dir = ".argon";
  std::string listen = "127.0.0.1:8420";
  std::string proxy_listen = "127.0.0.1:5420";
  std::string proxy_host = "localhost";
  std::string pg_user;
  std::string pg_bindir;
  std::string clone_driver = "auto";
  std::string snapshot_settle = "auto";
  std::string log_level = "info";
  std::optional<bool> proxy_allow_plaintext;  // default: on when the proxy listens on loopback
  std::string proxy_tls_cert;
  std::string proxy_tls_key;
  bool unsafe_no_fsync = false;
  int workers = 2;
  int expiry_check_seconds = 10;
  int http_query_timeout_seconds = 300;
  int max_snapshots = 100;
  int max_root_branches = 25;
  int64_t old_branch_retention_seconds = 0;  // 0: keep '(old)' branches until deleted
  int snapshot_scrub_days = 7;               // 0: read a snapshot in full only once
  int history_check_seconds = 30;
  int history_image_wal_mb = 0;  // 0: by the clone driver
};

[[noreturn]] void die(const std::string& msg) {
  fmt::print(stderr, "argond: {}\n", msg);
  std::exit(1);
}

template <typename T>
T check(Result<T> r) {
  if (!r) die(r.error().message);
  return std::move(*r);
}
void check(Status s) {
  if (!s) die(s.error().message);
}

// The bootstrap key: $ARGON_API_KEY, else <data-dir>/api-key, else a new one written there (0600).
std::string bootstrap_key(const fs::path& data_dir) {
  if (const char* env = std::getenv("ARGON_API_KEY"); env && *env) return env;
  const fs::path file = data_dir / "api-key";
  if (auto existing = read_file(file)) {
    std::string key = *existing;
    while (!key.empty() && (key.back() == '\n' || key.back() == ' ')) key.pop_back();
    if (!key.empty()) return key;
  }
  std::string key = random_string(64, "abcdefghijklmnopqrstuvwxyz0123456789");
  check(write_file_atomic(file, key + "\n", 0600));
  spdlog::info("generated an API key in {}", file.string());
  return key;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

}  // namespace

int main(int argc, char** argv) {
  // Whatever argond or its children create is private unless made otherwise on purpose (the
  // directories the Postgres user must traverse get their modes explicitly).
  ::umask(077);
  Flags f;
  CLI::App app{"argond: self-hosted PostgreSQL branching, snapshots and a Neon-compatible API"};
  app.add_option("--data-dir", f.data_dir, "data directory (catalog, clusters, logs)")
      ->capture_default_str();
  app.add_option("--listen", f.listen, "API listen address HOST:PORT")->capture_default_str();
  app.add_option("--proxy-listen", f.proxy_listen, "Postgres proxy listen address HOST:PORT")
      ->capture_default_str();
  app.add_option("--proxy-host", f.proxy_host,
                 "domain endpoints are published under: host = <endpoint-id>.<proxy-host>")
      ->capture_default_str();
  app.add_option(
      "--proxy-allow-plaintext", f.proxy_allow_plaintext,
      "accept clients without TLS: true | false (default: true when --proxy-listen is loopback)");
  app.add_option("--proxy-tls-cert", f.proxy_tls_cert,
                 "PEM certificate (chain) for the proxy (default: issued by a local CA kept in "
                 "<data-dir>/tls)");
  app.add_option("--proxy-tls-key", f.proxy_tls_key, "PEM private key for --proxy-tls-cert");
  app.add_option("--http-query-timeout-seconds", f.http_query_timeout_seconds,
                 "SQL over HTTP: a request's statements are cancelled after this long")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  app.add_option("--pg-user", f.pg_user,
                 "OS user Postgres runs as (default: postgres when run as root)");
  app.add_option("--pg-bindir", f.pg_bindir,
                 "PostgreSQL bin directory (default: every /usr/lib/postgresql/*/bin)");
  app.add_option("--clone-driver", f.clone_driver, "auto | reflink | copy")
      ->check(CLI::IsMember({"auto", "reflink", "copy"}))
      ->capture_default_str();
  app.add_option("--log-level", f.log_level, "trace | debug | info | warn | error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  app.add_option("--workers", f.workers, "operations worker threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--expiry-check-seconds", f.expiry_check_seconds,
                 "how often expired branches are looked for")
      ->check(CLI::Range(1, 60))
      ->capture_default_str();
  app.add_option("--max-snapshots-per-project", f.max_snapshots, "snapshots a project may keep")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--max-root-branches-per-project", f.max_root_branches,
                 "root branches a project may have (restores and their '(old)' backups count)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option(
         "--old-branch-retention-seconds", f.old_branch_retention_seconds,
         "delete a branch left '(old)' by a finalized restore once it has been unchanged this long "
         "(0: never, as on Neon)")
      ->check(CLI::Range(int64_t{0}, int64_t{10} * 365 * 86400))
      ->capture_default_str();
  app.add_option("--snapshot-scrub-days", f.snapshot_scrub_days,
                 "read every snapshot again in full against its checksums this often, in the "
                 "background (0: only once, when its checksums are written)")
      ->check(CLI::Range(0, 3650))
      ->capture_default_str();
  app.add_option("--history-check-seconds", f.history_check_seconds,
                 "how often each branch's point-in-time history is looked at: a new base image "
                 "when due, and pruning of what is older than its project's window")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  app.add_option("--history-image-wal-mb", f.history_image_wal_mb,
                 "WAL a running compute writes before its branch gets a new base image, about "
                 "what a point's recovery replays (0: 64 on reflink, 1024 on the copy driver, "
                 "where each image is a whole copy)")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  app.add_option("--snapshot-settle", f.snapshot_settle,
                 "when a snapshot's capture is recovered to a clean shutdown: inline (before its "
                 "operation finishes), after (on a copy, once it has finished; a restore meanwhile "
                 "replays the capture's WAL), or auto (after where clones share blocks, reflink)")
      ->check(CLI::IsMember({"auto", "inline", "after"}))
      ->capture_default_str();
  app.add_flag("--unsafe-no-fsync", f.unsafe_no_fsync,
               "skip fsync for clusters and clones (tests only: a power loss can lose data)");
  CLI11_PARSE(app, argc, argv);

  // Each proxied connection holds two descriptors (client and compute): use the hard limit.
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }

  auto [api_host, api_port] = check(api::parse_host_port(f.listen, "--listen"));
  auto [proxy_host_addr, proxy_port] =
      check(api::parse_host_port(f.proxy_listen, "--proxy-listen"));

  const fs::path data_dir = fs::absolute(f.data_dir).lexically_normal();
  check(make_dir(data_dir, 0711));
  check(make_dir(data_dir / "logs", 0700));

  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(
      (data_dir / "logs" / "argond.log").string());
  auto logger = std::make_shared<spdlog::logger>("argond", spdlog::sinks_init_list{console, file});
  logger->set_level(spdlog::level::from_str(f.log_level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);

  OsUser pg_user = current_user();
  if (::geteuid() == 0) {
    pg_user = check(lookup_user(f.pg_user.empty() ? "postgres" : f.pg_user));
    if (pg_user.uid == 0) die("--pg-user: Postgres never runs as root; name an unprivileged user");
  } else if (!f.pg_user.empty() && f.pg_user != pg_user.name) {
    die(fmt::format("--pg-user {}: only root can run Postgres as another user", f.pg_user));
  }

  auto installs = check(PgInstalls::discover(f.pg_bindir));
  for (const auto& i : installs.all()) {
    spdlog::info("PostgreSQL {} at {}", i.version, i.bindir.string());
  }

  PosixProcessRunner runner;
  storage::StorageOptions so{data_dir, pg_user, !f.unsafe_no_fsync};
  check(make_dir(data_dir / "branches", 0711));
  std::string reason;
  auto driver = check(storage::make_clone_driver(f.clone_driver, data_dir / "branches", &reason));
  spdlog::info("clone driver: {} ({})", driver->name(), reason);
  // Settling after the operation costs one more clone of the snapshot: a full copy without reflink.
  const bool settle_after =
      f.snapshot_settle == "after" || (f.snapshot_settle == "auto" && driver->name() == "reflink");
  storage::Storage storage(so, std::move(driver), runner);
  check(storage.prepare_layout());
  // argon_roles (src/compute/argon_roles) is built beside argond, once per PostgreSQL major.
  std::error_code exe_ec;
  const fs::path built_libs =
      fs::read_symlink("/proc/self/exe", exe_ec).parent_path().parent_path() / "lib" / "postgresql";
  for (const auto& i : installs.all()) {
    const fs::path built = built_libs / std::to_string(i.major) / "argon_roles.so";
    if (!fs::exists(built, exe_ec)) {
      spdlog::warn(
          "no argon_roles for PostgreSQL {} ({} is missing): the proxy reads a role's "
          "password from the compute at every login",
          i.major, built.string());
      continue;
    }
    installs.set_role_library(
        i.major, check(storage.install_library(built, fmt::format("argon_roles-{}.so", i.major))));
  }

  auto catalog = check(catalog::SqliteCatalog::open(data_dir / "catalog.db"));
  std::string owner_id = check(catalog->transact([](catalog::Tx& tx) -> Result<std::string> {
    if (auto id = tx.get_meta("owner_id")) return *id;
    std::string id = uuid_v4();
    if (auto st = tx.set_meta("owner_id", id); !st) return std::unexpected(st.error());
    return id;
  }));

  for (const auto& i : installs.all()) check(storage.ensure_template(i));

  compute::ComputeManager computes(runner, pg_user, !f.unsafe_no_fsync);
  SystemClock clock;
  ops::EngineOptions eo;
  eo.workers = f.workers;
  eo.expiry_interval = std::chrono::seconds(f.expiry_check_seconds);
  eo.old_branch_retention = std::chrono::seconds(f.old_branch_retention_seconds);
  eo.snapshot_scrub_interval = std::chrono::hours(24 * f.snapshot_scrub_days);
  eo.settle_after_snapshot = settle_after;
  eo.history_interval = std::chrono::seconds(f.history_check_seconds);
  eo.history_image_wal_bytes = static_cast<uint64_t>(f.history_image_wal_mb) << 20;
  ops::Engine engine(*catalog, storage, computes, installs, clock, eo);
  check(engine.recover());

  const int threads = std::max(2u, std::thread::hardware_concurrency());
  boost::asio::io_context io(threads);

  // The proxy: one port for every endpoint; the engine gates and terminates its connections.
  proxy::TlsOptions to;
  to.cert_file = f.proxy_tls_cert;
  to.key_file = f.proxy_tls_key;
  to.generated_dir = data_dir / "tls";
  to.dns_names = {f.proxy_host, "*." + f.proxy_host};
  std::shared_ptr<proxy::TlsContext> tls = check(proxy::TlsContext::create(to));
  proxy::ProxyOptions po;
  po.listen_host = proxy_host_addr;
  po.listen_port = proxy_port;
  po.allow_plaintext = f.proxy_allow_plaintext.value_or(is_loopback(proxy_host_addr));
  po.reserved_role = [](std::string_view role) { return api::reserved_role(role); };
  po.http_query_timeout = std::chrono::seconds(f.http_query_timeout_seconds);
  // Autosuspend reads the proxy's activity every expiry interval; idle entries outlive that.
  po.idle_endpoint_retention = std::max<std::chrono::milliseconds>(
      std::chrono::minutes(1), 3 * std::chrono::seconds(f.expiry_check_seconds));
  proxy::ProxyServer proxy(po, tls, engine, clock);
  const int proxy_bound = check(proxy.listen());
  engine.set_connection_control(&proxy);
  check(engine.start());

  RandomIdGenerator ids;
  api::ApiOptions ao;
  ao.address.proxy_host = f.proxy_host;
  ao.address.proxy_port = static_cast<uint16_t>(proxy_bound);
  // Until a DNS name for *.proxy-host exists, URIs carry hostaddr= so they need no resolver.
  ao.address.hostaddr =
      proxy_host_addr == "0.0.0.0" || proxy_host_addr == "::" ? "127.0.0.1" : proxy_host_addr;
  ao.address.owner_id = owner_id;
  ao.default_pg_version = installs.newest().major;
  ao.max_snapshots = f.max_snapshots;
  ao.max_root_branches = f.max_root_branches;
  api::ApiService service(*catalog, engine, ids, clock, installs, ao);
  check(service.ensure_api_key(bootstrap_key(data_dir), "bootstrap"));

  api::HttpServer server(io, [&](const api::HttpRequest& r) { return service.handle(r); });
  uint16_t bound = check(server.listen(api_host, api_port));
  proxy.start();
  spdlog::info("argond ready: API http://{}:{}/api/v2, Postgres proxy {}:{} ({}), data dir {}",
               api_host, bound, proxy_host_addr, proxy_bound,
               po.allow_plaintext ? "TLS or plaintext" : "TLS only", data_dir.string());
  // Lines for scripts and tests that start argond with port 0 (the API line comes last).
  fmt::print("ARGOND_PROXY={}:{}\n", proxy_host_addr, proxy_bound);
  fmt::print("ARGOND_API_URL=http://{}:{}/api/v2\n", api_host, bound);
  std::fflush(stdout);

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int sig) {
    spdlog::info("signal {}: shutting down", sig);
    server.stop();
    proxy.stop();
    // A moment for clients to receive the shutdown notice before the sockets go.
    auto grace = std::make_shared<boost::asio::steady_timer>(io, std::chrono::milliseconds(200));
    grace->async_wait([&io, grace](const boost::system::error_code&) { io.stop(); });
  });
  ::signal(SIGPIPE, SIG_IGN);

  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : pool) t.join();

  engine.stop();
  computes.stop_all(std::chrono::seconds(30));
  spdlog::info("argond stopped");
  return 0;
}
