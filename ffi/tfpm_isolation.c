/*
 * tfpm_isolation.c: keeps one request's changes to process-wide state away
 * from every other thread.
 *
 * Under php-fpm each worker is its own process, so putenv(), setlocale() and
 * signal handlers only ever touch that worker. Here all PHP threads share one
 * process, so:
 *   - putenv() writes to a per-request table that getenv() reads after the
 *     web server's params; the real environment is never changed, and
 *     getenv() never shows it, as php-fpm's clear_env=yes. The processes a
 *     script starts (exec, system, passthru, shell_exec and ``, popen,
 *     proc_open without an environment of its own) get the table's
 *     changes: exported at the head of their shell command, or through
 *     env(1) for proc_open's array form;
 *   - setlocale() sets a per-thread locale (uselocale), undone at request end;
 *   - pcntl's process-wide calls (signal masks, exec, sigwait) are refused
 *     with a warning, except in the child of a pcntl_fork(), which is a
 *     process of its own (tfpm_fork.c, with pcntl_fork() and pcntl_alarm());
 *     a script's signal handlers belong to its request (tfpm_pcntl.c);
 *   - proc_nice() changes the calling thread's priority on Linux, not the
 *     process's: the thread gets its own back when the request ends;
 *   - posix_setrlimit() changes the process's limits: they are put back
 *     when the request that changed them ends.
 * The replacement handlers are swapped into each worker thread's own copy of
 * the function table (ZTS gives every thread one) when the thread starts.
 */
#include <locale.h>
#include <pthread.h>
#include <langinfo.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "php.h"
#include "SAPI.h"
#include "ext/standard/basic_functions.h"
#include "php_variables.h"
#include "zend_smart_str.h"
#include "tfpm_internal.h"

/* ---- the function table -------------------------------------------------- */

static zif_handler replace_handler(const char *name, zif_handler handler);

/* Declared in tfpm_internal.h. Where the threads share the function (PHP
 * 8.3+), a later thread finds `handler` already there: the
 * original stays as the first thread found it (taking `handler` as its own
 * original made it call itself until the stack overflowed). */
void tfpm_wrap_handler(const char *name, zif_handler handler, zif_handler *original)
{
    zif_handler old = replace_handler(name, handler);
    if (old && old != handler) {
        __atomic_store_n(original, old, __ATOMIC_RELEASE);
    }
}

/* Replaces an internal function's handler; returns the old one (NULL if absent).
 * From PHP 8.3 on, the threads share the internal functions, so a thread
 * can find the handler already replaced by another: see tfpm_wrap_handler(). */
static zif_handler replace_handler(const char *name, zif_handler handler)
{
    zend_function *fn = zend_hash_str_find_ptr(CG(function_table), name, strlen(name));
    if (!fn || fn->type != ZEND_INTERNAL_FUNCTION) {
        return NULL;
    }
    zif_handler old = fn->internal_function.handler;
    fn->internal_function.handler = handler;
    return old;
}

/* ---- pcntl ----------------------------------------------------------------- */

static const char *const process_wide[] = {
    "pcntl_sigprocmask", "pcntl_rfork", "pcntl_exec", "pcntl_sigwaitinfo",
    "pcntl_sigtimedwait", "pcntl_unshare", NULL
};
#define N_PROCESS_WIDE (sizeof(process_wide) / sizeof(process_wide[0]) - 1)

/* Their own handlers, for the child of a pcntl_fork(). */
static zif_handler process_wide_handlers[N_PROCESS_WIDE];

static zif_handler own_handler(const zend_string *name)
{
    for (size_t i = 0; i < N_PROCESS_WIDE; i++) {
        if (zend_string_equals_cstr(name, process_wide[i], strlen(process_wide[i]))) {
            return __atomic_load_n(&process_wide_handlers[i], __ATOMIC_ACQUIRE);
        }
    }
    return NULL;
}

static ZEND_NAMED_FUNCTION(tfpm_refused)
{
    if (tfpm_forked_child) {
        zif_handler own = own_handler(EX(func)->common.function_name);
        if (own) {
            own(execute_data, return_value);
            return;
        }
    }
    /* php_error_docref names the function. */
    php_error_docref(NULL, E_WARNING,
        "Not available under tfpm: PHP runs on threads that share one process, "
        "so signal masks, signal waits and exec would affect every request");
    RETURN_FALSE;
}

