// libFuzzer target for what the API parses from a client before any handler acts: the request
// target (path and query, as the router splits and decodes it) and the JSON body, read through
// the typed field accessors every handler uses, with the time, integer and cursor parsers. The
// input's first line is the target; the rest is the body. Any crash, sanitizer report, or
// accepted value outside the bounds asked for is a bug.
#include <boost/url/parse.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/input.h"
#include "common/clock.h"

using namespace argon;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void fuzz_fields(const api::Fields& f, int depth) {
  for (const char* key :
       {"name", "branch_id", "parent_id", "type", "owner_name", "target_branch_id"}) {
    if (auto s = f.string(key, 1, 64); s && *s) check(!(*s)->empty() && (*s)->size() <= 64);
  }
  (void)f.boolean("protected");
  (void)f.boolean("finalize_restore");
  if (auto n = f.integer("pg_version", 14, 17); n && *n) check(**n >= 14 && **n <= 17);
  if (auto x = f.number("autoscaling_limit_max_cu", 0.25, 56); x && *x)
    check(**x >= 0.25 && **x <= 56);
  (void)f.time_or_null("expires_at");
  (void)f.object_text("settings");
  if (auto a = f.array("endpoints"); a && *a) {
    for (const auto& v : **a) {
      if (v.is_object()) fuzz_fields(api::Fields(&v.as_object(), "endpoints[]"), depth + 1);
    }
  }
  if (depth > 3) return;
  for (const char* key : {"project", "branch", "endpoint", "snapshot", "role", "database"}) {
    if (auto o = f.object(key); o) fuzz_fields(*o, depth + 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto nl = in.find('\n');
  const std::string_view target = in.substr(0, nl);
  api::HttpRequest req;
  req.method = "POST";
  req.target = std::string(target);
  req.body = nl == std::string_view::npos ? "" : std::string(in.substr(nl + 1));

  if (auto parsed = boost::urls::parse_origin_form(target)) {
    for (auto seg : parsed->segments()) (void)seg;
    for (auto param : parsed->params()) {
      std::string value = param.value;
      (void)api::parse_int_param(value, param.key, 1, 10000);
      (void)api::parse_cursor(value, "o");
      if (auto t = parse_time_span(value)) (void)format_time(t->last_us() / 1'000'000);
    }
  }
  if (auto body = api::parse_body(req)) fuzz_fields(api::Fields(&*body, ""), 0);
  return 0;
}
