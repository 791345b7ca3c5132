#include "vmm/seccomp/filter_spec.hpp"

#include <nlohmann/json.hpp>

#include "vmm/base/error.hpp"

namespace vmm::seccomp {

namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& where, const std::string& what) {
    throw Error(fmt::format("{}: {}", where, what));
}

void allow_only_keys(const json& object, const std::string& where,
                     std::initializer_list<std::string_view> keys) {
    for (const auto& [key, value] : object.items()) {
        if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
            fail(where, fmt::format("unknown key \"{}\"", key));
        }
    }
}

uint64_t parse_unsigned(const json& value, const std::string& where, uint64_t max) {
    if (!value.is_number_unsigned() || value.get<uint64_t>() > max) {
        fail(where, fmt::format("must be an integer from 0 to {}", max));
    }
    return value.get<uint64_t>();
}

Action parse_action(const json& value, const std::string& where) {
    static const std::map<std::string, Action::Kind, std::less<>> kNames = {
        {"allow", Action::Kind::Allow},
        {"trap", Action::Kind::Trap},
        {"kill_thread", Action::Kind::KillThread},
        {"kill_process", Action::Kind::KillProcess},
        {"log", Action::Kind::Log},
    };
    if (value.is_string()) {
        auto found = kNames.find(value.get<std::string>());
        if (found == kNames.end()) {
            fail(where, fmt::format("unknown action \"{}\"", value.get<std::string>()));
        }
        return {found->second, 0};
    }
    if (value.is_object() && value.size() == 1) {
        if (value.contains("errno")) {
            return {Action::Kind::Errno,
                    static_cast<uint16_t>(parse_unsigned(value["errno"], where + ".errno", 4095))};
        }
        if (value.contains("trace")) {
            return {Action::Kind::Trace,
                    static_cast<uint16_t>(parse_unsigned(value["trace"], where + ".trace", 65535))};
        }
    }
    fail(where,
         "must be \"allow\", \"trap\", \"kill_thread\", \"kill_process\", \"log\", "
         "{\"errno\": N} or {\"trace\": N}");
}

ArgCondition parse_condition(const json& value, const std::string& where) {
    if (!value.is_object()) {
        fail(where, "must be an object");
    }
    allow_only_keys(value, where, {"index", "type", "op", "val", "comment"});
    for (const char* key : {"index", "type", "op", "val"}) {
        if (!value.contains(key)) {
            fail(where, fmt::format("\"{}\" is missing", key));
        }
    }
    ArgCondition condition;
    condition.index = static_cast<unsigned>(parse_unsigned(value["index"], where + ".index", 5));
    const json& type = value["type"];
    if (type == "dword") {
        condition.width = ArgCondition::Width::Dword;
    } else if (type == "qword") {
        condition.width = ArgCondition::Width::Qword;
    } else {
        fail(where + ".type", "must be \"dword\" or \"qword\"");
    }
    uint64_t max = condition.width == ArgCondition::Width::Dword ? UINT32_MAX : UINT64_MAX;
    condition.value = parse_unsigned(value["val"], where + ".val", max);
    static const std::map<std::string, ArgCondition::Op, std::less<>> kOps = {
        {"eq", ArgCondition::Op::Eq}, {"ne", ArgCondition::Op::Ne}, {"lt", ArgCondition::Op::Lt},
        {"le", ArgCondition::Op::Le}, {"gt", ArgCondition::Op::Gt}, {"ge", ArgCondition::Op::Ge},
    };
    const json& op = value["op"];
    if (op.is_string() && kOps.contains(op.get<std::string>())) {
        condition.op = kOps.find(op.get<std::string>())->second;
    } else if (op.is_object() && op.size() == 1 && op.contains("masked_eq")) {
        condition.op = ArgCondition::Op::MaskedEq;
        condition.mask = parse_unsigned(op["masked_eq"], where + ".op.masked_eq", max);
    } else {
        fail(where + ".op",
             "must be \"eq\", \"ne\", \"lt\", \"le\", \"gt\", \"ge\" or "
             "{\"masked_eq\": MASK}");
    }
    if (value.contains("comment") && value["comment"].is_string()) {
        condition.comment = value["comment"].get<std::string>();
    }
    return condition;
}