/* ---- putenv / getenv ------------------------------------------------------- */

/* NAME => value (string) or unset (null), for this request only. */
static __thread HashTable *env_overrides;

static ZEND_NAMED_FUNCTION(tfpm_putenv)
{
    char *setting;
    size_t len;
    ZEND_PARSE_PARAMETERS_START(1, 1)
        Z_PARAM_STRING(setting, len)
    ZEND_PARSE_PARAMETERS_END();
    if (len == 0 || setting[0] == '=') {
        zend_argument_value_error(1, "must have a valid syntax");
        RETURN_THROWS();
    }
    if (!env_overrides) {
        ALLOC_HASHTABLE(env_overrides);
        zend_hash_init(env_overrides, 8, NULL, ZVAL_PTR_DTOR, 0);
    }
    const char *eq = memchr(setting, '=', len);
    zval value;
    if (eq) {
        ZVAL_STRINGL(&value, eq + 1, len - (size_t) (eq - setting) - 1);
    } else {
        ZVAL_NULL(&value);
        eq = setting + len;
    }
    zend_hash_str_update(env_overrides, setting, (size_t) (eq - setting), &value);
    RETURN_TRUE;
}

/* Applies this request's putenv() changes to getenv()'s array of everything. */
static void apply_overrides(zval *array)
{
    zend_string *name;
    zval *value;
    ZEND_HASH_FOREACH_STR_KEY_VAL(env_overrides, name, value) {
        if (Z_TYPE_P(value) == IS_STRING) {
            Z_TRY_ADDREF_P(value);
            zend_symtable_update(Z_ARRVAL_P(array), name, value);
        } else {
            zend_symtable_del(Z_ARRVAL_P(array), name);
        }
    } ZEND_HASH_FOREACH_END();
}

/*
 * getenv(), as under php-fpm with clear_env=yes: the web server's params,
 * then this request's putenv() changes; never the daemon's own environment.
 */
static ZEND_NAMED_FUNCTION(tfpm_getenv)
{
    char *name = NULL;
    size_t len = 0;
    bool local_only = 0;
    ZEND_PARSE_PARAMETERS_START(0, 2)
        Z_PARAM_OPTIONAL
        Z_PARAM_STRING_OR_NULL(name, len)
        Z_PARAM_BOOL(local_only)
    ZEND_PARSE_PARAMETERS_END();
    if (!name) {
        array_init(return_value);
        /* As php-fpm's getenv(): the params, unfiltered. */
        tfpm_load_params(return_value, TFPM_UNFILTERED);
        if (env_overrides) {
            apply_overrides(return_value);
        }
        return;
    }
    if (!local_only) {
        /* sapi_getenv() leaves out HTTP_PROXY (httpoxy), as in php-fpm. */
        char *param = sapi_getenv(name, len);
        if (param) {
            RETVAL_STRING(param);
            efree(param);
            return;
        }
    }
    zval *value = env_overrides ? zend_hash_str_find(env_overrides, name, len) : NULL;
    if (value && Z_TYPE_P(value) == IS_STRING) {
        RETURN_COPY(value);
    }
    RETURN_FALSE;
}

/* ---- setlocale ------------------------------------------------------------- */

/* This thread's own locale while a request has changed it, else NULL. */
static __thread locale_t thread_locale;

static int category_mask(zend_long cat)
{
    switch (cat) {
    case LC_ALL: return LC_ALL_MASK;
    case LC_COLLATE: return LC_COLLATE_MASK;
    case LC_CTYPE: return LC_CTYPE_MASK;
    case LC_MONETARY: return LC_MONETARY_MASK;
    case LC_NUMERIC: return LC_NUMERIC_MASK;
    case LC_TIME: return LC_TIME_MASK;
#ifdef LC_MESSAGES
    case LC_MESSAGES: return LC_MESSAGES_MASK;
#endif
    default: return 0;
    }
}

/* The name of the locale this thread uses for `cat` (LC_CTYPE's for LC_ALL). */
static const char *current_name(zend_long cat)
{
    int named = cat == LC_ALL ? LC_CTYPE : (int) cat;
    if (!thread_locale) {
        return setlocale((int) cat, NULL);
    }
    return nl_langinfo_l(_NL_LOCALE_NAME(named), thread_locale);
}

