#include "vmm/jailer/jail.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstring>

#include "vmm/base/error.hpp"
#include "vmm/base/unique_fd.hpp"
#include "vmm/jailer/chroot.hpp"
#include "vmm/jailer/namespaces.hpp"
#include "vmm/jailer/privileges.hpp"

namespace vmm::jailer {

namespace {

// The child the waiting jailer forwards stop signals to.
volatile sig_atomic_t g_child = 0;

void forward_signal(int sig) {
    if (g_child > 0) {
        ::kill(g_child, sig);
    }
}

void detach_session(const UniqueFd& dev_null) {
    if (::setsid() < 0) {
        throw_errno("setsid (--daemonize)");
    }
    for (int fd = 0; fd <= 2; ++fd) {
        if (::dup2(dev_null.get(), fd) < 0) {
            throw_errno("redirecting the standard streams to /dev/null (--daemonize)");
        }
    }
}

// The last steps, in the process that becomes the vmm. Returns only by
// throwing.
[[noreturn]] void become_vmm(const JailerOptions& options, const std::string& exec,
                             const UniqueFd& dev_null) {
    drop_privileges(options.uid, options.gid);
    // Nothing but the standard streams crosses the exec; a failing exec
    // still has the fds the jailer reports through.
    if (::close_range(3, UINT_MAX, CLOSE_RANGE_CLOEXEC) != 0) {
        throw_errno("close_range");
    }
    if (options.daemonize) {
        detach_session(dev_null);
    }
    std::vector<std::string> args{exec, "--id", options.id};
    args.insert(args.end(), options.vmm_args.begin(), options.vmm_args.end());
    std::vector<char*> argv;
    for (auto& arg : args) {
        argv.push_back(arg.data());
    }
    argv.push_back(nullptr);
    // An empty environment, as Firecracker's jailer leaves it.
    char* envp[] = {nullptr};
    ::execve(exec.c_str(), argv.data(), envp);
    throw_errno("cannot run " + exec + " in the jail");
}

void write_pid_file(const std::string& path, pid_t pid) {
    ::unlink(path.c_str());
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd.valid()) {
        throw_errno("cannot create " + path + " in the jail");
    }
    std::string text = std::to_string(pid);
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        throw_errno("cannot write " + path + " in the jail");
    }
}

int wait_for(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            throw_errno("waitpid");
        }
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return WEXITSTATUS(status);
}

// Forks the vmm; returns once it runs (or throws what stopped it): the
// child reports a failure through a close-on-exec pipe, whose end without a
// word means exec succeeded.
pid_t spawn_vmm(const JailerOptions& options, const std::string& exec, const UniqueFd& dev_null) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        throw_errno("pipe2");
    }
    UniqueFd read_end(fds[0]), write_end(fds[1]);
    pid_t pid = ::fork();
    if (pid < 0) {
        throw_errno("fork");
    }
    if (pid == 0) {
        read_end.reset();
        std::string message;
        try {
            become_vmm(options, exec, dev_null);
        } catch (const std::exception& e) {
            message = e.what();
        }
        [[maybe_unused]] ssize_t n = ::write(write_end.get(), message.data(), message.size());
        ::_exit(1);
    }
    write_end.reset();
    std::string message;
    char buffer[512];
    ssize_t n;
    while ((n = ::read(read_end.get(), buffer, sizeof buffer)) != 0) {
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            break;
        }
        message.append(buffer, static_cast<size_t>(n));
    }
    if (!message.empty()) {
        wait_for(pid);
        throw Error(message);
    }
    return pid;
}

}  // namespace

int run_jailer(const JailerOptions& options, JailPlan plan) {
    build_chroot(plan.chroot_dir, plan.exec_path, plan.exec_name, plan.pvm_host);
    // Before the pivot: the cgroup hierarchies are outside the jail.
    apply_cgroups(plan.cgroups, ::getpid());
    if (plan.netns.valid()) {
        join_network_namespace(plan.netns, *options.netns);
        plan.netns.reset();
    }
    UniqueFd dev_null;
    if (options.daemonize) {
        dev_null.reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
        if (!dev_null.valid()) {
            throw_errno("cannot open /dev/null");
        }
    }
    enter_chroot(plan.chroot_dir);
    populate_jail(plan.devices, options.uid, options.gid);
    // Late: fsize would stop the copy of a large executable.
    set_resource_limits(options.limits);

    std::string exec = "/" + plan.exec_name;
    // setsid fails for a process group leader (a shell's job): such a
    // jailer forks, so that --daemonize still detaches, and returns.
    bool fork_to_detach = options.daemonize && ::getpgrp() == ::getpid();
    if (!options.new_pid_ns && !fork_to_detach) {
        become_vmm(options, exec, dev_null);
    }
    if (options.new_pid_ns && ::unshare(CLONE_NEWPID) != 0) {
        throw_errno("unshare(CLONE_NEWPID)");
    }
    pid_t pid = spawn_vmm(options, exec, dev_null);
    // The vmm's pid as the host sees it, as Firecracker's jailer writes it.
    write_pid_file(exec + ".pid", pid);
    if (options.daemonize) {
        return 0;
    }
    g_child = pid;
    struct sigaction action {};
    action.sa_handler = forward_signal;
    ::sigemptyset(&action.sa_mask);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) {
        ::sigaction(sig, &action, nullptr);
    }
    return wait_for(pid);
}

}  // namespace vmm::jailer
