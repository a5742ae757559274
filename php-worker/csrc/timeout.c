/*
 * The pool's request_timeout, the PHP way: SIGALRM on wall-clock time raises PHP's own timeout
 * (the "Maximum execution time of N seconds exceeded" fatal error, with the script and line), so
 * the request ends cleanly with a 504 and the worker serves on.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/time.h>

#include "php.h"
#include "zend_atomic.h"

#include "sapi_internal.h"

/* The request ran past request_timeout: PHP's timeout error ends it, with a 504. */
static volatile sig_atomic_t timed_out;
/* The timeout in whole seconds, for PHP's "Maximum execution time of N seconds" message. */
static zend_long timeout_seconds;

/* SIGALRM at request_timeout: PHP's own timeout, the way max_execution_time stops a script
 * (the VM checks the flags at its next instruction, and a sleeping script wakes up with EINTR),
 * but on wall-clock time, which is what the client waits for. */
static void on_request_timeout(int signo)
{
	(void)signo;
	timed_out = 1;
	EG(timeout_seconds) = timeout_seconds;
	zend_atomic_bool_store_ex(&EG(timed_out), true);
	zend_atomic_bool_store_ex(&EG(vm_interrupt), true);
}

static void set_request_timer(long ms)
{
	struct itimerval timer = { { 0, 0 }, { ms / 1000, (ms % 1000) * 1000 } };
	setitimer(ITIMER_REAL, &timer, NULL);
}

void pdk_arm_request_timeout(long ms)
{
	struct sigaction action;
	timed_out = 0;
	if (ms <= 0) {
		return;
	}
	memset(&action, 0, sizeof(action));
	action.sa_handler = on_request_timeout;
	sigemptyset(&action.sa_mask);
	/* Straight to the kernel rather than through PHP's signal layer: the handler only sets flags,
	 * so it needs none of the layer's deferral, and the layer's sigprocmask would cost a system
	 * call a request. Installed for every request, since a script's pcntl_signal(SIGALRM) may
	 * have replaced it. No SA_RESTART: a sleeping script must wake up. */
	sigaction(SIGALRM, &action, NULL);
	timeout_seconds = (zend_long)((ms + 999) / 1000);
	set_request_timer(ms);
}

void pdk_disarm_request_timeout(void)
{
	set_request_timer(0);
	timed_out = 0;
}

int pdk_request_timed_out(void)
{
	return timed_out;
}
