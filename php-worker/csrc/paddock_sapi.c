/*
 * paddock's PHP SAPI: the thin part of the PHP worker that needs PHP's macros and structs.
 *
 * Everything about the wire (FastCGI records, sockets, buffering) lives in Rust; this file only
 * fills PHP's request globals from a request Rust has already decoded, runs the script, and hands
 * every byte PHP produces back to Rust through the pdk_rs_* callbacks. The behaviour it mirrors is
 * php-cgi's behind a FastCGI web server (cgi.fix_pathinfo = 1), so that a script sees the same
 * $_SERVER, status line and headers under `builtin = "php"` as under php-cgi.
 *
 * Written for PHP 8.2 (Debian 12's libphp8.2-embed), non-thread-safe build.
 */
/* memrchr, which PHP's headers use. */
#define _GNU_SOURCE
#include <ctype.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "php.h"
#include "php_main.h"
#include "php_variables.h"
#include "php_ini_builder.h"
#include "SAPI.h"
#include "http_status_codes.h"
#include "ext/standard/head.h"
#include "main/php_output.h"
#include "zend_ini.h"
#include "zend_signal.h"
#include "zend_atomic.h"

#include "paddock_sapi.h"

/* The request being served, owned by Rust for the duration of pdk_run_request. */
static const struct pdk_request *current;
/* fastcgi_finish_request() was called: the client has its answer, output is discarded. */
static int finished;
/* The request ran past the pool's request_timeout: PHP's timeout error ends it, with a 504. */
static volatile sig_atomic_t timed_out;
/* The timeout in whole seconds, for PHP's "Maximum execution time of N seconds" message. */
static zend_long timeout_seconds;

/* Bytes for FCGI_STDOUT; PHP treats a short count as an aborted connection. */
static size_t pdk_ub_write(const char *str, size_t len)
{
	if (pdk_rs_write(str, len) != 0) {
		php_handle_aborted_connection();
	}
	return len;
}

static void pdk_flush(void *server_context)
{
	(void)server_context;
	/* Headers first: flush() before any output still sends the head, as php-cgi does. */
	if (!SG(headers_sent)) {
		sapi_send_headers();
	}
	if (pdk_rs_flush() != 0) {
		php_handle_aborted_connection();
	}
}

static size_t pdk_read_post(char *buffer, size_t count)
{
	return pdk_rs_read_body(buffer, count);
}

static const struct pdk_param *find_param(const char *name, size_t name_len)
{
	if (!current) {
		return NULL;
	}
	for (size_t i = 0; i < current->param_count; i++) {
		const struct pdk_param *p = &current->params[i];
		if (p->name_len == name_len && memcmp(p->name, name, name_len) == 0) {
			return p;
		}
	}
	return NULL;
}

/* getenv() in a script answers from the request's parameters first, as under php-cgi. */
static char *pdk_getenv(const char *name, size_t name_len)
{
	const struct pdk_param *p = find_param(name, name_len);
	return p ? p->value : NULL;
}

static char *pdk_read_cookies(void)
{
	const struct pdk_param *p = find_param("HTTP_COOKIE", sizeof("HTTP_COOKIE") - 1);
	return p ? p->value : NULL;
}

static void register_one(const char *name, char *value, size_t len, zval *track)
{
	size_t new_len;
	if (sapi_module.input_filter(PARSE_SERVER, name, &value, len, &new_len)) {
		php_register_variable_safe(name, value, new_len, track);
	}
}

/* $_SERVER as php-cgi builds it: the process environment, then every FastCGI parameter, then
 * PHP_SELF = SCRIPT_NAME + PATH_INFO (php-cgi with cgi.fix_pathinfo = 1). The core adds
 * PHP_AUTH_*, REQUEST_TIME and REQUEST_TIME_FLOAT afterwards. */
static void pdk_register_variables(zval *track)
{
	php_import_environment_variables(track);
	if (!current) {
		return;
	}
	for (size_t i = 0; i < current->param_count; i++) {
		const struct pdk_param *p = &current->params[i];
		register_one(p->name, p->value, p->value_len, track);
	}
	const struct pdk_param *info = find_param("PATH_INFO", sizeof("PATH_INFO") - 1);
	const char *script = current->script_name ? current->script_name : "";
	size_t script_len = strlen(script);
	size_t info_len = info ? info->value_len : 0;
	char *self = emalloc(script_len + info_len + 1);
	memcpy(self, script, script_len);
	if (info) {
		memcpy(self + script_len, info->value, info_len);
	}
	self[script_len + info_len] = '\0';
	register_one("PHP_SELF", self, script_len + info_len, track);
	efree(self);
}

static void pdk_log_message(const char *message, int syslog_type)
{
	(void)syslog_type;
	pdk_rs_log(message, strlen(message));
}

static const char *reason_phrase(int code)
{
	for (const http_response_status_code_pair *s = http_status_map; s->code; s++) {
		if (s->code == code) {
			return s->str;
		}
	}
	return NULL;
}

static int is_header(const sapi_header_struct *h, const char *name, size_t name_len)
{
	return h->header_len > name_len && strncasecmp(h->header, name, name_len) == 0;
}

