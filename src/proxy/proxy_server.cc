#include "proxy/proxy_server.h"

#include <fmt/format.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/multiple_exceptions.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <climits>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "common/random.h"
#include "pgwire/message_framer.h"
#include "pgwire/messages.h"
#include "pgwire/scram.h"
#include "pgwire/startup_packet.h"
#include "pgwire/wire_format.h"
#include "proxy/compute_login.h"
#include "proxy/endpoint_hint.h"
#include "proxy/tls_context.h"

namespace argon::proxy {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using unix_socket = asio::local::stream_protocol::socket;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr std::size_t kRelayBuffer = 16 * 1024;  // one TLS record
constexpr auto kPollInterval = 10ms;
constexpr auto kTerminateDrain = 1s;
constexpr std::size_t kAdminPoolPerCompute = 4;
constexpr auto kAdminIdleLimit = 30s;
constexpr auto kAdminSweepInterval = 2s;

// An idle admin session is never sent anything: readable means the compute closed it or is
// shutting down (a FATAL), so it is of no more use and only holds a descriptor.
bool still_idle(unix_socket& s) {
  char byte;
  const ssize_t n = ::recv(s.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// Writes what the kernel takes at once without a trip through the scheduler (the usual case for
// relayed messages, which fit the socket buffer), and only waits for the rest. The socket must be
// in non-blocking mode.
template <typename Socket>
awaitable<void> write_now(Socket& socket, std::string_view data) {
  boost::system::error_code ec;
  std::size_t n = socket.write_some(asio::buffer(data), ec);
  if (!ec && n == data.size()) co_return;
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    n = 0;
  } else if (ec) {
    throw boost::system::system_error(ec);
  }
  co_await asio::async_write(socket, asio::buffer(data.substr(n)), use_awaitable);
}

pgwire::ErrorFields to_fields(const Error& e) {
  pgwire::ErrorFields f;
  f.severity = "FATAL";
  f.sqlstate = std::string(default_sqlstate(e.code));
  f.message = e.message;
  return f;
}

}  // namespace

class Session;

struct ProxyServer::Impl : std::enable_shared_from_this<Impl> {
  struct EndpointEntry {
    int gates = 0;
    bool held = false;  // set_held: a restore switching it (catalog state)
    std::int64_t last_active_ms = 0;
    std::set<std::shared_ptr<Session>> sessions;
  };
  struct CancelTarget {
    fs::path socket_dir;
    std::int32_t process_id = 0;
    std::int32_t secret_key = 0;
  };

  Impl(asio::io_context& io_, ProxyOptions options_, std::shared_ptr<TlsContext> tls_,
       compute::EndpointResolver& resolver_, const Clock& clock_)
      : io(io_),
        options(std::move(options_)),
        tls(std::move(tls_)),
        resolver(resolver_),
        clock(clock_),
        acceptor(io_),
        admin_sweep(asio::make_strand(io_)) {}

  bool reserved(std::string_view role) const {
    return role == options.admin_user || (options.reserved_role && options.reserved_role(role));
  }

  awaitable<void> accept_loop();
  void forget(const std::shared_ptr<Session>& s, const std::string& endpoint_id);
  // The role's current verifier, read over a pooled admin session to the compute.
  awaitable<Result<RoleSecret>> role_secret(const fs::path& socket_dir, const std::string& role);

  // Idle admin sessions per compute socket directory. A few per compute save a backend start per
  // client login; an idle one older than kAdminIdleLimit is closed (its compute may be gone).
  struct IdleAdmin {
    std::unique_ptr<unix_socket> socket;
    std::chrono::steady_clock::time_point since;
  };
  std::unique_ptr<unix_socket> take_admin(const fs::path& socket_dir);
  void put_admin(const fs::path& socket_dir, std::unique_ptr<unix_socket> s);
  // Every kAdminSweepInterval, closes idle admin sessions that are too old or whose compute went
  // away (off the login path: a check of every pooled socket costs a system call each).
  awaitable<void> sweep_admins();
  std::mutex admin_mu;
  std::map<fs::path, std::vector<IdleAdmin>> idle_admins;

  asio::io_context& io;
  std::vector<asio::io_context*> loops;   // ProxyServer::Loops, set before accepting starts
  asio::thread_pool* blocking = nullptr;  // ProxyServer::Loops: for calls that may block
  std::size_t next_loop = 0;              // accept_loop's round robin
  ProxyOptions options;
  std::shared_ptr<TlsContext> tls;
  compute::EndpointResolver& resolver;
  const Clock& clock;
  tcp::acceptor acceptor;
  asio::steady_timer admin_sweep;  // on its own strand: sweep_admins and stop() both touch it
  std::atomic<int> open_connections{0};
  std::atomic<bool> stopping{false};