/* Switches this thread to `name` for `cat`; returns the resulting name or NULL. */
static const char *switch_locale(zend_long cat, const char *name)
{
    int mask = category_mask(cat);
    if (!mask) {
        return NULL;
    }
    locale_t base = duplocale(thread_locale ? thread_locale : LC_GLOBAL_LOCALE);
    if (!base) {
        return NULL;
    }
    locale_t next = newlocale(mask, name, base);
    if (!next) {
        freelocale(base);
        return NULL;
    }
    locale_t old = thread_locale;
    uselocale(next);
    thread_locale = next;
    if (old) {
        freelocale(old);
    }
    return current_name(cat);
}

static void update_ctype_string(zend_long cat, const char *name)
{
    if (cat != LC_CTYPE && cat != LC_ALL) {
        return;
    }
    zend_update_current_locale();
    if (BG(ctype_string)) {
        zend_string_release_ex(BG(ctype_string), 0);
        BG(ctype_string) = NULL;
    }
    if (strcmp(name, "C") != 0) {
        BG(ctype_string) = zend_string_init(name, strlen(name), 0);
    }
}

/* One candidate of setlocale(); NULL if it does not exist. */
static zend_string *try_locale(zend_long cat, zval *candidate)
{
    zend_string *tmp;
    zend_string *name = zval_try_get_tmp_string(candidate, &tmp);
    if (!name) {
        return NULL;
    }
    const char *result;
    if (zend_string_equals_literal(name, "0")) {
        result = current_name(cat);
    } else if (ZSTR_LEN(name) >= 255) {
        php_error_docref(NULL, E_WARNING, "Specified locale name is too long");
        result = NULL;
    } else {
        result = switch_locale(cat, ZSTR_VAL(name));
        if (result) {
            update_ctype_string(cat, result);
        }
    }
    zend_tmp_string_release(tmp);
    return result ? zend_string_init(result, strlen(result), 0) : NULL;
}

static ZEND_NAMED_FUNCTION(tfpm_setlocale)
{
    zend_long cat;
    zval *args = NULL;
    uint32_t count = 0;
    ZEND_PARSE_PARAMETERS_START(2, -1)
        Z_PARAM_LONG(cat)
        Z_PARAM_VARIADIC('+', args, count)
    ZEND_PARSE_PARAMETERS_END();
    for (uint32_t i = 0; i < count; i++) {
        zval *elem;
        zend_string *result = NULL;
        if (Z_TYPE(args[i]) == IS_ARRAY) {
            ZEND_HASH_FOREACH_VAL(Z_ARRVAL(args[i]), elem) {
                result = try_locale(cat, elem);
                if (result || EG(exception)) {
                    break;
                }
            } ZEND_HASH_FOREACH_END();
        } else {
            result = try_locale(cat, &args[i]);
        }
        if (EG(exception)) {
            RETURN_THROWS();
        }
        if (result) {
            RETURN_STR(result);
        }
    }
    RETURN_FALSE;
}

/* ---- child processes ------------------------------------------------------- */

/* The functions that start a process, and their own handlers. */
static const char *const spawners[] = {
    "exec", "system", "passthru", "shell_exec", "popen", "proc_open", NULL
};
/* The spawners' own handlers, the same for every thread (tfpm_wrap_handler()). */
static zif_handler spawner_handlers[6];

/* A name a POSIX shell can export. */
static bool shell_name(const zend_string *name)
{
    const char *p = ZSTR_VAL(name);
    if (ZSTR_LEN(name) == 0 || !(isalpha((unsigned char) *p) || *p == '_')) {
        return false;
    }
    for (size_t i = 1; i < ZSTR_LEN(name); i++) {
        if (!(isalnum((unsigned char) p[i]) || p[i] == '_')) {
            return false;
        }
    }
    return true;
}

/* `text` in single quotes, each ' written as '\''. */
static void append_quoted(smart_str *out, const zend_string *text)
{
    smart_str_appendc(out, '\'');
    for (size_t i = 0; i < ZSTR_LEN(text); i++) {
        if (ZSTR_VAL(text)[i] == '\'') {
            smart_str_appendl(out, "'\\''", 4);
        } else {
            smart_str_appendc(out, ZSTR_VAL(text)[i]);
        }
    }
    smart_str_appendc(out, '\'');
}

