/*
 * tfpm_request_ini.c: the ini settings a request brings along.
 *
 * PHP_VALUE and PHP_ADMIN_VALUE are ini lines the web server sends with the
 * request. As in php-fpm, they change the thread's own (master) value of the
 * setting before start-up, so post_max_size and the like count, and a
 * script's ini_set(), ini_restore() or error_reporting() then works on top of
 * them: ini_restore() goes back to the PHP_VALUE. Unlike php-fpm, which keeps
 * them in the child for its next requests, tfpm puts every changed master
 * value back when the request ends (tfpm_request_ini_restore). Any setting
 * may be changed; an admin value cannot then be changed by ini_set().
 *
 * The values are persistent strings owned here, never request memory: the
 * engine's own restore and error_reporting() free only the values a script
 * set, and each thread has its own copy of every ini entry.
 *
 * disable_functions, as in php-fpm, takes the functions out of the function
 * table; here for the request only: each thread has its own copy of the
 * table, and the functions go back in when the request ends.
 * pcre.jit in PHP_VALUE empties the thread's cache of compiled patterns,
 * before the request and after it: a pattern keeps the JIT code it was
 * compiled with, and php-fpm's reference compiles it afresh in its child.
 *
 * disable_classes, too, takes its classes away for the request only
 * (tfpm_request_classes.c).
 *
 * extension and opcache.protect_memory stay per pool: extensions and the
 * protection of opcache's shared memory (one mapping, which a thread that
 * does not protect it writes to) are shared by every thread.
 */
#include "php.h"
#include "zend_ini_scanner.h"
#include "ext/pcre/php_pcre.h"

#include "tfpm_internal.h"

/* ---- disable_functions ---------------------------------------------------- */

/* A function this request took out of the thread's function table. */
typedef struct {
    zend_string *name;
    zend_function *function;
} disabled_function;

static __thread disabled_function *disabled;
static __thread size_t disabled_len;
static __thread size_t disabled_cap;

/* Takes `name` out of the table without destroying it. */
static void disable_function(const char *name, size_t len)
{
    zend_string *key = zend_string_init(name, len, 1);
    zend_str_tolower(ZSTR_VAL(key), len);
    zend_function *function = zend_hash_find_ptr(CG(function_table), key);
    if (!function || function->type != ZEND_INTERNAL_FUNCTION) {
        zend_string_release_ex(key, 1);
        return;
    }
    if (disabled_len == disabled_cap) {
        disabled_cap = disabled_cap ? disabled_cap * 2 : 8;
        disabled = realloc(disabled, disabled_cap * sizeof(disabled_function));
        if (!disabled) {
            zend_error_noreturn(E_CORE_ERROR, "tfpm: out of memory for disable_functions");
        }
    }
    dtor_func_t destructor = CG(function_table)->pDestructor;
    CG(function_table)->pDestructor = NULL;
    zend_hash_del(CG(function_table), key);
    CG(function_table)->pDestructor = destructor;
    disabled[disabled_len].name = key;
    disabled[disabled_len].function = function;
    disabled_len++;
}

/* Calls `each` with every name of `list`, as zend_disable_functions() and
 * php_disable_classes() read their lists: names split at spaces and commas. */
void tfpm_each_name(const char *list, void (*each)(const char *name, size_t len))
{
    const char *start = NULL;
    for (const char *p = list;; p++) {
        if (*p == ' ' || *p == ',' || *p == '\0') {
            if (start) {
                each(start, (size_t) (p - start));
                start = NULL;
            }
            if (!*p) {
                break;
            }
        } else if (!start) {
            start = p;
        }
    }
}

/* Puts the functions back, after the request shutdown took the script's
 * own functions out; the next request counts them as persistent again. */
static void enable_functions(void)
{
    while (disabled_len > 0) {
        disabled_function *d = &disabled[--disabled_len];
        zend_hash_add_ptr(CG(function_table), d->name, d->function);
        zend_string_release_ex(d->name, 1);
    }
}

/* ---- pcre.jit -------------------------------------------------------------- */

/* Whether this request's settings changed pcre.jit. */
static __thread bool pcre_jit_changed;

/* Empties the thread's cache of compiled patterns (none is in use between
 * requests). */
static void forget_compiled_patterns(void)
{
    zend_hash_clean(&PCRE_G(pcre_cache));
}

/* ---- the settings ------------------------------------------------------- */

/* One setting the request changed: the entry, and what to put back. */
typedef struct {
    zend_ini_entry *entry;
    zend_string *master;   /* the value before this request */
    zend_string *ours;     /* the value this request set */
    uint8_t modifiable;
} request_ini;

static __thread request_ini *request_inis;
static __thread size_t request_inis_len;
static __thread size_t request_inis_cap;

static request_ini *request_ini_for(zend_ini_entry *entry)
{
    for (size_t i = 0; i < request_inis_len; i++) {
        if (request_inis[i].entry == entry) {
            return &request_inis[i];
        }
    }
    if (request_inis_len == request_inis_cap) {
        request_inis_cap = request_inis_cap ? request_inis_cap * 2 : 8;
        request_inis = realloc(request_inis, request_inis_cap * sizeof(request_ini));
        if (!request_inis) {
            zend_error_noreturn(E_CORE_ERROR, "tfpm: out of memory for PHP_VALUE settings");
        }
    }
    request_ini *saved = &request_inis[request_inis_len++];
    saved->entry = entry;
    saved->master = entry->value;
    saved->ours = NULL;
    saved->modifiable = entry->modifiable;
    return saved;
}

