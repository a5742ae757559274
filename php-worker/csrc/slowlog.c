/*
 * The slow-request log: the PHP stack of a request running longer than the pool's
 * slowlog_timeout, taken inside the worker (php-fpm stops its child with ptrace to read it, which
 * containers often forbid).
 *
 * The worker's watcher thread calls pdk_flag_slow_request() at the deadline. That only raises
 * flags: the stack is read on PHP's own thread, at the VM's next interrupt check (the next
 * jump or call), where the executor's frames are consistent. A script waiting inside one long
 * call (sleep, a query) is logged when the call returns, at the line that made it. No signal is
 * sent, so no system call of the script is interrupted.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "php.h"
#include "zend_atomic.h"

#include "sapi_internal.h"

/* Set by the watcher thread; read and cleared on PHP's thread. */
static atomic_int slow_pending;
/* Frames logged at most. */
static int trace_depth = 20;
/* Whoever had the interrupt hook before (pcntl's async signals, say): called after us. */
static void (*previous_interrupt)(zend_execute_data *execute_data);

/* "Class::method" or "function" or "main" (the script's own code). */
static void frame_name(const zend_function *func, char *out, size_t size)
{
	const char *name = func->common.function_name ? ZSTR_VAL(func->common.function_name) : "main";
	if (func->common.scope) {
		snprintf(out, size, "%s::%s()", ZSTR_VAL(func->common.scope->name), name);
	} else if (func->common.function_name) {
		snprintf(out, size, "%s()", name);
	} else {
		snprintf(out, size, "%s", name);
	}
}

/* The file and line a frame is at; an internal function is where its caller called it. */
static void frame_place(const zend_execute_data *ex, const char **file, uint32_t *line)
{
	for (; ex; ex = ex->prev_execute_data) {
		if (ex->func && ZEND_USER_CODE(ex->func->type)) {
			*file = ZSTR_VAL(ex->func->op_array.filename);
			*line = ex->opline ? ex->opline->lineno : 0;
			return;
		}
	}
	*file = "[unknown]";
	*line = 0;
}

static void log_trace(const zend_execute_data *ex)
{
	char line[1024];
	char name[256];
	const struct pdk_param *uri = pdk_find_param("REQUEST_URI", sizeof("REQUEST_URI") - 1);
	const char *method = SG(request_info).request_method ? SG(request_info).request_method : "?";
	snprintf(line, sizeof(line), "slow request: %s %s (script %s), PHP stack:", method,
		 uri ? uri->value : "?",
		 pdk_current && pdk_current->script_filename ? pdk_current->script_filename : "?");
	pdk_rs_log(line, strlen(line));
	int frames = 0;
	for (; ex && frames < trace_depth; ex = ex->prev_execute_data) {
		if (!ex->func) {
			continue;
		}
		const char *file;
		uint32_t lineno;
		frame_name(ex->func, name, sizeof(name));
		frame_place(ex, &file, &lineno);
		int n = snprintf(line, sizeof(line), "  #%d %s %s:%u", frames, name, file, lineno);
		pdk_rs_log(line, n < (int)sizeof(line) ? (size_t)n : sizeof(line) - 1);
		frames++;
	}
	if (ex) {
		const char *more = "  ... (deeper frames left out: slowlog_trace_depth)";
		pdk_rs_log(more, strlen(more));
	}
}

static void on_interrupt(zend_execute_data *execute_data)
{
	if (atomic_exchange(&slow_pending, 0)) {
		log_trace(execute_data);
	}
	if (previous_interrupt) {
		previous_interrupt(execute_data);
	}
}

void pdk_slowlog_install(int depth)
{
	trace_depth = depth > 0 ? depth : 1;
	if (zend_interrupt_function != on_interrupt) {
		previous_interrupt = zend_interrupt_function;
		zend_interrupt_function = on_interrupt;
	}
}

void pdk_flag_slow_request(void)
{
	atomic_store(&slow_pending, 1);
	zend_atomic_bool_store(&EG(vm_interrupt), true);
}

void pdk_clear_slow_request(void)
{
	atomic_store(&slow_pending, 0);
}
