/*
 * tfpm_shim.c: the C side of tfpm's SAPI.
 *
 * It owns the sapi_module_struct (named "fpm-fcgi", like php-fpm's, so that
 * opcache activates and apps that test PHP_SAPI behave the same), every
 * zend_try, the SAPI callbacks (thin trampolines into tfpm_rs_* in Rust) and
 * the functions a FastCGI SAPI adds: fastcgi_finish_request(),
 * getallheaders() and apache_request_headers().
 *
 * Built without ZEND_ENABLE_STATIC_TSRMLS_CACHE: libphp does not export
 * _tsrm_ls_cache, so SG()/EG()/PG() go through tsrm_get_ls_cache().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* unshare() */
#endif
#include <sched.h>
#include <stdatomic.h>

#include "php.h"
#include "php_main.h"
#include "php_variables.h"
#include "php_ini.h"
#include "SAPI.h"
#include "php_output.h"
#include "fopen_wrappers.h"
#include "ext/standard/head.h"
#include "http_status_codes.h"
#include "zend_smart_str.h"
#include "zend_ini_scanner.h"
#include "zend_language_scanner.h"

#include "tfpm_internal.h"

#ifndef ZTS
#error "tfpm needs a thread-safe (ZTS) PHP build"
#endif

__thread const tfpm_request *tfpm_current_request;
/* The body stopped arriving before max_input_time ran out. */
static __thread int input_timed_out;

static sapi_module_struct tfpm_sapi_module;

/* php-fpm's own ini settings, so that php.ini files written for it load
 * unchanged and ini_get() answers the same. */
ZEND_BEGIN_MODULE_GLOBALS(tfpm)
    bool rfc2616_headers;
    bool nph;
    bool force_redirect;
    char *redirect_status_env;
    bool fix_pathinfo;
    bool discard_path;
    bool fcgi_logging;
    char *error_header;
    char *fpm_config;
ZEND_END_MODULE_GLOBALS(tfpm)

ZEND_DECLARE_MODULE_GLOBALS(tfpm)
#define TFPM_G(v) ZEND_MODULE_GLOBALS_ACCESSOR(tfpm, v)

PHP_INI_BEGIN()
    STD_PHP_INI_BOOLEAN("cgi.rfc2616_headers", "0", PHP_INI_ALL, OnUpdateBool, rfc2616_headers, zend_tfpm_globals, tfpm_globals)
    STD_PHP_INI_BOOLEAN("cgi.nph", "0", PHP_INI_ALL, OnUpdateBool, nph, zend_tfpm_globals, tfpm_globals)
    STD_PHP_INI_BOOLEAN("cgi.force_redirect", "1", PHP_INI_SYSTEM, OnUpdateBool, force_redirect, zend_tfpm_globals, tfpm_globals)
    STD_PHP_INI_ENTRY("cgi.redirect_status_env", NULL, PHP_INI_SYSTEM, OnUpdateString, redirect_status_env, zend_tfpm_globals, tfpm_globals)
    STD_PHP_INI_BOOLEAN("cgi.fix_pathinfo", "1", PHP_INI_SYSTEM, OnUpdateBool, fix_pathinfo, zend_tfpm_globals, tfpm_globals)
    STD_PHP_INI_BOOLEAN("cgi.discard_path", "0", PHP_INI_SYSTEM, OnUpdateBool, discard_path, zend_tfpm_globals, tfpm_globals)
    STD_PHP_INI_BOOLEAN("fastcgi.logging", "1", PHP_INI_SYSTEM, OnUpdateBool, fcgi_logging, zend_tfpm_globals, tfpm_globals)
    STD_PHP_INI_ENTRY("fastcgi.error_header", NULL, PHP_INI_SYSTEM, OnUpdateString, error_header, zend_tfpm_globals, tfpm_globals)
    STD_PHP_INI_ENTRY("fpm.config", NULL, PHP_INI_SYSTEM, OnUpdateString, fpm_config, zend_tfpm_globals, tfpm_globals)
PHP_INI_END()

static PHP_GINIT_FUNCTION(tfpm)
{
    memset(tfpm_globals, 0, sizeof(*tfpm_globals));
}

static PHP_MINIT_FUNCTION(tfpm)
{
    REGISTER_INI_ENTRIES();
    return SUCCESS;
}

static PHP_MSHUTDOWN_FUNCTION(tfpm)
{
    UNREGISTER_INI_ENTRIES();
    return SUCCESS;
}

/* The request's Rust side, or NULL: outside a request, and in the child of
 * a pcntl_fork(), which must never call into the daemon (tfpm_fork.c). */
static void *current_ctx(void)
{
    if (tfpm_forked_child) {
        return NULL;
    }
    return tfpm_current_request ? tfpm_current_request->ctx : NULL;
}

/* ---- SAPI callbacks ---------------------------------------------------- */

static size_t tfpm_ub_write(const char *str, size_t len)
{
    void *ctx = current_ctx();
    if (tfpm_forked_child) {
        /* Into the parent's response, through the parent. */
        return tfpm_fork_child_write(str, len);
    }
    if (!ctx) {
        /* Outside a request (start-up messages): plain stderr. */
        return fwrite(str, 1, len, stderr);
    }
    tfpm_fork_drain();
    size_t written;
    TFPM_MEASURED(TFPM_STACK_WRITE, written = tfpm_rs_write(ctx, str, len));
    if (written < len) {
        /* The client is gone: PHP decides (bails out unless ignore_user_abort). */
        php_handle_aborted_connection();
    }
    return written;
}

static void tfpm_flush(void *server_context)
{
    void *ctx = current_ctx();
    if (!ctx || !server_context) {
        return;
    }
#if PHP_VERSION_ID >= 80400
    /* As php-fpm does since 8.4 (GH-12385): flush() sends the headers, even
     * when no body has been written yet (e.g. all of it is in a buffer). */
    sapi_send_headers();
#endif
    tfpm_fork_drain();
    int status;
    TFPM_MEASURED(TFPM_STACK_FLUSH, status = tfpm_rs_flush(ctx));
    if (status != 0) {
        php_handle_aborted_connection();
    }
}

