#include "vmm/api/json_object.hpp"

#include <fmt/format.h>

#include "vmm/base/error.hpp"

namespace vmm::api {

namespace {

std::string type_of(const nlohmann::json& value) {
    switch (value.type()) {
        case nlohmann::json::value_t::null:
            return "null";
        case nlohmann::json::value_t::boolean:
            return fmt::format("boolean `{}`", value.get<bool>());
        case nlohmann::json::value_t::number_integer:
        case nlohmann::json::value_t::number_unsigned:
            return fmt::format("integer `{}`", value.dump());
        case nlohmann::json::value_t::number_float:
            return fmt::format("floating point `{}`", value.dump());
        case nlohmann::json::value_t::string:
            return fmt::format("string {}", value.dump());
        case nlohmann::json::value_t::array:
            return "a sequence";
        case nlohmann::json::value_t::object:
            return "a map";
        default:
            return "an unsupported value";
    }
}

}  // namespace

void throw_body_error(const std::string& detail) {
    throw Error(fmt::format("An error occurred when deserializing the json body of a request: {}.",
                            detail));
}

nlohmann::json parse_json_body(std::string_view body) {
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
        throw_body_error("the request has no body (a JSON object is expected)");
    }
    try {
        // Depth is bounded by the body size limit; nlohmann parses iteratively
        // enough for 50 KiB of nesting.
        return nlohmann::json::parse(body);
    } catch (const nlohmann::json::exception& e) {
        // A syntax error, or a number too large for a double (out_of_range).
        // nlohmann's message starts with "[json.exception.parse_error.101] ".
        std::string what = e.what();
        auto bracket = what.find("] ");
        throw_body_error(bracket == std::string::npos ? what : what.substr(bracket + 2));
    }
}

JsonObject::JsonObject(const nlohmann::json& value, std::string_view type_name,
                       std::initializer_list<std::string_view> fields)
    : value_(value), type_name_(type_name) {
    if (!value.is_object()) {
        throw_body_error(
            fmt::format("invalid type: {}, expected struct {}", type_of(value), type_name_));
    }
    for (const auto& [key, unused] : value.items()) {
        bool known = false;
        for (std::string_view field : fields) {
            known = known || key == field;
        }
        if (!known) {
            std::string expected;
            for (std::string_view field : fields) {
                expected += fmt::format("{}`{}`", expected.empty() ? "" : ", ", field);
            }
            throw_body_error(fmt::format("unknown field `{}`, expected one of {}", key, expected));
        }
    }
}

bool JsonObject::has(std::string_view name) const {
    auto it = value_.find(name);
    return it != value_.end() && !it->is_null();
}

const nlohmann::json& JsonObject::field(std::string_view name) const {
    if (!has(name)) {
        throw_body_error(fmt::format("missing field `{}` in {}", name, type_name_));
    }
    return *value_.find(name);
}

const nlohmann::json* JsonObject::optional_value(std::string_view name) const {
    return has(name) ? &*value_.find(name) : nullptr;
}

std::string JsonObject::string(std::string_view name) const {
    const nlohmann::json& value = field(name);
    if (!value.is_string()) {
        throw_body_error(
            fmt::format("invalid type: {}, expected a string for `{}`", type_of(value), name));
    }
    return value.get<std::string>();
}

std::optional<std::string> JsonObject::optional_string(std::string_view name) const {
    return has(name) ? std::optional(string(name)) : std::nullopt;
}

bool JsonObject::boolean(std::string_view name) const {
    const nlohmann::json& value = field(name);
    if (!value.is_boolean()) {
        throw_body_error(
            fmt::format("invalid type: {}, expected a boolean for `{}`", type_of(value), name));
    }
    return value.get<bool>();
}

std::optional<bool> JsonObject::optional_bool(std::string_view name) const {
    return has(name) ? std::optional(boolean(name)) : std::nullopt;
}

uint64_t JsonObject::uint(std::string_view name, uint64_t min, uint64_t max) const {
    const nlohmann::json& value = field(name);
    // nlohmann keeps integers built in code as signed even when positive.
    bool negative =
        value.is_number_integer() && !value.is_number_unsigned() && value.get<int64_t>() < 0;
    if (!value.is_number_integer()) {
        throw_body_error(fmt::format("invalid type: {}, expected an unsigned integer for `{}`",
                                     type_of(value), name));
    }
    if (negative || value.get<uint64_t>() < min || value.get<uint64_t>() > max) {
        throw_body_error(fmt::format("invalid value: {} for `{}`, expected {} to {}",
                                     type_of(value), name, min, max));
    }
    return value.get<uint64_t>();
}

std::optional<uint64_t> JsonObject::optional_uint(std::string_view name, uint64_t min,
                                                  uint64_t max) const {
    return has(name) ? std::optional(uint(name, min, max)) : std::nullopt;
}

std::optional<std::string> JsonObject::optional_enum(
    std::string_view name, std::initializer_list<std::string_view> choices) const {
    std::optional<std::string> value = optional_string(name);
    if (!value) {
        return std::nullopt;
    }
    std::string expected;
    for (std::string_view choice : choices) {
        if (*value == choice) {
            return value;
        }
        expected += fmt::format("{}`{}`", expected.empty() ? "" : ", ", choice);
    }
    throw_body_error(
        fmt::format("unknown variant `{}` for `{}`, expected one of {}", *value, name, expected));
}

}  // namespace vmm::api
