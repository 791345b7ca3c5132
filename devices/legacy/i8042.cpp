#include "devices/legacy/i8042.hpp"

#include <algorithm>
#include <array>
#include <initializer_list>
#include <utility>

namespace vmm {

namespace {
constexpr uint64_t kDataOffset = 0;
constexpr uint64_t kCommandOffset = 4;

constexpr uint8_t kStatusOutputFull = 0x01;
constexpr uint8_t kStatusSystemFlag = 0x04;
constexpr uint8_t kStatusNotInhibited = 0x10;  // keylock off; Linux warns otherwise

constexpr uint8_t kCtrKeyboardInterrupt = 0x01;
constexpr uint8_t kCtrKeyboardDisabled = 0x10;
constexpr uint8_t kCtrAuxDisabled = 0x20;

constexpr uint8_t kCmdReadCommandByte = 0x20;
constexpr uint8_t kCmdWriteCommandByte = 0x60;
constexpr uint8_t kCmdAuxDisable = 0xa7;
constexpr uint8_t kCmdAuxEnable = 0xa8;
constexpr uint8_t kCmdAuxTest = 0xa9;
constexpr uint8_t kCmdSelfTest = 0xaa;
constexpr uint8_t kCmdKeyboardTest = 0xab;
constexpr uint8_t kCmdKeyboardDisable = 0xad;
constexpr uint8_t kCmdKeyboardEnable = 0xae;
constexpr uint8_t kCmdReadOutputPort = 0xd0;
constexpr uint8_t kCmdWriteOutputPort = 0xd1;
constexpr uint8_t kCmdWriteKeyboardOutput = 0xd2;
constexpr uint8_t kCmdAuxLoop = 0xd3;
constexpr uint8_t kCmdAuxSend = 0xd4;
constexpr uint8_t kCmdPulseReset = 0xfe;

constexpr uint8_t kSelfTestPassed = 0x55;
constexpr uint8_t kAuxClockStuckHigh = 0x02;
constexpr uint8_t kOutputPortReset = 0x01;  // active low

constexpr uint8_t kKbdSetLeds = 0xed;
constexpr uint8_t kKbdEcho = 0xee;
constexpr uint8_t kKbdScanCodeSet = 0xf0;
constexpr uint8_t kKbdGetId = 0xf2;
constexpr uint8_t kKbdSetTypematic = 0xf3;
constexpr uint8_t kKbdEnable = 0xf4;
constexpr uint8_t kKbdResetDisable = 0xf5;
constexpr uint8_t kKbdSetDefaults = 0xf6;
constexpr uint8_t kKbdResend = 0xfe;
constexpr uint8_t kKbdReset = 0xff;
constexpr uint8_t kKbdAck = 0xfa;
constexpr uint8_t kKbdSelfTestPassed = 0xaa;
constexpr std::array<uint8_t, 2> kKbdId = {0xab, 0x83};

// A real keyboard buffers about 16 bytes; two Ctrl+Alt+Del sequences fit.
constexpr size_t kKeyboardBufferSize = 16;
constexpr std::array<uint8_t, 8> kCtrlAltDel = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
}  // namespace

I8042::I8042(std::function<void()> on_reset, std::function<void()> trigger_keyboard_irq)
    : on_reset_(std::move(on_reset)), trigger_keyboard_irq_(std::move(trigger_keyboard_irq)) {}

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
    bool irq = false;
    {
        std::lock_guard lock(mutex_);
        std::fill(data.begin(), data.end(), 0xff);
        if (data.size() != 1) {
            return;
        }
        if (offset == kDataOffset) {
            data[0] = output_.value_or(0);
            output_.reset();
            irq = deliver_keyboard_byte_locked();
        } else if (offset == kCommandOffset) {
            data[0] = kStatusSystemFlag | kStatusNotInhibited | (output_ ? kStatusOutputFull : 0);
        }
    }
    if (irq) {
        trigger_keyboard_irq_();
    }
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
    if (data.size() != 1) {
        return;
    }
    bool reset = false;
    bool irq = false;
    {
        std::lock_guard lock(mutex_);
        uint8_t value = data[0];
        if (offset == kCommandOffset) {
            controller_param_.reset();  // a new command abandons a missing parameter
            irq = controller_command_locked(value, reset);
        } else if (offset == kDataOffset && controller_param_) {
            uint8_t command = *std::exchange(controller_param_, std::nullopt);
            irq = controller_parameter_locked(command, value, reset);
        } else if (offset == kDataOffset) {
            // Sending to the keyboard enables its interface again, as on a real
            // controller (and QEMU's).
            command_byte_ &= ~kCtrKeyboardDisabled;
            keyboard_byte_locked(value);
            irq = deliver_keyboard_byte_locked();
        }
    }
    if (irq) {
        trigger_keyboard_irq_();
    }
    if (reset) {
        on_reset_();
    }
}