static const char *find_param(const char *name, size_t name_len)
{
    const tfpm_request *r = tfpm_current_request;
    if (!r) {
        return NULL;
    }
    for (size_t i = 0; i < r->n_params; i++) {
        const tfpm_param *p = &r->params[i];
        if (p->name_len == name_len && memcmp(p->name, name, name_len) == 0) {
            return p->value;
        }
    }
    return NULL;
}

static char *tfpm_getenv(const char *name, size_t name_len)
{
    if (tfpm_current_request) {
        return (char *) find_param(name, name_len);
    }
    return getenv(name);
}

static int header_is(const sapi_header_struct *h, const char *name, size_t name_len)
{
    return h->header_len > name_len && strncasecmp(h->header, name, name_len) == 0;
}

static int has_status_header(sapi_headers_struct *headers)
{
    zend_llist_position pos;
    sapi_header_struct *h = zend_llist_get_first_ex(&headers->headers, &pos);
    for (; h; h = zend_llist_get_next_ex(&headers->headers, &pos)) {
        if (header_is(h, "Status:", sizeof("Status:") - 1)) {
            return 1;
        }
    }
    return 0;
}

/* The longest status line php-fpm writes (its header buffer, less the NUL). */
#define TFPM_MAX_STATUS_LINE 1023

/* The CGI "Status:" line php-fpm emits for a non-200 response; 0 if none is due. */
static int append_status_line(smart_str *out, sapi_headers_struct *headers, int *status)
{
    const char *line = SG(sapi_headers).http_status_line;
    const char *space = line ? strchr(line, ' ') : NULL;
    if (space && space - line >= 5 && strncasecmp(line, "HTTP/", 5) == 0) {
        /* header("HTTP/1.1 418 I'm a teapot") keeps its own reason phrase,
         * cut as php-fpm's 1024-byte header buffer cuts it. */
        size_t len = strlen(space);
        if (len > TFPM_MAX_STATUS_LINE - 7) {
            len = TFPM_MAX_STATUS_LINE - 7;
        }
        smart_str_appends(out, "Status:");
        smart_str_appendl(out, space, len);
        *status = atoi(space + 1);
        return 1;
    }
    if (has_status_header(headers)) {
        return 0;
    }
    int code = SG(sapi_headers).http_response_code;
    const http_response_status_code_pair *pair = http_status_map;
    while (pair->code != 0 && pair->code != code) {
        pair++;
    }
    smart_str_append_printf(out, "Status: %d", code);
    if (pair->str) {
        smart_str_appendc(out, ' ');
        smart_str_appends(out, pair->str);
    }
    return 1;
}

static int tfpm_send_headers(sapi_headers_struct *headers)
{
    if (SG(request_info).no_headers == 1) {
        return SAPI_HEADER_SENT_SUCCESSFULLY;
    }
    smart_str out = {0};
    int status = SG(sapi_headers).http_response_code;
    int status_written = 0;
    if (TFPM_G(rfc2616_headers) && SG(sapi_headers).http_status_line) {
        /* cgi.rfc2616_headers: the script's own "HTTP/1.1 ..." line, as is. */
        const char *line = SG(sapi_headers).http_status_line;
        const char *space = strchr(line, ' ');
        size_t len = strlen(line);
        smart_str_appendl(&out, line, len > TFPM_MAX_STATUS_LINE ? TFPM_MAX_STATUS_LINE : len);
        smart_str_appendl(&out, "\r\n", 2);
        status = space ? atoi(space + 1) : status;
        status_written = 1;
    } else if (status != 200 || TFPM_G(nph)) {
        status_written = append_status_line(&out, headers, &status);
        if (status_written) {
            smart_str_appendl(&out, "\r\n", 2);
        }
    }
    zend_llist_position pos;
    sapi_header_struct *h = zend_llist_get_first_ex(&headers->headers, &pos);
    for (; h; h = zend_llist_get_next_ex(&headers->headers, &pos)) {
        if (!h->header_len) {
            continue;
        }
        if (header_is(h, "Status:", sizeof("Status:") - 1)) {
            if (status_written) {
                continue;
            }
            status_written = 1;
        } else if (status == 304 && header_is(h, "Content-Type:", sizeof("Content-Type:") - 1)) {
            continue;
        }
        smart_str_appendl(&out, h->header, h->header_len);
        smart_str_appendl(&out, "\r\n", 2);
    }
    smart_str_appendl(&out, "\r\n", 2);
    /* Headers go out through the same path as the body. */
    void *ctx = current_ctx();
    size_t len = ZSTR_LEN(out.s);
    size_t written = len;
    if (ctx) {
        TFPM_MEASURED(TFPM_STACK_WRITE, written = tfpm_rs_write(ctx, ZSTR_VAL(out.s), len));
    }
    smart_str_free(&out);
    if (written < len) {
        php_handle_aborted_connection();
    }
    return SAPI_HEADER_SENT_SUCCESSFULLY;
}

/*
 * While the body trickles in, PHP's own timer (max_input_time during start-up,
 * max_execution_time later) or a terminate request may fire: stop waiting.
 */
static int body_wait_expired(void)
{
    if (tfpm_kill_requested()) {
        return 1;
    }
    if (!zend_atomic_bool_load(&EG(timed_out))) {
        return 0;
    }
    if (PG(during_request_startup)) {
        /* php_execute_script re-arms the timer and would forget this. */
        input_timed_out = 1;
    }
    return 1;
}

static size_t tfpm_read_post(char *buf, size_t count)
{
    const tfpm_request *r = tfpm_current_request;
    if (!r || tfpm_forked_child) {
        return 0;
    }
    if (r->content_length >= 0) {
        int64_t remaining = r->content_length - SG(read_post_bytes);
        if (remaining <= 0) {
            return 0;
        }
        if ((uint64_t) remaining < count) {
            count = (size_t) remaining;
        }
    }
    size_t done = 0;
    while (done < count) {
        size_t n;
        TFPM_MEASURED(TFPM_STACK_READ_BODY, n = tfpm_rs_read_body(r->ctx, buf + done, count - done));
        if (n == TFPM_BODY_WAIT) {
            if (body_wait_expired()) {
                break;
            }
            continue;
        }
        if (n == 0) {
            break;
        }
        done += n;
    }
    return done;
}

