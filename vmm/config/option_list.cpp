#include "vmm/config/option_list.hpp"

namespace vmm {

std::vector<OptionPart> split_option_list(const std::string& text) {
    std::vector<OptionPart> parts;
    size_t start = 0;
    while (true) {
        size_t comma = text.find(',', start);
        std::string part = text.substr(start, comma == std::string::npos ? comma : comma - start);
        size_t equals = part.find('=');
        parts.push_back({part, part.substr(0, equals),
                         equals == std::string::npos ? "" : part.substr(equals + 1),
                         equals != std::string::npos});
        if (comma == std::string::npos) {
            return parts;
        }
        start = comma + 1;
    }
}

}  // namespace vmm
