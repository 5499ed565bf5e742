// The proxy's side of a compute's private unix socket: logging a client in on its behalf (the
// socket trusts local connections; only the proxy and argond can reach it) and reading a role's
// current SCRAM verifier, so a password changed with ALTER ROLE counts at once.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "common/error.h"
#include "pgwire/startup_packet.h"

namespace argon::proxy {

struct ComputeLogin {
  std::optional<std::string> error;  // the compute's ErrorResponse (framed), to pass on as it is
  std::int32_t process_id = 0;       // the compute's BackendKeyData
  std::int32_t secret_key = 0;
  std::string parameter_messages;  // ParameterStatus and notices, framed, in order
  std::string ready_message;       // the first ReadyForQuery, framed
};

struct RoleSecret {
  bool exists = false;
  std::string verifier;  // pg_authid.rolpassword
  bool can_login = false;
  bool expired = false;  // rolvaliduntil has passed
  bool expires = false;  // rolvaliduntil is set: `expired` depends on when it was read
};

boost::asio::local::stream_protocol::endpoint compute_socket_path(
    const std::filesystem::path& socket_dir);

// Connects `socket` to the compute and completes the startup for `startup`'s user and database. A
// compute that has not finished within `deadline` costs kUnavailable (and `socket` is closed).
boost::asio::awaitable<Result<ComputeLogin>> open_compute_session(
    boost::asio::local::stream_protocol::socket& socket, const std::filesystem::path& socket_dir,
    const pgwire::StartupMessage& startup, std::chrono::milliseconds deadline);

// Logs `socket` in to the compute as the proxy's admin role, ready for role_secret() queries.
boost::asio::awaitable<Status> open_admin_session(
    boost::asio::local::stream_protocol::socket& socket, const std::filesystem::path& socket_dir,
    const std::string& admin_user);

// Reads `role`'s verifier on an admin session. kUnavailable means the session is gone (the compute
// restarted): open a new one and ask again.
boost::asio::awaitable<Result<RoleSecret>> query_role_secret(
    boost::asio::local::stream_protocol::socket& admin, const std::string& role);

}  // namespace argon::proxy
