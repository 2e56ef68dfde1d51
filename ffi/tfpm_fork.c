/*
 * tfpm_fork.c: pcntl_fork() and pcntl_alarm() for one request.
 *
 * pcntl_fork(): the child is a copy of one thread of a many-threaded worker
 * process. It runs the rest of the script as a process of its own, as a
 * php-fpm worker's child does, but nothing of it may reach the daemon: the
 * tokio threads, the watchdog and every lock they held are gone from it. So
 * in the child (tfpm_forked_child):
 *   - the daemon's signal handlers are reset to the default action, so that
 *     posix_kill($pid, SIGTERM) ends it as it ends a php-fpm worker's child;
 *   - its output joins the parent's response while the parent's request
 *     runs, as a php-fpm worker's child writes to the connection they share:
 *     it goes through a pipe that the parent's thread drains whenever it
 *     writes, flushes, waits for a child (pcntl_waitpid(), pcntl_wait()) or
 *     ends its response. Its headers go nowhere (the parent sends the
 *     response's), and PHP's log messages from it go to stderr;
 *   - pcntl's process-wide functions (signals, alarm, exec, fork) work, since
 *     the child is a whole process;
 *   - once the script has ended and PHP's request shutdown has run
 *     (shutdown functions, destructors), it exits with the script's status
 *     instead of returning to a thread that no longer exists.
 * In the parent, the children a thread forked and did not wait for are
 * reaped at the end of each of its requests, so no zombie outlives them.
 *
 * pcntl_alarm(): under php-fpm, SIGALRM ends the worker process with the
 * request on it. Here the alarm belongs to the request: a per-thread timer
 * whose signal makes the request end with a fatal error at its next
 * interrupt point, and which the end of the request disarms.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "php.h"
#include "SAPI.h"
#include "tfpm_internal.h"

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

#define TFPM_SIG_ALARM (SIGRTMIN + 4)
#define TFPM_MAX_CHILDREN 64

int tfpm_forked_child;

static zif_handler fork_handler;
static zif_handler alarm_handler;
static zif_handler waitpid_handler;
static zif_handler wait_handler;

/* In the parent: the read ends of this request's children's output. */
typedef struct {
    pid_t pid;
    int fd;
} child_pipe;
static __thread child_pipe pipes[TFPM_MAX_CHILDREN];
static __thread int n_pipes;

/* In the child: where its output goes (-1: nowhere). */
static int child_out_fd = -1;

/* The children this thread forked that nobody has waited for yet. */
static __thread pid_t children[TFPM_MAX_CHILDREN];
static __thread int n_children;

/* This thread's alarm timer, and whether it went off. */
static __thread timer_t alarm_timer;
static __thread int alarm_timer_made;
static __thread int alarm_armed;
static __thread volatile sig_atomic_t alarm_rang;
static __thread unsigned int alarm_seconds;
/* The request the alarm was set for: a signal that arrives after its end
 * (generated just before the timer was disarmed) finds another number. */
static __thread uint64_t alarm_seq;

/* ---- the child ------------------------------------------------------------ */

/* The daemon's handlers (tokio's, the crash reports) mean nothing in the
 * child: every caught signal below SIGRTMIN takes its default action again.
 * Ignored ones (SIGPIPE) stay ignored, as in a php-fpm worker's child, and
 * the real-time signals stay PHP's (its execution timers). */
static void reset_daemon_handlers(void)
{
    for (int sig = 1; sig < SIGRTMIN; sig++) {
        struct sigaction now;
        if (sig == SIGKILL || sig == SIGSTOP || sig == SIGPROF) {
            continue;
        }
        if (sigaction(sig, NULL, &now) != 0) {
            continue;
        }
        int caught = (now.sa_flags & SA_SIGINFO) || (now.sa_handler != SIG_DFL && now.sa_handler != SIG_IGN);
        if (caught) {
            signal(sig, SIG_DFL);
        }
    }
    signal(TFPM_SIG_ALARM, SIG_DFL);
}

