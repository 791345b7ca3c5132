// libFuzzer target: what a user hands the VMM before anything boots. The
// first byte picks the parser, the rest is its input:
//   0 a --config-file document, then validate_config() on what it set
//   1 a command line: the rest split at NUL bytes into argv, then
//     validate_config() on what parse_command_line() accepted
//   2 a --drive option list, 3 a --net option list
//   4 the option-list splitter itself, 5 a --cpuid-mask list
// Each must be accepted or refused (an Error, or the usage status from the
// command line), never crash; what is accepted must hold what its parser
// promises (a drive has a path, a net exactly one tap, the splitter loses
// no byte).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "arch/x86_64/cpuid.hpp"
#include "fuzz_support.hpp"
#include "vmm/api/firecracker_model.hpp"
#include "vmm/api/json_object.hpp"
#include "vmm/cli.hpp"
#include "vmm/config/option_list.hpp"
#include "vmm/core/stop_request.hpp"

// validate_config() checks the mask through the arch port; the port's
// Platform needs KVM, so the fuzzer gives it the parser directly, as
// platform.cpp does.
namespace vmm::arch {
void check_cpu_feature_mask(const std::string& mask) {
    x86::parse_cpuid_mask(mask);
}
}  // namespace vmm::arch

namespace {

namespace api = vmm::api;
constexpr size_t kMaxArguments = 64;

// The parsers report usage errors on stderr and help on stdout, thousands of
// times a second here: both go to /dev/null while they run. Sanitizer and
// libFuzzer reports use their own descriptors and stay visible.
class Quiet {
  public:
    Quiet() : saved_stderr_(stderr), saved_cout_(std::cout.rdbuf(&sink_)) {
        static FILE* null = std::fopen("/dev/null", "w");
        if (null == nullptr) {
            std::abort();
        }
        stderr = null;
        saved_cerr_ = std::cerr.rdbuf(&sink_);
    }
    ~Quiet() {
        stderr = saved_stderr_;
        std::cout.rdbuf(saved_cout_);
        std::cerr.rdbuf(saved_cerr_);
    }

  private:
    std::stringbuf sink_;
    FILE* saved_stderr_;
    std::streambuf* saved_cout_;
    std::streambuf* saved_cerr_ = nullptr;
};

void validate(const vmm::VmConfig& config) {
    try {
        vmm::validate_config(config);
    } catch (const vmm::Error&) {
    }
}

void command_line(const std::string& text) {
    std::vector<std::string> arguments{"vmm"};
    size_t start = 0;
    while (start <= text.size() && arguments.size() < kMaxArguments) {
        size_t end = text.find('\0', start);
        if (end == std::string::npos) {
            end = text.size();
        }
        arguments.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    std::vector<char*> argv;
    for (auto& argument : arguments) {
        argv.push_back(argument.data());
    }
    argv.push_back(nullptr);
    vmm::CliResult result;
    {
        Quiet quiet;
        result = vmm::parse_command_line(int(arguments.size()), argv.data());
    }
    if (!result.options) {
        FUZZ_CHECK(result.exit_status == 0 || result.exit_status == vmm::exit_status::kUsage ||
                   result.exit_status == vmm::exit_status::kError);  // --describe-snapshot
        return;
    }
    const vmm::LaunchOptions& options = *result.options;
    FUZZ_CHECK(options.boot_now == !options.config.kernel_path.empty());
    FUZZ_CHECK(options.boot_now || options.config_file || options.api_socket);
    FUZZ_CHECK(!(options.boot_now && options.config_file));
    FUZZ_CHECK(options.max_payload_bytes > 0);
    for (const auto& drive : options.config.drives) {
        FUZZ_CHECK(!drive.path.empty());
    }
    validate(options.config);
}

void drive_option(const std::string& text) {
    try {
        vmm::DriveConfig drive = vmm::parse_drive_option(text);
        FUZZ_CHECK(!drive.path.empty());
        FUZZ_CHECK(drive.id.size() <= 20);
    } catch (const vmm::Error&) {
    }
}

void net_option(const std::string& text) {
    try {
        vmm::NetConfig net = vmm::parse_net_option(text);
        FUZZ_CHECK(net.tap_name.empty() != (net.tap_fd < 0));
        FUZZ_CHECK(net.tap_name.size() <= 15);
        FUZZ_CHECK(net.tap_fd < 0 || net.tap_fd > 2);
    } catch (const vmm::Error&) {
    }
}

void option_list(const std::string& text) {
    std::vector<vmm::OptionPart> parts = vmm::split_option_list(text);
    FUZZ_CHECK(!parts.empty());
    std::string joined;
    for (size_t i = 0; i < parts.size(); ++i) {
        const vmm::OptionPart& part = parts[i];
        FUZZ_CHECK(part.text.find(',') == std::string::npos);
        FUZZ_CHECK(part.key.find('=') == std::string::npos);
        FUZZ_CHECK(part.text == (part.has_value ? part.key + "=" + part.value : part.key));
        FUZZ_CHECK(part.has_value || part.value.empty());
        joined += (i == 0 ? "" : ",") + part.text;
    }
    FUZZ_CHECK(joined == text);
}

void config_document(const std::string& text) {
    vmm::VmConfig config;
    try {
        api::apply_config_document(api::parse_json_body(text), config);
    } catch (const vmm::Error&) {
        return;
    }
    validate(config);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) {
        return -1;
    }
    std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] % 6) {
        case 0:
            config_document(text);
            break;
        case 1:
            command_line(text);
            break;
        case 2:
            drive_option(text);
            break;
        case 3:
            net_option(text);
            break;
        case 4:
            option_list(text);
            break;
        case 5:
            try {
                vmm::x86::parse_cpuid_mask(text);
            } catch (const vmm::Error&) {
            }
            break;
    }
    return 0;
}
