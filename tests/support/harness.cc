#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "common/file_util.h"
#include "common/process_runner.h"
#include "common/random.h"

namespace argon::testing {

namespace {

// One initdb per test run instead of one per argond (about 2.5 s each, well over a hundred times a
// run). The first argond of a run creates its template clusters as always; the harness keeps a
// copy of <data-dir>/templates beside the argond binary, stamped with that binary's identity, and
// seeds every later fresh data directory with it, so argond finds its templates and skips initdb.
// Test processes run one after another or in parallel; an flock serialises the copying.
class TemplateCache {
 public:
  TemplateCache() {
    const fs::path bin = fs::absolute(argond_path());
    dir_ = bin.parent_path().parent_path() / "test-templates";
    struct stat st {};
    if (::stat(bin.c_str(), &st) == 0) {
      stamp_ = fmt::format("{} {} {}", bin.string(), st.st_size, st.st_mtim.tv_sec);
    }
  }

  // Copies the cached templates into a new data directory; false when there are none yet.
  bool seed(const fs::path& data_dir) {
    if (stamp_.empty() || std::getenv("ARGON_TEST_NO_TEMPLATE_CACHE")) return false;
    Lock lock(dir_);
    if (!current()) return false;
    return copy(dir_ / "templates", data_dir / "templates");
  }

  // After an argond started on `data_dir`: keeps its templates if the cache has none for this
  // binary.
  void keep(const fs::path& data_dir) {
    if (stamp_.empty() || std::getenv("ARGON_TEST_NO_TEMPLATE_CACHE")) return;
    if (!fs::exists(data_dir / "templates")) return;
    Lock lock(dir_);
    if (current()) return;
    std::error_code ec;
    fs::remove_all(dir_, ec);
    fs::create_directories(dir_, ec);
    if (!copy(data_dir / "templates", dir_ / "templates")) return;
    std::ofstream(dir_ / "stamp") << stamp_;
  }

