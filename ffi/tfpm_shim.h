/*
 * tfpm_shim.h: the whole interface between tfpm's Rust code and PHP.
 *
 * bindgen reads this header only, never PHP's own headers. Everything that
 * touches PHP's internals (zend_try, the SAPI module, globals) lives in
 * tfpm_shim.c; Rust sees plain C types.
 *
 * Threads: tfpm_startup and tfpm_shutdown run on one "php-main" thread.
 * tfpm_thread_init, tfpm_execute and tfpm_thread_shutdown run on each worker
 * thread. A PHP bailout (longjmp) never leaves tfpm_execute.
 */
#ifndef TFPM_SHIM_H
#define TFPM_SHIM_H

#include <stddef.h>
#include <stdint.h>

/* One FastCGI param. Both strings are NUL-terminated; the lengths exclude the NUL. */
typedef struct tfpm_param {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} tfpm_param;

/* What tfpm_execute must do besides running the script. */
typedef enum tfpm_disposition {
    TFPM_RUN = 0,          /* run script_filename */
    TFPM_NOT_FOUND = 1,    /* no script: 404 "File not found." */
    TFPM_DENIED = 2        /* extension not allowed: 403 "Access denied." */
} tfpm_disposition;

/*
 * One request, prepared by Rust. Every pointer stays valid until
 * tfpm_execute returns. Strings are NUL-terminated; NULL means absent.
 */
typedef struct tfpm_request {
    void *ctx;                   /* handed back to every tfpm_rs_* callback */
    const tfpm_param *params;    /* FastCGI params, duplicates already resolved */
    size_t n_params;
    const char *method;          /* REQUEST_METHOD */
    const char *query_string;    /* QUERY_STRING */
    const char *script_name;     /* SCRIPT_NAME (becomes request_uri, as in php-fpm) */
    const char *script_filename; /* SCRIPT_FILENAME, the file to run */
    const char *path_info;       /* PATH_INFO, for PHP_SELF */
    const char *content_type;    /* CONTENT_TYPE */
    const char *cookie;          /* HTTP_COOKIE */
    const char *authorization;   /* HTTP_AUTHORIZATION */
    const char *php_value;       /* PHP_VALUE: "name=value" lines from the web server */
    const char *php_admin_value; /* PHP_ADMIN_VALUE: the same, locked against ini_set */
    const char *ping_path;       /* ping.path, or NULL: this URI is answered ping_response */
    const char *ping_response;
    int64_t content_length;      /* CONTENT_LENGTH, or -1 when absent */
    int disposition;             /* a tfpm_disposition */
    int report_end;              /* tfpm_rs_request_end: 0 no, 1 yes, 2 with the headers */
    void *worker;                /* worker mode: this runs the pool's worker script, and
                                    frankenphp_handle_request() hands this to
                                    tfpm_rs_worker_next/done; NULL otherwise */
} tfpm_request;

/*
 * A request as its script ends, before PHP's request shutdown: the point
 * where php-fpm reads what its access log shows. Valid during
 * tfpm_rs_request_end only.
 */
typedef struct tfpm_request_end {
    int status;                  /* the response code PHP holds */
    uint64_t peak_memory;        /* zend_memory_peak_usage(1) */
    const char *auth_user;       /* the HTTP basic auth user, or NULL */
    const char *headers;         /* "Name: value\n" lines PHP holds (report_end 2), or NULL */
    size_t headers_len;
} tfpm_request_end;

/* Process start-up options. Strings may be NULL. */
typedef struct tfpm_startup_config {
    const char *ini_path;        /* -c: php.ini file or directory */
    int ignore_ini;              /* -n: no php.ini at all */
    const char *ini_entries;     /* -d entries, "key=value\n" lines */
    const char *executable;      /* path of the tfpm binary */
    const char *locked_ini;      /* php_admin_value names, "name\n" lines:
                                    scripts cannot change them */
    const char *pool_name;       /* the pool, for slowlog entries and fpm_get_status() */
    const char *process_manager; /* its pm: static, dynamic or ondemand */
    int expected_threads;        /* PHP threads at most, to size TSRM's table (8.3+) */
    int report_fd;               /* where crash reports go (stderr: 2) */
    int slowlog_fd;              /* where slowlog entries go, or -1 */
    int slowlog_depth;           /* frames per entry at most (request_slowlog_trace_depth) */
    int slowlog_micros;          /* entry times with microseconds (log_level = debug) */
    int worker_mode;             /* the pool has a worker script: FrankenPHP's functions exist */
} tfpm_startup_config;

