/*
 * paddock's PHP SAPI: the thin part of the PHP worker that needs PHP's macros and structs.
 *
 * Everything about the wire (FastCGI records, sockets, buffering) lives in Rust; this file only
 * fills PHP's request globals from a request Rust has already decoded, runs the script, and hands
 * every byte PHP produces back to Rust through the pdk_rs_* callbacks. The behaviour it mirrors is
 * php-cgi's behind a FastCGI web server (cgi.fix_pathinfo = 1), so that a script sees the same
 * $_SERVER, status line and headers under `builtin = "php"` as under php-cgi.
 *
 * The response head is in headers.c, the extra PHP functions in functions.c, the request
 * timeout in timeout.c, per-directory settings in user_ini.c.
 *
 * Written for PHP 8.2 (Debian 12's php8.2-dev headers), non-thread-safe build. It runs inside
 * the engine of Debian's php-cgi8.2 executable (src/host.rs), which must be of the same PHP
 * version: pdk_engine_check says whether it is.
 */
/* memrchr, which PHP's headers use. */
#define _GNU_SOURCE
#include <string.h>
#include <unistd.h>

#include "php.h"
#include "php_main.h"
#include "php_variables.h"
#include "php_ini_builder.h"
#include "SAPI.h"
#include "zend_ini.h"
#include "zend_signal.h"

#include "sapi_internal.h"

/* The request being served, owned by Rust for the duration of pdk_run_request. */
const struct pdk_request *pdk_current;
/* The last request's peak memory, kept from before php_request_shutdown resets the figure. */
static size_t pdk_last_peak_memory;

size_t pdk_request_peak_memory(void)
{
	return pdk_current ? zend_memory_peak_usage(false) : pdk_last_peak_memory;
}

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

const struct pdk_param *pdk_find_param(const char *name, size_t name_len)
{
	if (!pdk_current) {
		return NULL;
	}
	for (size_t i = 0; i < pdk_current->param_count; i++) {
		const struct pdk_param *p = &pdk_current->params[i];
		if (p->name_len == name_len && memcmp(p->name, name, name_len) == 0) {
			return p;
		}
	}
	return NULL;
}

/* getenv() in a script answers from the request's parameters first, as under php-cgi. */
static char *pdk_getenv(const char *name, size_t name_len)
{
	const struct pdk_param *p = pdk_find_param(name, name_len);
	return p ? p->value : NULL;
}

static char *pdk_read_cookies(void)
{
	const struct pdk_param *p = pdk_find_param("HTTP_COOKIE", sizeof("HTTP_COOKIE") - 1);
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
	if (!pdk_current) {
		return;
	}
	for (size_t i = 0; i < pdk_current->param_count; i++) {
		const struct pdk_param *p = &pdk_current->params[i];
		register_one(p->name, p->value, p->value_len, track);
	}
	const struct pdk_param *info = pdk_find_param("PATH_INFO", sizeof("PATH_INFO") - 1);
	const char *script = pdk_current->script_name ? pdk_current->script_name : "";
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

static int pdk_startup(sapi_module_struct *module)
{
	return php_module_startup(module, NULL);
}

/* Called by PHP at the start of each request, before the script is compiled. */
static int pdk_activate(void)
{
	const struct pdk_param *root = pdk_find_param("DOCUMENT_ROOT", sizeof("DOCUMENT_ROOT") - 1);
	const struct pdk_param *host = pdk_find_param("SERVER_NAME", sizeof("SERVER_NAME") - 1);
	if (pdk_current) {
		pdk_activate_dir_config(pdk_current->script_filename, root ? root->value : NULL,
					host ? host->value : NULL);
	}
	return SUCCESS;
}

static int pdk_deactivate(void)
{
	return SUCCESS;
}

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

/* The structures this file fills are laid out per PHP version: the engine the process runs (the
 * executable's) must be the version of the headers it was compiled with. Compares the Zend
 * Engine's major.minor (4.2 for PHP 8.2); fills both version texts. 0 when they match. */
int pdk_engine_check(const char **built, const char **running)
{
	int major, minor, built_major, built_minor;
	const char *version;

	*built = PHP_VERSION " (Zend Engine v" ZEND_VERSION ")";
	/* Set by the engine's start-up: this runs after it. */
	*running = get_zend_version();
	if (!*running) {
		*running = "an engine that did not say its version";
	}
	version = strstr(*running, " v");
	if (!version || sscanf(version + 2, "%d.%d", &major, &minor) != 2 ||
	    sscanf(ZEND_VERSION, "%d.%d", &built_major, &built_minor) != 2) {
		return -1;
	}
	return major == built_major && minor == built_minor ? 0 : -1;
}

int pdk_run_request(const struct pdk_request *request, long timeout_ms)
{
	zend_file_handle file;
	int status = 0;

	pdk_current = request;
	pdk_reset_finished();
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
				pdk_arm_request_timeout(timeout_ms);
				zend_stream_init_filename(&file, request->script_filename);
				php_execute_script(&file);
				zend_destroy_file_handle(&file);
			}
		}
	} zend_end_try();

	pdk_last_peak_memory = zend_memory_peak_usage(false);
	if (status == 0) {
		php_request_shutdown(NULL);
#ifdef ZEND_SIGNALS
		/* At each request's start PHP checks, one sigaction call per signal, that its handlers
		 * for seven signals are still installed. They are after this worker's first request:
		 * PHP's own code (pcntl_signal included) changes handlers through its signal layer,
		 * which keeps them, so only C code calling sigaction itself could replace one. Seven
		 * system calls a request. */
		SIGG(reset) = 0;
#endif
	}
	pdk_disarm_request_timeout();
	SG(server_context) = NULL;
	pdk_current = NULL;
	return status;
}