SyscallRule parse_rule(const json& value, const std::string& where) {
    if (!value.is_object()) {
        fail(where, "must be an object");
    }
    allow_only_keys(value, where, {"syscall", "args", "comment"});
    if (!value.contains("syscall") || !value["syscall"].is_string() ||
        value["syscall"].get<std::string>().empty()) {
        fail(where, "\"syscall\" must be a syscall name");
    }
    SyscallRule rule;
    rule.syscall = value["syscall"].get<std::string>();
    if (value.contains("args")) {
        const json& args = value["args"];
        if (!args.is_array()) {
            fail(where + ".args", "must be an array");
        }
        for (size_t i = 0; i < args.size(); ++i) {
            rule.args.push_back(parse_condition(args[i], fmt::format("{}.args[{}]", where, i)));
        }
    }
    if (value.contains("comment") && value["comment"].is_string()) {
        rule.comment = value["comment"].get<std::string>();
    }
    return rule;
}

ThreadFilter parse_thread_filter(const json& value, const std::string& where) {
    if (!value.is_object()) {
        fail(where, "must be an object");
    }
    allow_only_keys(value, where, {"default_action", "filter_action", "filter"});
    for (const char* key : {"default_action", "filter_action", "filter"}) {
        if (!value.contains(key)) {
            fail(where, fmt::format("\"{}\" is missing", key));
        }
    }
    ThreadFilter filter;
    filter.default_action = parse_action(value["default_action"], where + ".default_action");
    filter.filter_action = parse_action(value["filter_action"], where + ".filter_action");
    const json& rules = value["filter"];
    if (!rules.is_array()) {
        fail(where + ".filter", "must be an array");
    }
    for (size_t i = 0; i < rules.size(); ++i) {
        filter.rules.push_back(parse_rule(rules[i], fmt::format("{}.filter[{}]", where, i)));
    }
    return filter;
}

json action_json(const Action& action) {
    switch (action.kind) {
        case Action::Kind::Allow:
            return "allow";
        case Action::Kind::Trap:
            return "trap";
        case Action::Kind::KillThread:
            return "kill_thread";
        case Action::Kind::KillProcess:
            return "kill_process";
        case Action::Kind::Log:
            return "log";
        case Action::Kind::Errno:
            return json{{"errno", action.value}};
        case Action::Kind::Trace:
            return json{{"trace", action.value}};
    }
    return "trap";
}

json condition_json(const ArgCondition& condition) {
    static const char* const kOps[] = {"eq", "ne", "lt", "le", "gt", "ge"};
    json out = {
        {"index", condition.index},
        {"type", condition.width == ArgCondition::Width::Dword ? "dword" : "qword"},
        {"val", condition.value},
    };
    if (condition.op == ArgCondition::Op::MaskedEq) {
        out["op"] = json{{"masked_eq", condition.mask}};
    } else {
        out["op"] = kOps[static_cast<int>(condition.op)];
    }
    if (!condition.comment.empty()) {
        out["comment"] = condition.comment;
    }
    return out;
}

}  // namespace

FilterSet parse_filter_json(std::string_view text) {
    json document = json::parse(text, nullptr, false);
    if (document.is_discarded()) {
        throw Error("not valid JSON");
    }
    if (!document.is_object() || document.empty()) {
        throw Error("must be a JSON object of thread kinds (\"vmm\", \"api\", \"vcpu\")");
    }
    FilterSet filters;
    for (const auto& [kind, value] : document.items()) {
        if (kind != "vmm" && kind != "api" && kind != "vcpu") {
            fail(kind, "unknown thread kind (\"vmm\", \"api\" or \"vcpu\")");
        }
        filters[kind] = parse_thread_filter(value, kind);
    }
    return filters;
}

std::string to_json(const FilterSet& filters) {
    json document = json::object();
    for (const auto& [kind, filter] : filters) {
        json rules = json::array();
        for (const SyscallRule& rule : filter.rules) {
            json entry = {{"syscall", rule.syscall}};
            if (!rule.args.empty()) {
                json args = json::array();
                for (const ArgCondition& condition : rule.args) {
                    args.push_back(condition_json(condition));
                }
                entry["args"] = std::move(args);
            }
            if (!rule.comment.empty()) {
                entry["comment"] = rule.comment;
            }
            rules.push_back(std::move(entry));
        }
        document[kind] = {
            {"default_action", action_json(filter.default_action)},
            {"filter_action", action_json(filter.filter_action)},
            {"filter", std::move(rules)},
        };
    }
    return document.dump(2) + "\n";
}

}  // namespace vmm::seccomp
