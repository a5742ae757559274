/*
 * PHP functions the SAPI adds: fastcgi_finish_request() as php-fpm has it, and getallheaders() /
 * apache_request_headers() as php-cgi and php-fpm have them.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <string.h>

#include "php.h"
#include "SAPI.h"
#include "ext/standard/head.h"
#include "main/php_output.h"

#include "sapi_internal.h"

/* fastcgi_finish_request() was called: the client has its answer, output is discarded. */
static int finished;

void pdk_reset_finished(void)
{
	finished = 0;
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
	if (!pdk_current) {
		return;
	}
	for (size_t i = 0; i < pdk_current->param_count; i++) {
		const struct pdk_param *p = &pdk_current->params[i];
		if (p->name_len > 5 && memcmp(p->name, "HTTP_", 5) == 0) {
			add_header_name(return_value, p->name + 5, p->name_len - 5, p->value, p->value_len);
		} else if ((p->name_len == 12 && memcmp(p->name, "CONTENT_TYPE", 12) == 0) ||
			   (p->name_len == 14 && memcmp(p->name, "CONTENT_LENGTH", 14) == 0)) {
			add_header_name(return_value, p->name, p->name_len, p->value, p->value_len);
		}
	}
}

const zend_function_entry pdk_functions[] = {
	ZEND_FE(fastcgi_finish_request, arginfo_pdk_finish)
	ZEND_RAW_FENTRY("getallheaders", zif_pdk_getallheaders, arginfo_pdk_headers, 0)
	ZEND_RAW_FENTRY("apache_request_headers", zif_pdk_getallheaders, arginfo_pdk_headers, 0)
	ZEND_FE_END
};