static char *tfpm_read_cookies(void)
{
    return tfpm_current_request ? (char *) tfpm_current_request->cookie : NULL;
}

static void register_param(const tfpm_param *p, int filter, zval *track_vars_array)
{
    char *value = (char *) p->value;
    size_t new_len;
    /* Like php-fpm: the value ends at its first NUL. */
    if (sapi_module.input_filter(filter, p->name, &value, strlen(value), &new_len)) {
        php_register_variable_safe(p->name, value, new_len, track_vars_array);
    }
}

/*
 * The environment PHP imports into $_ENV, $_SERVER and getenv(): php-fpm's
 * with its default clear_env=yes, that is the FastCGI params and nothing of
 * the daemon's own environment. php-fpm walks its params newest first, so
 * they are registered in that order. Once $_ENV or $_SERVER is built, the
 * other starts as a copy of it, as in php-fpm.
 */

static void tfpm_import_environment(zval *array)
{
    zval *env = &PG(http_globals)[TRACK_VARS_ENV];
    zval *server = &PG(http_globals)[TRACK_VARS_SERVER];
    zval *built = NULL;
    if (Z_TYPE_P(env) == IS_ARRAY && Z_ARR_P(array) != Z_ARR_P(env)
        && zend_hash_num_elements(Z_ARRVAL_P(env)) > 0) {
        built = env;
    } else if (Z_TYPE_P(server) == IS_ARRAY && Z_ARR_P(array) != Z_ARR_P(server)
        && zend_hash_num_elements(Z_ARRVAL_P(server)) > 0) {
        built = server;
    }
    if (built) {
        zend_array_destroy(Z_ARR_P(array));
        Z_ARR_P(array) = zend_array_dup(Z_ARR_P(built));
        return;
    }
    int filter = Z_TYPE_P(env) == IS_ARRAY && Z_ARR_P(array) == Z_ARR_P(env) ? PARSE_ENV : PARSE_SERVER;
    tfpm_load_params(array, filter);
}

void tfpm_load_params(zval *array, int filter)
{
    const tfpm_request *r = tfpm_current_request;
    if (!r) {
        return;
    }
    for (size_t i = r->n_params; i > 0; i--) {
        const tfpm_param *p = &r->params[i - 1];
        if (filter == TFPM_UNFILTERED) {
            php_register_variable_safe(p->name, p->value, p->value_len, array);
        } else {
            register_param(p, filter, array);
        }
    }
}

/* PHP_SELF is SCRIPT_NAME, followed by PATH_INFO when cgi.fix_pathinfo=1 (php-fpm's default). */
static void register_php_self(const tfpm_request *r, zval *track_vars_array)
{
    smart_str self = {0};
    smart_str_appends(&self, r->script_name ? r->script_name : "");
    if (TFPM_G(fix_pathinfo)) {
        smart_str_appends(&self, r->path_info ? r->path_info : "");
    }
    smart_str_0(&self);
    char *value = self.s ? ZSTR_VAL(self.s) : "";
    size_t len = self.s ? ZSTR_LEN(self.s) : 0;
    if (sapi_module.input_filter(PARSE_SERVER, "PHP_SELF", &value, len, &len)) {
        php_register_variable_safe("PHP_SELF", value, len, track_vars_array);
    }
    smart_str_free(&self);
}

static void tfpm_register_variables(zval *track_vars_array)
{
    const tfpm_request *r = tfpm_current_request;
    if (!r) {
        return;
    }
    php_import_environment_variables(track_vars_array);
    register_php_self(r, track_vars_array);
}

static void tfpm_log_message(const char *message, int syslog_type)
{
    (void) syslog_type;
    if (tfpm_forked_child) {
        tfpm_fork_child_log(message);
        return;
    }
    void *ctx = current_ctx();
    /* fastcgi.logging=0 keeps PHP's messages out of the web server's log.
     * Outside a request (start-up: an extension that cannot load) there is
     * no web server to tell, and tfpm's module globals may not exist yet. */
    int kind = ctx && !TFPM_G(fcgi_logging) ? TFPM_LOG_PHP_HOST_ONLY : TFPM_LOG_PHP;
    TFPM_MEASURED(TFPM_STACK_LOG, tfpm_rs_log(ctx, kind, message, strlen(message)));
}

static int tfpm_deactivate(void)
{
    /* End the response as soon as PHP is done with it, as php-fpm does. */
    void *ctx = current_ctx();
    if (ctx && SG(sapi_started)) {
        tfpm_fork_response_ends();
        TFPM_MEASURED(TFPM_STACK_FINISH, tfpm_rs_finish(ctx));
    }
    return SUCCESS;
}

/* ---- functions a FastCGI SAPI adds ------------------------------------- */

PHP_FUNCTION(fastcgi_finish_request)
{
    ZEND_PARSE_PARAMETERS_NONE();
    void *ctx = current_ctx();
    if (!ctx) {
        RETURN_FALSE;
    }
    php_output_end_all();
    php_header();
    tfpm_fork_response_ends();
    int finished;
    TFPM_MEASURED(TFPM_STACK_FINISH, finished = tfpm_rs_finish(ctx));
    RETURN_BOOL(finished);
}

/* "HTTP_ACCEPT_ENCODING" becomes "Accept-Encoding"; returns 0 for non-header params. */
static size_t header_name(const tfpm_param *p, char *out)
{
    if (p->name_len > 5 && memcmp(p->name, "HTTP_", 5) == 0) {
        const char *in = p->name + 5;
        size_t n = 0;
        int word_start = 1;
        for (; *in; in++) {
            char c = *in;
            if (c == '_') {
                out[n++] = '-';
                word_start = 1;
            } else {
                out[n++] = word_start ? c : (char) tolower((unsigned char) c);
                word_start = 0;
            }
        }
        out[n] = '\0';
        return n;
    }
    if (strcmp(p->name, "CONTENT_TYPE") == 0) {
        strcpy(out, "Content-Type");
        return sizeof("Content-Type") - 1;
    }
    if (strcmp(p->name, "CONTENT_LENGTH") == 0) {
        strcpy(out, "Content-Length");
        return sizeof("Content-Length") - 1;
    }
    return 0;
}

