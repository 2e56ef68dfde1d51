/*
 * tfpm_stack.c: measures how much stack the Rust callbacks use.
 *
 * Host callbacks run on whatever stack PHP is on, which inside a Fiber is the
 * fiber's own (fiber.stack_size, 2 MiB by default), so they must stay shallow.
 * With TFPM_MEASURE_CALLBACK_STACK=1 in the environment, each trampoline
 * paints the stack below itself before calling into Rust and, afterwards,
 * finds the deepest byte that was written. tfpm logs the maxima at shutdown.
 * Off by default: painting costs time.
 */
#include <stdlib.h>
#include <string.h>

#include "tfpm_internal.h"

#define PAINT_BYTES (64 * 1024)
#define PAINT_GAP 256
#define PAINT_VALUE 0xA5

int tfpm_measure_stack;
static size_t deepest[TFPM_STACK_SLOTS];

void tfpm_stack_measure_startup(void)
{
    const char *on = getenv("TFPM_MEASURE_CALLBACK_STACK");
    tfpm_measure_stack = on && *on && strcmp(on, "0") != 0;
}

/* The lowest painted byte: PAINT_GAP below the trampoline's frame, so the
 * painter's own frame stays out of the way. */
static volatile unsigned char *paint_start(unsigned char *top)
{
    return (volatile unsigned char *) (top - PAINT_GAP - PAINT_BYTES);
}

__attribute__((noinline)) void tfpm_stack_paint(unsigned char *top)
{
    volatile unsigned char *p = paint_start(top);
    for (size_t i = 0; i < PAINT_BYTES; i++) {
        p[i] = PAINT_VALUE;
    }
}

__attribute__((noinline)) void tfpm_stack_record(int slot, unsigned char *top)
{
    volatile unsigned char *p = paint_start(top);
    size_t untouched = 0;
    while (untouched < PAINT_BYTES && p[untouched] == PAINT_VALUE) {
        untouched++;
    }
    size_t used = PAINT_BYTES - untouched + PAINT_GAP;
    /* Relaxed is enough: these are maxima read once, at shutdown. */
    size_t seen = __atomic_load_n(&deepest[slot], __ATOMIC_RELAXED);
    while (used > seen && !__atomic_compare_exchange_n(&deepest[slot], &seen, used, 0,
               __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

size_t tfpm_callback_stack_use(size_t *out, size_t n)
{
    if (!tfpm_measure_stack) {
        return 0;
    }
    for (size_t i = 0; i < n && i < TFPM_STACK_SLOTS; i++) {
        out[i] = __atomic_load_n(&deepest[i], __ATOMIC_RELAXED);
    }
    return TFPM_STACK_SLOTS;
}
