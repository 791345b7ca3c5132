#include "vmm/seccomp/bpf_program.hpp"

#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <memory>

#include "vmm/base/error.hpp"
#include "vmm/base/unique_fd.hpp"

namespace vmm::seccomp {

namespace {

uint32_t scmp_action(const Action& action) {
    switch (action.kind) {
        case Action::Kind::Allow:
            return SCMP_ACT_ALLOW;
        case Action::Kind::Trap:
            return SCMP_ACT_TRAP;
        case Action::Kind::KillThread:
            return SCMP_ACT_KILL_THREAD;
        case Action::Kind::KillProcess:
            return SCMP_ACT_KILL_PROCESS;
        case Action::Kind::Log:
            return SCMP_ACT_LOG;
        case Action::Kind::Errno:
            return SCMP_ACT_ERRNO(action.value);
        case Action::Kind::Trace:
            return SCMP_ACT_TRACE(action.value);
    }
    return SCMP_ACT_KILL_PROCESS;
}

scmp_arg_cmp scmp_condition(const ArgCondition& condition) {
    scmp_arg_cmp out{};
    out.arg = condition.index;
    bool dword = condition.width == ArgCondition::Width::Dword;
    switch (condition.op) {
        case ArgCondition::Op::Eq:
            // "dword": only the low half counts, whatever the caller left above.
            if (dword) {
                out.op = SCMP_CMP_MASKED_EQ;
                out.datum_a = UINT32_MAX;
                out.datum_b = condition.value;
                return out;
            }
            out.op = SCMP_CMP_EQ;
            break;
        case ArgCondition::Op::Ne:
            out.op = SCMP_CMP_NE;
            break;
        case ArgCondition::Op::Lt:
            out.op = SCMP_CMP_LT;
            break;
        case ArgCondition::Op::Le:
            out.op = SCMP_CMP_LE;
            break;
        case ArgCondition::Op::Gt:
            out.op = SCMP_CMP_GT;
            break;
        case ArgCondition::Op::Ge:
            out.op = SCMP_CMP_GE;
            break;
        case ArgCondition::Op::MaskedEq:
            out.op = SCMP_CMP_MASKED_EQ;
            out.datum_a = dword ? (condition.mask & UINT32_MAX) : condition.mask;
            out.datum_b = condition.value;
            return out;
    }
    out.datum_a = condition.value;
    return out;
}

struct ContextRelease {
    void operator()(void* context) const { seccomp_release(context); }
};

}  // namespace

BpfProgram BpfProgram::compile(const ThreadFilter& filter) {
    std::unique_ptr<void, ContextRelease> context(seccomp_init(scmp_action(filter.default_action)));
    if (!context) {
        throw Error("seccomp: cannot create a filter (bad default action?)");
    }
    // no_new_privs is set by install_on_this_thread(), per thread.
    seccomp_attr_set(context.get(), SCMP_FLTATR_CTL_NNP, 0);
    uint32_t action = scmp_action(filter.filter_action);
    for (size_t i = 0; i < filter.rules.size(); ++i) {
        const SyscallRule& rule = filter.rules[i];
        int number = seccomp_syscall_resolve_name(rule.syscall.c_str());
        if (number == __NR_SCMP_ERROR) {
            throw Error(fmt::format("seccomp: rule {}: unknown syscall \"{}\"", i, rule.syscall));
        }
        std::vector<scmp_arg_cmp> conditions;
        for (const ArgCondition& condition : rule.args) {
            conditions.push_back(scmp_condition(condition));
        }
        int result = seccomp_rule_add_array(context.get(), action, number,
                                            static_cast<unsigned>(conditions.size()),
                                            conditions.empty() ? nullptr : conditions.data());
        if (result < 0) {
            throw SystemError(fmt::format("seccomp: rule {} ({})", i, rule.syscall), -result);
        }
    }
    // libseccomp writes the program to an fd; a memfd keeps it in memory.
    UniqueFd memory(static_cast<int>(::memfd_create("seccomp-bpf", MFD_CLOEXEC)));
    if (!memory.valid()) {
        throw_errno("seccomp: memfd_create");
    }
    int result = seccomp_export_bpf(context.get(), memory.get());
    if (result < 0) {
        throw SystemError("seccomp: exporting the filter", -result);
    }
    struct stat info {};
    if (::fstat(memory.get(), &info) < 0) {
        throw_errno("seccomp: fstat");
    }
    BpfProgram program;
    program.code_.resize(static_cast<size_t>(info.st_size) / sizeof(sock_filter));
    size_t bytes = program.code_.size() * sizeof(sock_filter);
    if (::pread(memory.get(), program.code_.data(), bytes, 0) != static_cast<ssize_t>(bytes)) {
        throw_errno("seccomp: reading the exported filter");
    }
    if (program.code_.empty() || program.code_.size() > BPF_MAXINSNS) {
        throw Error(fmt::format("seccomp: the filter has {} instructions (at most {})",
                                program.code_.size(), BPF_MAXINSNS));
    }
    return program;
}

BpfProgram BpfProgram::from_code(std::span<const sock_filter> code) {
    BpfProgram program;
    program.code_.assign(code.begin(), code.end());
    return program;
}

void BpfProgram::install_on_this_thread() const {
    // Without it an unprivileged thread may not install a filter, and a
    // filtered thread could gain privileges through a set-uid exec.
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        throw_errno("seccomp: prctl(PR_SET_NO_NEW_PRIVS)");
    }
    sock_fprog program{static_cast<unsigned short>(code_.size()),
                       const_cast<sock_filter*>(code_.data())};
    if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) < 0) {
        throw_errno("seccomp: installing the filter");
    }
}

}  // namespace vmm::seccomp
