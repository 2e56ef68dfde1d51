/*
 * tfpm_signals.c: interrupting a worker thread and reporting crashes.
 *
 * Interrupts (request_terminate_timeout): another thread stores the request
 * number to kill, raises EG(vm_interrupt), and sends TFPM_SIG_INTERRUPT to
 * the worker. That signal's handler does nothing; it exists so that a blocking
 * system call (sleep, poll, read) returns EINTR, having no SA_RESTART. At its
 * next interrupt point the VM calls tfpm_interrupt_function, which raises the
 * fatal error. SIGRTMIN stays PHP's own (its execution timers). Aborts (the
 * client went away) take the same path and end as a failed write would.
 *
 * Slowlog (request_slowlog_timeout): tfpm_request_slowlog stores the request
 * number in tfpm_slow_seq and raises EG(vm_interrupt) without a signal; at
 * the next interrupt point the thread writes its own PHP stack to the
 * slowlog (tfpm_slowlog.c) and goes on.
 *
 * Crash reports: on SIGSEGV or SIGBUS in a PHP thread, one line on stderr
 * names the script, and says whether a Fiber's stack overflowed, before the
 * previous handler (Rust's) or the default action ends the process. The same
 * signals sent by kill() end the process at once.
 */
#include <signal.h>
#include <pthread.h>
#include <unistd.h>

#include "php.h"
#include "zend_fibers.h"
#include "php_main.h"
#include "tfpm_internal.h"

#define TFPM_SIG_INTERRUPT (SIGRTMIN + 3)

__thread uint64_t tfpm_current_seq;
__thread volatile uint64_t tfpm_kill_seq;
__thread volatile int64_t tfpm_kill_after;
__thread volatile uint64_t tfpm_abort_seq;
__thread volatile uint64_t tfpm_slow_seq;
__thread volatile uint64_t tfpm_running_seq;

static void (*previous_interrupt_function)(zend_execute_data *execute_data);
static struct sigaction previous_segv, previous_bus;

int tfpm_interrupt_signal(void)
{
    return TFPM_SIG_INTERRUPT;
}

int tfpm_kill_requested(void)
{
    return tfpm_kill_seq != 0 && tfpm_kill_seq == tfpm_current_seq;
}

int tfpm_abort_requested(void)
{
    return tfpm_abort_seq != 0 && tfpm_abort_seq == tfpm_current_seq;
}

static void interrupt_handler(int sig)
{
    (void) sig; /* only here to break blocking system calls */
}

static void tfpm_interrupt_function(zend_execute_data *execute_data)
{
    if (tfpm_slow_seq != 0 && tfpm_slow_seq == tfpm_current_seq) {
        tfpm_slow_seq = 0;
        tfpm_slowlog_dump();
    }
    if (tfpm_kill_requested()) {
        int64_t after = tfpm_kill_after;
        /* Once: shutdown functions get their own chance to finish. */
        tfpm_kill_seq = 0;
        zend_error_noreturn(E_ERROR,
            "Request terminated after %" PRId64 " second%s (request_terminate_timeout)",
            after, after == 1 ? "" : "s");
    }
    tfpm_alarm_check();
    tfpm_pcntl_interrupt();
    if (tfpm_abort_requested()) {
        tfpm_abort_seq = 0;
        /* Marks the connection aborted; bails out unless ignore_user_abort. */
        php_handle_aborted_connection();
    }
    if (previous_interrupt_function) {
        previous_interrupt_function(execute_data);
    }
}

void tfpm_interrupt(const tfpm_thread_handle *handle, uint64_t seq, int64_t after_seconds)
{
    *handle->kill_after = after_seconds;
    *handle->kill_seq = seq;
    zend_atomic_bool_store((zend_atomic_bool *) handle->vm_interrupt, true);
    pthread_kill((pthread_t) handle->thread, TFPM_SIG_INTERRUPT);
}

void tfpm_request_slowlog(const tfpm_thread_handle *handle, uint64_t seq)
{
    *handle->slow_seq = seq;
    /* No signal: a sleep or a read runs on, and the VM looks at the flag
     * when it next checks for interrupts. */
    zend_atomic_bool_store((zend_atomic_bool *) handle->vm_interrupt, true);
}

void tfpm_abort(const tfpm_thread_handle *handle, uint64_t seq)
{
    *handle->abort_seq = seq;
    zend_atomic_bool_store((zend_atomic_bool *) handle->vm_interrupt, true);
    pthread_kill((pthread_t) handle->thread, TFPM_SIG_INTERRUPT);
}