  mutable std::mutex mu;
  std::map<std::string, EndpointEntry> endpoints;
  std::map<std::pair<std::int32_t, std::int32_t>, CancelTarget> cancel_keys;
  std::set<std::shared_ptr<Session>> sessions;  // every open client connection
};

// One client connection, from the first byte to the end of the relay. All of its I/O runs on one
// single-threaded loop; terminate() reaches it by posting to that loop.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<ProxyServer::Impl> proxy, tcp::socket socket)
      : proxy_(std::move(proxy)),
        executor_(socket.get_executor()),
        client_(std::move(socket)),
        backend_(executor_),
        watchdog_(executor_) {}

  awaitable<void> run();

  // Posted by the engine (any thread): close with 57P01 and `reason`.
  void terminate(std::string reason) {
    asio::post(executor_, [self = shared_from_this(), reason = std::move(reason)]() mutable {
      if (self->terminating_) return;
      self->terminating_ = true;
      self->terminate_reason_ = std::move(reason);
      boost::system::error_code ec;
      self->backend_.cancel(ec);
      if (!self->relaying_) self->close_all();
    });
  }
  void close_all() {
    boost::system::error_code ec;
    backend_.close(ec);
    client_.close(ec);
  }

 private:
  // ---- client I/O (plain or TLS) ----
  // Callers pass named buffers, never temporaries: GCC 12 destroys some temporaries that live
  // across a co_await twice.
  awaitable<std::size_t> read_some(asio::mutable_buffer b) {
    if (!tls_) co_return co_await client_.async_read_some(b, use_awaitable);
    for (;;) {
      int n = SSL_read(tls_.get(), b.data(),
                       static_cast<int>(std::min<std::size_t>(b.size(), INT_MAX)));
      if (n > 0) co_return static_cast<std::size_t>(n);
      co_await tls_wait(SSL_get_error(tls_.get(), n));
    }
  }
  awaitable<void> read_exact(std::string& out, std::size_t n) {
    out.resize(n);
    std::size_t have = 0;
    while (have < n) have += co_await read_some(asio::buffer(out.data() + have, n - have));
  }
  awaitable<void> write(std::string_view data) {
    if (!tls_) {
      co_await write_now(client_, data);
      co_return;
    }
    while (!data.empty()) {
      int n = SSL_write(tls_.get(), data.data(),
                        static_cast<int>(std::min<std::size_t>(data.size(), INT_MAX)));
      if (n > 0) {
        data.remove_prefix(static_cast<std::size_t>(n));
        continue;
      }
      co_await tls_wait(SSL_get_error(tls_.get(), n));
    }
  }
  // OpenSSL runs directly on the non-blocking socket (no memory BIO, no copies): when it needs the
  // socket, wait for it; anything else ends the connection.
  awaitable<void> tls_wait(int ssl_error) {
    if (ssl_error == SSL_ERROR_WANT_READ) {
      co_await client_.async_wait(tcp::socket::wait_read, use_awaitable);
    } else if (ssl_error == SSL_ERROR_WANT_WRITE) {
      co_await client_.async_wait(tcp::socket::wait_write, use_awaitable);
    } else {
      ERR_clear_error();
      if (ssl_error == SSL_ERROR_ZERO_RETURN) throw boost::system::system_error(asio::error::eof);
      throw boost::system::system_error(asio::error::connection_reset);
    }
  }
  awaitable<void> tls_accept() {
    tls_.reset(SSL_new(proxy_->tls->context().native_handle()));
    if (!tls_ || SSL_set_fd(tls_.get(), client_.native_handle()) != 1) {
      throw boost::system::system_error(asio::error::no_memory);
    }
    for (;;) {
      int r = SSL_accept(tls_.get());
      if (r == 1) co_return;
      co_await tls_wait(SSL_get_error(tls_.get(), r));
    }
  }
  // The next typed message from the client during authentication.
  awaitable<Result<std::pair<char, std::string>>> read_message() {
    std::array<char, 4096> buf;
    for (;;) {
      auto m = framer_.next();
      if (!m) co_return std::unexpected(m.error());
      if (*m) co_return std::pair<char, std::string>((*m)->type, std::string((*m)->body));
      std::size_t n = co_await read_some(asio::buffer(buf));
      framer_.feed(std::string_view(buf.data(), n));
    }
  }