PHP_FUNCTION(apache_request_headers)
{
    ZEND_PARSE_PARAMETERS_NONE();
    array_init(return_value);
    const tfpm_request *r = tfpm_current_request;
    if (!r) {
        return;
    }
    /* Newest param first, as php-fpm walks them. */
    for (size_t i = r->n_params; i > 0; i--) {
        const tfpm_param *p = &r->params[i - 1];
        char *name = emalloc(p->name_len + sizeof("Content-Length"));
        size_t len = header_name(p, name);
        if (len) {
            add_assoc_stringl_ex(return_value, name, len, (char *) p->value, strlen(p->value));
        }
        efree(name);
    }
}

/* fpm_get_status()'s "procs": one entry per thread, as php-fpm's per child. */
static void add_procs(zval *procs, time_t now)
{
    size_t n = tfpm_rs_pool_procs(NULL, 0);
    if (n == 0) {
        return;
    }
    tfpm_proc_status *all = ecalloc(n, sizeof(*all));
    n = tfpm_rs_pool_procs(all, n);
    for (size_t i = 0; i < n; i++) {
        const tfpm_proc_status *p = &all[i];
        zval proc;
        array_init(&proc);
        add_assoc_long(&proc, "pid", (zend_long) p->pid);
        add_assoc_string(&proc, "state", p->running ? "Running" : "Idle");
        add_assoc_long(&proc, "start-time", (zend_long) p->start_time);
        add_assoc_long(&proc, "start-since", (zend_long) (now - p->start_time));
        add_assoc_long(&proc, "requests", (zend_long) p->requests);
        add_assoc_long(&proc, "request-duration", (zend_long) p->request_duration_us);
        add_assoc_stringl(&proc, "request-method", p->method, p->method_len);
        add_assoc_stringl(&proc, "request-uri", p->uri, p->uri_len);
        add_assoc_stringl(&proc, "query-string", p->query, p->query_len);
        add_assoc_long(&proc, "request-length", (zend_long) p->request_length);
        if (p->user_len) {
            add_assoc_stringl(&proc, "user", p->user, p->user_len);
        } else {
            add_assoc_string(&proc, "user", "-");
        }
        add_assoc_stringl(&proc, "script", p->script, p->script_len);
        /* Not measured per thread (as on tfpm's status page). */
        add_assoc_double(&proc, "last-request-cpu", 0.0);
        add_assoc_long(&proc, "last-request-memory", 0);
        add_next_index_zval(procs, &proc);
    }
    efree(all);
}

/* The pool's name and pm, as tfpm_startup got them. */
static char *tfpm_pool_name;
static char *tfpm_pm_name;

/* php-fpm's fpm_get_status(): the pool's counters under php-fpm's names
 * (threads stand in for its processes). */
PHP_FUNCTION(fpm_get_status)
{
    ZEND_PARSE_PARAMETERS_NONE();
    tfpm_pool_status st;
    if (tfpm_forked_child || tfpm_rs_pool_status(&st) != 0) {
        RETURN_FALSE;
    }
    time_t now = time(NULL);
    array_init(return_value);
    add_assoc_string(return_value, "pool", tfpm_pool_name ? tfpm_pool_name : "www");
    add_assoc_string(return_value, "process-manager", tfpm_pm_name ? tfpm_pm_name : "static");
    add_assoc_long(return_value, "start-time", (zend_long) st.start_time);
    add_assoc_long(return_value, "start-since", (zend_long) (now - st.start_time));
    add_assoc_long(return_value, "accepted-conn", (zend_long) st.accepted_conn);
    add_assoc_long(return_value, "listen-queue", (zend_long) st.listen_queue);
    add_assoc_long(return_value, "max-listen-queue", (zend_long) st.max_listen_queue);
    add_assoc_long(return_value, "listen-queue-len", (zend_long) st.listen_queue_len);
    add_assoc_long(return_value, "idle-processes", (zend_long) st.idle_processes);
    add_assoc_long(return_value, "active-processes", (zend_long) st.active_processes);
    add_assoc_long(return_value, "total-processes",
        (zend_long) (st.idle_processes + st.active_processes));
    add_assoc_long(return_value, "max-active-processes", (zend_long) st.max_active_processes);
    add_assoc_long(return_value, "max-children-reached", (zend_long) st.max_children_reached);
    add_assoc_long(return_value, "slow-requests", (zend_long) st.slow_requests);
#if PHP_VERSION_ID >= 80400
    add_assoc_long(return_value, "memory-peak", (zend_long) tfpm_memory_peak());
#endif
    zval procs;
    array_init(&procs);
    add_procs(&procs, now);
    add_assoc_zval(return_value, "procs", &procs);
}

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_fastcgi_finish_request, 0, 0, _IS_BOOL, 0)
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_getallheaders, 0, 0, IS_ARRAY, 0)
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_MASK_EX(arginfo_fpm_get_status, 0, 0, MAY_BE_ARRAY|MAY_BE_FALSE)
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_frankenphp_handle_request, 0, 1, _IS_BOOL, 0)
    ZEND_ARG_TYPE_INFO(0, callback, IS_CALLABLE, 0)
ZEND_END_ARG_INFO()

static const zend_function_entry tfpm_functions[] = {
    PHP_FE(fastcgi_finish_request, arginfo_fastcgi_finish_request)
    PHP_FE(apache_request_headers, arginfo_getallheaders)
    PHP_FALIAS(getallheaders, apache_request_headers, arginfo_getallheaders)
    PHP_FE(fpm_get_status, arginfo_fpm_get_status)
    PHP_FE_END
};

/* The same, plus FrankenPHP's two, in a pool with a worker script; other
 * pools have exactly php-fpm's functions. */
static const zend_function_entry tfpm_worker_functions[] = {
    PHP_FE(fastcgi_finish_request, arginfo_fastcgi_finish_request)
    PHP_FE(apache_request_headers, arginfo_getallheaders)
    PHP_FALIAS(getallheaders, apache_request_headers, arginfo_getallheaders)
    PHP_FE(fpm_get_status, arginfo_fpm_get_status)
    PHP_FALIAS(frankenphp_finish_request, fastcgi_finish_request, arginfo_fastcgi_finish_request)
    PHP_FE(frankenphp_handle_request, arginfo_frankenphp_handle_request)
    PHP_FE_END
};

