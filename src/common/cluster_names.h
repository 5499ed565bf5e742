// Names every cluster Argon runs shares, defined once: argond's internal superuser (created by
// initdb, reachable only through a compute's private 0700 socket directory, refused at the proxy)
// and the file name of a compute's unix socket.
#pragma once

#include <string>
#include <string_view>

namespace argon {

inline constexpr std::string_view kAdminRole = "argon_admin";
// Only names the socket file: computes listen on no TCP port.
inline constexpr int kComputePort = 5432;

// The socket file inside a compute's socket directory (PostgreSQL names it after the port).
inline std::string compute_socket_file() { return ".s.PGSQL." + std::to_string(kComputePort); }

}  // namespace argon