  awaitable<Status> handshake();
  awaitable<Result<std::optional<pgwire::StartupMessage>>> read_startup();
  awaitable<Status> enter_endpoint();
  awaitable<Result<compute::ComputeTarget>> wait_for_compute();
  awaitable<Status> authenticate(const RoleSecret& secret,
                                 const std::optional<std::string>& cleartext);
  // Connects backend_ and logs in to the compute as the client's role and database.
  awaitable<Result<ComputeLogin>> start_backend(const compute::ComputeTarget& target,
                                                const RoleSecret& secret);
  // Passes the compute's refusal on, or keeps its cancel key and greeting for the client.
  awaitable<Status> login_to_compute(const compute::ComputeTarget& target,
                                     Result<ComputeLogin> login);
  awaitable<void> forward_cancel(const pgwire::CancelRequest& c);
  awaitable<void> relay();
  awaitable<void> client_to_backend();
  awaitable<void> backend_to_client();
  // The resolver's answer, asked on the proxy's blocking pool: it reads the catalog, which may
  // wait for another transaction, and the other connections on this loop must not wait with it.
  awaitable<Result<std::optional<compute::ComputeTarget>>> wake() {
    co_return co_await asio::co_spawn(
        *proxy_->blocking,
        [this]() -> awaitable<Result<std::optional<compute::ComputeTarget>>> {
          co_return proxy_->resolver.wake(endpoint_id_);
        },
        use_awaitable);
  }
  awaitable<void> sleep(std::chrono::milliseconds d) {
    asio::steady_timer t(executor_, d);
    co_await t.async_wait(use_awaitable);
  }

  std::shared_ptr<ProxyServer::Impl> proxy_;
  asio::any_io_executor executor_;
  tcp::socket client_;
  struct SslFree {
    void operator()(SSL* ssl) const { SSL_free(ssl); }
  };
  std::unique_ptr<SSL, SslFree> tls_;
  unix_socket backend_;
  asio::steady_timer watchdog_;
  pgwire::MessageFramer framer_{pgwire::kMaxAuthMessageLength};
  pgwire::StartupMessage startup_;
  std::string endpoint_id_;
  std::string user_;
  bool registered_ = false;
  bool relaying_ = false;
  bool terminating_ = false;
  std::string terminate_reason_;
  std::optional<std::pair<std::int32_t, std::int32_t>> cancel_key_;
  std::string backend_greeting_;  // ParameterStatus..ReadyForQuery from the compute, for the client
};

awaitable<void> Session::run() {
  auto self = shared_from_this();
  watchdog_.expires_after(proxy_->options.handshake_timeout);
  watchdog_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    if (ec) return;
    if (auto s = weak.lock()) s->close_all();
  });
  try {
    auto st = co_await handshake();
    if (!st) {
      const auto& e = st.error();
      if (e.code == ErrorCode::kInternal) spdlog::error("proxy: {} ({})", e.message, e.detail);
      if (!e.message.empty()) {
        const std::string out = pgwire::error_response(to_fields(e));
        co_await write(out);
      }
    } else if (registered_) {
      watchdog_.cancel();
      co_await relay();
    }
  } catch (const boost::system::system_error&) {
    // The client or the compute went away, or the watchdog closed a stalled handshake.
  } catch (const std::exception& e) {
    spdlog::error("proxy: connection failed: {}", e.what());
  }
  watchdog_.cancel();
  close_all();
  proxy_->forget(self, endpoint_id_);
  if (cancel_key_) {
    std::lock_guard l(proxy_->mu);
    proxy_->cancel_keys.erase(*cancel_key_);
  }
}

awaitable<Result<std::optional<pgwire::StartupMessage>>> Session::read_startup() {
  using Out = Result<std::optional<pgwire::StartupMessage>>;
  // At most: GSSENCRequest, SSLRequest, then the StartupMessage.
  for (int round = 0; round < 3; ++round) {
    std::string len_word;
    co_await read_exact(len_word, 4);
    auto len = pgwire::startup_body_length(len_word);
    if (!len) co_return Out(std::unexpected(len.error()));
    std::string body;
    co_await read_exact(body, *len);
    auto packet = pgwire::parse_startup_packet(body);
    if (!packet) co_return Out(std::unexpected(packet.error()));
    if (std::holds_alternative<pgwire::SslRequest>(*packet)) {
      if (tls_)
        co_return Out(
            fail(ErrorCode::kBadRequest, "SSLRequest received on an encrypted connection"));
      if (!proxy_->tls) {
        co_await write("N");
        continue;
      }
      co_await write("S");
      co_await tls_accept();
      continue;
    }
    if (std::holds_alternative<pgwire::GssEncRequest>(*packet)) {
      if (tls_)
        co_return Out(
            fail(ErrorCode::kBadRequest, "GSSENCRequest received on an encrypted connection"));
      co_await write("N");
      continue;
    }
    if (auto* c = std::get_if<pgwire::CancelRequest>(&*packet)) {
      co_await forward_cancel(*c);
      co_return Out(std::optional<pgwire::StartupMessage>{});
    }
    co_return Out(std::get<pgwire::StartupMessage>(std::move(*packet)));
  }
  co_return Out(
      fail(ErrorCode::kBadRequest, "too many negotiation packets before the startup message"));
}

