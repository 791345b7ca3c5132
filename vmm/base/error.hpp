// Error handling: the VMM reports failures as exceptions carrying context.
// Error is for bad input or an impossible request (a one-line message for the
// user); SystemError adds the errno of the failing host call.
#pragma once

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace vmm {

class Error : public std::runtime_error {
  public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

class SystemError : public Error {
  public:
    SystemError(const std::string& what, int err)
        : Error(fmt::format("{}: {}", what, std::strerror(err))), errno_(err) {}
    int error_number() const { return errno_; }

  private:
    int errno_;
};

// Throws SystemError with the current errno; for use right after a failing call.
[[noreturn]] inline void throw_errno(const std::string& what) {
    throw SystemError(what, errno);
}

}  // namespace vmm