/* `command` with this request's putenv() changes exported before it. */
static zend_string *command_with_env(const zend_string *command)
{
    smart_str out = {0};
    zend_string *name;
    zval *value;
    ZEND_HASH_FOREACH_STR_KEY_VAL(env_overrides, name, value) {
        if (!name || !shell_name(name)) {
            continue;
        }
        smart_str_appends(&out, Z_TYPE_P(value) == IS_STRING ? "export " : "unset ");
        smart_str_append(&out, name);
        if (Z_TYPE_P(value) == IS_STRING) {
            smart_str_appendc(&out, '=');
            append_quoted(&out, Z_STR_P(value));
        }
        smart_str_appends(&out, "; ");
    } ZEND_HASH_FOREACH_END();
    smart_str_append(&out, command);
    smart_str_0(&out);
    return out.s;
}

/* proc_open's array form, run through env(1) with the changes: its -u
 * options, then --, then the NAME=value operands, then the command. */
static void array_with_env(zval *command, zval *result)
{
    array_init(result);
    add_next_index_string(result, "/usr/bin/env");
    zend_string *name;
    zval *value;
    ZEND_HASH_FOREACH_STR_KEY_VAL(env_overrides, name, value) {
        if (name && Z_TYPE_P(value) != IS_STRING) {
            add_next_index_string(result, "-u");
            add_next_index_str(result, zend_string_copy(name));
        }
    } ZEND_HASH_FOREACH_END();
    add_next_index_string(result, "--");
    ZEND_HASH_FOREACH_STR_KEY_VAL(env_overrides, name, value) {
        if (name && Z_TYPE_P(value) == IS_STRING && !memchr(ZSTR_VAL(name), '=', ZSTR_LEN(name))) {
            add_next_index_str(result, zend_strpprintf(0, "%s=%s", ZSTR_VAL(name), Z_STRVAL_P(value)));
        }
    } ZEND_HASH_FOREACH_END();
    zval *arg;
    ZEND_HASH_FOREACH_VAL(Z_ARRVAL_P(command), arg) {
        Z_TRY_ADDREF_P(arg);
        add_next_index_zval(result, arg);
    } ZEND_HASH_FOREACH_END();
}

/* Whether this call of `fn` should carry the request's putenv() changes. */
static bool spawn_needs_env(zend_execute_data *execute_data, const char *fn)
{
    if (!env_overrides || zend_hash_num_elements(env_overrides) == 0 || ZEND_CALL_NUM_ARGS(execute_data) < 1) {
        return false;
    }
    if (strcmp(fn, "proc_open") == 0 && ZEND_CALL_NUM_ARGS(execute_data) >= 5
        && Z_TYPE_P(ZEND_CALL_ARG(execute_data, 5)) != IS_NULL) {
        return false; /* an environment of its own replaces everything */
    }
    zval *command = ZEND_CALL_ARG(execute_data, 1);
    return Z_TYPE_P(command) == IS_STRING
        || (Z_TYPE_P(command) == IS_ARRAY && zend_hash_num_elements(Z_ARRVAL_P(command)) > 0);
}

/* Runs the spawner's own handler with its command rewritten for a moment. */
static ZEND_NAMED_FUNCTION(tfpm_spawn)
{
    const char *fn = ZSTR_VAL(execute_data->func->common.function_name);
    zif_handler original = NULL;
    for (int i = 0; spawners[i]; i++) {
        if (strcmp(spawners[i], fn) == 0) {
            original = __atomic_load_n(&spawner_handlers[i], __ATOMIC_ACQUIRE);
        }
    }
    if (!spawn_needs_env(execute_data, fn)) {
        original(execute_data, return_value);
        return;
    }
    zval *command = ZEND_CALL_ARG(execute_data, 1);
    zval saved, rewritten;
    ZVAL_COPY_VALUE(&saved, command);
    if (Z_TYPE_P(command) == IS_STRING) {
        ZVAL_STR(&rewritten, command_with_env(Z_STR_P(command)));
    } else {
        array_with_env(command, &rewritten);
    }
    ZVAL_COPY_VALUE(command, &rewritten);
    original(execute_data, return_value);
    zval_ptr_dtor(command);
    ZVAL_COPY_VALUE(command, &saved);
}