awaitable<Status> Session::handshake() {
  auto startup = co_await read_startup();
  if (!startup) co_return std::unexpected(startup.error());
  if (!*startup) co_return Status{};  // a CancelRequest, already handled
  startup_ = std::move(**startup);
  if (!tls_ && !proxy_->options.allow_plaintext) {
    co_return fail(ErrorCode::kForbidden,
                   "this Argon proxy accepts only TLS connections: connect with sslmode=require");
  }
  if (startup_.minor_version > 0 || !startup_.protocol_options().empty()) {
    {
      const std::string out = pgwire::negotiate_protocol_version(0, startup_.protocol_options());
      co_await write(out);
    }
    for (const auto& o : startup_.protocol_options()) startup_.erase(o);
  }
  user_ = *startup_.get("user");
  if (!startup_.get("database")) startup_.set("database", user_);

  std::string sni;
  if (tls_) {
    if (const char* name = SSL_get_servername(tls_.get(), TLSEXT_NAMETYPE_host_name)) sni = name;
  }
  std::string options = startup_.get("options").value_or("");
  auto hint = resolve_endpoint_hint(sni, options);
  if (!hint) co_return std::unexpected(hint.error());
  if (hint->remaining_options.empty()) {
    startup_.erase("options");
  } else {
    startup_.set("options", hint->remaining_options);
  }
  if (proxy_->reserved(user_)) {
    co_return fail(
        ErrorCode::kForbidden,
        fmt::format("role \"{}\" is reserved for Argon's internal use; connect as one of your "
                    "project's roles (GET /projects/{{id}}/branches/{{id}}/roles lists them)",
                    user_));
  }

  // Without an endpoint in the host name or options, the password carries it:
  // endpoint=<id>;<password>.
  std::optional<std::string> cleartext;
  endpoint_id_ = hint->endpoint_id;
  if (endpoint_id_.empty()) {
    {
      const std::string out = pgwire::authentication_cleartext_password();
      co_await write(out);
    }
    auto msg = co_await read_message();
    if (!msg) co_return std::unexpected(msg.error());
    if (msg->first != 'p') co_return fail(ErrorCode::kBadRequest, "expected a password message");
    auto password = pgwire::parse_password_message(msg->second);
    if (!password) co_return std::unexpected(password.error());
    auto split = split_endpoint_password(*password);
    if (!split) co_return std::unexpected(split.error());
    endpoint_id_ = split->first;
    cleartext = std::move(split->second);
  }

  auto entered = co_await enter_endpoint();
  if (!entered) co_return entered;
  auto target = co_await wait_for_compute();
  if (!target) co_return std::unexpected(target.error());
  auto secret = co_await proxy_->role_secret(target->socket_dir, user_);
  if (!secret) co_return std::unexpected(secret.error());
  // The compute starts the client's backend while the client works out its SCRAM proof, so the two
  // waits overlap. The backend is never handed to a client that fails authentication: it is closed.
  auto [authed, login] =
      co_await (authenticate(*secret, cleartext) && start_backend(*target, *secret));
  if (!authed) co_return authed;
  if (terminating_) co_return fail(ErrorCode::kUnavailable, terminate_reason_);
  auto logged_in = co_await login_to_compute(*target, std::move(login));
  if (!logged_in) co_return logged_in;
  {
    const std::string out = pgwire::authentication_ok() + backend_greeting_;
    co_await write(out);
  }
  co_return Status{};
}

// Joins the endpoint's set of connections, waiting while it is gated. Joining before the compute is
// chosen means a terminate() that comes later also reaches this connection.
awaitable<Status> Session::enter_endpoint() {
  const auto deadline = std::chrono::steady_clock::now() + proxy_->options.gate_timeout;
  for (;;) {
    {
      std::lock_guard l(proxy_->mu);
      auto& ep = proxy_->endpoints[endpoint_id_];
      if (ep.gates == 0 && !ep.held) {
        ep.sessions.insert(shared_from_this());
        ep.last_active_ms = proxy_->clock.now_ms();
        registered_ = true;
        co_return Status{};
      }
    }
    if (std::chrono::steady_clock::now() > deadline) {
      co_return fail(
          ErrorCode::kUnavailable,
          fmt::format(
              "endpoint {} is being switched to another compute and did not come back within "
              "{} s; try again",
              endpoint_id_, proxy_->options.gate_timeout.count() / 1000));
    }
    co_await sleep(kPollInterval);
  }
}

