// The filesystem side of the API socket: making room for it at a path
// (refusing anything there but a stale socket), binding it with mode 0600,
// and removing it again only if it is still ours.
#pragma once

#include <sys/types.h>

#include <string>

#include "vmm/base/unique_fd.hpp"

namespace vmm::api {

// Throws vmm::Error naming `path` if something exists there, unless it is a
// socket nobody accepts on (connect() fails with ECONNREFUSED), which is
// unlinked.
void remove_stale_socket(const std::string& path);

// A non-blocking, close-on-exec AF_UNIX stream socket bound at `path` with
// mode 0600 and listening. The path must be free (see remove_stale_socket).
struct BoundSocket {
    UniqueFd fd;
    dev_t device = 0;  // identify the socket file, for unlink_if_ours
    ino_t inode = 0;
};
BoundSocket bind_listening_socket(const std::string& path, int backlog);

// Unlinks `path` if it is still the socket file that bind_listening_socket made.
void unlink_if_ours(const std::string& path, const BoundSocket& socket);

}  // namespace vmm::api
