#include "vmm/config/drive_config.hpp"

#include "vmm/base/error.hpp"
#include "vmm/config/option_list.hpp"

namespace vmm {

DriveConfig parse_drive_option(const std::string& text) {
    DriveConfig drive;
    for (const OptionPart& option : split_option_list(text)) {
        const std::string& key = option.key;
        const std::string& value = option.value;
        const std::string& part = option.text;
        if (key == "path" && !value.empty()) {
            drive.path = value;
        } else if (key == "id" && !value.empty()) {
            if (value.size() > 20) {
                throw Error(
                    fmt::format("--drive {}: id '{}' is longer than 20 bytes", text, value));
            }
            drive.id = value;
        } else if (part == "ro") {
            drive.read_only = true;
        } else if (key == "io" && (value == "sync" || value == "uring")) {
            drive.io = value == "sync" ? BlockEngineKind::Sync : BlockEngineKind::Uring;
        } else {
            throw Error(
                fmt::format("--drive {}: cannot understand '{}' (expected "
                            "path=PATH[,ro][,id=NAME][,io=sync|uring])",
                            text, part));
        }
    }
    if (drive.path.empty()) {
        throw Error(fmt::format("--drive {}: path=PATH is required", text));
    }
    return drive;
}

}  // namespace vmm
