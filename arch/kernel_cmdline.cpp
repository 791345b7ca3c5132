#include "arch/kernel_cmdline.hpp"

namespace vmm {

namespace {

std::string_view trim(std::string_view text) {
    size_t begin = text.find_first_not_of(' ');
    if (begin == std::string_view::npos) {
        return {};
    }
    size_t end = text.find_last_not_of(' ');
    return text.substr(begin, end - begin + 1);
}

}  // namespace

KernelCmdline::KernelCmdline(std::string_view base) : line_(trim(base)) {}

void KernelCmdline::append(std::string_view arguments) {
    std::string_view trimmed = trim(arguments);
    if (trimmed.empty()) {
        return;
    }
    if (!line_.empty()) {
        line_ += ' ';
    }
    line_ += trimmed;
}

bool KernelCmdline::has_key(std::string_view key) const {
    size_t pos = 0;
    while (pos < line_.size()) {
        size_t end = line_.find(' ', pos);
        std::string_view word =
            std::string_view(line_).substr(pos, end == std::string::npos ? end : end - pos);
        if (word == key || (word.size() > key.size() && word.substr(0, key.size()) == key &&
                            word[key.size()] == '=')) {
            return true;
        }
        if (end == std::string::npos) {
            break;
        }
        pos = end + 1;
    }
    return false;
}

}  // namespace vmm
