// A block drive as the user configured it (--rootfs, --drive).
#pragma once

#include <string>
#include <vector>

namespace vmm {

enum class IoEngineChoice { Auto, Sync, Uring };

struct DriveConfig {
    std::string path;
    std::string id;  // reported to the guest by GET_ID (its serial)
    bool read_only = false;
    bool is_root = false;
    IoEngineChoice io = IoEngineChoice::Auto;
};

// Parses "path=PATH[,ro][,id=NAME][,io=sync|uring]"; throws Error naming the
// bad part.
DriveConfig parse_drive_option(const std::string& text);

}  // namespace vmm