/* ---- crash reports ------------------------------------------------------ */

/* The start of zend_fiber_stack, which zend_fibers.c keeps private. */
typedef struct {
    void *pointer;
    size_t size;
} fiber_stack_view;

/* Where crash reports go: stderr, or the log when stderr is not it. */
static int report_fd = STDERR_FILENO;

void tfpm_set_report_fd(int fd)
{
    report_fd = fd;
}

static void say(const char *text)
{
    size_t len = strlen(text);
    while (len > 0) {
        ssize_t n = write(report_fd, text, len);
        if (n <= 0) {
            return;
        }
        text += n;
        len -= (size_t) n;
    }
}

/* Whether addr is in (or just below) the guard page of the running Fiber's stack. */
static int fiber_overflow(uintptr_t addr)
{
    zend_fiber_context *fiber = EG(current_fiber_context);
    if (!fiber || fiber == EG(main_fiber_context) || !fiber->stack) {
        return 0;
    }
    const fiber_stack_view *stack = (const fiber_stack_view *) fiber->stack;
    uintptr_t base = (uintptr_t) stack->pointer;
    uintptr_t guard = 64 * 1024;
    return addr < base + 4096 && addr + guard >= base;
}

static void crash_handler(int sig, siginfo_t *info, void *ucontext)
{
    (void) ucontext;
    const tfpm_request *r = tfpm_current_request;
    struct sigaction *previous = sig == SIGSEGV ? &previous_segv : &previous_bus;
    if (info->si_code <= 0) {
        /* Sent by kill(), not a fault: nothing would fault again on
         * return, so take the default action (death) explicitly. */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    if (r) {
        say("tfpm: fatal: ");
        if (fiber_overflow((uintptr_t) info->si_addr)) {
            say("stack overflow inside a Fiber (raise fiber.stack_size, or look for runaway recursion)");
        } else {
            say(sig == SIGSEGV ? "segmentation fault" : "bus error");
#ifdef ZEND_CHECK_STACK_LIMIT
            /* 8.3+ throws an Error before deep recursion overflows the
             * stack, unless its check is off; what is left overflows
             * between PHP's checks. */
            if (EG(max_allowed_stack_size) == ZEND_MAX_ALLOWED_STACK_SIZE_UNCHECKED) {
                say(" (zend.max_allowed_stack_size=-1 turns PHP's stack check off: a stack overflow from deep recursion looks like this; --stack-size sets the thread stack)");
            } else {
                say(" (a C stack overflow between PHP's stack checks, in an extension or a library, looks like this; --stack-size sets the thread stack)");
            }
#else
            say(" (a PHP 8.2 stack overflow from deep recursion looks like this; --stack-size sets the thread stack)");
#endif
        }
        say(" while running ");
        say(r->script_filename ? r->script_filename : "(no script)");
        say("; this worker process stops\n");
    }
    /* Let the previous handler (Rust's stack-overflow report) or the default
     * action take it from here: the instruction faults again on return. */
    sigaction(sig, previous, NULL);
}

static void install_crash_handler(int sig, struct sigaction *previous)
{
    struct sigaction act;
    memset(&act, 0, sizeof(act));
    act.sa_sigaction = crash_handler;
    act.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&act.sa_mask);
    sigaction(sig, &act, previous);
}

/* A child of fork() starts with no signal blocked and no handler of ours. */
static void child_after_fork(void)
{
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    signal(TFPM_SIG_INTERRUPT, SIG_DFL);
    signal(SIGXFSZ, SIG_DFL);
}

void tfpm_signals_startup(void)
{
    struct sigaction act;
    memset(&act, 0, sizeof(act));
    act.sa_handler = interrupt_handler;
    act.sa_flags = SA_ONSTACK; /* and no SA_RESTART: syscalls return EINTR */
    sigemptyset(&act.sa_mask);
    sigaction(TFPM_SIG_INTERRUPT, &act, NULL);

    previous_interrupt_function = zend_interrupt_function;
    zend_interrupt_function = tfpm_interrupt_function;

    /* A write past RLIMIT_FSIZE (posix_setrlimit() in a script) fails with
     * EFBIG, which PHP reports, instead of killing every thread's request. */
    signal(SIGXFSZ, SIG_IGN);
    install_crash_handler(SIGSEGV, &previous_segv);
    install_crash_handler(SIGBUS, &previous_bus);
    pthread_atfork(NULL, NULL, child_after_fork);
    tfpm_fork_startup();
}
