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
extern __thread volatile int64_t tfpm_kill_after;

/* tfpm_isolation.c: per-request copies of process-wide state. */
void tfpm_isolation_thread_init(void);
void tfpm_isolation_request_shutdown(void);

/* tfpm_signals.c: interrupts and crash reports. */
void tfpm_signals_startup(void);
/* Whether this request was told to terminate. */
int tfpm_kill_requested(void);

#endif