awaitable<Result<compute::ComputeTarget>> Session::wait_for_compute() {
  const auto deadline = std::chrono::steady_clock::now() + proxy_->options.wake_timeout;
  for (;;) {
    auto r = co_await wake();
    if (!r) co_return std::unexpected(r.error());
    if (*r) co_return std::move(**r);
    if (terminating_) co_return fail(ErrorCode::kUnavailable, terminate_reason_);
    if (std::chrono::steady_clock::now() > deadline) {
      co_return fail(
          ErrorCode::kUnavailable,
          fmt::format("the compute for endpoint {} did not start within {} s; try again, and check "
                      "GET /projects/{{id}}/operations for the failed start",
                      endpoint_id_, proxy_->options.wake_timeout.count() / 1000));
    }
    co_await sleep(kPollInterval);
  }
}

awaitable<Status> Session::authenticate(const RoleSecret& secret,
                                        const std::optional<std::string>& cleartext) {
  auto denied = [&] {
    return fail(ErrorCode::kUnauthorized,
                fmt::format("password authentication failed for user \"{}\"", user_));
  };
  if (!secret.exists) co_return denied();
  auto verifier = pgwire::parse_scram_verifier(secret.verifier);
  if (!verifier) co_return denied();
  if (cleartext) {
    if (!pgwire::scram_password_matches(*verifier, *cleartext)) co_return denied();
  } else {
    std::vector<std::string> mechanisms;
    if (tls_) mechanisms.emplace_back(pgwire::kScramSha256Plus);
    mechanisms.emplace_back(pgwire::kScramSha256);
    {
      const std::string out = pgwire::authentication_sasl(mechanisms);
      co_await write(out);
    }
    pgwire::ScramServer scram(*verifier, tls_ ? proxy_->tls->end_point_hash() : std::string());
    auto first = co_await read_message();
    if (!first) co_return std::unexpected(first.error());
    if (first->first != 'p')
      co_return fail(ErrorCode::kBadRequest, "expected a SASLInitialResponse message");
    auto initial = pgwire::parse_sasl_initial_response(first->second);
    if (!initial) co_return std::unexpected(initial.error());
    auto server_first = scram.client_first(initial->mechanism, initial->data);
    if (!server_first) co_return std::unexpected(server_first.error());
    {
      const std::string out = pgwire::authentication_sasl_continue(*server_first);
      co_await write(out);
    }
    auto final = co_await read_message();
    if (!final) co_return std::unexpected(final.error());
    if (final->first != 'p')
      co_return fail(ErrorCode::kBadRequest, "expected a SASLResponse message");
    auto server_final = scram.client_final(final->second);
    if (!server_final) {
      if (server_final.error().code == ErrorCode::kUnauthorized) co_return denied();
      co_return std::unexpected(server_final.error());
    }
    {
      const std::string out = pgwire::authentication_sasl_final(*server_final);
      co_await write(out);
    }
  }
  // Checked after the password, so that probing reveals nothing about roles.
  if (!secret.can_login) {
    co_return fail(ErrorCode::kForbidden,
                   fmt::format("role \"{}\" is not permitted to log in", user_));
  }
  if (secret.expired) co_return denied();
  co_return Status{};
}

awaitable<Result<ComputeLogin>> Session::start_backend(const compute::ComputeTarget& target,
                                                       const RoleSecret& secret) {
  // authenticate() turns such a role away, and no backend is started for it.
  if (!secret.exists || !secret.can_login || secret.expired) {
    co_return fail(ErrorCode::kForbidden,
                   fmt::format("role \"{}\" is not permitted to log in", user_));
  }
  co_return co_await open_compute_session(backend_, target.socket_dir, startup_);
}

