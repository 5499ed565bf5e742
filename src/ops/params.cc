#include "ops/params.h"

#include <fmt/format.h>

#include <array>
#include <boost/json.hpp>
#include <utility>

namespace argon::ops {

namespace json = boost::json;

namespace {

struct KindName {
  ActionKind kind;
  std::string_view name;  // operations.kind
  std::string_view neon;  // operations.action
};
constexpr std::array kKinds{
    KindName{ActionKind::kCreateBranch, "create_branch", "create_timeline"},
    KindName{ActionKind::kRestoreBranch, "restore_branch", "create_timeline"},
    KindName{ActionKind::kFinalizeRestore, "finalize_restore", "swap_binding_id"},
    KindName{ActionKind::kResetBranch, "reset_branch", "create_timeline"},
    KindName{ActionKind::kCreateSnapshot, "create_snapshot", "create_timeline"},
    KindName{ActionKind::kDeleteSnapshot, "delete_snapshot", "delete_timeline"},
    KindName{ActionKind::kDeleteBranch, "delete_branch", "delete_timeline"},
    KindName{ActionKind::kStartCompute, "start_compute", "start_compute"},
    KindName{ActionKind::kSuspendCompute, "suspend_compute", "suspend_compute"},
    KindName{ActionKind::kApplyConfig, "apply_config", "apply_config"},
};

constexpr std::array<std::pair<params::ChangeKind, std::string_view>, 6> kChangeNames{{
    {params::ChangeKind::kCreateRole, "create_role"},
    {params::ChangeKind::kResetPassword, "reset_password"},
    {params::ChangeKind::kDeleteRole, "delete_role"},
    {params::ChangeKind::kCreateDatabase, "create_database"},
    {params::ChangeKind::kUpdateDatabase, "update_database"},
    {params::ChangeKind::kDeleteDatabase, "delete_database"},
}};

const KindName& entry(ActionKind kind) {
  for (const auto& k : kKinds) {
    if (k.kind == kind) return k;
  }
  return kKinds.front();  // unreachable: every enumerator is in the table
}

// Reads typed fields out of one JSON object; the first problem is kept and reported once.
class Reader {
 public:
  Reader(const json::object& o, std::string what) : o_(o), what_(std::move(what)) {}

  std::string str(std::string_view key) {
    auto* v = o_.if_contains(key);
    if (!v || !v->is_string()) {
      problem(key, "a string");
      return {};
    }
    return std::string(v->as_string());
  }
  std::optional<std::string> opt_str(std::string_view key) {
    auto* v = o_.if_contains(key);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_string()) {
      problem(key, "a string");
      return std::nullopt;
    }
    return std::string(v->as_string());
  }
  int64_t integer(std::string_view key) {
    auto* v = o_.if_contains(key);
    if (!v || !v->is_int64()) {
      problem(key, "an integer");
      return 0;
    }
    return v->as_int64();
  }
  bool flag(std::string_view key) {
    auto* v = o_.if_contains(key);
    if (!v || v->is_null()) return false;
    if (!v->is_bool()) problem(key, "true or false");
    return v->is_bool() && v->as_bool();
  }
  const json::array* array(std::string_view key) {
    auto* v = o_.if_contains(key);
    if (!v || !v->is_array()) {
      problem(key, "an array");
      return nullptr;
    }
    return &v->as_array();
  }
  void problem(std::string_view key, std::string_view expected) {
    if (!error_) error_ = fmt::format("{}: '{}' must be {}", what_, key, expected);
  }
  const std::optional<std::string>& error() const { return error_; }

 private:
  const json::object& o_;
  std::string what_;
  std::optional<std::string> error_;
};

void put_opt(json::object& o, std::string_view key, const std::optional<std::string>& v) {
  if (v) o[key] = *v;
}

}  // namespace

std::string_view to_string(ActionKind kind) { return entry(kind).name; }
std::string_view neon_action(ActionKind kind) { return entry(kind).neon; }

bool is_compute_kind(ActionKind kind) {
  return kind == ActionKind::kStartCompute || kind == ActionKind::kSuspendCompute;
}

std::optional<ActionKind> parse_action_kind(std::string_view name) {
  for (const auto& k : kKinds) {
    if (k.name == name) return k.kind;
  }
  return std::nullopt;
}

ActionKind kind_of(const ActionParams& p) {
  return std::visit([](const auto& v) { return std::decay_t<decltype(v)>::kKind; }, p);
}