static void became_child(int out_fd)
{
    tfpm_forked_child = 1;
    reset_daemon_handlers();
    /* The other children's output is the parent's to read. */
    for (int i = 0; i < n_pipes; i++) {
        close(pipes[i].fd);
    }
    n_pipes = 0;
    child_out_fd = out_fd;
    /* Timers are not inherited; neither are the parent's children. */
    alarm_timer_made = 0;
    alarm_armed = 0;
    alarm_rang = 0;
    n_children = 0;
}

size_t tfpm_fork_child_write(const char *str, size_t len)
{
    size_t done = 0;
    while (child_out_fd >= 0 && done < len) {
        ssize_t n = write(child_out_fd, str + done, len - done);
        if (n > 0) {
            done += (size_t) n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            /* The parent's response has ended: the rest goes nowhere. */
            close(child_out_fd);
            child_out_fd = -1;
        }
    }
    return len;
}

void tfpm_fork_child_exit(int status)
{
    fflush(stderr);
    _exit(status);
}

void tfpm_fork_child_log(const char *message)
{
    char line[8192];
    int len = snprintf(line, sizeof(line), "tfpm: forked child %d: %s\n", (int) getpid(), message);
    if (len > 0) {
        ssize_t ignored = write(STDERR_FILENO, line, (size_t) len < sizeof(line) ? (size_t) len : sizeof(line) - 1);
        (void) ignored;
    }
}

static ZEND_NAMED_FUNCTION(tfpm_pcntl_fork)
{
    int out[2] = {-1, -1};
    int piped = !tfpm_forked_child && tfpm_current_request && n_pipes < TFPM_MAX_CHILDREN
        && pipe2(out, O_CLOEXEC) == 0;
    zif_handler original = __atomic_load_n(&fork_handler, __ATOMIC_ACQUIRE);
    original(execute_data, return_value);
    zend_long pid = Z_TYPE_P(return_value) == IS_LONG ? Z_LVAL_P(return_value) : -1;
    if (pid == 0) {
        if (piped) {
            close(out[0]);
        }
        became_child(piped ? out[1] : -1);
        return;
    }
    if (piped && pid < 0) {
        close(out[0]);
        close(out[1]);
    } else if (piped) {
        close(out[1]);
        fcntl(out[0], F_SETFL, O_NONBLOCK);
        /* Room for a child that writes while its parent does not drain
         * (1 MiB, the default most a pipe may have); past it, it waits. */
        fcntl(out[0], F_SETPIPE_SZ, 1 << 20);
        pipes[n_pipes++] = (child_pipe) {(pid_t) pid, out[0]};
    }
    if (pid > 0 && !tfpm_forked_child && n_children < TFPM_MAX_CHILDREN) {
        children[n_children++] = (pid_t) pid;
    }
}

/* ---- the children's output, in the parent ---------------------------------- */

static void close_pipe(int i)
{
    close(pipes[i].fd);
    pipes[i] = pipes[--n_pipes];
}

/* Passes a child's output on to the client, after the response's headers. */
static void forward(const char *buf, size_t len)
{
    const tfpm_request *r = tfpm_current_request;
    if (!r || SG(request_info).headers_only) {
        return;
    }
    if (!SG(headers_sent)) {
        sapi_send_headers();
    }
    tfpm_rs_write(r->ctx, buf, len);
}

void tfpm_fork_drain(void)
{
    char buf[8192];
    for (int i = n_pipes - 1; i >= 0; i--) {
        for (;;) {
            ssize_t n = read(pipes[i].fd, buf, sizeof(buf));
            if (n > 0) {
                forward(buf, (size_t) n);
                continue;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n == 0 || errno != EAGAIN) {
                close_pipe(i); /* the child and its own children are done */
            }
            break;
        }
    }
}

void tfpm_fork_response_ends(void)
{
    if (n_pipes == 0) {
        return;
    }
    tfpm_fork_drain();
    while (n_pipes > 0) {
        close_pipe(n_pipes - 1);
    }
}