static void write_str(const char *s, size_t len)
{
	pdk_rs_write(s, len);
}

/* The CGI response head. The status goes out as a `Status:` header, which the web server turns
 * into the status line: a script's own `Status:` header wins, then a status line given with
 * header("HTTP/1.1 ..."), then the code with its standard reason phrase. */
static int pdk_send_headers(sapi_headers_struct *headers)
{
	int code = headers->http_response_code;
	int status_sent = 0;
	zend_llist_position pos;
	sapi_header_struct *h;

	if (SG(request_info).no_headers) {
		return SAPI_HEADER_SENT_SUCCESSFULLY;
	}
	int has_status_header = 0;
	for (h = zend_llist_get_first_ex(&headers->headers, &pos); h;
	     h = zend_llist_get_next_ex(&headers->headers, &pos)) {
		if (is_header(h, "Status:", 7)) {
			has_status_header = 1;
			break;
		}
	}
	if (timed_out && code == 500) {
		/* PHP turned its timeout error into a 500; it is a gateway timeout to the client. */
		code = 504;
		headers->http_status_line = NULL;
	}
	if (code != 200 && !has_status_header) {
		char buf[256];
		int len;
		const char *line = headers->http_status_line;
		const char *space = line ? strchr(line, ' ') : NULL;
		if (space && space - line >= 5 && strncasecmp(line, "HTTP/", 5) == 0) {
			/* header("HTTP/1.1 404 Gone for good"): keep the script's reason phrase. */
			len = snprintf(buf, sizeof(buf), "Status:%s\r\n", space);
		} else {
			const char *reason = reason_phrase(code);
			len = reason ? snprintf(buf, sizeof(buf), "Status: %d %s\r\n", code, reason)
				     : snprintf(buf, sizeof(buf), "Status: %d\r\n", code);
		}
		if (len > (int)sizeof(buf) - 1) {
			len = sizeof(buf) - 1;
		}
		write_str(buf, len);
		status_sent = 1;
	}
	for (h = zend_llist_get_first_ex(&headers->headers, &pos); h;
	     h = zend_llist_get_next_ex(&headers->headers, &pos)) {
		if (!h->header_len) {
			continue;
		}
		if (is_header(h, "Status:", 7)) {
			/* Only the first Status header counts. */
			if (status_sent) {
				continue;
			}
			status_sent = 1;
		} else if (code == 304 && is_header(h, "Content-Type:", 13)) {
			/* A 304 carries no body, so no body type either. */
			continue;
		}
		write_str(h->header, h->header_len);
		write_str("\r\n", 2);
	}
	write_str("\r\n", 2);
	return SAPI_HEADER_SENT_SUCCESSFULLY;
}

static int pdk_startup(sapi_module_struct *module)
{
	return php_module_startup(module, NULL);
}

/* Called by PHP at the start of each request, before the script is compiled. */
static int pdk_activate(void)
{
	const struct pdk_param *root = find_param("DOCUMENT_ROOT", sizeof("DOCUMENT_ROOT") - 1);
	const struct pdk_param *host = find_param("SERVER_NAME", sizeof("SERVER_NAME") - 1);
	if (current) {
		pdk_activate_dir_config(current->script_filename, root ? root->value : NULL,
					host ? host->value : NULL);
	}
	return SUCCESS;
}

static int pdk_deactivate(void)
{
	return SUCCESS;
}

/* bool fastcgi_finish_request(): php-fpm's function. The client gets everything written so far
 * and the end of the response; the script runs on with its output discarded. */
ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_pdk_finish, 0, 0, _IS_BOOL, 0)
ZEND_END_ARG_INFO()

PHP_FUNCTION(fastcgi_finish_request)
{
	ZEND_PARSE_PARAMETERS_NONE();
	if (finished) {
		RETURN_FALSE;
	}
	php_output_end_all();
	php_header();
	pdk_rs_finish();
	finished = 1;
	RETURN_TRUE;
}

/* "HTTP_ACCEPT_LANGUAGE" -> "Accept-Language": the request headers as the client spelled them
 * (near enough: CGI has already upper-cased them). */
static void add_header_name(zval *array, const char *name, size_t len, const char *value, size_t value_len)
{
	char *key = estrndup(name, len);
	int word_start = 1;
	for (size_t i = 0; i < len; i++) {
		if (key[i] == '_') {
			key[i] = '-';
			word_start = 1;
		} else {
			key[i] = word_start ? toupper((unsigned char)key[i]) : tolower((unsigned char)key[i]);
			word_start = 0;
		}
	}
	add_assoc_stringl_ex(array, key, len, value, value_len);
	efree(key);
}

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_pdk_headers, 0, 0, IS_ARRAY, 0)
ZEND_END_ARG_INFO()

