// Opens a file the user named (kernel, initrd, disk image, config file)
// without ever waiting on it: a named pipe or a device that waits for a peer
// must be an error at once, not a hang of startup or of the API's loop.
//
// Symlinks are followed, as Firecracker does for its drives and boot files:
// a link into an image store is a common setup, and confining which paths
// the VMM may reach is the jailer's job (its chroot resolves links inside the
// jail), not this check's.
#pragma once

#include <sys/stat.h>

#include <string>
#include <string_view>

#include "vmm/base/unique_fd.hpp"

namespace vmm {

struct InputFile {
    UniqueFd fd;       // blocking again (O_NONBLOCK cleared), close-on-exec
    struct stat info;  // fstat of fd
};

enum class InputKind {
    RegularFile,               // kernel, initrd, config file
    RegularFileOrBlockDevice,  // disk images
};

// Opens `path` with `flags` (O_RDONLY or O_RDWR) plus O_NONBLOCK, O_NOCTTY
// and O_CLOEXEC, then refuses anything but `kind`. Throws Error naming
// `what` and `path`: "cannot open kernel '/x': No such file or directory",
// "kernel '/x' is a directory", "kernel '/x' is a named pipe, not a regular
// file".
InputFile open_input_file(const std::string& path, int flags, std::string_view what,
                          InputKind kind = InputKind::RegularFile);

}  // namespace vmm