/* Before a blocking wait for a child: drains the children's output until
 * the child waited for is ready to be reaped (WNOWAIT leaves it for the
 * real wait), so that a child whose output fills its pipe cannot wait for
 * a parent that waits for it. Returns -1 if the request was interrupted
 * meanwhile (a time limit, a client gone): the wait then returns -1 at
 * once, as an interrupted waitpid() does, instead of blocking past it. */
static int wait_draining(idtype_t idtype, id_t id, zend_long flags)
{
    if (tfpm_forked_child || n_pipes == 0 || (flags & WNOHANG)) {
        return 0;
    }
    int interrupted = 0;
    int which = WEXITED | WNOWAIT | WNOHANG;
    which |= (flags & WUNTRACED) ? WSTOPPED : 0;
    which |= (flags & WCONTINUED) ? WCONTINUED : 0;
    int pidfd = idtype == P_PID ? (int) syscall(SYS_pidfd_open, (pid_t) id, 0) : -1;
    for (;;) {
        tfpm_fork_drain();
        siginfo_t info;
        memset(&info, 0, sizeof(info));
        if (n_pipes == 0 || waitid(idtype, id, &info, which) != 0 || info.si_pid != 0) {
            break;
        }
        struct pollfd fds[TFPM_MAX_CHILDREN + 1];
        int n = 0;
        for (; n < n_pipes; n++) {
            fds[n] = (struct pollfd) {pipes[n].fd, POLLIN, 0};
        }
        if (pidfd >= 0) {
            fds[n++] = (struct pollfd) {pidfd, POLLIN, 0};
        }
        /* Without a pidfd, look for the child's end every 50 ms. */
        poll(fds, (nfds_t) n, pidfd >= 0 ? -1 : 50);
        if (zend_atomic_bool_load_ex(&EG(vm_interrupt))) {
            interrupted = 1;
            break;
        }
    }
    if (pidfd >= 0) {
        close(pidfd);
    }
    return interrupted ? -1 : 0;
}

static zend_long long_arg(zend_execute_data *execute_data, uint32_t n, zend_long otherwise)
{
    if (ZEND_CALL_NUM_ARGS(execute_data) < n) {
        return otherwise;
    }
    zval *arg = ZEND_CALL_ARG(execute_data, n);
    return Z_TYPE_P(arg) == IS_LONG ? Z_LVAL_P(arg) : otherwise;
}

static ZEND_NAMED_FUNCTION(tfpm_pcntl_waitpid)
{
    zend_long pid = long_arg(execute_data, 1, 0);
    zend_long flags = long_arg(execute_data, 3, 0);
    int drained;
    if (pid > 0) {
        drained = wait_draining(P_PID, (id_t) pid, flags);
    } else if (pid == -1) {
        drained = wait_draining(P_ALL, 0, flags);
    } else {
        drained = wait_draining(P_PGID, (id_t) -pid, flags);
    }
    if (drained < 0) {
        RETURN_LONG(-1);
    }
    __atomic_load_n(&waitpid_handler, __ATOMIC_ACQUIRE)(execute_data, return_value);
}

static ZEND_NAMED_FUNCTION(tfpm_pcntl_wait)
{
    if (wait_draining(P_ALL, 0, long_arg(execute_data, 2, 0)) < 0) {
        RETURN_LONG(-1);
    }
    __atomic_load_n(&wait_handler, __ATOMIC_ACQUIRE)(execute_data, return_value);
}

/* ---- the alarm ------------------------------------------------------------ */

static void alarm_signal(int sig)
{
    (void) sig;
    alarm_rang = 1;
    zend_atomic_bool_store_ex(&EG(vm_interrupt), true);
}

static int make_alarm_timer(void)
{
    if (alarm_timer_made) {
        return 0;
    }
    struct sigevent ev;
    memset(&ev, 0, sizeof(ev));
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = TFPM_SIG_ALARM;
    ev.sigev_notify_thread_id = (pid_t) syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &ev, &alarm_timer) != 0) {
        return -1;
    }
    alarm_timer_made = 1;
    return 0;
}

