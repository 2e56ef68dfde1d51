/*
 * tfpm_worker.c: worker mode, FrankenPHP's frankenphp_handle_request().
 *
 * A worker thread runs the pool's worker script as one long PHP request
 * (tfpm_execute with request->worker set: the "boot" request, with the
 * params of a GET of the script). The script boots its app, then loops on
 * frankenphp_handle_request($handler). Each call:
 *   1. closes the request open now (the boot one, or the reopened boot
 *      between requests): output flushed, SAPI state torn down;
 *   2. asks Rust for the next request (tfpm_rs_worker_next, which blocks);
 *      NULL means stop, and the call returns false;
 *   3. opens that request: SAPI state, output layer, superglobals and the
 *      session module, as php_request_startup would, but the engine, the
 *      script's globals and its objects stay;
 *   4. calls the handler; an uncaught exception is reported as PHP reports
 *      one at the top level (500 with display_errors off) and the script
 *      goes on;
 *   5. closes the request (its response ends) and tells Rust
 *      (tfpm_rs_worker_done), then reopens the boot request so that PHP
 *      always holds one open request, as the final php_request_shutdown
 *      expects.
 * exit, a fatal error or a timeout inside the handler ends the whole
 * script: tfpm_execute's shutdown then ends the request being served (the
 * response is delivered) and Rust starts the script again.
 */
#include "php.h"
#include "php_main.h"
#include "php_output.h"
#include "php_variables.h"
#include "SAPI.h"
#include "zend_exceptions.h"
#include "ext/spl/spl_exceptions.h"
#ifdef HAVE_PHP_SESSION
#include "ext/session/php_session.h"
#endif

#include "tfpm_internal.h"

/* The worker script's own request while it runs, else NULL. */
static __thread const tfpm_request *boot_request;
static __thread uint64_t boot_seq;
/* SAPI activation for a request opened here: the per-directory settings
 * were applied at boot and stay. */
static __thread int opening;
/* The handler runs now (a nested call is refused). */
static __thread int in_handler;
/* The script and opcache: -1 not looked at yet; 0 nothing to do; 1 it
 * booted without the cache, since opcache's restart was pending. */
static __thread int boot_uncached;
/* Scripts started again in a row to get the cache (see cache_is_back). */
static __thread int cache_retries;

void tfpm_worker_script_begin(const tfpm_request *request)
{
    boot_request = request->worker ? request : NULL;
    boot_seq = tfpm_current_seq;
    opening = 0;
    in_handler = 0;
    boot_uncached = -1;
}

void tfpm_worker_script_end(void)
{
    boot_request = NULL;
    opening = 0;
    in_handler = 0;
}

int tfpm_worker_in_request(void)
{
    return opening;
}

/* The start of php_stream_input_t (main/php_fopen_wrapper.c): a php://input
 * handle reads the request body through this pointer. */
typedef struct {
    php_stream *body;
} input_stream_view;

/* Whether a php://input handle still reads `body`. */
static int body_in_use(php_stream *body)
{
    zend_resource *res;
    int stream_type = php_file_le_stream();
    ZEND_HASH_FOREACH_PTR(&EG(regular_list), res) {
        if (res->type != stream_type || !res->ptr) {
            continue;
        }
        php_stream *stream = res->ptr;
        if (stream->ops && stream->ops->label && strcmp(stream->ops->label, "Input") == 0
                && ((input_stream_view *) stream->abstract)->body == body) {
            return 1;
        }
    } ZEND_HASH_FOREACH_END();
    return 0;
}

/* The request body's temporary stream lives until the request ends, which
 * here is not the script's end: it is closed now, unless a php://input
 * handle the script kept reads it (it then goes with the script). */
static void release_request_body(void)
{
    php_stream *body = SG(request_info).request_body;
    if (!body || body_in_use(body)) {
        return;
    }
    SG(request_info).request_body = NULL;
    php_stream_close(body);
}

/* Calls a module's request shutdown, if it is loaded and has one. */
static void module_request_shutdown(const char *name, size_t len)
{
    zend_module_entry *module = zend_hash_str_find_ptr(&module_registry, name, len);
    if (!module || !module->request_shutdown_func) {
        return;
    }
    zend_try {
        module->request_shutdown_func(module->type, module->module_number);
    } zend_end_try();
}

/*
 * The session between two requests: written and closed, its id and data
 * gone, so nothing of it reaches the next client; what the session module's
 * RSHUTDOWN does, except that a save handler the script set
 * (session_set_save_handler at boot, as Symfony's session storage does
 * once) stays, with session.save_handler = user.
 */