/* ---- the thread's priority ---------------------------------------------- */

/* The thread's nice value when it started serving; whether a script has
 * called proc_nice() since, and proc_nice()'s own handler. */
static __thread int thread_nice;
static __thread bool thread_reniced;
static zif_handler proc_nice_handler;

static pid_t thread_id(void)
{
    return (pid_t) syscall(SYS_gettid);
}

static ZEND_NAMED_FUNCTION(tfpm_proc_nice)
{
    thread_reniced = true;
    proc_nice_handler(execute_data, return_value);
}

/* Puts back the thread's nice value after a request that called
 * proc_nice(). Lowering it again needs CAP_SYS_NICE (root has it); without
 * it the thread keeps the lower priority, as a php-fpm child would. */
static void restore_nice(void)
{
    if (!thread_reniced) {
        return;
    }
    thread_reniced = false;
    (void) setpriority(PRIO_PROCESS, (id_t) thread_id(), thread_nice);
}

/* ---- resource limits ------------------------------------------------------ */

/* The process's limits before any script changed them; whether this
 * thread's request has called posix_setrlimit(), and its own handler. */
static struct rlimit start_limits[RLIM_NLIMITS];
static pthread_once_t start_limits_once = PTHREAD_ONCE_INIT;
static __thread bool thread_set_rlimit;
static zif_handler setrlimit_handler;

static void save_start_limits(void)
{
    for (int r = 0; r < RLIM_NLIMITS; r++) {
        if (getrlimit(r, &start_limits[r]) != 0) {
            start_limits[r].rlim_cur = start_limits[r].rlim_max = RLIM_INFINITY;
        }
    }
}

static ZEND_NAMED_FUNCTION(tfpm_posix_setrlimit)
{
    thread_set_rlimit = true;
    setrlimit_handler(execute_data, return_value);
}

/* Puts back the process's limits after a request that changed them (a
 * lower RLIMIT_FSIZE would otherwise hold for every thread, and for good).
 * Raising a hard limit again needs root, as it would for a php-fpm child. */
static void restore_rlimits(void)
{
    if (!thread_set_rlimit) {
        return;
    }
    thread_set_rlimit = false;
    for (int r = 0; r < RLIM_NLIMITS; r++) {
        (void) setrlimit(r, &start_limits[r]);
    }
}

/* ---- life cycle ------------------------------------------------------------ */

void tfpm_isolation_thread_init(void)
{
    for (size_t i = 0; i < N_PROCESS_WIDE; i++) {
        tfpm_wrap_handler(process_wide[i], tfpm_refused, &process_wide_handlers[i]);
    }
    tfpm_fork_thread_init();
    tfpm_pcntl_thread_init();
    if (replace_handler("getenv", tfpm_getenv)) {
        replace_handler("putenv", tfpm_putenv);
        /* A spawner that is absent (disable_functions) stays absent. */
        for (int i = 0; spawners[i]; i++) {
            tfpm_wrap_handler(spawners[i], tfpm_spawn, &spawner_handlers[i]);
        }
    }
    replace_handler("setlocale", tfpm_setlocale);
    tfpm_wrap_handler("proc_nice", tfpm_proc_nice, &proc_nice_handler);
    pthread_once(&start_limits_once, save_start_limits);
    tfpm_wrap_handler("posix_setrlimit", tfpm_posix_setrlimit, &setrlimit_handler);
    errno = 0;
    thread_nice = getpriority(PRIO_PROCESS, (id_t) thread_id());
    if (errno != 0) {
        thread_nice = 0;
    }
}

void tfpm_isolation_request_shutdown(void)
{
    tfpm_pcntl_request_shutdown();
    restore_nice();
    restore_rlimits();
    if (env_overrides) {
        zend_hash_destroy(env_overrides);
        FREE_HASHTABLE(env_overrides);
        env_overrides = NULL;
    }
    if (thread_locale) {
        uselocale(LC_GLOBAL_LOCALE);
        freelocale(thread_locale);
        thread_locale = NULL;
        zend_update_current_locale();
        if (BG(ctype_string)) {
            zend_string_release_ex(BG(ctype_string), 0);
            BG(ctype_string) = NULL;
        }
    }
}
