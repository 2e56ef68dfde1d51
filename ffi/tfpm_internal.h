/*
 * tfpm_internal.h: what the shim's C files share with each other (never seen
 * by Rust).
 */
#ifndef TFPM_INTERNAL_H
#define TFPM_INTERNAL_H

#include "php.h"
#include "tfpm_shim.h"

/* The request running on this thread, or NULL. */
extern __thread const tfpm_request *tfpm_current_request;
/* This thread's request number, and the one to terminate (0: none). */
extern __thread uint64_t tfpm_current_seq;
extern __thread volatile uint64_t tfpm_kill_seq;
extern __thread volatile uint64_t tfpm_abort_seq;
extern __thread volatile int64_t tfpm_kill_after;
/* The request to write to the slowlog (0: none); the request whose script
 * is running now (0 outside php_execute_script). */
extern __thread volatile uint64_t tfpm_slow_seq;
extern __thread volatile uint64_t tfpm_running_seq;

/* A note of the SAPI's to the web server's log (and ours), like php-fpm's zlog. */
void tfpm_log_fastcgi(const char *message);

/* tfpm_request_ini.c: PHP_VALUE and PHP_ADMIN_VALUE, applied before the
 * request starts and undone after it ends. */
void tfpm_request_ini_apply(const char *text, int admin);
void tfpm_request_ini_restore(void);
/* Calls `each` with every name of a disable_functions or disable_classes list. */
void tfpm_each_name(const char *list, void (*each)(const char *name, size_t len));
/* tfpm_request_classes.c: disable_classes for one request. The list comes
 * with the settings, the classes go once the engine's start-up is over (the
 * SAPI's activate), and come back after the request's shutdown. */
void tfpm_request_classes_add(const char *list);
void tfpm_request_classes_disable(void);
void tfpm_request_classes_restore(void);

/* tfpm_isolation.c: per-request copies of process-wide state. */
void tfpm_isolation_thread_init(void);
void tfpm_isolation_request_shutdown(void);
/* Puts `handler` in place of the internal function `name`'s and keeps the
 * function's own handler in *original, for `handler` to call. */
void tfpm_wrap_handler(const char *name, zif_handler handler, zif_handler *original);

/* tfpm_fork.c: pcntl_fork() and pcntl_alarm() for one request. Set in the
 * child of a script's pcntl_fork(): nothing may reach the daemon from it. */
extern int tfpm_forked_child;
void tfpm_fork_startup(void);
void tfpm_fork_thread_init(void);
void tfpm_fork_thread_shutdown(void);
/* Disarms the request's alarm; reaps the thread's children that ended. */
void tfpm_fork_request_end(void);
/* tfpm_pcntl.c: a script's signal handlers, for its own request; run at an
 * interrupt point when pcntl_async_signals() is on. */
void tfpm_pcntl_thread_init(void);
void tfpm_pcntl_request_shutdown(void);
void tfpm_pcntl_interrupt(void);
/* Raises the fatal error if this request's alarm went off. */
void tfpm_alarm_check(void);
/* The parent: passes its children's output on to the response (at each
 * write and flush), and then closes their pipes (before the response ends). */
void tfpm_fork_drain(void);
void tfpm_fork_response_ends(void);
/* The forked child: its output (to the parent), its log line (stderr), and
 * its end. */
size_t tfpm_fork_child_write(const char *str, size_t len);
void tfpm_fork_child_log(const char *message);
ZEND_NORETURN void tfpm_fork_child_exit(int status);

/* The request's params, newest first, into `array`, through the input
 * filter `filter` (PARSE_SERVER, PARSE_ENV) or as they are (getenv()). */
#define TFPM_UNFILTERED (-1)
void tfpm_load_params(zval *array, int filter);

/* tfpm_shim.c: one request's SAPI state, set up and torn down. */
void tfpm_fill_request_info(const tfpm_request *r);
void tfpm_free_path_translated(void);
void tfpm_clear_request_info(void);
void tfpm_report_end(const tfpm_request *r, int started);

/* tfpm_worker.c: worker mode. begin/end bracket every tfpm_execute; the
 * function table entries are the shim's. */
void tfpm_worker_script_begin(const tfpm_request *request);
void tfpm_worker_script_end(void);
int tfpm_worker_in_request(void);
/* Hooks opcache's restart scheduling (worker mode only): once at start-up,
 * and on each thread as it starts. */
void tfpm_worker_startup(void);
void tfpm_worker_thread_init(void);
/* A request on this thread ended: tells Rust of an opcache restart it
 * scheduled. */
void tfpm_worker_request_ended(void);
PHP_FUNCTION(frankenphp_handle_request);

/* tfpm_signals.c: interrupts and crash reports. */
void tfpm_signals_startup(void);
/* Crash reports go to `fd` (stderr by default). */
void tfpm_set_report_fd(int fd);
/* Whether this request was told to terminate; whether its client is gone. */
int tfpm_kill_requested(void);
int tfpm_abort_requested(void);

/* tfpm_slowlog.c: the slowlog's settings, and one entry for this thread's request. */
void tfpm_slowlog_startup(const tfpm_startup_config *config);
void tfpm_slowlog_dump(void);

/* tfpm_stack.c: measuring the callbacks' stack use (TFPM_MEASURE_CALLBACK_STACK). */
extern int tfpm_measure_stack;
void tfpm_stack_measure_startup(void);
void tfpm_stack_paint(unsigned char *top);
void tfpm_stack_record(int slot, unsigned char *top);

/* Runs `call` (a Rust callback), measuring its stack use in `slot` when asked. */
#define TFPM_MEASURED(slot, call) do { \
        unsigned char tfpm_top_; \
        if (tfpm_measure_stack) { tfpm_stack_paint(&tfpm_top_); } \
        call; \
        if (tfpm_measure_stack) { tfpm_stack_record((slot), &tfpm_top_); } \
    } while (0)

#endif