bool I8042::send_ctrl_alt_del() {
    bool irq = false;
    {
        std::lock_guard lock(mutex_);
        if (!scanning_ || keyboard_buffer_.size() + kCtrlAltDel.size() > kKeyboardBufferSize) {
            return false;
        }
        keyboard_buffer_.insert(keyboard_buffer_.end(), kCtrlAltDel.begin(), kCtrlAltDel.end());
        irq = deliver_keyboard_byte_locked();
    }
    if (irq) {
        trigger_keyboard_irq_();
    }
    return true;
}

void I8042::answer_locked(uint8_t byte) {
    // A controller answer replaces the output buffer; an unread keyboard byte
    // there goes back to the keyboard so that it is not lost, unless the
    // keyboard is full: then its newest byte makes room. (Without the bound,
    // 0xd2 and 0xaa in turns, never read, grew the buffer by one each time.)
    if (output_ && output_from_keyboard_) {
        keyboard_buffer_.push_front(*output_);
        if (keyboard_buffer_.size() > kKeyboardBufferSize) {
            keyboard_buffer_.pop_back();
        }
    }
    output_ = byte;
    output_from_keyboard_ = false;
}

bool I8042::controller_command_locked(uint8_t command, bool& reset) {
    switch (command) {
        case kCmdReadCommandByte:
            answer_locked(command_byte_);
            break;
        case kCmdWriteCommandByte:
        case kCmdWriteOutputPort:
        case kCmdWriteKeyboardOutput:
        case kCmdAuxLoop:
        case kCmdAuxSend:
            controller_param_ = command;
            break;
        case kCmdAuxDisable:
            command_byte_ |= kCtrAuxDisabled;
            break;
        case kCmdAuxEnable:
            command_byte_ &= ~kCtrAuxDisabled;
            break;
        case kCmdAuxTest:
            answer_locked(kAuxClockStuckHigh);
            break;
        case kCmdSelfTest:
            answer_locked(kSelfTestPassed);
            break;
        case kCmdKeyboardTest:
            answer_locked(0);
            break;
        case kCmdKeyboardDisable:
            command_byte_ |= kCtrKeyboardDisabled;
            break;
        case kCmdKeyboardEnable:
            command_byte_ &= ~kCtrKeyboardDisabled;
            return deliver_keyboard_byte_locked();
        case kCmdReadOutputPort:
            answer_locked(output_port_);
            break;
        case kCmdPulseReset:
            reset = true;
            break;
        default:
            break;  // other output-line pulses, unknown commands: nothing
    }
    return false;
}

bool I8042::controller_parameter_locked(uint8_t command, uint8_t value, bool& reset) {
    switch (command) {
        case kCmdWriteCommandByte: {
            bool was_enabled = command_byte_ & kCtrKeyboardInterrupt;
            command_byte_ = value;
            bool waiting = output_ && output_from_keyboard_;
            // Enabling the interrupt with a keyboard byte waiting is a rising
            // edge on IRQ 1, as on the real controller.
            bool edge = !was_enabled && (value & kCtrKeyboardInterrupt) && waiting;
            return deliver_keyboard_byte_locked() || edge;
        }
        case kCmdWriteOutputPort:
            output_port_ = value;
            reset = !(value & kOutputPortReset);
            return false;
        case kCmdWriteKeyboardOutput:
            // As if the keyboard had sent it.
            answer_locked(value);
            output_from_keyboard_ = true;
            return command_byte_ & kCtrKeyboardInterrupt;
        case kCmdAuxLoop:
            answer_locked(value);  // without the AUX-data status bit: no AUX port
            return false;
        default:
            return false;  // kCmdAuxSend: no device to send to
    }
}

void I8042::keyboard_byte_locked(uint8_t value) {
    // The guest can send commands without reading the answers (Resend keeps
    // the buffer): what a full keyboard buffer cannot take is dropped.
    auto answer = [this](std::initializer_list<uint8_t> bytes) {
        for (uint8_t byte : bytes) {
            if (keyboard_buffer_.size() < kKeyboardBufferSize) {
                keyboard_buffer_.push_back(byte);
            }
        }
    };
    if (keyboard_param_) {
        uint8_t command = *std::exchange(keyboard_param_, std::nullopt);
        if (command == kKbdScanCodeSet && value == 0) {
            answer({kKbdAck, 0x02});  // "get": set 2, what the controller translates
        } else {
            answer({kKbdAck});
        }
        return;
    }
    // A keyboard empties its buffer on every command but Resend.
    if (value != kKbdResend) {
        keyboard_buffer_.clear();
    }
    switch (value) {
        case kKbdSetLeds:
        case kKbdScanCodeSet:
        case kKbdSetTypematic:
            keyboard_param_ = value;
            answer({kKbdAck});
            break;
        case kKbdEcho:
            answer({kKbdEcho});
            break;
        case kKbdGetId:
            answer({kKbdAck, kKbdId[0], kKbdId[1]});
            break;
        case kKbdEnable:
            scanning_ = true;
            answer({kKbdAck});
            break;
        case kKbdResetDisable:
            scanning_ = false;
            answer({kKbdAck});
            break;
        case kKbdSetDefaults:
            answer({kKbdAck});
            break;
        case kKbdReset:
            scanning_ = true;
            answer({kKbdAck, kKbdSelfTestPassed});
            break;
        case kKbdResend:
            answer({last_keyboard_byte_.value_or(kKbdAck)});
            break;
        default:
            answer({kKbdResend});
            break;
    }
}