awaitable<Status> Session::login_to_compute(const compute::ComputeTarget& target,
                                            Result<ComputeLogin> login) {
  if (!login) co_return std::unexpected(login.error());
  if (login->error) {
    // The compute refused (unknown database, too many connections, ...): the client gets its words.
    {
      const std::string out = pgwire::authentication_ok();
      co_await write(out);
    }
    co_await write(*login->error);
    co_return fail(ErrorCode::kBadRequest, "");
  }
  // The client gets a key of ours; the compute's stays here, for forwarding a CancelRequest.
  std::int32_t pid = 0;
  std::int32_t secret = 0;
  {
    std::lock_guard l(proxy_->mu);
    do {
      pid = static_cast<std::int32_t>(secure_random(0x7fffffff)) + 1;
      secret = static_cast<std::int32_t>(secure_random(0xffffffffULL));
    } while (proxy_->cancel_keys.contains({pid, secret}));
    proxy_->cancel_keys[{pid, secret}] = {target.socket_dir, login->process_id, login->secret_key};
  }
  cancel_key_ = std::pair{pid, secret};
  backend_greeting_ =
      login->parameter_messages + pgwire::backend_key_data(pid, secret) + login->ready_message;
  co_return Status{};
}

awaitable<void> Session::forward_cancel(const pgwire::CancelRequest& c) {
  std::optional<ProxyServer::Impl::CancelTarget> target;
  {
    std::lock_guard l(proxy_->mu);
    auto it = proxy_->cancel_keys.find({c.process_id, c.secret_key});
    if (it != proxy_->cancel_keys.end()) target = it->second;
  }
  if (!target) co_return;  // PostgreSQL also ignores unknown keys silently
  unix_socket s(executor_);
  boost::system::error_code ec;
  co_await s.async_connect(compute_socket_path(target->socket_dir),
                           asio::redirect_error(use_awaitable, ec));
  if (ec) co_return;
  const std::string request =
      pgwire::encode_cancel_request({target->process_id, target->secret_key});
  co_await asio::async_write(s, asio::buffer(request), asio::redirect_error(use_awaitable, ec));
}

awaitable<void> Session::relay() {
  relaying_ = true;
  backend_.non_blocking(true);  // for write_now()
  if (terminating_) {
    {
      const std::string out = pgwire::error_response({"FATAL", "57P01", terminate_reason_, "", ""});
      co_await write(out);
    }
    co_return;
  }
  // Bytes the client sent after its last authentication message belong to the compute.
  if (framer_.buffered() > 0) {
    auto rest = framer_.take_rest();
    co_await write_now(backend_, rest);
  }
  try {
    co_await (client_to_backend() || backend_to_client());
  } catch (const asio::multiple_exceptions&) {
    // Both directions ended (the usual end of a connection).
  }
}

awaitable<void> Session::client_to_backend() {
  std::vector<char> buf(kRelayBuffer);
  for (;;) {
    std::size_t n = co_await read_some(asio::buffer(buf));
    co_await write_now(backend_, std::string_view(buf.data(), n));
  }
}

awaitable<void> Session::backend_to_client() {
  std::vector<char> buf(kRelayBuffer);
  pgwire::BoundaryTracker tracker;
  for (;;) {
    boost::system::error_code ec;
    std::size_t n = co_await backend_.async_read_some(asio::buffer(buf),
                                                      asio::redirect_error(use_awaitable, ec));
    if (ec && !terminating_) throw boost::system::system_error(ec);
    if (terminating_) {
      // Finish the message in flight (bounded), then tell the client why the connection ends.
      std::string_view pending(buf.data(), ec ? 0 : n);
      auto give_up = std::chrono::steady_clock::now() + kTerminateDrain;
      for (;;) {
        while (!pending.empty() && !tracker.at_boundary()) {
          auto used = tracker.consume_message_part(pending);
          if (!used) co_return;
          co_await write(pending.substr(0, *used));
          pending.remove_prefix(*used);
        }
        if (tracker.at_boundary() || std::chrono::steady_clock::now() > give_up) break;
        asio::steady_timer limit(executor_, kTerminateDrain);
        limit.async_wait([this](boost::system::error_code e) {
          if (!e) {
            boost::system::error_code ignored;
            backend_.close(ignored);
          }
        });
        ec.clear();
        n = co_await backend_.async_read_some(asio::buffer(buf),
                                              asio::redirect_error(use_awaitable, ec));
        limit.cancel();
        if (ec) break;
        pending = std::string_view(buf.data(), n);
      }
      if (tracker.at_boundary()) {
        {
          const std::string out =
              pgwire::error_response({"FATAL", "57P01", terminate_reason_, "", ""});
          co_await write(out);
        }
      }
      co_return;
    }
    if (!tracker.advance(std::string_view(buf.data(), n))) co_return;  // a compute never sends this
    co_await write(std::string_view(buf.data(), n));
  }
}

