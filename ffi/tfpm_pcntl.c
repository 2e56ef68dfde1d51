/*
 * tfpm_pcntl.c: a script's signal handlers, for its own request.
 *
 * Under php-fpm, pcntl_signal() installs a handler in the worker process
 * that serves the request. Here every thread shares one process, and its
 * signals are the daemon's (SIGUSR1 reopens the logs, SIGQUIT stops the
 * worker), so a script's handler never reaches the process. It belongs to
 * the request instead, and a signal that the script sends to its own
 * process (posix_kill(posix_getpid(), $signo)) while it has a handler for
 * it goes to that handler, as a signal the kernel delivered to a php-fpm
 * worker would:
 *   - pcntl_signal() and pcntl_signal_get_handler() keep the request's
 *     table (a callable, SIG_IGN or SIG_DFL per signal);
 *   - posix_kill() of the own pid with a signal whose handler is a callable
 *     queues it; with SIG_IGN drops it; otherwise the signal is sent;
 *   - pcntl_signal_dispatch() runs the queued handlers, and with
 *     pcntl_async_signals(true) they run at the next interrupt point, as
 *     pcntl runs them, fibers blocked from switching meanwhile;
 *   - all of it ends with the request.
 * Signals from outside the process stay the daemon's. In the child of a
 * pcntl_fork(), a process of its own, pcntl's own functions run.
 */
#include <signal.h>
#include <unistd.h>

#include "php.h"
#include "zend_fibers.h"
#include "tfpm_internal.h"

#define TFPM_MAX_PENDING 64

/* What pcntl_signal()'s TypeError calls the value it got. */
#if PHP_VERSION_ID >= 80300
#define value_name zend_zval_value_name
#else
#define value_name zend_zval_type_name
#endif

static zif_handler signal_handler_fn;
static zif_handler get_handler_fn;
static zif_handler dispatch_fn;
static zif_handler async_fn;
static zif_handler kill_fn;

/* The request's handlers (signal number => callable, or SIG_DFL/SIG_IGN as
 * a long), its queued signals, and pcntl_async_signals(). */
static __thread HashTable *handlers;
static __thread int pending[TFPM_MAX_PENDING];
static __thread int n_pending;
static __thread bool async_signals;

#define PASS_TO_PCNTL(original) \
    if (tfpm_forked_child) { \
        __atomic_load_n(&(original), __ATOMIC_ACQUIRE)(execute_data, return_value); \
        return; \
    }

static ZEND_NAMED_FUNCTION(tfpm_pcntl_signal)
{
    PASS_TO_PCNTL(signal_handler_fn);
    zend_long signo;
    zval *handle;
    bool restart = 1, restart_is_null = 1;
    ZEND_PARSE_PARAMETERS_START(2, 3)
        Z_PARAM_LONG(signo)
        Z_PARAM_ZVAL(handle)
        Z_PARAM_OPTIONAL
        Z_PARAM_BOOL_OR_NULL(restart, restart_is_null)
    ZEND_PARSE_PARAMETERS_END();
    (void) restart;
    if (signo < 1) {
        zend_argument_value_error(1, "must be greater than or equal to 1");
        RETURN_THROWS();
    }
    if (signo >= NSIG) {
        zend_argument_value_error(1, "must be less than %d", NSIG);
        RETURN_THROWS();
    }
    if (Z_TYPE_P(handle) == IS_LONG) {
        if (Z_LVAL_P(handle) != (zend_long) SIG_DFL && Z_LVAL_P(handle) != (zend_long) SIG_IGN) {
            zend_argument_value_error(2, "must be either SIG_DFL or SIG_IGN when an integer value is given");
            RETURN_THROWS();
        }
    } else if (!zend_is_callable_ex(handle, NULL, 0, NULL, NULL, NULL)) {
        zend_argument_type_error(2, "must be of type callable|int, %s given", value_name(handle));
        RETURN_THROWS();
    }
    if (!handlers) {
        ALLOC_HASHTABLE(handlers);
        zend_hash_init(handlers, 8, NULL, ZVAL_PTR_DTOR, 0);
    }
    Z_TRY_ADDREF_P(handle);
    zend_hash_index_update(handlers, (zend_ulong) signo, handle);
    RETURN_TRUE;
}

static ZEND_NAMED_FUNCTION(tfpm_pcntl_signal_get_handler)
{
    PASS_TO_PCNTL(get_handler_fn);
    zend_long signo;
    ZEND_PARSE_PARAMETERS_START(1, 1)
        Z_PARAM_LONG(signo)
    ZEND_PARSE_PARAMETERS_END();
    if (signo < 1 || signo >= NSIG) {
        zend_argument_value_error(1, "must be between 1 and %d", NSIG - 1);
        RETURN_THROWS();
    }
    zval *handle = handlers ? zend_hash_index_find(handlers, (zend_ulong) signo) : NULL;
    if (handle) {
        RETURN_COPY(handle);
    }
    RETURN_LONG((zend_long) SIG_DFL);
}