/* What alarm() returns for the time left: whole seconds, rounded. */
static zend_long seconds_left(const struct itimerspec *old)
{
    zend_long left = (zend_long) old->it_value.tv_sec;
    if (old->it_value.tv_nsec >= 500000000L || (left == 0 && old->it_value.tv_nsec > 0)) {
        left++;
    }
    return left;
}

static ZEND_NAMED_FUNCTION(tfpm_pcntl_alarm)
{
    if (tfpm_forked_child) {
        __atomic_load_n(&alarm_handler, __ATOMIC_ACQUIRE)(execute_data, return_value);
        return;
    }
    zend_long seconds;
    ZEND_PARSE_PARAMETERS_START(1, 1)
        Z_PARAM_LONG(seconds)
    ZEND_PARSE_PARAMETERS_END();
    if (make_alarm_timer() != 0) {
        php_error_docref(NULL, E_WARNING, "Cannot set the alarm: %s", strerror(errno));
        RETURN_LONG(0);
    }
    struct itimerspec when, old;
    memset(&when, 0, sizeof(when));
    when.it_value.tv_sec = (time_t) (unsigned int) seconds;
    if (timer_settime(alarm_timer, 0, &when, &old) != 0) {
        php_error_docref(NULL, E_WARNING, "Cannot set the alarm: %s", strerror(errno));
        RETURN_LONG(0);
    }
    alarm_rang = 0;
    alarm_armed = seconds != 0;
    alarm_seconds = (unsigned int) seconds;
    alarm_seq = alarm_armed ? tfpm_current_seq : 0;
    RETURN_LONG(seconds_left(&old));
}

void tfpm_alarm_check(void)
{
    if (!alarm_rang || alarm_seq == 0 || alarm_seq != tfpm_current_seq) {
        return;
    }
    alarm_rang = 0;
    alarm_armed = 0;
    unsigned int after = alarm_seconds;
    zend_error_noreturn(E_ERROR,
        "Request terminated by its pcntl_alarm() after %u second%s (SIGALRM would end a php-fpm worker process)",
        after, after == 1 ? "" : "s");
}

/* ---- set-up and each request's end ---------------------------------------- */

void tfpm_fork_startup(void)
{
    struct sigaction act;
    memset(&act, 0, sizeof(act));
    act.sa_handler = alarm_signal;
    act.sa_flags = SA_ONSTACK; /* no SA_RESTART: a sleep returns early */
    sigemptyset(&act.sa_mask);
    sigaction(TFPM_SIG_ALARM, &act, NULL);
}

void tfpm_fork_thread_init(void)
{
    tfpm_wrap_handler("pcntl_fork", tfpm_pcntl_fork, &fork_handler);
    tfpm_wrap_handler("pcntl_alarm", tfpm_pcntl_alarm, &alarm_handler);
    tfpm_wrap_handler("pcntl_waitpid", tfpm_pcntl_waitpid, &waitpid_handler);
    tfpm_wrap_handler("pcntl_wait", tfpm_pcntl_wait, &wait_handler);
}

/* Disarms the request's alarm and reaps the children that have ended. */
void tfpm_fork_request_end(void)
{
    if (alarm_armed) {
        struct itimerspec off;
        memset(&off, 0, sizeof(off));
        timer_settime(alarm_timer, 0, &off, NULL);
        alarm_armed = 0;
    }
    alarm_rang = 0;
    alarm_seq = 0;
    /* Normally closed when the response ended; after the request shutdown
     * nothing more may be passed on. */
    while (n_pipes > 0) {
        close_pipe(n_pipes - 1);
    }
    int kept = 0;
    for (int i = 0; i < n_children; i++) {
        pid_t r = waitpid(children[i], NULL, WNOHANG);
        if (r == 0) {
            children[kept++] = children[i];
        }
    }
    n_children = kept;
}

void tfpm_fork_thread_shutdown(void)
{
    if (alarm_timer_made) {
        timer_delete(alarm_timer);
        alarm_timer_made = 0;
    }
}
