// Builds the guest kernel command line from the user's (or the default) and
// the arguments devices and the CPU profile add.
#pragma once

#include <string>
#include <string_view>

namespace vmm {

class KernelCmdline {
  public:
    explicit KernelCmdline(std::string_view base);

    // Appends a space-separated argument (or several).
    void append(std::string_view arguments);
    // True if some argument is `key` or starts with `key=`.
    bool has_key(std::string_view key) const;
    const std::string& str() const { return line_; }

  private:
    std::string line_;
};

}  // namespace vmm