bool I8042::deliver_keyboard_byte_locked() {
    if (output_ || keyboard_buffer_.empty() || (command_byte_ & kCtrKeyboardDisabled)) {
        return false;
    }
    output_ = keyboard_buffer_.front();
    output_from_keyboard_ = true;
    last_keyboard_byte_ = output_;
    keyboard_buffer_.pop_front();
    return command_byte_ & kCtrKeyboardInterrupt;
}

namespace {

void save_optional(StateWriter& out, const std::optional<uint8_t>& value) {
    out.boolean(value.has_value());
    out.u8(value.value_or(0));
}

std::optional<uint8_t> restore_optional(StateReader& in) {
    bool present = in.boolean();
    uint8_t value = in.u8();
    return present ? std::optional<uint8_t>(value) : std::nullopt;
}

// Only these commands wait for a parameter byte; any other is corruption.
bool is_one_of(const std::optional<uint8_t>& value, std::initializer_list<uint8_t> allowed) {
    return !value || std::find(allowed.begin(), allowed.end(), *value) != allowed.end();
}

}  // namespace

void I8042::save_state(StateWriter& out) const {
    std::lock_guard lock(mutex_);
    save_optional(out, output_);
    out.boolean(output_from_keyboard_);
    out.u8(command_byte_);
    out.u8(output_port_);
    save_optional(out, controller_param_);
    out.bytes(std::vector<uint8_t>(keyboard_buffer_.begin(), keyboard_buffer_.end()));
    save_optional(out, keyboard_param_);
    out.boolean(scanning_);
    save_optional(out, last_keyboard_byte_);
}

void I8042::restore_state(StateReader& in) {
    std::optional<uint8_t> output = restore_optional(in);
    bool output_from_keyboard = in.boolean();
    uint8_t command_byte = in.u8();
    uint8_t output_port = in.u8();
    std::optional<uint8_t> controller_param = restore_optional(in);
    std::vector<uint8_t> keyboard_buffer = in.bytes(kKeyboardBufferSize);
    std::optional<uint8_t> keyboard_param = restore_optional(in);
    bool scanning = in.boolean();
    std::optional<uint8_t> last_keyboard_byte = restore_optional(in);
    if (output_from_keyboard && !output) {
        in.fail("a keyboard byte in an empty output buffer");
    }
    if (!is_one_of(controller_param, {kCmdWriteCommandByte, kCmdWriteOutputPort,
                                      kCmdWriteKeyboardOutput, kCmdAuxLoop, kCmdAuxSend})) {
        in.fail(fmt::format("controller command {:#x} takes no parameter", *controller_param));
    }
    if (!is_one_of(keyboard_param, {kKbdSetLeds, kKbdScanCodeSet, kKbdSetTypematic})) {
        in.fail(fmt::format("keyboard command {:#x} takes no parameter", *keyboard_param));
    }
    bool irq = false;
    {
        std::lock_guard lock(mutex_);
        output_ = output;
        output_from_keyboard_ = output_from_keyboard;
        command_byte_ = command_byte;
        output_port_ = output_port;
        controller_param_ = controller_param;
        keyboard_buffer_.assign(keyboard_buffer.begin(), keyboard_buffer.end());
        keyboard_param_ = keyboard_param;
        scanning_ = scanning;
        last_keyboard_byte_ = last_keyboard_byte;
        // IRQ 1 is high while a keyboard byte waits with its interrupt
        // enabled; the restored interrupt controller did not see that edge.
        irq = output_ && output_from_keyboard_ && (command_byte_ & kCtrKeyboardInterrupt);
        // A byte the keyboard could already have moved to an empty output
        // buffer (only a crafted state has one) moves now.
        irq = deliver_keyboard_byte_locked() || irq;
    }
    if (irq) {
        trigger_keyboard_irq_();
    }
}

}  // namespace vmm
