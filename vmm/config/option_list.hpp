// "key=value,flag,key=value" as --drive and --net take them.
#pragma once

#include <string>
#include <vector>

namespace vmm {

struct OptionPart {
    std::string text;   // the part as written ("ro", "path=/x")
    std::string key;    // before the first '=' (the whole part without one)
    std::string value;  // after it ("" without one)
    bool has_value;     // whether there was an '='
};

// Splits at every comma; empty parts are kept, so callers reject them.
std::vector<OptionPart> split_option_list(const std::string& text);

}  // namespace vmm
