// Strict reading of one JSON object from an API body, the way Firecracker's
// serde types read them: unknown fields are refused, types are exact (an
// integer field takes no 2.5, no "2", no -1), null means "not given".
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace vmm::api {

// Parses a request body; throws Error with Firecracker's "An error occurred
// when deserializing the json body of a request: ..." wording.
nlohmann::json parse_json_body(std::string_view body);

class JsonObject {
  public:
    // Throws Error unless `value` is an object whose fields are all in `fields`.
    JsonObject(const nlohmann::json& value, std::string_view type_name,
               std::initializer_list<std::string_view> fields);

    // Present and not null.
    bool has(std::string_view name) const;

    std::string string(std::string_view name) const;
    std::optional<std::string> optional_string(std::string_view name) const;
    bool boolean(std::string_view name) const;
    std::optional<bool> optional_bool(std::string_view name) const;
    uint64_t uint(std::string_view name, uint64_t min, uint64_t max) const;
    std::optional<uint64_t> optional_uint(std::string_view name, uint64_t min, uint64_t max) const;
    // One of `choices`, spelled exactly.
    std::optional<std::string> optional_enum(std::string_view name,
                                             std::initializer_list<std::string_view> choices) const;
    // The field's value when present and not null (its type is the caller's).
    const nlohmann::json* optional_value(std::string_view name) const;

  private:
    const nlohmann::json& field(std::string_view name) const;

    const nlohmann::json& value_;
    std::string type_name_;
};

// Throws the deserialization Error for `detail`.
[[noreturn]] void throw_body_error(const std::string& detail);

}  // namespace vmm::api