/* phpinfo() in plain text (1) or HTML (0, the default), for `tfpm -i`. */
void tfpm_set_phpinfo_as_text(int as_text);

/* Process-wide: on the php-main thread. Return 0 on success. */
int tfpm_startup(const tfpm_startup_config *config);
void tfpm_shutdown(void);

/*
 * What another thread needs to interrupt a worker (request_terminate_timeout).
 * Filled in by tfpm_thread_init on the worker itself; the pointers are that
 * thread's own globals and stay valid until it calls tfpm_thread_shutdown.
 */
typedef struct tfpm_thread_handle {
    uint64_t thread;             /* pthread_t */
    void *vm_interrupt;          /* &EG(vm_interrupt) */
    volatile uint64_t *kill_seq; /* the request number to terminate */
    volatile int64_t *kill_after;/* seconds, for the error message */
    volatile uint64_t *abort_seq;/* the request whose client is gone */
    volatile uint64_t *slow_seq; /* the request to write to the slowlog */
    volatile uint64_t *running_seq; /* the request whose script runs now, or 0 */
} tfpm_thread_handle;

/* The ini settings that decide which script a request runs. */
typedef struct tfpm_cgi_settings {
    int fix_pathinfo;            /* cgi.fix_pathinfo */
    int discard_path;            /* cgi.discard_path */
    const char *doc_root;        /* doc_root, or NULL; owned by PHP */
} tfpm_cgi_settings;

/* This thread's view of them (they are PHP_INI_SYSTEM: the same everywhere). */
tfpm_cgi_settings tfpm_cgi_settings_now(void);

/* Per worker thread. */
void tfpm_thread_init(tfpm_thread_handle *handle);
void tfpm_thread_shutdown(void);

/*
 * Runs one whole request; returns PHP's exit status (255 after a fatal error).
 * seq numbers this thread's requests (never 0), so that an interrupt aimed at
 * one request cannot hit the next.
 */
int tfpm_execute(const tfpm_request *request, uint64_t seq);

/*
 * From any thread: makes request `seq` on the worker behind `handle` end with
 * a fatal error at its next interrupt point, and wakes it from a blocking
 * system call with a signal of its own (not SIGRTMIN, which is PHP's).
 */
void tfpm_interrupt(const tfpm_thread_handle *handle, uint64_t seq, int64_t after_seconds);

/*
 * From any thread: the client of request `seq` is gone. At its next interrupt
 * point (woken from a blocking system call as above) the request sees
 * connection_aborted(), and ends unless ignore_user_abort is on, as it would
 * on its next output.
 */
void tfpm_abort(const tfpm_thread_handle *handle, uint64_t seq);

/*
 * From any thread: request `seq` on the worker behind `handle` writes its PHP
 * stack to the slowlog at its next interrupt point, and goes on. No signal
 * is sent: a blocking call is not cut short, the entry comes after it.
 */
void tfpm_request_slowlog(const tfpm_thread_handle *handle, uint64_t seq);

/* The signal tfpm_interrupt and tfpm_abort send. */
int tfpm_interrupt_signal(void);

/* What tfpm_rs_read_body returns when no body bytes came within its wait. */
#define TFPM_BODY_WAIT ((size_t) -1)

/* The callbacks whose stack use tfpm_callback_stack_use reports, in order. */
enum {
    TFPM_STACK_WRITE = 0,
    TFPM_STACK_FLUSH = 1,
    TFPM_STACK_READ_BODY = 2,
    TFPM_STACK_LOG = 3,
    TFPM_STACK_FINISH = 4,
    TFPM_STACK_SLOTS = 5
};

/*
 * The deepest stack use, in bytes, seen in each callback since start-up, when
 * TFPM_MEASURE_CALLBACK_STACK=1 was set; fills up to n slots and returns
 * TFPM_STACK_SLOTS, or 0 when not measuring.
 */
size_t tfpm_callback_stack_use(size_t *out, size_t n);

/* The SAPI name and PHP version, for logs. */
const char *tfpm_sapi_name(void);
const char *tfpm_php_version(void);
/* The largest request memory peak of any thread (php-fpm's "memory peak"). */
size_t tfpm_memory_peak(void);
/* expose_php as PHP started with it (php.ini, -d, the pool's values). */
int tfpm_expose_php(void);