/* array getallheaders() / apache_request_headers(), which php-cgi and php-fpm also provide. */
PHP_FUNCTION(pdk_getallheaders)
{
	ZEND_PARSE_PARAMETERS_NONE();
	array_init(return_value);
	if (!current) {
		return;
	}
	for (size_t i = 0; i < current->param_count; i++) {
		const struct pdk_param *p = &current->params[i];
		if (p->name_len > 5 && memcmp(p->name, "HTTP_", 5) == 0) {
			add_header_name(return_value, p->name + 5, p->name_len - 5, p->value, p->value_len);
		} else if ((p->name_len == 12 && memcmp(p->name, "CONTENT_TYPE", 12) == 0) ||
			   (p->name_len == 14 && memcmp(p->name, "CONTENT_LENGTH", 14) == 0)) {
			add_header_name(return_value, p->name, p->name_len, p->value, p->value_len);
		}
	}
}

static const zend_function_entry pdk_functions[] = {
	ZEND_FE(fastcgi_finish_request, arginfo_pdk_finish)
	ZEND_RAW_FENTRY("getallheaders", zif_pdk_getallheaders, arginfo_pdk_headers, 0)
	ZEND_RAW_FENTRY("apache_request_headers", zif_pdk_getallheaders, arginfo_pdk_headers, 0)
	ZEND_FE_END
};

/* Named like php-cgi's SAPI: scripts and extensions that ask php_sapi_name() behave as under
 * php-cgi, and OPcache, which only caches for the SAPIs it knows, is enabled. */
static sapi_module_struct pdk_module = {
	"cgi-fcgi",
	"paddock builtin PHP (FastCGI)",
	pdk_startup,
	php_module_shutdown_wrapper,
	pdk_activate,
	pdk_deactivate,
	pdk_ub_write,
	pdk_flush,
	NULL,
	pdk_getenv,
	php_error,
	NULL,
	pdk_send_headers,
	NULL,
	pdk_read_post,
	pdk_read_cookies,
	pdk_register_variables,
	pdk_log_message,
	NULL,
	NULL,
	STANDARD_SAPI_MODULE_PROPERTIES
};

int pdk_startup_php(const char *ini_path, const char *const *defines, size_t define_count,
		    const char *const *admin_names, size_t admin_count)
{
	struct php_ini_builder ini;

	zend_signal_startup();
	sapi_startup(&pdk_module);
	if (ini_path && *ini_path) {
		pdk_module.php_ini_path_override = strdup(ini_path);
	}
	php_ini_builder_init(&ini);
	for (size_t i = 0; i < define_count; i++) {
		php_ini_builder_define(&ini, defines[i]);
	}
	pdk_module.ini_entries = php_ini_builder_finish(&ini);
	pdk_module.additional_functions = pdk_functions;
	if (pdk_module.startup(&pdk_module) == FAILURE) {
		return -1;
	}
	/* php_admin_value: a script's ini_set() must not change these (php-fpm's rule). */
	for (size_t i = 0; i < admin_count; i++) {
		zend_ini_entry *entry = zend_hash_str_find_ptr(EG(ini_directives), admin_names[i], strlen(admin_names[i]));
		if (entry) {
			entry->modifiable = ZEND_INI_SYSTEM;
		}
	}
	return 0;
}

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

static void arm_request_timeout(long ms)
{
	struct sigaction action;
	if (ms <= 0) {
		return;
	}
	memset(&action, 0, sizeof(action));
	action.sa_handler = on_request_timeout;
	sigemptyset(&action.sa_mask);
	/* Through PHP's signal layer, which owns SIGALRM during a request. */
	zend_sigaction(SIGALRM, &action, NULL);
	timeout_seconds = (zend_long)((ms + 999) / 1000);
	set_request_timer(ms);
}

int pdk_run_request(const struct pdk_request *request, long timeout_ms)
{
	zend_file_handle file;
	int status = 0;

	current = request;
	finished = 0;
	timed_out = 0;
	SG(server_context) = (void *)request;
	SG(request_info).request_method = request->method;
	SG(request_info).query_string = request->query_string;
	SG(request_info).request_uri = request->script_name;
	SG(request_info).path_translated = request->script_filename;
	SG(request_info).content_type = request->content_type;
	SG(request_info).content_length = request->content_length;
	SG(request_info).proto_num = request->proto_num;
	SG(request_info).headers_only = request->headers_only;
	SG(request_info).no_headers = 0;
	SG(request_info).auth_user = SG(request_info).auth_password = SG(request_info).auth_digest = NULL;
	SG(sapi_headers).http_response_code = 200;

	zend_first_try {
		if (request->authorization) {
			php_handle_auth_data(request->authorization);
		}
		if (php_request_startup() == FAILURE) {
			status = -1;
		} else {
			if (!request->script_filename || access(request->script_filename, R_OK) != 0) {
				/* php-cgi's answer when the script cannot be opened. */
				SG(sapi_headers).http_response_code = 404;
				PUTS("No input file specified.\n");
			} else {
				arm_request_timeout(timeout_ms);
				zend_stream_init_filename(&file, request->script_filename);
				php_execute_script(&file);
				zend_destroy_file_handle(&file);
			}
		}
	} zend_end_try();

	if (status == 0) {
		php_request_shutdown(NULL);
	}
	set_request_timer(0);
	SG(server_context) = NULL;
	current = NULL;
	return status;
}
