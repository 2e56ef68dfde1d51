/*
 * tfpm_slowlog.c: request_slowlog_timeout's entries, in php-fpm's format.
 *
 * php-fpm's master stops a slow child with ptrace and reads its PHP stack
 * from outside. tfpm asks the slow thread itself: the watchdog stores the
 * request number in the thread's tfpm_slow_seq and raises EG(vm_interrupt),
 * without a signal, so a sleep() or a blocking read is not cut short. At
 * the VM's next interrupt point (a loop's jump, a user function's entry)
 * tfpm_interrupt_function calls tfpm_slowlog_dump, on the thread itself and
 * in normal context, and the request then goes on.
 *
 * An entry: a blank line, "[time]  [pool NAME] pid TID", the script, then
 * one line per frame from the innermost out, "[0xADDRESS] function() file:line",
 * where file:line is where the nearest user code below the frame is (the
 * call site). Class names are not shown, as in php-fpm 8.2. The entry is
 * built in malloc'd memory (PHP's peak memory stays the script's own) and
 * written with one write().
 */
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "php.h"
#include "SAPI.h"
#include "tfpm_internal.h"

/* php-fpm reads names into a buffer of this size. */
#define NAME_MAX_LEN 1023

static int slowlog_fd = -1;
static char *slowlog_pool;
static int slowlog_depth = 20;
static int slowlog_micros;

void tfpm_slowlog_startup(const tfpm_startup_config *config)
{
    slowlog_fd = config->slowlog_fd;
    free(slowlog_pool);
    slowlog_pool = strdup(config->pool_name ? config->pool_name : "www");
    slowlog_depth = config->slowlog_depth > 0 ? config->slowlog_depth : 20;
    slowlog_micros = config->slowlog_micros;
}

/* A growing text buffer; `failed` once memory ran out. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
    int failed;
} buffer;

static void put(buffer *b, const char *s, size_t n)
{
    if (b->failed) {
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 1024) + n;
        char *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void put_str(buffer *b, const char *s)
{
    put(b, s, strlen(s));
}

/* A PHP string as php-fpm copies it: up to its first NUL, at most 1023 bytes. */
static void put_name(buffer *b, const zend_string *s)
{
    put(b, ZSTR_VAL(s), strnlen(ZSTR_VAL(s), ZSTR_LEN(s) < NAME_MAX_LEN ? ZSTR_LEN(s) : NAME_MAX_LEN));
}

static void put_format(buffer *b, const char *format, ...)
{
    char text[64];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(text, sizeof(text), format, args);
    va_end(args);
    if (n > 0) {
        put(b, text, (size_t) n < sizeof(text) ? (size_t) n : sizeof(text) - 1);
    }
}

/* "\n[27-Nov-2026 10:00:00]  [pool www] pid 123\n", in the C locale
 * whatever the script set with setlocale(). */
static void put_header(buffer *b)
{
    static const char months[12][4] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
    };
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    localtime_r(&now.tv_sec, &tm);
    put_format(b, "\n[%02d-%s-%d %02d:%02d:%02d", tm.tm_mday, months[tm.tm_mon],
        tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (slowlog_micros) {
        put_format(b, ".%06d", (int) (now.tv_nsec / 1000));
    }
    put_str(b, "]  [pool ");
    put_str(b, slowlog_pool ? slowlog_pool : "www");
    put_format(b, "] pid %ld\n", (long) syscall(SYS_gettid));
}

/* What php-fpm checks before it follows a pointer. */
static int usable(const void *p)
{
    return p && ((uintptr_t) p & (sizeof(long) - 1)) == 0;
}

/* The name of what frame `ex` runs, into `b`; 0 for the script's top level,
 * where the trace ends. */
static int put_function(buffer *b, const zend_execute_data *ex)
{
    const zend_function *f = ex->func;
    if (!usable(f)) {
        put_str(b, "???");
    } else if (f->common.function_name) {
        put_name(b, f->common.function_name);
    } else if (ZEND_CALL_KIND_EX(Z_TYPE_INFO(ex->This)) == ZEND_CALL_TOP_CODE) {
        return 0;
    } else if (ZEND_CALL_KIND_EX(Z_TYPE_INFO(ex->This)) == ZEND_CALL_NESTED_CODE) {
        put_str(b, "[INCLUDE_OR_EVAL]");
    } else {
        put_str(b, "???");
    }
    return 1;
}

/* " file:line\n": the nearest user code from `below` down, and the line it is at. */
static void put_call_site(buffer *b, const zend_execute_data *below)
{
    const zend_string *file = NULL;
    uint32_t line = 0;
    for (; below; below = below->prev_execute_data) {
        const zend_function *f = below->func;
        if (!usable(f)) {
            break;
        }
        if (ZEND_USER_CODE(f->type)) {
            file = f->op_array.filename;
            if (usable(below->opline)) {
                line = below->opline->lineno;
            }
            break;
        }
    }
    put_str(b, " ");
    if (file && ZSTR_LEN(file) > 0 && ZSTR_VAL(file)[0]) {
        put_name(b, file);
    } else {
        put_str(b, "unknown");
    }
    put_format(b, ":%u\n", line);
}

static void put_frames(buffer *b)
{
    int left = slowlog_depth;
    for (const zend_execute_data *ex = EG(current_execute_data); ex; ex = ex->prev_execute_data) {
        buffer name = {0};
        if (!put_function(&name, ex)) {
            free(name.data);
            return;
        }
        put_format(b, "[0x%016lx] ", (unsigned long) (uintptr_t) ex);
        put(b, name.data, name.len);
        free(name.data);
        put_str(b, "()");
        put_call_site(b, ex->prev_execute_data);
        if (--left == 0) {
            return;
        }
    }
}

void tfpm_slowlog_dump(void)
{
    if (slowlog_fd < 0) {
        return;
    }
    buffer b = {0};
    put_header(&b);
    const char *script = SG(request_info).path_translated;
    if (script) {
        put_str(&b, "script_filename = ");
        put(&b, script, strnlen(script, NAME_MAX_LEN));
        put_str(&b, "\n");
        put_frames(&b);
    } else {
        put_str(&b, "+++ dump failed\n");
    }
    if (!b.failed) {
        ssize_t written = write(slowlog_fd, b.data, b.len);
        (void) written; /* nothing better to do: the request goes on */
    }
    free(b.data);
}
