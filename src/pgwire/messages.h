// Encoders and decoders for the typed protocol messages the proxy sends or inspects: the backend's
// authentication, error and status messages towards clients, and the frontend messages of the
// proxy's own small client (extended-protocol queries to a compute).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace argon::pgwire {

// Frame a message: type byte, length, body.
std::string frame(char type, std::string_view body);

// An ErrorResponse / NoticeResponse. `severity` is ERROR or FATAL; `sqlstate` five characters.
struct ErrorFields {
  std::string severity = "FATAL";
  std::string sqlstate;
  std::string message;
  std::string detail;
  std::string hint;
  // Every other field by its code ('P' position, 'W' where, 'n' constraint, ...), when parsed.
  std::map<char, std::string> other;
};
std::string error_response(const ErrorFields& e);
// Decodes an ErrorResponse body (unknown fields are ignored).
ErrorFields parse_error_response(std::string_view body);

std::string authentication_ok();
std::string authentication_cleartext_password();
std::string authentication_sasl(const std::vector<std::string>& mechanisms);
std::string authentication_sasl_continue(std::string_view data);
std::string authentication_sasl_final(std::string_view data);
std::string parameter_status(std::string_view name, std::string_view value);
std::string backend_key_data(std::int32_t process_id, std::int32_t secret_key);
std::string ready_for_query(char status = 'I');
std::string negotiate_protocol_version(std::int32_t newest_minor,
                                       const std::vector<std::string>& unsupported);

// SASLInitialResponse ('p' after AuthenticationSASL): mechanism and initial client data.
struct SaslInitialResponse {
  std::string mechanism;
  std::string data;
};
Result<SaslInitialResponse> parse_sasl_initial_response(std::string_view body);
// PasswordMessage ('p' after AuthenticationCleartextPassword).
Result<std::string> parse_password_message(std::string_view body);

// Frontend messages of the proxy's own client: one statement with text parameters, text results.
std::string extended_query(std::string_view sql,
                           const std::vector<std::optional<std::string>>& params);
// The same statement without Sync, its portal described (RowDescription or NoData before the
// rows): one of several statements pipelined before one sync_message().
std::string described_query(std::string_view sql,
                            const std::vector<std::optional<std::string>>& params);
std::string sync_message();
// A named statement prepared once (Parse, Sync), then run with text parameters (Bind, Execute,
// Sync) without being parsed and planned again.
std::string prepare_statement(std::string_view name, std::string_view sql);
std::string execute_prepared(std::string_view name,
                             const std::vector<std::optional<std::string>>& params);
std::string simple_query(std::string_view sql);
std::string terminate_message();

// A RowDescription column.
struct FieldDescription {
  std::string name;
  std::uint32_t table_oid = 0;
  std::int16_t column = 0;
  std::uint32_t type_oid = 0;
  std::int16_t type_size = 0;
  std::int32_t type_modifier = 0;
  std::int16_t format = 0;
};
Result<std::vector<FieldDescription>> parse_row_description(std::string_view body);
// A DataRow body as text columns (NULL = std::nullopt).
Result<std::vector<std::optional<std::string>>> parse_data_row(std::string_view body);

}  // namespace argon::pgwire