static PHP_RSHUTDOWN_FUNCTION(tfpm)
{
    tfpm_isolation_request_shutdown();
    return SUCCESS;
}

/* Named as php-fpm's module, so extension_loaded('cgi-fcgi') and
 * ini_get_all('cgi-fcgi') answer the same. */
static zend_module_entry tfpm_module_entry = {
    STANDARD_MODULE_HEADER,
    "cgi-fcgi",
    tfpm_functions,
    PHP_MINIT(tfpm),
    PHP_MSHUTDOWN(tfpm),
    NULL,
    PHP_RSHUTDOWN(tfpm),
    NULL,
    PHP_VERSION,
    PHP_MODULE_GLOBALS(tfpm),
    PHP_GINIT(tfpm),
    NULL,
    NULL,
    STANDARD_MODULE_PROPERTIES_EX
};

/* ---- module ------------------------------------------------------------ */

static int tfpm_module_startup(sapi_module_struct *module)
{
    return php_module_startup(module, &tfpm_module_entry);
}

/* ---- per-directory settings: [PATH=]/[HOST=] sections and .user.ini ---- */

/* The .user.ini settings read for one directory, and until when they hold. */
typedef struct {
    time_t expires;
    HashTable settings;
} user_ini_dir;

/* Directory -> user_ini_dir, per thread (persistent memory), as php-fpm
 * keeps one cache per worker. */
static __thread HashTable *user_ini_cache;

static void free_setting(zval *value)
{
    if (Z_TYPE_P(value) == IS_STRING) {
        zend_string_release_ex(Z_STR_P(value), 1);
    } else if (Z_TYPE_P(value) == IS_ARRAY) {
        zend_hash_destroy(Z_ARRVAL_P(value));
        free(Z_ARR_P(value));
    }
}

static void free_user_ini_dir(zval *value)
{
    user_ini_dir *dir = Z_PTR_P(value);
    zend_hash_destroy(&dir->settings);
    free(dir);
}

static user_ini_dir *user_ini_dir_for(const char *path, size_t path_len)
{
    if (!user_ini_cache) {
        user_ini_cache = malloc(sizeof(HashTable));
        zend_hash_init(user_ini_cache, 8, NULL, free_user_ini_dir, 1);
    }
    user_ini_dir *dir = zend_hash_str_find_ptr(user_ini_cache, path, path_len);
    if (!dir) {
        dir = calloc(1, sizeof(user_ini_dir));
        zend_hash_init(&dir->settings, 8, NULL, free_setting, 1);
        zend_hash_str_update_ptr(user_ini_cache, path, path_len, dir);
    }
    return dir;
}

/*
 * Reads the .user.ini files that apply to `path` (a directory, ending in a
 * slash): each directory from the document root down to it when it lies
 * inside the document root, else only its own.
 */
