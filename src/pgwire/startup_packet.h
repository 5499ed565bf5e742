// The first packet of every PostgreSQL connection, which has no type byte: SSLRequest,
// GSSENCRequest, CancelRequest or a v3 StartupMessage. Parsed from untrusted bytes; every failure
// is an Error whose message can be sent to the client as it is.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/error.h"

namespace argon::pgwire {

struct SslRequest {};
struct GssEncRequest {};
struct CancelRequest {
  std::int32_t process_id = 0;
  std::int32_t secret_key = 0;
};
struct StartupMessage {
  std::int32_t minor_version = 0;  // 3.x; the proxy speaks 3.0 and negotiates down
  std::vector<std::pair<std::string, std::string>> params;

  std::optional<std::string> get(std::string_view key) const;
  void set(std::string_view key, std::string value);
  void erase(std::string_view key);
  // Protocol options (`_pq_.*`) the client asked for; the proxy supports none.
  std::vector<std::string> protocol_options() const;
};

using StartupPacket = std::variant<SslRequest, GssEncRequest, CancelRequest, StartupMessage>;

// Validates the 4-byte length word that opens a startup packet and returns the body length that
// follows it.
Result<std::size_t> startup_body_length(std::string_view length_word);

// Parses the body (everything after the length word).
Result<StartupPacket> parse_startup_packet(std::string_view body);

// Serializes a v3.0 StartupMessage (the proxy's login to a compute).
std::string encode_startup_message(const StartupMessage& m);
std::string encode_cancel_request(const CancelRequest& c);

}  // namespace argon::pgwire
