#include "proxy/compute_login.h"

#include <fmt/format.h>

#include <array>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "common/cluster_names.h"
#include "pgwire/message_framer.h"
#include "pgwire/messages.h"
#include "pgwire/wire_format.h"
#include "proxy/deadline.h"

namespace argon::proxy {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using unix_socket = asio::local::stream_protocol::socket;

namespace {

constexpr std::size_t kMaxComputeMessage = 1 << 20;
constexpr std::string_view kRoleSecretSql =
    "SELECT rolpassword, rolcanlogin::text, (rolvaliduntil IS NOT NULL AND rolvaliduntil < "
    "now())::text, (rolvaliduntil IS NOT NULL)::text "
    "FROM pg_authid WHERE rolname = $1";
constexpr std::string_view kRoleSecretStatement = "argon_role_secret";

// Reads whole messages from the compute into `framer` until `handle` says stop (returns true) or
// fails.
template <typename Handle>
awaitable<Status> read_messages(unix_socket& s, pgwire::MessageFramer& framer, Handle handle) {
  std::array<char, 8192> buf;
  for (;;) {
    for (;;) {
      auto m = framer.next();
      if (!m)
        co_return fail(ErrorCode::kInternal, "the compute sent a malformed message",
                       m.error().message);
      if (!*m) break;
      auto done = handle(**m);
      if (!done) co_return std::unexpected(done.error());
      if (*done) co_return Status{};
    }
    boost::system::error_code ec;
    std::size_t n =
        co_await s.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
    if (ec) {
      co_return fail(ErrorCode::kUnavailable,
                     "the compute closed the connection during login; try again", ec.message());
    }
    framer.feed(std::string_view(buf.data(), n));
  }
}

}  // namespace

asio::local::stream_protocol::endpoint compute_socket_path(
    const std::filesystem::path& socket_dir) {
  return asio::local::stream_protocol::endpoint((socket_dir / compute_socket_file()).string());
}

static awaitable<Result<ComputeLogin>> startup_exchange(unix_socket& socket,
                                                        const std::filesystem::path& socket_dir,
                                                        const pgwire::StartupMessage& startup) {
  boost::system::error_code ec;
  co_await socket.async_connect(compute_socket_path(socket_dir),
                                asio::redirect_error(use_awaitable, ec));
  if (ec) {
    co_return fail(ErrorCode::kUnavailable,
                   "the endpoint's compute is not accepting connections; try again",
                   fmt::format("connect {}: {}", socket_dir.string(), ec.message()));
  }
  // Named buffers throughout: GCC 12 mishandles temporaries that live across co_await.
  const std::string packet = pgwire::encode_startup_message(startup);
  co_await asio::async_write(socket, asio::buffer(packet), asio::redirect_error(use_awaitable, ec));
  if (ec)
    co_return fail(ErrorCode::kUnavailable,
                   "the compute closed the connection during login; try again");
  ComputeLogin login;
  pgwire::MessageFramer framer(kMaxComputeMessage);
  auto st = co_await read_messages(socket, framer, [&](const pgwire::Message& m) -> Result<bool> {
    switch (m.type) {
      case 'R':
        if (m.body.size() >= 4 && pgwire::load_be32(m.body.data()) == 0) return false;
        return fail(ErrorCode::kInternal, "the compute asked the proxy for a password",
                    "its pg_hba.conf must trust local connections");
      case 'E':
        login.error = pgwire::frame('E', m.body);
        return true;
      case 'K':
        if (m.body.size() != 8)
          return fail(ErrorCode::kInternal, "the compute sent a malformed BackendKeyData");
        login.process_id = static_cast<std::int32_t>(pgwire::load_be32(m.body.data()));
        login.secret_key = static_cast<std::int32_t>(pgwire::load_be32(m.body.data() + 4));
        return false;
      case 'S':
      case 'N':
        login.parameter_messages += pgwire::frame(m.type, m.body);
        return false;
      case 'Z':
        login.ready_message = pgwire::frame('Z', m.body);
        return true;
      case 'v':
        return false;
      default:
        return fail(ErrorCode::kInternal,
                    fmt::format("the compute sent message '{}' during login", m.type));
    }
  });
  if (!st) co_return std::unexpected(st.error());
  co_return login;
}

awaitable<Result<ComputeLogin>> open_compute_session(unix_socket& socket,
                                                     const std::filesystem::path& socket_dir,
                                                     const pgwire::StartupMessage& startup,
                                                     std::chrono::milliseconds deadline) {
  SocketDeadline limit(socket, deadline);
  auto login = co_await startup_exchange(socket, socket_dir, startup);
  if (limit.expired()) {
    co_return fail(ErrorCode::kUnavailable,
                   fmt::format("the endpoint's compute did not answer within {} ms; try again",
                               deadline.count()),
                   socket_dir.string());
  }
  co_return login;
}

awaitable<Status> open_admin_session(unix_socket& s, const std::filesystem::path& socket_dir,
                                     const std::string& admin_user) {
  pgwire::StartupMessage startup;
  startup.set("user", admin_user);
  startup.set("database", "postgres");
  startup.set("application_name", "argon_proxy");
  auto login = co_await startup_exchange(s, socket_dir, startup);  // the pool bounds the exchange
  if (!login) co_return std::unexpected(login.error());
  if (login->error) {
    const auto e = pgwire::parse_error_response(std::string_view(*login->error).substr(5));
    // Out of connection slots, starting up or shutting down: a moment later it may work.
    if (e.sqlstate == "53300" || e.sqlstate.starts_with("57P")) {
      co_return fail(ErrorCode::kUnavailable,
                     fmt::format("the endpoint's compute cannot take the proxy's password check "
                                 "now ({}); try again",
                                 e.message));
    }
    co_return fail(ErrorCode::kInternal,
                   "the proxy could not read the role's password from the compute", e.message);
  }
  // The verifier query, parsed and planned once for the session's life.
  boost::system::error_code ec;
  const std::string prepare = pgwire::prepare_statement(kRoleSecretStatement, kRoleSecretSql);
  co_await asio::async_write(s, asio::buffer(prepare), asio::redirect_error(use_awaitable, ec));
  if (ec) co_return fail(ErrorCode::kUnavailable, "the compute closed the connection; try again");
  std::optional<std::string> prepare_error;
  pgwire::MessageFramer framer(kMaxComputeMessage);
  auto st = co_await read_messages(s, framer, [&](const pgwire::Message& m) -> Result<bool> {
    if (m.type == 'E') prepare_error = pgwire::parse_error_response(m.body).message;
    return m.type == 'Z';
  });
  if (!st) co_return std::unexpected(st.error());
  if (prepare_error) {
    co_return fail(ErrorCode::kInternal,
                   "the proxy could not read the role's password from the compute", *prepare_error);
  }
  co_return Status{};
}

awaitable<Result<RoleSecret>> query_role_secret(unix_socket& s, const std::string& role) {
  boost::system::error_code ec;
  const std::string query = pgwire::execute_prepared(kRoleSecretStatement, {role});
  co_await asio::async_write(s, asio::buffer(query), asio::redirect_error(use_awaitable, ec));
  if (ec) co_return fail(ErrorCode::kUnavailable, "the compute closed the connection; try again");
  RoleSecret secret;
  std::optional<Error> query_error;
  pgwire::MessageFramer framer(kMaxComputeMessage);
  auto st = co_await read_messages(s, framer, [&](const pgwire::Message& m) -> Result<bool> {
    switch (m.type) {
      case 'D': {
        auto row = pgwire::parse_data_row(m.body);
        if (!row || row->size() != 4) return fail(ErrorCode::kInternal, "unexpected pg_authid row");
        secret.exists = true;
        secret.verifier = (*row)[0].value_or("");
        secret.can_login = (*row)[1] == "true";
        secret.expired = (*row)[2] == "true";
        secret.expires = (*row)[3] == "true";
        return false;
      }
      case 'E': {
        auto e = pgwire::parse_error_response(m.body);
        // The admin session was terminated (compute shutting down): not a query error.
        if (e.severity == "FATAL")
          return fail(ErrorCode::kUnavailable, "the compute is shutting down; try again");
        query_error =
            Error(ErrorCode::kInternal,
                  "the proxy could not read the role's password from the compute", e.message);
        return false;
      }
      case 'Z':
        return true;
      default:
        return false;  // ParseComplete, BindComplete, CommandComplete, notices
    }
  });
  if (!st) co_return std::unexpected(st.error());
  if (query_error) co_return std::unexpected(*query_error);
  co_return secret;
}

}  // namespace argon::proxy
