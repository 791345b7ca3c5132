#include "devices/legacy/i8042.hpp"

#include <algorithm>

namespace vmm {

namespace {
constexpr uint64_t kDataOffset = 0;
constexpr uint64_t kCommandOffset = 4;
constexpr uint8_t kStatusOutputFull = 0x01;
constexpr uint8_t kStatusSystemFlag = 0x04;
constexpr uint8_t kCmdReadCommandByte = 0x20;
constexpr uint8_t kCmdWriteCommandByte = 0x60;
constexpr uint8_t kCmdSelfTest = 0xaa;
constexpr uint8_t kSelfTestPassed = 0x55;
constexpr uint8_t kCmdInterfaceTest = 0xab;
constexpr uint8_t kCmdPulseReset = 0xfe;
}  // namespace

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(mutex_);
    std::fill(data.begin(), data.end(), 0xff);
    if (data.size() != 1) {
        return;
    }
    if (offset == kDataOffset) {
        data[0] = output_.value_or(0);
        output_.reset();
    } else if (offset == kCommandOffset) {
        data[0] = kStatusSystemFlag | (output_ ? kStatusOutputFull : 0);
    }
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
    if (data.size() != 1) {
        return;
    }
    bool reset = false;
    {
        std::lock_guard lock(mutex_);
        uint8_t value = data[0];
        if (offset == kDataOffset && expecting_command_byte_) {
            command_byte_ = value;
            expecting_command_byte_ = false;
        } else if (offset == kCommandOffset) {
            switch (value) {
                case kCmdReadCommandByte:
                    output_ = command_byte_;
                    break;
                case kCmdWriteCommandByte:
                    expecting_command_byte_ = true;
                    break;
                case kCmdSelfTest:
                    output_ = kSelfTestPassed;
                    break;
                case kCmdInterfaceTest:
                    output_ = 0;
                    break;
                case kCmdPulseReset:
                    reset = true;
                    break;
                default:
                    break;  // keyboard and aux port commands: no devices
            }
        }
    }
    if (reset) {
        on_reset_();
    }
}

}  // namespace vmm
