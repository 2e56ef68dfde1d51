/*
 * tfpm_request_classes.c: disable_classes given per request (PHP_VALUE or
 * PHP_ADMIN_VALUE), for that request only.
 *
 * php-fpm's zend_disable_class() rewrites the class entry in place: its
 * methods, properties, parent and interfaces go, and creating an object
 * warns. In tfpm every thread shares the same class entries, so a request
 * cannot rewrite one. Each thread has its own class table, though, a copy
 * of the table of pointers. For the request, the thread's table points the
 * class's name at a disabled copy of the entry, made the way
 * zend_disable_class() rewrites the original; when the request ends the
 * name points at the original again and the copy is freed.
 *
 * The copy goes in after the engine's request start-up (from the SAPI's
 * activate), which resets the class lookups each thread caches, and comes
 * out after the request shutdown, which cleans up the class's statics
 * through it. It shares with the original everything that it does not
 * replace (name, constants, default property values, the per-thread slots
 * of its statics), and frees only what it allocated itself. Internal code
 * that refers to the original entry directly (an exception the engine
 * throws, say) still gets the original; a script, which names the class,
 * gets the copy, as under php-fpm. (PHP 8.5 removes disable_classes.)
 */
#include "php.h"

#include "tfpm_internal.h"

/* A class this request disabled: its key in the thread's class table (whose
 * buckets move as the script declares classes), and both entries. */
typedef struct {
    zend_string *key;
    zend_class_entry *original;
    zend_class_entry *copy;
} disabled_class;

/* The request's list, as given (a persistent copy), until start-up. */
static __thread char *pending;
static __thread disabled_class *disabled;
static __thread size_t disabled_len;
static __thread size_t disabled_cap;

static const zend_function_entry no_methods[] = {
    ZEND_FE_END
};

/* The create_object of a disabled class, as zend_disable_class() sets it:
 * an object without properties, and a warning. */
static zend_object *create_disabled(zend_class_entry *ce)
{
    zend_object *object = zend_objects_new(ce);
    for (int i = 0; i < ce->default_properties_count; i++) {
        ZVAL_UNDEF(&object->properties_table[i]);
    }
    zend_error(E_WARNING, "%s() has been disabled for security reasons", ZSTR_VAL(ce->name));
    return object;
}

/* Whether `ce`, found in the table, is one of this request's copies (a
 * name given twice). */
static bool already_disabled(const zend_class_entry *ce)
{
    for (size_t i = 0; i < disabled_len; i++) {
        if (disabled[i].copy == ce) {
            return true;
        }
    }
    return false;
}

static disabled_class *next_entry(void)
{
    if (disabled_len == disabled_cap) {
        size_t cap = disabled_cap ? disabled_cap * 2 : 4;
        disabled_class *grown = realloc(disabled, cap * sizeof(disabled_class));
        if (!grown) {
            return NULL;
        }
        disabled = grown;
        disabled_cap = cap;
    }
    return &disabled[disabled_len];
}

/* A disabled copy of `original`, as zend_disable_class() leaves the class:
 * no methods, properties, parent, interfaces or magic methods. */
static zend_class_entry *disabled_copy(const zend_class_entry *original)
{
    zend_class_entry *copy = malloc(sizeof(zend_class_entry));
    if (!copy) {
        return NULL;
    }
    memcpy(copy, original, sizeof(zend_class_entry));
    INIT_CLASS_ENTRY_INIT_METHODS((*copy), no_methods);
    copy->create_object = create_disabled;
    zend_hash_init(&copy->function_table, 0, NULL, NULL, 1);
    zend_hash_init(&copy->properties_info, 0, NULL, NULL, 1);
    return copy;
}

static void disable_class(const char *name, size_t len)
{
    zend_string *key = zend_string_init(name, len, 1);
    zend_str_tolower(ZSTR_VAL(key), len);
    zval *slot = zend_hash_find(CG(class_table), key);
    zend_class_entry *original = slot ? Z_PTR_P(slot) : NULL;
    /* Only internal classes are in the table before the script runs. */
    if (!original || original->type != ZEND_INTERNAL_CLASS || already_disabled(original)) {
        zend_string_release_ex(key, 1);
        return;
    }
    disabled_class *entry = next_entry();
    zend_class_entry *copy = entry ? disabled_copy(original) : NULL;
    if (!copy) {
        zend_string_release_ex(key, 1);
        tfpm_log_fastcgi("disable_classes: out of memory; the class stays enabled");
        return;
    }
    entry->key = key;
    entry->original = original;
    entry->copy = copy;
    disabled_len++;
    Z_PTR_P(slot) = copy;
}

/* The compiler's options before the request disabled a class. */
static __thread uint32_t saved_compiler_options;

void tfpm_request_classes_add(const char *list)
{
    /* PHP_VALUE's and PHP_ADMIN_VALUE's lists both count, as in php-fpm. */
    size_t had = pending ? strlen(pending) : 0;
    size_t len = strlen(list);
    char *joined = realloc(pending, had + len + 2);
    if (!joined) {
        return;
    }
    joined[had] = ',';
    memcpy(joined + had + 1, list, len + 1);
    pending = joined;
}

void tfpm_request_classes_disable(void)
{
    if (!pending) {
        return;
    }
    tfpm_each_name(pending, disable_class);
    free(pending);
    pending = NULL;
    if (disabled_len > 0) {
        /* A script compiled now goes to opcache's shared memory for every
         * thread: it must not be bound to a copy that this request frees
         * (a class that extends it, a method or constant looked up in it). */
        saved_compiler_options = CG(compiler_options);
        CG(compiler_options) |= ZEND_COMPILE_IGNORE_INTERNAL_CLASSES;
    }
}

void tfpm_request_classes_restore(void)
{
    free(pending);
    pending = NULL;
    if (disabled_len > 0) {
        CG(compiler_options) = saved_compiler_options;
    }
    while (disabled_len > 0) {
        disabled_class *entry = &disabled[--disabled_len];
        zval *slot = zend_hash_find(CG(class_table), entry->key);
        if (slot && Z_PTR_P(slot) == entry->copy) {
            Z_PTR_P(slot) = entry->original;
        }
        zend_string_release_ex(entry->key, 1);
        zend_hash_destroy(&entry->copy->function_table);
        zend_hash_destroy(&entry->copy->properties_info);
        free(entry->copy);
    }
}