std::unique_ptr<unix_socket> ProxyServer::Impl::take_admin(const fs::path& socket_dir) {
  std::lock_guard l(admin_mu);
  auto it = idle_admins.find(socket_dir);
  const auto now = std::chrono::steady_clock::now();
  while (it != idle_admins.end() && !it->second.empty()) {
    IdleAdmin idle = std::move(it->second.back());
    it->second.pop_back();
    if (now - idle.since < kAdminIdleLimit && still_idle(*idle.socket))
      return std::move(idle.socket);
  }
  return nullptr;
}

void ProxyServer::Impl::put_admin(const fs::path& socket_dir, std::unique_ptr<unix_socket> s) {
  std::lock_guard l(admin_mu);
  auto& pool = idle_admins[socket_dir];  // sweep_admins closes the old and the dead
  if (pool.size() < kAdminPoolPerCompute)
    pool.push_back({std::move(s), std::chrono::steady_clock::now()});
}

awaitable<void> ProxyServer::Impl::sweep_admins() {
  auto self = shared_from_this();
  while (!stopping) {
    admin_sweep.expires_after(kAdminSweepInterval);
    boost::system::error_code ec;
    co_await admin_sweep.async_wait(asio::redirect_error(use_awaitable, ec));
    std::lock_guard l(admin_mu);
    const auto now = std::chrono::steady_clock::now();
    for (auto it = idle_admins.begin(); it != idle_admins.end();) {
      std::erase_if(it->second, [&](IdleAdmin& a) {
        return stopping || now - a.since >= kAdminIdleLimit || !still_idle(*a.socket);
      });
      it = it->second.empty() ? idle_admins.erase(it) : std::next(it);
    }
  }
}

awaitable<Result<RoleSecret>> ProxyServer::Impl::role_secret(const fs::path& socket_dir,
                                                             const std::string& role) {
  for (;;) {
    auto s = take_admin(socket_dir);
    const bool pooled = s != nullptr;
    if (!s) {
      // On the proxy's own io_context, not a connection's loop: whichever connection takes it next
      // uses it alone.
      s = std::make_unique<unix_socket>(io);
      auto opened = co_await open_admin_session(*s, socket_dir, options.admin_user);
      if (!opened) co_return std::unexpected(opened.error());
    }
    auto secret = co_await query_role_secret(*s, role);
    if (secret) {
      put_admin(socket_dir, std::move(s));
      co_return secret;
    }
    // A pooled session may have died with its compute; a fresh one's failure is the answer.
    if (!pooled || secret.error().code != ErrorCode::kUnavailable) co_return secret;
  }
}

void ProxyServer::Impl::forget(const std::shared_ptr<Session>& s, const std::string& endpoint_id) {
  std::lock_guard l(mu);
  sessions.erase(s);
  if (endpoint_id.empty()) return;
  auto it = endpoints.find(endpoint_id);
  if (it == endpoints.end()) return;
  if (it->second.sessions.erase(s) > 0) it->second.last_active_ms = clock.now_ms();
}