static void end_session(void)
{
#ifdef HAVE_PHP_SESSION
    if (PS(session_status) == php_session_active) {
        zend_try {
            php_session_flush(1);
        } zend_end_try();
    }
    if (!Z_ISUNDEF(PS(http_session_vars))) {
        zval_ptr_dtor(&PS(http_session_vars));
        ZVAL_UNDEF(&PS(http_session_vars));
    }
    if (PS(mod_data) || PS(mod_user_implemented)) {
        zend_try {
            PS(mod)->s_close(&PS(mod_data));
        } zend_end_try();
    }
    if (PS(id)) {
        zend_string_release_ex(PS(id), 0);
        PS(id) = NULL;
    }
    if (PS(session_vars)) {
        zend_string_release_ex(PS(session_vars), 0);
        PS(session_vars) = NULL;
    }
#if PHP_VERSION_ID >= 80300
    if (PS(session_started_filename)) {
        zend_string_release(PS(session_started_filename));
        PS(session_started_filename) = NULL;
        PS(session_started_lineno) = 0;
    }
#endif
    PS(mod_data) = NULL;
    PS(mod_user_is_open) = 0;
    PS(in_save_handler) = 0;
    PS(define_sid) = 1;
    if (PS(session_status) != php_session_disabled) {
        PS(session_status) = php_session_none;
    }
#endif
    zend_hash_str_del(&EG(symbol_table), ZEND_STRL("_SESSION"));
}

/* session.auto_start, as the session module's RINIT does it. */
static void auto_start_session(void)
{
#ifdef HAVE_PHP_SESSION
    if (PS(auto_start) && PS(session_status) == php_session_none) {
        php_session_start();
    }
#endif
}

/* The superglobals of the request now open, built again from its params. */
static void reset_superglobals(void)
{
    int had_env = zend_hash_str_exists(&EG(symbol_table), ZEND_STRL("_ENV"));
    int had_request = zend_hash_str_exists(&EG(symbol_table), ZEND_STRL("_REQUEST"));
    for (int i = 0; i < NUM_TRACK_VARS; i++) {
        zval_ptr_dtor(&PG(http_globals)[i]);
        ZVAL_UNDEF(&PG(http_globals)[i]);
    }
    zend_hash_str_del(&EG(symbol_table), ZEND_STRL("_SERVER"));
    zend_hash_str_del(&EG(symbol_table), ZEND_STRL("_ENV"));
    zend_hash_str_del(&EG(symbol_table), ZEND_STRL("_REQUEST"));
    /* $_GET, $_POST, $_COOKIE and $_FILES now; the others armed. */
    php_hash_environment();
    /* Code compiled at boot reads the symbol table, not the JIT hook. */
    zend_is_auto_global_str(ZEND_STRL("_SERVER"));
    if (had_env) {
        zend_is_auto_global_str(ZEND_STRL("_ENV"));
    }
    if (had_request) {
        zend_is_auto_global_str(ZEND_STRL("_REQUEST"));
    }
}

/* What php_request_startup does for the output layer and the SAPI. */
static void open_request(const tfpm_request *r, uint64_t seq, int worker_request)
{
    tfpm_current_request = r;
    tfpm_current_seq = seq;
    SG(server_context) = r->ctx;
    tfpm_fill_request_info(r);
    php_output_activate();
    PG(header_is_being_sent) = 0;
    PG(connection_status) = PHP_CONNECTION_NORMAL;
    opening = 1;
    sapi_activate();
    opening = 0;
    SG(sapi_started) = 1;
    SG(sapi_headers).http_response_code = 200;
    if (!worker_request) {
        return;
    }
    /* A client that leaves never ends the script (FrankenPHP's rule). */
    PG(ignore_user_abort) = 1;
    if (PG(expose_php)) {
        sapi_add_header(SAPI_PHP_VERSION_HEADER, sizeof(SAPI_PHP_VERSION_HEADER) - 1, 1);
    }
    if (PG(output_handler) && PG(output_handler)[0]) {
        zval handler;
        ZVAL_STRING(&handler, PG(output_handler));
        php_output_start_user(&handler, 0, PHP_OUTPUT_HANDLER_STDFLAGS);
        zval_ptr_dtor(&handler);
    } else if (PG(output_buffering)) {
        size_t size = PG(output_buffering) > 1 ? PG(output_buffering) : 0;
        php_output_start_user(NULL, size, PHP_OUTPUT_HANDLER_STDFLAGS);
    } else if (PG(implicit_flush)) {
        php_output_set_implicit_flush(1);
    }
    reset_superglobals();
    auto_start_session();
}