 private:
  struct Lock {
    explicit Lock(const fs::path& dir) {
      fd = ::open((dir.string() + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      if (fd >= 0) ::flock(fd, LOCK_EX);
    }
    ~Lock() {
      if (fd >= 0) ::close(fd);
    }
    int fd = -1;
  };

  bool current() const {
    std::ifstream in(dir_ / "stamp");
    std::string got;
    std::getline(in, got);
    return got == stamp_ && fs::exists(dir_ / "templates");
  }

  // Hard links where the two are on one filesystem (argond only ever reads a template: branches
  // are clones of it), else a copy; -a keeps owners (the Postgres user when tests run as root) and
  // modes, as argond made them.
  static bool copy(const fs::path& from, const fs::path& to) {
    for (const char* how : {"-al", "-a"}) {
      std::error_code ec;
      fs::remove_all(to, ec);
      const std::string cmd =
          fmt::format("cp {} '{}' '{}' 2>/dev/null", how, from.string(), to.string());
      if (std::system(cmd.c_str()) == 0) return true;
    }
    return false;
  }

  fs::path dir_;
  std::string stamp_;
};

TemplateCache& template_cache() {
  static TemplateCache cache;
  return cache;
}

}  // namespace

namespace fs = std::filesystem;
namespace http = boost::beast::http;
namespace json = boost::json;
using namespace std::chrono_literals;

Argond::Argond(std::vector<std::string> extra_flags, fs::path data_dir, bool durable)
    : flags_(std::move(extra_flags)), durable_(durable) {
  if (data_dir.empty()) {
    std::string tmpl = (fs::temp_directory_path() / "argon-it-XXXXXX").string();
    data_dir_ = ::mkdtemp(tmpl.data());
    own_dir_ = true;
  } else {
    data_dir_ = data_dir;
  }
  key_ = "test-" + random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789");
  const bool fresh = !fs::exists(data_dir_ / "catalog.db");
  const bool seeded = fresh && template_cache().seed(data_dir_);
  start();
  if (fresh && !seeded) template_cache().keep(data_dir_);
}

Argond::~Argond() {
  if (pid_ > 0) {
    try {
      terminate();
    } catch (const std::exception& e) {
      fmt::print(stderr, "{}\n", e.what());
    }
  }
  if (own_dir_ && !(keep_data_dir_if && keep_data_dir_if())) {
    std::error_code ec;
    fs::remove_all(data_dir_, ec);
  }
}

void Argond::start() {
  fs::create_directories(data_dir_);
  ::chmod(data_dir_.c_str(), 0711);
  fs::path out = data_dir_ / "argond.stdout";
  std::vector<std::string> argv = {argond_path(), "--data-dir",  data_dir_.string(),
                                   "--listen",    "127.0.0.1:0", "--proxy-listen",
                                   "127.0.0.1:0", "--log-level", "debug"};
  if (!durable_) argv.push_back("--unsafe-no-fsync");
  for (const auto& f : flags_) argv.push_back(f);
  ::truncate(out.c_str(), 0);
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ == 0) {
    // A test process that dies (a crash, a kill) takes its argond along instead of leaving it
    // running; SIGTERM, so that argond still stops its computes.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::setenv("ARGON_API_KEY", key_.c_str(), 1);
    std::vector<char*> a;
    for (auto& s : argv) a.push_back(s.data());
    a.push_back(nullptr);
    ::execv(a[0], a.data());
    ::_exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + 120s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(out);
    std::string line;
    while (std::getline(in, line)) {
      if (line.starts_with("ARGOND_PROXY="))
        proxy_port_ = std::stoi(line.substr(line.rfind(':') + 1));
      if (line.starts_with("ARGOND_API_URL=http://")) {
        std::string rest = line.substr(22);
        host_ = rest.substr(0, rest.find(':'));
        port_ = std::stoi(rest.substr(rest.find(':') + 1));
        return;
      }
    }
    if (auto code = try_reap(pid_)) {
      pid_ = -1;
      throw std::runtime_error(fmt::format("argond exited with {}:\n{}", *code, log_tail()));
    }
    std::this_thread::sleep_for(20ms);
  }
  kill9();
  throw std::runtime_error("argond did not start:\n" + log_tail());
}

void Argond::kill9() {
  ::kill(pid_, SIGKILL);
  (void)wait_for_exit(pid_, 30s);
  pid_ = -1;
}

bool Argond::wait_exit(std::chrono::seconds timeout) {
  if (!wait_for_exit(pid_, timeout)) return false;
  pid_ = -1;
  return true;
}

void Argond::terminate() {
  ::kill(pid_, SIGTERM);
  if (!wait_for_exit(pid_, 120s)) {
    ::kill(pid_, SIGKILL);
    (void)wait_for_exit(pid_, 30s);
    pid_ = -1;
    throw std::runtime_error("argond did not stop on SIGTERM within 120 s:\n" + log_tail());
  }
  pid_ = -1;
}

std::string Argond::api_url() const { return fmt::format("http://{}:{}/api/v2", host_, port_); }

std::string Argond::owner_conninfo(const std::string& password, const std::string& endpoint) const {
  return fmt::format(
      "host=127.0.0.1 port={} dbname=neondb user=neondb_owner password={} sslmode=require "
      "options=endpoint={} connect_timeout=60",
      proxy_port_, password, endpoint);
}

std::string Argond::log_tail() const { return tail_file(data_dir_ / "argond.stdout", 6000); }

ApiReply Argond::call(const std::string& method, const std::string& path, const std::string& body,
                      const std::vector<std::pair<std::string, std::string>>& headers, bool auth) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket sock(io);
  sock.connect({boost::asio::ip::make_address(host_), static_cast<unsigned short>(port_)});
  http::request<http::string_body> req{http::string_to_verb(method), "/api/v2" + path, 11};
  req.set(http::field::host, host_);
  if (auth) req.set(http::field::authorization, "Bearer " + key_);
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  http::write(sock, req);
  boost::beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  http::read(sock, buf, parser);
  ApiReply r;
  r.status = static_cast<int>(parser.get().result_int());
  r.raw = parser.get().body();
  std::error_code ec;
  if (!r.raw.empty()) r.body = json::parse(r.raw, ec);
  return r;
}

std::vector<std::string> Argond::wait_operations(const std::string& project_id,
                                                 const json::value& ops,
                                                 std::chrono::seconds timeout,
                                                 std::chrono::milliseconds poll) {
  std::vector<std::string> out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (const auto& op : ops.as_array()) {
    std::string id(op.at("id").as_string());
    while (true) {
      auto r = get(fmt::format("/projects/{}/operations/{}", project_id, id));
      std::string status = r.status == 200
                               ? std::string(r.body.at("operation").at("status").as_string())
                               : "missing";
      if (status != "scheduling" && status != "running") {
        out.push_back(status);
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error(fmt::format("operation {} still {}\n{}", id, status, log_tail()));
      }
      std::this_thread::sleep_for(poll);
    }
  }
  return out;
}

void Argond::wait_idle(const std::string& project_id, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = get(fmt::format("/projects/{}/operations?limit=1000", project_id));
    if (r.status == 404) return;
    bool pending = false;
    for (const auto& op : r.body.at("operations").as_array()) {
      auto s = op.at("status").as_string();
      pending |= s == "scheduling" || s == "running";
    }
    if (!pending) return;
    std::this_thread::sleep_for(50ms);
  }
  throw std::runtime_error(
      fmt::format("project {} still has pending operations\n{}", project_id, log_tail()));
}

std::filesystem::path Argond::socket_dir(const std::string& branch_id) const {
  const auto home = data_dir_ / "run" / branch_id;
  const auto other = data_dir_ / "run" / (branch_id + "~");
  std::error_code ec;
  if (!std::filesystem::exists(home / compute_socket_file(), ec) &&
      std::filesystem::exists(other / compute_socket_file(), ec))
    return other;
  return home;
}

PgConn Argond::connect(const std::string& branch_id, const std::string& dbname,
                       const std::string& user) {
  auto c =
      PgConn::connect(socket_conninfo(socket_dir(branch_id).string(), kComputePort, user, dbname));
  if (!c) throw std::runtime_error(c.error().message);
  return std::move(*c);
}

