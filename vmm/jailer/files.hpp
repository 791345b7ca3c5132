// Small checked file operations for the jailer's setup: each throws
// SystemError naming the path.
#pragma once

#include <sys/types.h>

#include <string>

namespace vmm::jailer {

std::string read_text_file(const std::string& path);
// Writes `text` in one write(2), as cgroup files want it.
void write_text_file(const std::string& path, const std::string& text);
// mkdir that accepts an existing directory (not a symlink to one).
void make_directory(const std::string& path, mode_t mode);
// Creates `path` and every missing folder above it.
void make_directories(const std::string& path, mode_t mode);

}  // namespace vmm::jailer