/* What php_request_shutdown does for them; the response ends here. */
static void close_request(const tfpm_request *r, int worker_request)
{
    zend_try {
        php_output_end_all();
    } zend_end_try();
    if (worker_request) {
        tfpm_report_end(r, 1);
        end_session();
        /* filter_input()'s copies of this request's input. */
        module_request_shutdown(ZEND_STRL("filter"));
        release_request_body();
    }
    zend_try {
        php_output_deactivate();
    } zend_end_try();
    tfpm_free_path_translated();
    SG(post_read) = 1; /* an unread body is the connection's to skip */
    zend_try {
        sapi_deactivate();
    } zend_end_try();
    tfpm_clear_request_info();
}

/* The handler's call; an uncaught exception is reported as at the top level. */
static void call_handler(zend_fcall_info *fci, zend_fcall_info_cache *fcc)
{
    zval retval;
    fci->retval = &retval;
    fci->param_count = 0;
    fci->params = NULL;
    in_handler = 1;
    if (zend_call_function(fci, fcc) == SUCCESS) {
        zval_ptr_dtor(&retval);
    }
    in_handler = 0;
    zend_object *ex = EG(exception);
    if (ex && !zend_is_unwind_exit(ex) && !zend_is_graceful_exit(ex)) {
        zend_exception_error(ex, E_ERROR);
    }
}

/* opcache_get_status(false)'s "opcache_enabled" (for this script: set
 * when it booted) and "restart_pending". 0 if opcache does not answer. */
static int opcache_status(int *enabled, int *pending)
{
    zval fn, arg, ret;
    int ok = 0;
    if (!zend_hash_str_exists(CG(function_table), ZEND_STRL("opcache_get_status"))) {
        return 0;
    }
    ZVAL_STRINGL(&fn, "opcache_get_status", sizeof("opcache_get_status") - 1);
    ZVAL_FALSE(&arg);
    ZVAL_UNDEF(&ret);
    if (call_user_function(NULL, NULL, &fn, &ret, 1, &arg) == SUCCESS && Z_TYPE(ret) == IS_ARRAY) {
        zval *on = zend_hash_str_find(Z_ARRVAL(ret), ZEND_STRL("opcache_enabled"));
        zval *wait = zend_hash_str_find(Z_ARRVAL(ret), ZEND_STRL("restart_pending"));
        *enabled = on && Z_TYPE_P(on) == IS_TRUE;
        *pending = wait && Z_TYPE_P(wait) == IS_TRUE;
        ok = wait != NULL;
    }
    zval_ptr_dtor(&ret);
    zval_ptr_dtor(&fn);
    return ok;
}

/* A script that boots while opcache's restart is pending (a classic request
 * held the cache when the worker scripts ended for it) runs without the
 * cache for its whole life: once the restart has run, it starts again. And
 * one that booted with the cache just before the restart was marked
 * pending (opcache calls the hook first) holds the cache, so the restart
 * cannot run: it starts again at once. Both are looked at when the script
 * first asks for a request; at most three times in a row, in case opcache
 * stays off for another reason. */
static int cache_is_back(void)
{
    int enabled = 0, pending = 0;
    if (boot_uncached == 0) {
        return 0;
    }
    if (!opcache_status(&enabled, &pending)) {
        boot_uncached = 0;
        return 0;
    }
    if (boot_uncached < 0) {
        int wanted = zend_ini_long("opcache.enable", sizeof("opcache.enable") - 1, 0) != 0;
        boot_uncached = wanted && !enabled;
        if (enabled && !pending) {
            cache_retries = 0;
        }
        if (enabled && pending && cache_retries < 3) {
            cache_retries++;
            return 1; /* it holds the cache the restart waits for */
        }
    }
    if (boot_uncached && cache_retries >= 3) {
        boot_uncached = 0; /* opcache stays off: give up until the next boot */
    }
    if (!boot_uncached || pending) {
        return 0;
    }
    cache_retries++;
    return 1;
}