/*
 * Callbacks into Rust. They never unwind and never call back into PHP.
 * ctx is the tfpm_request.ctx of the running request.
 */

/* Output bytes. Returns len, or 0 when the client is gone. */
size_t tfpm_rs_write(void *ctx, const char *buf, size_t len);
/* Push buffered output to the client. Returns 0, or -1 when the client is gone. */
int tfpm_rs_flush(void *ctx);
/*
 * Reads up to len body bytes, waiting a little. Returns 0 at the end of the
 * body, or TFPM_BODY_WAIT when nothing arrived yet (the shim then checks for
 * a timeout and calls again).
 */
size_t tfpm_rs_read_body(void *ctx, char *buf, size_t len);
/* What a log line is, for tfpm_rs_log. */
typedef enum tfpm_log_kind {
    TFPM_LOG_SAPI = 0,           /* a note of the SAPI's ("Primary script unknown"); to the web server */
    TFPM_LOG_PHP = 1,            /* PHP's own message; to the web server as "PHP message: ..." */
    TFPM_LOG_PHP_HOST_ONLY = 2   /* PHP's message with fastcgi.logging=0: tfpm's log only */
} tfpm_log_kind;

/* A log line of the given tfpm_log_kind. ctx is NULL outside a request. */
void tfpm_rs_log(void *ctx, int kind, const char *msg, size_t len);
/* The request's script is over (see tfpm_request_end). */
void tfpm_rs_request_end(void *ctx, const tfpm_request_end *end);
/* fastcgi_finish_request(): ends the response now. Returns 1 if it did, 0 if already ended. */
int tfpm_rs_finish(void *ctx);

/*
 * Worker mode (tfpm_worker.c). tfpm_rs_worker_next blocks until the next
 * request for the worker script arrives and returns it, with its number in
 * *seq; NULL when the script must stop (the pool stops, or the script
 * served its worker.max_requests). The request stays valid until
 * tfpm_rs_worker_done, called once its response has ended.
 */
const tfpm_request *tfpm_rs_worker_next(void *worker, uint64_t *seq);
void tfpm_rs_worker_done(void *worker);
/* The script stops for opcache's restart (it booted without the cache,
 * which is back, or it holds the cache a pending restart waits for): it
 * starts again at once, not counted as a failure. */
void tfpm_rs_worker_stop(void *worker);
/* opcache scheduled a restart (in the request that just ended on this
 * thread): every worker script must end and start again. */
void tfpm_rs_opcache_restart(void);

/* The pool's counters, for fpm_get_status(). */
typedef struct tfpm_pool_status {
    int64_t start_time;            /* Unix time the pool started */
    uint64_t accepted_conn;        /* requests taken by a thread */
    uint64_t listen_queue;         /* requests waiting for a thread */
    uint64_t max_listen_queue;
    uint64_t listen_queue_len;     /* how many may wait */
    uint64_t idle_processes;       /* threads, as php-fpm's processes */
    uint64_t active_processes;
    uint64_t max_active_processes;
    uint64_t max_children_reached;
    uint64_t slow_requests;        /* past request_slowlog_timeout */
} tfpm_pool_status;

/* Fills `out`; returns 0, or -1 when no pool runs. */
int tfpm_rs_pool_status(tfpm_pool_status *out);

/* One of the pool's threads, for fpm_get_status()'s "procs". The strings
 * are not NUL-terminated; they stay valid until the next call of
 * tfpm_rs_pool_procs on the same thread. */
typedef struct tfpm_proc_status {
    int64_t pid;                   /* the thread's Linux task id */
    int running;                   /* 1: running a request, 0: idle */
    int64_t start_time;            /* Unix time the thread started */
    uint64_t requests;
    uint64_t request_duration_us;  /* current or last request */
    uint64_t request_length;       /* its CONTENT_LENGTH */
    const char *method; size_t method_len;
    const char *uri; size_t uri_len;
    const char *query; size_t query_len;
    const char *user; size_t user_len;
    const char *script; size_t script_len;
} tfpm_proc_status;

/* With `out` NULL: how many threads the pool has. Else fills up to `cap`
 * entries of `out` and returns how many it filled. */
size_t tfpm_rs_pool_procs(tfpm_proc_status *out, size_t cap);

#endif