/* Sets the thread's master value of `name` for this request, as php-fpm's
 * fpm_php_zend_ini_alter_master() does. A value the setting refuses is left
 * out silently, as php-fpm leaves it. */
static zend_result set_request_ini(zend_string *name, zend_string *value, int admin)
{
    zend_ini_entry *entry = zend_hash_find_ptr(EG(ini_directives), name);
    if (!entry) {
        return FAILURE;
    }
    zend_string *duplicate = zend_string_init(ZSTR_VAL(value), ZSTR_LEN(value), 1);
    if (entry->on_modify
        && entry->on_modify(entry, duplicate, entry->mh_arg1, entry->mh_arg2, entry->mh_arg3,
               ZEND_INI_STAGE_ACTIVATE) != SUCCESS) {
        zend_string_release_ex(duplicate, 1);
        return SUCCESS;
    }
    request_ini *saved = request_ini_for(entry);
    if (saved->ours) {
        zend_string_release_ex(saved->ours, 1); /* set twice in one request */
    }
    saved->ours = duplicate;
    entry->value = duplicate;
    if (admin) {
        entry->modifiable = ZEND_INI_SYSTEM;
    }
    return SUCCESS;
}

/* Puts back the master values PHP_VALUE changed, after the engine's own
 * restore (zend_ini_deactivate) has undone what the script changed. */
static void restore_request_ini(void)
{
    while (request_inis_len > 0) {
        request_ini *saved = &request_inis[--request_inis_len];
        zend_ini_entry *entry = saved->entry;
        entry->modifiable = saved->modifiable;
        if (entry->value != saved->ours) {
            continue; /* not ours any more: leave it, and our string, alone */
        }
        if (entry->on_modify
            && entry->on_modify(entry, saved->master, entry->mh_arg1, entry->mh_arg2,
                   entry->mh_arg3, ZEND_INI_STAGE_DEACTIVATE) != SUCCESS) {
            continue; /* the setting refuses its old value: keep ours, still in use */
        }
        entry->value = saved->master;
        zend_string_release_ex(saved->ours, 1);
    }
}

/*
 * The globals of settings that the engine changes behind their ini entry,
 * set again from the entry after a request:
 *   - error_reporting: a Fiber saves and restores EG(error_reporting) on
 *     each switch, so a script that runs ini_restore('error_reporting') in
 *     a Fiber over a .user.ini value leaves the entry unmodified but the
 *     global at the old value, and the engine's restore skips it;
 *   - realpath_cache_size: request start-up zeroes the realpath cache's
 *     limit when open_basedir is set, and nothing puts it back.
 * The next request on the thread would inherit either. (A php-fpm child
 * has the same leaks; its next request would see them.)
 */
static void resync_settings(void)
{
    static const char *const names[] = { "error_reporting", "realpath_cache_size", NULL };
    for (const char *const *name = names; *name; name++) {
        zend_ini_entry *entry = zend_hash_str_find_ptr(EG(ini_directives), *name, strlen(*name));
        if (entry && entry->on_modify) {
            entry->on_modify(entry, entry->value, entry->mh_arg1, entry->mh_arg2, entry->mh_arg3,
                ZEND_INI_STAGE_DEACTIVATE);
        }
    }
}

static void apply_ini_entry(zval *name, zval *value, zval *unused, int callback_type, void *arg)
{
    const int admin = *(int *) arg;
    (void) unused;
    if (callback_type != ZEND_INI_PARSER_ENTRY || !name || !value || Z_TYPE_P(value) != IS_STRING) {
        tfpm_log_fastcgi("Passing INI directive through FastCGI: only classic entries are allowed");
        return;
    }
    if (zend_string_equals_literal(Z_STR_P(name), "extension")
        || zend_string_equals_literal(Z_STR_P(name), "opcache.protect_memory")) {
        tfpm_log_fastcgi("Passing INI directive through FastCGI: this setting is shared by every thread in tfpm and cannot change per request (set it per pool, with php_admin_value)");
        return;
    }
    if (zend_string_equals_literal(Z_STR_P(name), "disable_functions")) {
        tfpm_each_name(Z_STRVAL_P(value), disable_function);
    }
    if (zend_string_equals_literal(Z_STR_P(name), "disable_classes")) {
        tfpm_request_classes_add(Z_STRVAL_P(value));
    }
    if (zend_string_equals_literal(Z_STR_P(name), "pcre.jit")) {
        pcre_jit_changed = true;
    }
    if (set_request_ini(Z_STR_P(name), Z_STR_P(value), admin) == FAILURE) {
        char message[256];
        snprintf(message, sizeof(message),
            "Passing INI directive through FastCGI: unable to set '%s'", Z_STRVAL_P(name));
        tfpm_log_fastcgi(message);
    }
}

/* Applies `text` (PHP_VALUE's or PHP_ADMIN_VALUE's ini lines) before start-up. */
void tfpm_request_ini_apply(const char *text, int admin)
{
    if (!text || !*text) {
        return;
    }
    size_t len = strlen(text);
    char *lines = emalloc(len + 2);
    memcpy(lines, text, len);
    lines[len] = '\n';
    lines[len + 1] = '\0';
    zend_parse_ini_string(lines, 1, ZEND_INI_SCANNER_NORMAL, apply_ini_entry, &admin);
    efree(lines);
    if (pcre_jit_changed) {
        forget_compiled_patterns();
    }
}

/* Undoes what the request's settings changed, after its shutdown. */
void tfpm_request_ini_restore(void)
{
    restore_request_ini();
    resync_settings();
    tfpm_request_classes_restore();
    enable_functions();
    if (pcre_jit_changed) {
        forget_compiled_patterns();
        pcre_jit_changed = false;
    }
}
