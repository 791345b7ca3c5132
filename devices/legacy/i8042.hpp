// The PC keyboard controller (ports 0x60 and 0x64) with a keyboard that has
// no keys of its own: enough for Linux's i8042 and atkbd drivers to find a
// keyboard port, the 0xFE "pulse reset line" command (Linux's reboot=k), and
// Ctrl+Alt+Del typed by the VMM (Firecracker's SendCtrlAltDel action).
//
// Controller commands (port 0x64): 0x20/0x60 read/write the command byte,
// 0xaa self-test (0x55), 0xab keyboard interface test (0x00), 0xad/0xae
// disable/enable the keyboard, 0xa7/0xa8 disable/enable AUX, 0xd0/0xd1
// read/write the output port (bit 0 clear resets), 0xd2 write the keyboard
// output buffer, 0xfe pulse reset.
//
// There is no AUX (mouse) port. The AUX loopback 0xd3 answers its byte without
// the status register's AUX-data bit and the AUX interface test 0xa9 reports
// 0x02 (clock line stuck high, nothing attached): Linux's i8042_check_aux
// then gives up at once instead of waiting out half-second timeouts. 0xd4
// (send to AUX) swallows its byte.
//
// Keyboard commands (bytes written to port 0x60) are answered as a PS/2
// keyboard does: 0xfa ACK, plus 0xab 0x83 for 0xf2 (get ID), 0xaa after the
// ACK of 0xff (reset), 0xee for 0xee (echo); 0xed, 0xf0 and 0xf3 take a
// parameter byte (also ACKed); 0xfe (resend) repeats the last byte; unknown
// commands get 0xfe. Keyboard
// bytes (answers and keystrokes) wait in the keyboard until the output buffer
// is empty and the keyboard interface is enabled (command byte bit 0x10
// clear); each one that reaches the output buffer raises IRQ 1 if the command
// byte's bit 0x01 is set. Controller answers raise no interrupt (the guest
// polls for them). The keyboard holds at most 16 bytes and the output buffer
// one, whatever the guest sends without reading.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>

#include "devices/bus_device.hpp"
#include "vmm/base/state_stream.hpp"

namespace vmm {

class I8042 : public BusDevice {
  public:
    // Registered at 0x60 with length 5; offsets 0 (data) and 4 (status/command).
    // `trigger_keyboard_irq` pulses ISA IRQ 1; it and `on_reset` are called
    // without the device's lock held, from the thread that caused them.
    I8042(std::function<void()> on_reset, std::function<void()> trigger_keyboard_irq);
    // Without a keyboard interrupt: the guest can only poll.
    explicit I8042(std::function<void()> on_reset) : I8042(std::move(on_reset), [] {}) {}

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // Types Ctrl+Alt+Del: set-1 (translated) make codes 0x1d 0x38 0xe0 0x53,
    // then the breaks 0xe0 0xd3 0xb8 0x9d. Thread-safe. False, and nothing
    // typed, if the guest disabled the keyboard's scanning (0xf5) or has not
    // read what is already waiting in the keyboard's buffer.
    bool send_ctrl_alt_del();

    // Snapshots: the controller's and the keyboard's registers and buffers.
    // restore_state() throws StateError for a corrupt state (a parameter
    // for a command that takes none, more bytes than the keyboard holds)
    // and leaves the device as it was; otherwise, with a keyboard byte
    // waiting in the output buffer and its interrupt enabled (IRQ 1 high
    // when the snapshot was taken), it pulses IRQ 1 again.
    void save_state(StateWriter& out) const;
    void restore_state(StateReader& in);

  private:
    // All with mutex_ held; the bool results say whether to raise IRQ 1.
    void answer_locked(uint8_t byte);
    bool controller_command_locked(uint8_t command, bool& reset);
    bool controller_parameter_locked(uint8_t command, uint8_t value, bool& reset);
    void keyboard_byte_locked(uint8_t value);
    bool deliver_keyboard_byte_locked();

    mutable std::mutex mutex_;
    std::function<void()> on_reset_;
    std::function<void()> trigger_keyboard_irq_;

    std::optional<uint8_t> output_;  // byte waiting at port 0x60
    bool output_from_keyboard_ = false;
    uint8_t command_byte_ = 0x45;              // translation on, system flag, kbd irq
    uint8_t output_port_ = 0x03;               // reset line high, A20 on
    std::optional<uint8_t> controller_param_;  // command waiting for its byte at 0x60

    std::deque<uint8_t> keyboard_buffer_;        // keyboard bytes not yet in output_
    std::optional<uint8_t> keyboard_param_;      // keyboard command waiting for its byte
    bool scanning_ = true;                       // the keyboard sends keystrokes
    std::optional<uint8_t> last_keyboard_byte_;  // for Resend
};

}  // namespace vmm