json::object to_json(const ActionParams& p) {
  json::object o;
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, params::CreateBranch>) {
          o["source"] = v.source == params::CreateBranch::Source::kTemplate ? "template" : "parent";
          put_opt(o, "parent_branch_id", v.parent_branch_id);
          put_opt(o, "point_lsn", v.point_lsn);
          put_opt(o, "point_time", v.point_time);
        } else if constexpr (std::is_same_v<T, params::RestoreBranch>) {
          o["source"] = "snapshot";
          o["snapshot_id"] = v.snapshot_id;
        } else if constexpr (std::is_same_v<T, params::FinalizeRestore>) {
          o["target_branch_id"] = v.target_branch_id;
          put_opt(o, "old_name", v.old_name);
        } else if constexpr (std::is_same_v<T, params::ResetBranch>) {
          o["source"] = "reset";
          o["source_branch_id"] = v.source_branch_id;
          put_opt(o, "preserve_branch_id", v.preserve_branch_id);
          put_opt(o, "point_lsn", v.point_lsn);
          put_opt(o, "point_time", v.point_time);
        } else if constexpr (std::is_same_v<T, params::CreateSnapshot>) {
          o["snapshot_id"] = v.snapshot_id;
          put_opt(o, "wal_end", v.wal_end);
          put_opt(o, "point_lsn", v.point_lsn);
          put_opt(o, "point_time", v.point_time);
        } else if constexpr (std::is_same_v<T, params::DeleteSnapshot>) {
          o["snapshot_id"] = v.snapshot_id;
        } else if constexpr (std::is_same_v<T, params::SuspendCompute>) {
          o["branch_id"] = v.branch_id;
          if (v.delete_endpoint) o["delete_endpoint"] = true;
        } else if constexpr (std::is_same_v<T, params::ApplyConfig>) {
          json::array changes;
          for (const auto& c : v.changes) {
            json::object co;
            for (const auto& [k, name] : kChangeNames) {
              if (k == c.kind) co["kind"] = name;
            }
            if (!c.name.empty()) co["name"] = c.name;
            if (c.id) co["id"] = c.id;
            if (!c.old_name.empty()) co["old_name"] = c.old_name;
            changes.push_back(std::move(co));
          }
          o["changes"] = std::move(changes);
        }
      },
      p);
  return o;
}

Result<ActionParams> parse_params(ActionKind kind, std::string_view text) {
  const std::string what = fmt::format("parameters of a {} operation", to_string(kind));
  std::error_code ec;
  auto value = json::parse(text, ec);
  if (ec || !value.is_object())
    return fail(ErrorCode::kInternal, "an operation's parameters are damaged", what);
  Reader r(value.as_object(), what);
  ActionParams out;
  switch (kind) {
    case ActionKind::kCreateBranch: {
      const std::string source = r.str("source");
      if (source != "template" && source != "parent")
        r.problem("source", "\"template\" or \"parent\"");
      out = params::CreateBranch{source == "template" ? params::CreateBranch::Source::kTemplate
                                                      : params::CreateBranch::Source::kParent,
                                 r.opt_str("parent_branch_id"), r.opt_str("point_lsn"),
                                 r.opt_str("point_time")};
      break;
    }
    case ActionKind::kRestoreBranch:
      out = params::RestoreBranch{r.str("snapshot_id")};
      break;
    case ActionKind::kFinalizeRestore:
      out = params::FinalizeRestore{r.str("target_branch_id"), r.opt_str("old_name")};
      break;
    case ActionKind::kResetBranch:
      out = params::ResetBranch{r.str("source_branch_id"), r.opt_str("preserve_branch_id"),
                                r.opt_str("point_lsn"), r.opt_str("point_time")};
      break;
    case ActionKind::kCreateSnapshot:
      out = params::CreateSnapshot{r.str("snapshot_id"), r.opt_str("wal_end"),
                                   r.opt_str("point_lsn"), r.opt_str("point_time")};
      break;
    case ActionKind::kDeleteSnapshot:
      out = params::DeleteSnapshot{r.str("snapshot_id")};
      break;
    case ActionKind::kDeleteBranch:
      out = params::DeleteBranch{};
      break;
    case ActionKind::kStartCompute:
      out = params::StartCompute{};
      break;
    case ActionKind::kSuspendCompute:
      out = params::SuspendCompute{r.str("branch_id"), r.flag("delete_endpoint")};
      break;
    case ActionKind::kApplyConfig: {
      params::ApplyConfig ac;
      if (const auto* changes = r.array("changes")) {
        for (const auto& cv : *changes) {
          if (!cv.is_object()) {
            r.problem("changes", "an array of objects");
            break;
          }
          Reader c(cv.as_object(), what + ", a change");
          params::ConfigChange change;
          const std::string name = c.str("kind");
          bool known = false;
          for (const auto& [k, n] : kChangeNames) {
            if (n == name) {
              change.kind = k;
              known = true;
            }
          }
          const bool database = change.kind == params::ChangeKind::kCreateDatabase ||
                                change.kind == params::ChangeKind::kUpdateDatabase ||
                                change.kind == params::ChangeKind::kDeleteDatabase;
          if (!known) {
            c.problem("kind", "a known change");
          } else if (database) {
            change.id = c.integer("id");
            if (change.kind == params::ChangeKind::kUpdateDatabase)
              change.old_name = c.str("old_name");
          } else {
            change.name = c.str("name");
          }
          if (c.error())
            return fail(ErrorCode::kInternal, "an operation's parameters are damaged", *c.error());
          ac.changes.push_back(std::move(change));
        }
      }
      out = std::move(ac);
      break;
    }
  }
  if (r.error())
    return fail(ErrorCode::kInternal, "an operation's parameters are damaged", *r.error());
  return out;
}

}  // namespace argon::ops