static void read_user_ini(char *path, size_t path_len, const char *doc_root, size_t doc_root_len,
    HashTable *settings)
{
    size_t shorter = path_len < doc_root_len ? path_len : doc_root_len;
    if (strncmp(path, doc_root, shorter) != 0) {
        php_parse_user_ini_file(path, PG(user_ini_filename), settings);
        return;
    }
    char *longer = path_len > doc_root_len ? path : (char *) doc_root;
    for (char *slash = strchr(longer + doc_root_len, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        php_parse_user_ini_file(longer, PG(user_ini_filename), settings);
        *slash = '/';
    }
}

static void activate_user_ini(char *path, size_t path_len, const char *doc_root)
{
    size_t doc_root_len = strlen(doc_root);
    if (doc_root_len > 0 && doc_root[doc_root_len - 1] == '/') {
        doc_root_len--;
    }
    user_ini_dir *dir = user_ini_dir_for(path, path_len);
    time_t now = sapi_get_request_time();
    if (now > dir->expires) {
        zend_hash_clean(&dir->settings);
        read_user_ini(path, path_len, doc_root, doc_root_len, &dir->settings);
        dir->expires = now + PG(user_ini_cache_ttl);
    }
    php_ini_activate_config(&dir->settings, PHP_INI_PERDIR, PHP_INI_STAGE_HTACCESS);
}

/* SAPI activate: the request's disable_classes, php.ini's [HOST=] and
 * [PATH=] sections, then .user.ini. */
static int tfpm_activate(void)
{
    tfpm_request_classes_disable();
    const char *script = SG(request_info).path_translated;
    if (!script || tfpm_worker_in_request()) {
        return FAILURE;
    }
    const char *host = find_param("SERVER_NAME", sizeof("SERVER_NAME") - 1);
    if (php_ini_has_per_host_config() && host) {
        size_t len = strlen(host);
        char *lower = estrndup(host, len);
        zend_str_tolower(lower, len);
        php_ini_activate_per_host_config(lower, len);
        efree(lower);
    }
    int user_ini = PG(user_ini_filename) && *PG(user_ini_filename);
    if (!php_ini_has_per_dir_config() && !user_ini) {
        return SUCCESS;
    }
    /* The script's directory, with a trailing slash for the [PATH=] match. */
    size_t len = strlen(script);
    char *path = emalloc(len + 2);
    memcpy(path, script, len + 1);
    len = zend_dirname(path, len);
    path[len++] = '/';
    path[len] = '\0';
    php_ini_activate_per_dir_config(path, len);
    const char *doc_root = find_param("DOCUMENT_ROOT", sizeof("DOCUMENT_ROOT") - 1);
    if (user_ini && doc_root) {
        activate_user_ini(path, len, doc_root);
    }
    efree(path);
    return SUCCESS;
}

static sapi_module_struct tfpm_sapi_module = {
    "fpm-fcgi",                    /* name: opcache and apps look for it */
    "FPM/FastCGI",                 /* pretty name, as php-fpm reports it in phpinfo() */
    tfpm_module_startup,
    php_module_shutdown_wrapper,
    tfpm_activate,                 /* activate: per-directory settings */
    tfpm_deactivate,
    tfpm_ub_write,
    tfpm_flush,
    NULL,                          /* get_stat */
    tfpm_getenv,
    php_error,
    NULL,                          /* header_handler */
    tfpm_send_headers,
    NULL,                          /* send_header */
    tfpm_read_post,
    tfpm_read_cookies,
    tfpm_register_variables,
    tfpm_log_message,
    NULL,                          /* get_request_time */
    NULL,                          /* terminate_process */
    STANDARD_SAPI_MODULE_PROPERTIES
};

void tfpm_set_phpinfo_as_text(int as_text)
{
    sapi_module.phpinfo_as_text = as_text; /* sapi_startup copied our module here */
}

/* expose_php as PHP started with it: the status page, answered outside
 * PHP, says who it is the way PHP would. */
static int tfpm_expose_php_at_start;

/* Set once at start-up, read by every worker thread as it starts. */
static char *tfpm_locked_ini;

/* Our copy of the -d entries: sapi_module_struct.ini_entries is const since
 * PHP 8.3, so this is the pointer that gets freed. */
static char *tfpm_ini_entries;

int tfpm_startup(const tfpm_startup_config *config)
{
#if PHP_VERSION_ID >= 80300
    /* 8.3+ sizes TSRM's table of thread storage for the threads expected;
     * php_tsrm_startup() means one, a single list that every thread walks. */
    if (!php_tsrm_startup_ex(config->expected_threads > 0 ? config->expected_threads : 1)) {
        return -1;
    }
#else
    if (!php_tsrm_startup()) {
        return -1;
    }
#endif
    sapi_startup(&tfpm_sapi_module);
    /* These must be set after sapi_startup, which clears ini_entries. */
    tfpm_sapi_module.php_ini_ignore = config->ignore_ini;
    tfpm_sapi_module.php_ini_ignore_cwd = 1;
    tfpm_sapi_module.php_ini_path_override = config->ini_path ? strdup(config->ini_path) : NULL;
    tfpm_ini_entries = config->ini_entries ? strdup(config->ini_entries) : NULL;
    tfpm_sapi_module.ini_entries = tfpm_ini_entries;
    tfpm_sapi_module.executable_location = config->executable ? strdup(config->executable) : NULL;
    tfpm_locked_ini = config->locked_ini ? strdup(config->locked_ini) : NULL;
    tfpm_pool_name = strdup(config->pool_name ? config->pool_name : "www");
    tfpm_pm_name = strdup(config->process_manager ? config->process_manager : "static");
    tfpm_module_entry.functions = config->worker_mode ? tfpm_worker_functions : tfpm_functions;
    if (tfpm_sapi_module.startup(&tfpm_sapi_module) == FAILURE) {
        return -1;
    }
    php_import_environment_variables = tfpm_import_environment;
    tfpm_expose_php_at_start = PG(expose_php) ? 1 : 0;
    tfpm_set_report_fd(config->report_fd);
    tfpm_signals_startup();
    tfpm_slowlog_startup(config);
    tfpm_stack_measure_startup();
    if (config->worker_mode) {
        tfpm_worker_startup();
    }
    return 0;
}

void tfpm_shutdown(void)
{
    if (tfpm_sapi_module.shutdown) {
        tfpm_sapi_module.shutdown(&tfpm_sapi_module);
    }
    sapi_shutdown();
    tsrm_shutdown();
    free(tfpm_sapi_module.php_ini_path_override);
    free(tfpm_ini_entries);
    tfpm_ini_entries = NULL;
    free(tfpm_sapi_module.executable_location);
    tfpm_sapi_module.php_ini_path_override = NULL;
    tfpm_sapi_module.ini_entries = NULL;
    tfpm_sapi_module.executable_location = NULL;
}

/* Makes this thread's copy of each php_admin_value entry system-only, as
 * php-fpm does in its children: ini_set() and PHP_VALUE then fail on it. */
static void lock_admin_ini(void)
{
    const char *name = tfpm_locked_ini;
    while (name && *name) {
        const char *end = strchr(name, '\n');
        size_t len = end ? (size_t) (end - name) : strlen(name);
        zend_ini_entry *entry = zend_hash_str_find_ptr(EG(ini_directives), name, len);
        if (entry) {
            entry->modifiable = ZEND_INI_SYSTEM;
        }
        name = end ? end + 1 : name + len;
    }
}

#ifdef ZEND_CHECK_STACK_LIMIT
/* PHP 8.3+ checks the C stack against EG(stack_limit), which leaves
 * zend.reserved_stack_size below the last check for whatever runs after it:
 * PHP's own frames and tfpm's callbacks (output, flush, reading the body,
 * logging), on the thread's stack or a Fiber's. PHP's minimum, its default,
 * covers PHP alone, so each thread reserves at least that plus
 * TFPM_CALLBACK_STACK, the most a callback may use (tests/engine.rs measures
 * them against it). A larger zend.reserved_stack_size from php.ini or -d
 * stays; ini_get() still shows the configured value. Fibers take the reserve
 * from EG(reserved_stack_size) when they start, so theirs follows. */
#define TFPM_CALLBACK_STACK (32 * 1024)

static void reserve_callback_stack(void)
{
#ifdef ZEND_ALLOCA_MAX_SIZE
    zend_ulong php_min = ZEND_ALLOCA_MAX_SIZE + 16 * 1024; /* as zend.c computes it */
#else
    zend_ulong php_min = 32 * 1024;
#endif
    if (EG(reserved_stack_size) < php_min + TFPM_CALLBACK_STACK) {
        EG(reserved_stack_size) = php_min + TFPM_CALLBACK_STACK;
        zend_call_stack_init(); /* EG(stack_limit) again, with the new reserve */
    }
}

/* The zend.max_allowed_stack_size EG(stack_limit) was computed with. PHP
 * computes the limit once per thread, so a value from the request
 * (PHP_VALUE, a pool's php_admin_value), or the thread's own again after
 * one, would only change what ini_get() shows: the limit is computed again
 * whenever the setting differs from the one it was computed with. */
static __thread zend_long stack_limit_setting;

static void follow_stack_setting(void)
{
    if (EG(max_allowed_stack_size) != stack_limit_setting) {
        zend_call_stack_init();
        stack_limit_setting = EG(max_allowed_stack_size);
    }
}
#endif

/* The scanner's converted copy of a script (zend.multibyte with a
 * zend.script_encoding, or a declare(encoding=...)) and its encoding
 * filters are put back when its compile ends, but a fatal error in the
 * middle of the compile (a redeclared function, a misplaced declare) jumps
 * past that and leaves them in the thread's scanner state, while the
 * request shutdown frees the memory. On the thread's later requests:
 * - the next highlight_string() or highlight_file() freed the copy again:
 *   zend_mm_heap corrupted, and the worker died;
 * - every __halt_compiler() ran the leftover filter over the freed original
 *   to compute __COMPILER_HALT_OFFSET__, which came out wrong (and opcache
 *   kept the wrong value).
 * A php-fpm child that lives on carries the same leftovers; php-src's tests
 * run it with one request per child. Each request starts without them. */
static void forget_scanner_leftovers(void)
{
    LANG_SCNG(script_org) = NULL;
    LANG_SCNG(script_org_size) = 0;
    LANG_SCNG(script_filtered) = NULL;
    LANG_SCNG(script_filtered_size) = 0;
    LANG_SCNG(input_filter) = NULL;
    LANG_SCNG(output_filter) = NULL;
    LANG_SCNG(script_encoding) = NULL;
}

void tfpm_thread_init(tfpm_thread_handle *handle)
{
    /* The thread's own umask and working directory, as a php-fpm child has
     * its own: a script's umask() must not change the files that other
     * threads' requests create meanwhile. */
    (void) unshare(CLONE_FS);
    (void) ts_resource(0);
#ifdef ZEND_CHECK_STACK_LIMIT
    reserve_callback_stack();
    stack_limit_setting = EG(max_allowed_stack_size);
#endif
    lock_admin_ini();
    tfpm_isolation_thread_init();
    tfpm_worker_thread_init();
    handle->thread = (uint64_t) pthread_self();
    handle->vm_interrupt = &EG(vm_interrupt);
    handle->kill_seq = &tfpm_kill_seq;
    handle->kill_after = &tfpm_kill_after;
    handle->abort_seq = &tfpm_abort_seq;
    handle->slow_seq = &tfpm_slow_seq;
    handle->running_seq = &tfpm_running_seq;
}

tfpm_cgi_settings tfpm_cgi_settings_now(void)
{
    tfpm_cgi_settings settings;
    settings.fix_pathinfo = TFPM_G(fix_pathinfo);
    settings.discard_path = TFPM_G(discard_path);
    settings.doc_root = PG(doc_root) && *PG(doc_root) ? PG(doc_root) : NULL;
    return settings;
}

void tfpm_thread_shutdown(void)
{
    tfpm_fork_thread_shutdown();
    ts_free_thread();
}

const char *tfpm_sapi_name(void)
{
    return tfpm_sapi_module.name;
}

int tfpm_expose_php(void)
{
    return tfpm_expose_php_at_start;
}

/* php-fpm's "memory peak": the largest zend_memory_peak_usage(1) that any
 * thread had after ending a request (php-fpm reads it in fpm_request_end(),
 * after php_request_shutdown() too). */
static _Atomic size_t tfpm_memory_peak_max;

static void note_memory_peak(void)
{
    size_t peak = zend_memory_peak_usage(1);
    size_t seen = tfpm_memory_peak_max;
    while (peak > seen
        && !atomic_compare_exchange_weak(&tfpm_memory_peak_max, &seen, peak)) {
    }
}

size_t tfpm_memory_peak(void)
{
    return tfpm_memory_peak_max;
}

const char *tfpm_php_version(void)
{
    return PHP_VERSION;
}

/* ---- one request ------------------------------------------------------- */

void tfpm_fill_request_info(const tfpm_request *r)
{
    SG(request_info).request_method = r->method;
    SG(request_info).query_string = (char *) r->query_string;
    SG(request_info).request_uri = (char *) r->script_name;
    SG(request_info).path_translated = r->script_filename ? estrdup(r->script_filename) : NULL;
    SG(request_info).content_type = r->content_type ? r->content_type : "";
    SG(request_info).content_length = r->content_length > 0 ? r->content_length : 0;
    SG(request_info).proto_num = 1000;
    SG(sapi_headers).http_response_code = 200;
    php_handle_auth_data(r->authorization);
}

/* php-fpm frees path_translated before request shutdown; the rest stays until after it. */
void tfpm_free_path_translated(void)
{
    if (SG(request_info).path_translated) {
        efree(SG(request_info).path_translated);
    }
    SG(request_info).path_translated = NULL;
}

/* A note of the SAPI's to the web server's log (and ours), like php-fpm's zlog. */
void tfpm_log_fastcgi(const char *message)
{
    const tfpm_request *r = tfpm_current_request;
    if (tfpm_forked_child) {
        tfpm_fork_child_log(message);
    } else if (r) {
        tfpm_rs_log(r->ctx, TFPM_LOG_SAPI, message, strlen(message));
    }
}

void tfpm_clear_request_info(void)
{
    SG(request_info).request_method = NULL;
    SG(request_info).query_string = NULL;
    SG(request_info).request_uri = NULL;
    SG(request_info).content_type = NULL;
}

static void respond_plain(int status, const char *body)
{
    zend_try {
        SG(sapi_headers).http_response_code = status;
        PUTS(body);
    } zend_end_try();
}

/* php-fpm's ping page: its URI gets ping.response, before any script. */
static int answer_ping(const tfpm_request *r)
{
    const char *uri = SG(request_info).request_uri;
    if (!r->ping_path || !r->ping_response || !uri || strcmp(uri, r->ping_path) != 0) {
        return 0;
    }
    zend_try {
        sapi_add_header_ex(ZEND_STRL("Content-Type: text/plain"), 1, 1);
        sapi_add_header_ex(ZEND_STRL("Expires: Thu, 01 Jan 1970 00:00:00 GMT"), 1, 1);
        sapi_add_header_ex(ZEND_STRL("Cache-Control: no-cache, no-store, must-revalidate, max-age=0"), 1, 1);
        SG(sapi_headers).http_response_code = 200;
        if (!SG(request_info).headers_only) {
            PUTS(r->ping_response);
        }
    } zend_end_try();
    return 1;
}

static void run_script(const tfpm_request *r)
{
    if (answer_ping(r)) {
        return;
    }
    if (r->disposition == TFPM_NOT_FOUND || !SG(request_info).path_translated) {
        static const char msg[] = "Primary script unknown";
        tfpm_rs_log(r->ctx, TFPM_LOG_SAPI, msg, sizeof(msg) - 1);
        respond_plain(404, "File not found.\n");
        return;
    }
    if (r->disposition == TFPM_DENIED) {
        char message[PATH_MAX + 128];
        snprintf(message, sizeof(message),
            "Access to the script '%s' has been denied (see security.limit_extensions)",
            SG(request_info).path_translated);
        tfpm_log_fastcgi(message);
        respond_plain(403, "Access denied.\n");
        return;
    }
    if (input_timed_out) {
        /* The body did not arrive within max_input_time. */
        zend_long secs = PG(max_input_time) == -1 ? EG(timeout_seconds) : PG(max_input_time);
        zend_error(E_ERROR, "Maximum execution time of " ZEND_LONG_FMT " second%s exceeded",
            secs, secs == 1 ? "" : "s");
        return;
    }
    zend_file_handle file_handle;
    memset(&file_handle, 0, sizeof(file_handle));
    /* Kept: php_fopen_primary_script() may free path_translated. */
    char *primary = estrdup(SG(request_info).path_translated);
    if (php_fopen_primary_script(&file_handle) == FAILURE) {
        int denied = errno == EACCES;
        char message[PATH_MAX + 128];
        snprintf(message, sizeof(message), "Unable to open primary script: %s (%s)",
            primary, strerror(errno));
        tfpm_log_fastcgi(message);
        respond_plain(denied ? 403 : 404, denied ? "Access denied.\n" : "No input file specified.\n");
    } else {
        EG(exit_status) = 0;
        if (tfpm_abort_requested()) {
            /* The client left during start-up, which cleared the flag. */
            zend_atomic_bool_store(&EG(vm_interrupt), true);
        }
        tfpm_running_seq = tfpm_current_seq; /* the slowlog's window */
        php_execute_script(&file_handle);
        tfpm_running_seq = 0;
    }
    efree(primary);
    if (!file_handle.in_list) {
        zend_destroy_file_handle(&file_handle);
    }
}

/* fastcgi.error_header: replaces the status after a fatal error, if still possible. */
static void send_error_header(void)
{
    const char *header = TFPM_G(error_header);
    if (header && *header && !SG(headers_sent)) {
        sapi_header_line line = {0};
        line.line = header;
        line.line_len = strlen(header);
        sapi_header_op(SAPI_HEADER_REPLACE, &line);
    }
}

/* What the access log needs, read where php-fpm reads it: after the script
 * (and fastcgi.error_header), before the request shutdown resets it. */
void tfpm_report_end(const tfpm_request *r, int started)
{
    if (!r->report_end || tfpm_forked_child) {
        return;
    }
    tfpm_request_end end;
    memset(&end, 0, sizeof(end));
    end.status = started ? SG(sapi_headers).http_response_code : 500;
    end.peak_memory = (uint64_t) zend_memory_peak_usage(1);
    end.auth_user = SG(request_info).auth_user;
    smart_str headers = {0};
    if (started && r->report_end > 1) {
        zend_llist_position pos;
        sapi_header_struct *h = zend_llist_get_first_ex(&SG(sapi_headers).headers, &pos);
        for (; h; h = zend_llist_get_next_ex(&SG(sapi_headers).headers, &pos)) {
            if (h->header_len) {
                smart_str_appendl(&headers, h->header, h->header_len);
                smart_str_appendc(&headers, '\n');
            }
        }
        smart_str_0(&headers);
    }
    end.headers = headers.s ? ZSTR_VAL(headers.s) : NULL;
    end.headers_len = headers.s ? ZSTR_LEN(headers.s) : 0;
    tfpm_rs_request_end(r->ctx, &end);
    smart_str_free(&headers);
}

int tfpm_execute(const tfpm_request *request, uint64_t seq)
{
    volatile int started = 0;
    volatile int status = 0;
    tfpm_current_request = request;
    tfpm_current_seq = seq;
    input_timed_out = 0;
    tfpm_worker_script_begin(request);
    zend_first_try {
        SG(server_context) = request->ctx;
        tfpm_fill_request_info(request);
        /* The request's working directory, before any setting is applied:
         * an ini handler that resolves a path (browscap's) would find none
         * and crash, since the last request shutdown freed it. */
        virtual_cwd_activate();
        /* As before a php-fpm child's first request (php_request_startup
         * clears it too): handlers that check it (session.save_handler's)
         * then take a value they cannot use yet without a fatal error. */
        PG(modules_activated) = 0;
        forget_scanner_leftovers();
        tfpm_request_ini_apply(request->php_value, 0);
        tfpm_request_ini_apply(request->php_admin_value, 1);
#ifdef ZEND_CHECK_STACK_LIMIT
        follow_stack_setting();
#endif
        if (php_request_startup() == SUCCESS) {
            started = 1;
            run_script(request);
        } else {
            status = 255;
        }
    } zend_catch {
        status = 255;
    } zend_end_try();
    if (!started) {
        /* No request shutdown will undo what start-up changed: do it here. */
        zend_ini_deactivate();
        virtual_cwd_deactivate();
    }

    tfpm_running_seq = 0; /* also after a bailout out of the script */
    zend_first_try {
        if (started) {
            status = EG(exit_status);
            if (status == 255) {
                send_error_header();
            }
        }
        /* In worker mode, the request the script was serving when it ended. */
        tfpm_report_end(tfpm_current_request, started);
        tfpm_free_path_translated();
        if (started) {
            /* Do not drain an unread body before ending the response (php-fpm
             * does, to stay in sync; the connection skips the rest instead),
             * so a stalled upload cannot hold the thread. */
            SG(post_read) = 1;
            php_request_shutdown(NULL);
            note_memory_peak();
        }
    } zend_end_try();
    if (tfpm_forked_child) {
        /* The child of the script's pcntl_fork(): its script and PHP's
         * request shutdown are over, and there is no thread to go back to. */
        tfpm_fork_child_exit(status);
    }
    tfpm_fork_request_end();
    tfpm_request_ini_restore();
    tfpm_clear_request_info();
    tfpm_worker_script_end();
    tfpm_worker_request_ended();
    SG(server_context) = NULL;
    tfpm_current_request = NULL;
    tfpm_current_seq = 0;
    return status;
}
