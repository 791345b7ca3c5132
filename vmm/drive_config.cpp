#include "vmm/drive_config.hpp"

#include "vmm/error.hpp"

namespace vmm {

DriveConfig parse_drive_option(const std::string& text) {
    DriveConfig drive;
    size_t start = 0;
    while (start <= text.size()) {
        size_t comma = text.find(',', start);
        std::string part = text.substr(start, comma == std::string::npos ? comma : comma - start);
        size_t equals = part.find('=');
        std::string key = part.substr(0, equals);
        std::string value = equals == std::string::npos ? "" : part.substr(equals + 1);
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
        if (comma == std::string::npos) {
            break;
        }
        start = comma + 1;
    }
    if (drive.path.empty()) {
        throw Error(fmt::format("--drive {}: path=PATH is required", text));
    }
    return drive;
}

}  // namespace vmm