awaitable<void> ProxyServer::Impl::accept_loop() {
  auto self = shared_from_this();
  while (!stopping) {
    boost::system::error_code ec;
    // The connection's loop: one thread runs it, so the connection needs no strand, and a relayed
    // message is read and written on the thread that saw it arrive (no hand-off between threads).
    asio::io_context& loop = *loops[next_loop++ % loops.size()];
    tcp::socket socket =
        co_await acceptor.async_accept(loop, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (stopping || ec == asio::error::operation_aborted) co_return;
      spdlog::warn("proxy: accept failed: {}", ec.message());
      // Out of descriptors and the like: back off instead of spinning.
      asio::steady_timer t(io, 50ms);
      co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    socket.non_blocking(true, ec);  // for write_now()
    if (open_connections.load() >= options.max_connections) {
      // The buffer and the socket live in the handler until the write is done.
      auto msg = std::make_shared<std::string>(pgwire::error_response(
          {"FATAL", "53300", "too many connections to the Argon proxy; try again later", "", ""}));
      auto sock = std::make_shared<tcp::socket>(std::move(socket));
      asio::async_write(*sock, asio::buffer(*msg), [sock, msg](auto, auto) {});
      continue;
    }
    auto session = std::make_shared<Session>(self, std::move(socket));
    {
      std::lock_guard l(mu);
      sessions.insert(session);
    }
    ++open_connections;
    asio::co_spawn(loop, session->run(), [this, session](std::exception_ptr) {
      // After a burst, hand the buffers of closed connections back to the OS instead of keeping
      // them in malloc's per-thread arenas.
      if (--open_connections == 0) ::malloc_trim(0);
    });
  }
}

struct ProxyServer::Loops {
  explicit Loops(int n) {
    for (int i = 0; i < n; ++i) {
      contexts.push_back(std::make_unique<asio::io_context>(1));
      guards.emplace_back(contexts.back()->get_executor());
    }
  }
  void start() {
    for (auto& c : contexts) threads.emplace_back([&c] { c->run(); });
  }
  ~Loops() {
    for (auto& c : contexts) c->stop();
    for (auto& t : threads) t.join();
    blocking.join();  // a wake under way finishes; its answer is dropped with its loop
  }
  asio::thread_pool blocking{2};
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::vector<std::thread> threads;
};

ProxyServer::ProxyServer(asio::io_context& io, ProxyOptions options,
                         std::shared_ptr<TlsContext> tls, compute::EndpointResolver& resolver,
                         const Clock& clock)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(tls), resolver, clock)) {
  loops_ =
      std::make_unique<Loops>(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  for (auto& c : loops_->contexts) impl_->loops.push_back(c.get());
  impl_->blocking = &loops_->blocking;
}

ProxyServer::~ProxyServer() {
  stop();
  // Joins the loops' threads; the connections still on them are destroyed with their loop.
  loops_.reset();
}

Result<int> ProxyServer::listen() {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(impl_->options.listen_host, ec);
  if (ec)
    return fail(ErrorCode::kBadRequest,
                fmt::format("invalid --proxy-listen host {}", impl_->options.listen_host));
  tcp::endpoint ep(addr, static_cast<unsigned short>(impl_->options.listen_port));
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return fail(ErrorCode::kUnavailable,
                fmt::format("cannot listen on {}:{} for the proxy: {}", impl_->options.listen_host,
                            impl_->options.listen_port, ec.message()));
  }
  return static_cast<int>(a.local_endpoint().port());
}

void ProxyServer::start() {
  loops_->start();
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  asio::co_spawn(impl_->admin_sweep.get_executor(), impl_->sweep_admins(), asio::detached);
}

void ProxyServer::stop() {
  if (impl_->stopping.exchange(true)) return;
  asio::post(impl_->io, [impl = impl_] {
    boost::system::error_code ec;
    impl->acceptor.close(ec);
  });
  asio::post(impl_->admin_sweep.get_executor(), [impl = impl_] { impl->admin_sweep.cancel(); });
  std::set<std::shared_ptr<Session>> all;
  {
    std::lock_guard l(impl_->mu);
    all = impl_->sessions;
  }
  for (const auto& s : all) s->terminate("terminating connection: Argon is shutting down");
}

void ProxyServer::gate(const std::string& endpoint_id) {
  std::lock_guard l(impl_->mu);
  ++impl_->endpoints[endpoint_id].gates;
}

void ProxyServer::ungate(const std::string& endpoint_id) {
  std::lock_guard l(impl_->mu);
  auto& ep = impl_->endpoints[endpoint_id];
  if (ep.gates > 0) --ep.gates;
}

void ProxyServer::set_held(const std::set<std::string>& endpoint_ids) {
  std::lock_guard l(impl_->mu);
  for (auto& [id, ep] : impl_->endpoints) ep.held = endpoint_ids.contains(id);
  for (const auto& id : endpoint_ids) impl_->endpoints[id].held = true;
}

void ProxyServer::terminate(const std::string& endpoint_id, const std::string& reason) {
  std::set<std::shared_ptr<Session>> victims;
  {
    std::lock_guard l(impl_->mu);
    auto it = impl_->endpoints.find(endpoint_id);
    if (it == impl_->endpoints.end()) return;
    victims = it->second.sessions;
  }
  for (const auto& s : victims) s->terminate(reason);
  // Bounded wait for them to be gone, so the caller may stop the compute behind them.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard l(impl_->mu);
      auto& live = impl_->endpoints[endpoint_id].sessions;
      if (std::none_of(victims.begin(), victims.end(),
                       [&](const auto& s) { return live.contains(s); }))
        return;
    }
    std::this_thread::sleep_for(5ms);
  }
  spdlog::warn("proxy: connections of endpoint {} still closing after 5 s", endpoint_id);
}

std::map<std::string, compute::EndpointActivity> ProxyServer::activity() const {
  std::map<std::string, compute::EndpointActivity> out;
  std::lock_guard l(impl_->mu);
  for (const auto& [id, ep] : impl_->endpoints) {
    out[id] = {static_cast<int>(ep.sessions.size()), ep.last_active_ms};
  }
  return out;
}

}  // namespace argon::proxy