PHP_FUNCTION(frankenphp_handle_request)
{
    zend_fcall_info fci;
    zend_fcall_info_cache fcc;
    ZEND_PARSE_PARAMETERS_START(1, 1)
        Z_PARAM_FUNC(fci, fcc)
    ZEND_PARSE_PARAMETERS_END();
    if (!boot_request) {
        zend_throw_exception(spl_ce_RuntimeException,
            "frankenphp_handle_request() called while not in worker mode", 0);
        RETURN_THROWS();
    }
    if (in_handler) {
        zend_throw_exception(spl_ce_RuntimeException,
            "frankenphp_handle_request() called from its own handler", 0);
        RETURN_THROWS();
    }
    if (tfpm_forked_child) {
        /* The child of a pcntl_fork(): the requests are the parent's. */
        RETURN_FALSE;
    }
    const tfpm_request *boot = boot_request;
    if (cache_is_back()) {
        tfpm_rs_worker_stop(boot->worker);
        RETURN_FALSE;
    }
    close_request(boot, 0);
    zend_unset_timeout();
    uint64_t seq = 0;
    const tfpm_request *r = tfpm_rs_worker_next(boot->worker, &seq);
    if (!r) {
        open_request(boot, boot_seq, 0);
        RETURN_FALSE;
    }
    open_request(r, seq, 1);
    zend_set_timeout(EG(timeout_seconds), 0);
    tfpm_running_seq = seq; /* the slowlog's window */
    call_handler(&fci, &fcc);
    if (EG(exception)) {
        /* exit: the script ends; tfpm_execute's shutdown ends this request. */
        RETURN_THROWS();
    }
    if (tfpm_forked_child) {
        /* The handler forked, and this is the child: its script ends. */
        RETURN_FALSE;
    }
    tfpm_running_seq = 0;
    zend_unset_timeout();
    close_request(r, 1);
    tfpm_fork_request_end();
    tfpm_worker_request_ended();
    EG(exit_status) = 0; /* an uncaught exception cost its request only */
    tfpm_rs_worker_done(boot->worker);
    zend_set_memory_limit(PG(memory_limit));
    open_request(boot, boot_seq, 0);
    RETURN_TRUE;
}

/*
 * opcache's restart (opcache_reset(), or its memory or hash table full)
 * runs only once no thread of the process is running a script from its
 * shared memory (ffi/php-patches 0003), and a worker script does for its
 * whole life: the restart would never run, and meanwhile opcache stays off
 * for every request. tfpm_rs_opcache_restart asks Rust to end every worker
 * script (after the request it is serving) and start it again once the
 * others have ended too, so that the restart runs first. PHP 8.4 (and
 * our 8.2, ffi/php-patches 0007) calls a hook whenever a restart is
 * scheduled; without it, only opcache_reset() itself can be caught. Rust
 * is told once the request that scheduled it ends: the hook runs before
 * opcache marks the restart pending, and a script that booted again in
 * between would take the cache and hold it.
 * The restart cannot run before that request ends anyway: it holds the
 * cache too.
 */
static __thread int restart_scheduled_here;

void tfpm_worker_request_ended(void)
{
    if (restart_scheduled_here && !tfpm_forked_child) {
        restart_scheduled_here = 0;
        tfpm_rs_opcache_restart();
    }
}

#if PHP_VERSION_ID >= 80400 || defined(TFPM_ZEND_ACCEL_SCHEDULE_RESTART_HOOK)
static void (*previous_restart_hook)(int reason);

static void restart_scheduled(int reason)
{
    restart_scheduled_here = 1;
    if (previous_restart_hook) {
        previous_restart_hook(reason);
    }
}

void tfpm_worker_startup(void)
{
    previous_restart_hook = zend_accel_schedule_restart_hook;
    zend_accel_schedule_restart_hook = restart_scheduled;
}

void tfpm_worker_thread_init(void)
{
}
#else
/* A PHP 8.2 without patch 0007: each thread has its own copy of the
 * internal functions, so each thread swaps opcache_reset()'s handler in
 * its own (worker mode only). */
static zif_handler previous_opcache_reset;
static int wrap_opcache_reset;

static ZEND_NAMED_FUNCTION(opcache_reset_then_restart)
{
    previous_opcache_reset(INTERNAL_FUNCTION_PARAM_PASSTHRU);
    if (Z_TYPE_P(return_value) == IS_TRUE) {
        restart_scheduled_here = 1;
    }
}

void tfpm_worker_startup(void)
{
    zend_function *reset = zend_hash_str_find_ptr(CG(function_table), ZEND_STRL("opcache_reset"));
    if (reset && reset->type == ZEND_INTERNAL_FUNCTION) {
        previous_opcache_reset = reset->internal_function.handler;
        wrap_opcache_reset = 1;
    }
}

void tfpm_worker_thread_init(void)
{
    if (!wrap_opcache_reset) {
        return;
    }
    zend_function *reset = zend_hash_str_find_ptr(CG(function_table), ZEND_STRL("opcache_reset"));
    if (reset && reset->internal_function.handler == previous_opcache_reset) {
        reset->internal_function.handler = opcache_reset_then_restart;
    }
}
#endif