/* Runs the queued handlers, as pcntl does: a handler may not switch fibers. */
static void dispatch(void)
{
    if (n_pending == 0 || !handlers) {
        n_pending = 0;
        return;
    }
    zend_fiber_switch_block();
    while (n_pending > 0 && !EG(exception)) {
        int signo = pending[0];
        memmove(pending, pending + 1, (size_t) (n_pending - 1) * sizeof(pending[0]));
        n_pending--;
        zval *handle = zend_hash_index_find(handlers, (zend_ulong) signo);
        if (!handle || Z_TYPE_P(handle) == IS_LONG) {
            continue;
        }
        zval params[2], retval;
        ZVAL_LONG(&params[0], signo);
        array_init(&params[1]);
        add_assoc_long(&params[1], "signo", signo);
        add_assoc_long(&params[1], "errno", 0);
        add_assoc_long(&params[1], "code", SI_USER);
        if (signo == SIGUSR1 || signo == SIGUSR2 || (signo >= SIGRTMIN && signo <= SIGRTMAX)) {
            add_assoc_long(&params[1], "pid", (zend_long) getpid());
            add_assoc_long(&params[1], "uid", (zend_long) getuid());
        }
        ZVAL_NULL(&retval);
        zend_try {
            call_user_function(NULL, NULL, handle, &retval, 2, params);
        } zend_catch {
            /* A fatal error in the handler: the block is per thread, and
             * would outlive the request. */
            zend_fiber_switch_unblock();
            zend_bailout();
        } zend_end_try();
        zval_ptr_dtor(&retval);
        zval_ptr_dtor(&params[1]);
    }
    zend_fiber_switch_unblock();
}

static ZEND_NAMED_FUNCTION(tfpm_pcntl_signal_dispatch)
{
    PASS_TO_PCNTL(dispatch_fn);
    ZEND_PARSE_PARAMETERS_NONE();
    dispatch();
    RETURN_TRUE;
}

static ZEND_NAMED_FUNCTION(tfpm_pcntl_async_signals)
{
    PASS_TO_PCNTL(async_fn);
    bool on, on_is_null = 1;
    ZEND_PARSE_PARAMETERS_START(0, 1)
        Z_PARAM_OPTIONAL
        Z_PARAM_BOOL_OR_NULL(on, on_is_null)
    ZEND_PARSE_PARAMETERS_END();
    bool was = async_signals;
    if (!on_is_null) {
        async_signals = on;
    }
    RETURN_BOOL(was);
}

static ZEND_NAMED_FUNCTION(tfpm_posix_kill)
{
    zif_handler original = __atomic_load_n(&kill_fn, __ATOMIC_ACQUIRE);
    zend_long pid = 0, signo = 0;
    if (!tfpm_forked_child && handlers && ZEND_CALL_NUM_ARGS(execute_data) == 2
        && Z_TYPE_P(ZEND_CALL_ARG(execute_data, 1)) == IS_LONG
        && Z_TYPE_P(ZEND_CALL_ARG(execute_data, 2)) == IS_LONG) {
        pid = Z_LVAL_P(ZEND_CALL_ARG(execute_data, 1));
        signo = Z_LVAL_P(ZEND_CALL_ARG(execute_data, 2));
    }
    zval *handle = NULL;
    if (pid == (zend_long) getpid() && signo > 0 && signo < NSIG) {
        handle = zend_hash_index_find(handlers, (zend_ulong) signo);
    }
    if (!handle || (Z_TYPE_P(handle) == IS_LONG && Z_LVAL_P(handle) == (zend_long) SIG_DFL)) {
        original(execute_data, return_value);
        return;
    }
    if (Z_TYPE_P(handle) != IS_LONG && n_pending < TFPM_MAX_PENDING) {
        pending[n_pending++] = (int) signo;
        if (async_signals) {
            zend_atomic_bool_store_ex(&EG(vm_interrupt), true);
        }
    }
    RETURN_TRUE;
}

void tfpm_pcntl_interrupt(void)
{
    if (async_signals && n_pending > 0) {
        dispatch();
    }
}

void tfpm_pcntl_thread_init(void)
{
    tfpm_wrap_handler("pcntl_signal", tfpm_pcntl_signal, &signal_handler_fn);
    tfpm_wrap_handler("pcntl_signal_get_handler", tfpm_pcntl_signal_get_handler, &get_handler_fn);
    tfpm_wrap_handler("pcntl_signal_dispatch", tfpm_pcntl_signal_dispatch, &dispatch_fn);
    tfpm_wrap_handler("pcntl_async_signals", tfpm_pcntl_async_signals, &async_fn);
    tfpm_wrap_handler("posix_kill", tfpm_posix_kill, &kill_fn);
}

void tfpm_pcntl_request_shutdown(void)
{
    n_pending = 0;
    async_signals = 0;
    if (handlers) {
        zend_hash_destroy(handlers);
        FREE_HASHTABLE(handlers);
        handlers = NULL;
    }
}
