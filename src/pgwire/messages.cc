#include "pgwire/messages.h"

#include "pgwire/wire_format.h"

namespace argon::pgwire {

std::string frame(char type, std::string_view body) {
  std::string out;
  out.reserve(5 + body.size());
  out.push_back(type);
  append_be32(out, static_cast<std::uint32_t>(body.size() + 4));
  out.append(body);
  return out;
}

namespace {

void put_cstring(std::string& out, std::string_view s) {
  // A NUL inside would end the field early and desynchronize the peer; never send one.
  for (char c : s) out.push_back(c == '\0' ? '?' : c);
  out.push_back('\0');
}

std::string auth(std::int32_t code, std::string_view extra = {}) {
  std::string body;
  append_be32(body, static_cast<std::uint32_t>(code));
  body.append(extra);
  return frame('R', body);
}

}  // namespace

std::string error_response(const ErrorFields& e) {
  std::string body;
  body.push_back('S');
  put_cstring(body, e.severity);
  body.push_back('V');
  put_cstring(body, e.severity);
  body.push_back('C');
  put_cstring(body, e.sqlstate);
  body.push_back('M');
  put_cstring(body, e.message);
  if (!e.detail.empty()) {
    body.push_back('D');
    put_cstring(body, e.detail);
  }
  if (!e.hint.empty()) {
    body.push_back('H');
    put_cstring(body, e.hint);
  }
  body.push_back('\0');
  return frame('E', body);
}

ErrorFields parse_error_response(std::string_view body) {
  ErrorFields e;
  e.severity.clear();
  WireReader r(body);
  for (;;) {
    auto field = r.bytes(1);
    if (!field || (*field)[0] == '\0') break;
    auto value = r.cstring();
    if (!value) break;
    switch ((*field)[0]) {
      case 'V':
        e.severity = *value;
        break;
      case 'S':
        if (e.severity.empty()) e.severity = *value;
        break;
      case 'C':
        e.sqlstate = *value;
        break;
      case 'M':
        e.message = *value;
        break;
      case 'D':
        e.detail = *value;
        break;
      case 'H':
        e.hint = *value;
        break;
      default:
        e.other[(*field)[0]] = *value;
        break;
    }
  }
  return e;
}

std::string authentication_ok() { return auth(0); }
std::string authentication_cleartext_password() { return auth(3); }

std::string authentication_sasl(const std::vector<std::string>& mechanisms) {
  std::string extra;
  for (const auto& m : mechanisms) put_cstring(extra, m);
  extra.push_back('\0');
  return auth(10, extra);
}

std::string authentication_sasl_continue(std::string_view data) { return auth(11, data); }
std::string authentication_sasl_final(std::string_view data) { return auth(12, data); }

std::string parameter_status(std::string_view name, std::string_view value) {
  std::string body;
  put_cstring(body, name);
  put_cstring(body, value);
  return frame('S', body);
}

std::string backend_key_data(std::int32_t process_id, std::int32_t secret_key) {
  std::string body;
  append_be32(body, static_cast<std::uint32_t>(process_id));
  append_be32(body, static_cast<std::uint32_t>(secret_key));
  return frame('K', body);
}

std::string ready_for_query(char status) { return frame('Z', std::string_view(&status, 1)); }

std::string negotiate_protocol_version(std::int32_t newest_minor,
                                       const std::vector<std::string>& unsupported) {
  std::string body;
  append_be32(body, static_cast<std::uint32_t>((3 << 16) | newest_minor));
  append_be32(body, static_cast<std::uint32_t>(unsupported.size()));
  for (const auto& o : unsupported) put_cstring(body, o);
  return frame('v', body);
}

Result<SaslInitialResponse> parse_sasl_initial_response(std::string_view body) {
  WireReader r(body);
  auto mech = r.cstring();
  auto len = r.int32();
  if (!mech || !len) return fail(ErrorCode::kBadRequest, "malformed SASLInitialResponse message");
  SaslInitialResponse out{std::string(*mech), {}};
  if (*len >= 0) {
    auto data = r.bytes(static_cast<std::size_t>(*len));
    if (!data) return fail(ErrorCode::kBadRequest, "malformed SASLInitialResponse message");
    out.data = std::string(*data);
  } else if (*len != -1) {
    return fail(ErrorCode::kBadRequest, "malformed SASLInitialResponse message");
  }
  if (!r.at_end()) return fail(ErrorCode::kBadRequest, "malformed SASLInitialResponse message");
  return out;
}

Result<std::string> parse_password_message(std::string_view body) {
  WireReader r(body);
  auto pw = r.cstring();
  if (!pw || !r.at_end()) return fail(ErrorCode::kBadRequest, "malformed password message");
  return std::string(*pw);
}

namespace {

std::string parse_frame(std::string_view statement, std::string_view sql) {
  std::string parse;
  put_cstring(parse, statement);
  put_cstring(parse, sql);
  append_be16(parse, 0);  // parameter types inferred
  return frame('P', parse);
}

// Bind (text in, text out) of `statement` to the unnamed portal and its Execute, the portal
// described between them when `describe`.
std::string bind_execute_frames(std::string_view statement,
                                const std::vector<std::optional<std::string>>& params,
                                bool describe) {
  std::string bind;
  put_cstring(bind, "");  // unnamed portal
  put_cstring(bind, statement);
  append_be16(bind, 0);  // all parameters text
  append_be16(bind, static_cast<std::uint16_t>(params.size()));
  for (const auto& p : params) {
    if (!p) {
      append_be32(bind, 0xffffffffu);
    } else {
      append_be32(bind, static_cast<std::uint32_t>(p->size()));
      bind.append(*p);
    }
  }
  append_be16(bind, 0);  // all results text
  std::string execute;
  put_cstring(execute, "");
  append_be32(execute, 0);  // no row limit
  std::string out = frame('B', bind);
  if (describe) out += frame('D', std::string_view("P\0", 2));
  return out + frame('E', execute);
}

// Parse, Bind and Execute of one unnamed statement.
std::string statement_messages(std::string_view sql,
                               const std::vector<std::optional<std::string>>& params,
                               bool describe) {
  return parse_frame("", sql) + bind_execute_frames("", params, describe);
}

}  // namespace

std::string extended_query(std::string_view sql,
                           const std::vector<std::optional<std::string>>& params) {
  return statement_messages(sql, params, false) + sync_message();
}

std::string described_query(std::string_view sql,
                            const std::vector<std::optional<std::string>>& params) {
  return statement_messages(sql, params, true);
}

std::string sync_message() { return frame('S', {}); }

std::string prepare_statement(std::string_view name, std::string_view sql) {
  return parse_frame(name, sql) + sync_message();
}

std::string execute_prepared(std::string_view name,
                             const std::vector<std::optional<std::string>>& params) {
  return bind_execute_frames(name, params, false) + sync_message();
}

std::string simple_query(std::string_view sql) {
  std::string body;
  put_cstring(body, sql);
  return frame('Q', body);
}

Result<std::vector<FieldDescription>> parse_row_description(std::string_view body) {
  WireReader r(body);
  auto n = r.int16();
  if (!n || *n < 0) return fail(ErrorCode::kBadRequest, "malformed RowDescription message");
  std::vector<FieldDescription> fields;
  fields.reserve(static_cast<std::size_t>(*n));
  for (int i = 0; i < *n; ++i) {
    FieldDescription f;
    auto name = r.cstring();
    auto table = r.int32();
    auto column = r.int16();
    auto type = r.int32();
    auto size = r.int16();
    auto modifier = r.int32();
    auto format = r.int16();
    if (!name || !table || !column || !type || !size || !modifier || !format) {
      return fail(ErrorCode::kBadRequest, "malformed RowDescription message");
    }
    f.name = std::string(*name);
    f.table_oid = static_cast<std::uint32_t>(*table);
    f.column = *column;
    f.type_oid = static_cast<std::uint32_t>(*type);
    f.type_size = *size;
    f.type_modifier = *modifier;
    f.format = *format;
    fields.push_back(std::move(f));
  }
  return fields;
}

std::string terminate_message() { return frame('X', {}); }

Result<std::vector<std::optional<std::string>>> parse_data_row(std::string_view body) {
  WireReader r(body);
  auto n = r.int16();
  if (!n || *n < 0) return fail(ErrorCode::kBadRequest, "malformed DataRow message");
  std::vector<std::optional<std::string>> cols;
  for (int i = 0; i < *n; ++i) {
    auto len = r.int32();
    if (!len) return fail(ErrorCode::kBadRequest, "malformed DataRow message");
    if (*len == -1) {
      cols.emplace_back(std::nullopt);
      continue;
    }
    auto v = *len >= 0 ? r.bytes(static_cast<std::size_t>(*len)) : std::nullopt;
    if (!v) return fail(ErrorCode::kBadRequest, "malformed DataRow message");
    cols.emplace_back(std::string(*v));
  }
  return cols;
}

}  // namespace argon::pgwire