std::string query_value(const std::string& conninfo, const std::string& sql) {
  auto c = PgConn::connect(conninfo);
  if (!c) throw std::runtime_error("connect: " + c.error().message);
  auto r = c->exec(sql);
  if (!r) throw std::runtime_error(sql + ": " + r.error().message);
  return r->value();
}

int tcp_connect(int port, const char* source) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (source) {
    sockaddr_in from{};
    from.sin_family = AF_INET;
    if (::inet_pton(AF_INET, source, &from.sin_addr) != 1 ||
        ::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
      ::close(fd);
      return -1;
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

std::string post_sql(const std::string& uri, const std::string& body, bool close) {
  return fmt::format(
      "POST /sql HTTP/1.1\r\nHost: localhost\r\nNeon-Connection-String: {}\r\n"
      "Neon-Raw-Text-Output: true\r\nNeon-Array-Mode: true\r\nContent-Type: text/plain\r\n"
      "Content-Length: {}\r\n{}\r\n{}",
      uri, body.size(), close ? "Connection: close\r\n" : "", body);
}

HttpReply http_exchange(int port, const std::string& request) {
  const int fd = tcp_connect(port);
  if (fd < 0) return {};
  send_all(fd, request);
  const std::string raw = read_all(fd, std::chrono::seconds(30));
  ::close(fd);
  HttpReply r;
  if (raw.rfind("HTTP/1.1 ", 0) == 0) r.status = std::atoi(raw.c_str() + 9);
  const auto at = raw.find("\r\n\r\n");
  if (at != std::string::npos) {
    boost::system::error_code ec;
    r.body = boost::json::parse(raw.substr(at + 4), ec);
  }
  return r;
}

std::string message(const HttpReply& r) {
  const auto* o = r.body.if_object();
  return o && o->contains("message") && o->at("message").is_string()
             ? std::string(o->at("message").as_string())
             : std::string();
}

std::string read_all(int fd, std::chrono::milliseconds timeout) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

const char* argond_path() {
  const char* other = std::getenv("ARGON_ARGOND");
  return other && *other ? other : ARGOND_PATH;
}
const char* argon_cli_path() { return ARGON_CLI_PATH; }

std::string str(const json::value& v, std::string_view key) {
  return std::string(v.at(key).as_string());
}

TestProject create_project(Argond& a, const json::object& project) {
  auto r = a.post("/projects", json::object{{"project", project}});
  if (r.status != 201)
    throw std::runtime_error(fmt::format("create project: HTTP {} {}", r.status, r.raw));
  const auto& conn = r.body.at("connection_uris").at(0);
  TestProject p{str(r.body.at("project"), "id"), str(r.body.at("branch"), "id"),
                str(r.body.at("endpoints").at(0), "id"),
                str(conn.at("connection_parameters"), "password"), str(conn, "connection_uri")};
  for (const auto& status : a.wait_operations(p.id, r.body.at("operations"))) {
    if (status != "finished") {
      throw std::runtime_error(fmt::format("project creation ended {}\n{}", status, a.log_tail()));
    }
  }
  return p;
}

std::pair<double, double> p50_p99(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))];
  };
  return {at(0.50), at(0.99)};
}

bool rss_bounds_apply() {
#ifdef __SANITIZE_ADDRESS__
  return false;
#else
  return argond_path() == std::string_view(ARGOND_PATH);
#endif
}

int open_fds(pid_t pid) {
  int n = 0;
  std::error_code ec;
  for (fs::directory_iterator it(fmt::format("/proc/{}/fd", pid), ec), end; !ec && it != end;
       it.increment(ec))
    ++n;
  return n;
}

// Files under /proc are read with read(2): a process that exits meanwhile makes the read fail
// (ESRCH), which iostreams would turn into an exception.
long rss_kb(pid_t pid) {
  const auto status = read_file(fmt::format("/proc/{}/status", pid));
  if (!status) return -1;
  const size_t at = status->find("\nVmRSS:");
  return at == std::string::npos ? -1 : std::stol(status->substr(at + 7));
}

bool wait_settled(const Argond& a, const std::string& snapshot_id) {
  const fs::path dir = a.data_dir() / "snapshots";
  for (int i = 0; i < 1200; ++i) {
    std::error_code ec;
    if (fs::exists(dir / snapshot_id / "settled", ec) &&
        !fs::exists(dir / (".tmp-settle-" + snapshot_id), ec))
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

int postmasters_under(const fs::path& dir) {
  int n = 0;
  std::error_code ec;
  for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmd = read_file(it->path() / "cmdline").value_or("");
    for (auto& c : cmd) {
      if (c == '\0') c = ' ';
    }
    // A postmaster's argv is "postgres -D <pgdata> ..."; its children rename themselves. A
    // snapshot's settle is a standalone backend, "postgres --single -D <pgdata> ...".
    if (cmd.find("postgres -D " + dir.string()) != std::string::npos ||
        cmd.find("postgres --single -D " + dir.string()) != std::string::npos)
      ++n;
  }
  return n;
}

}  // namespace argon::testing
