/*
 * Per-directory configuration, as php-cgi and php-fpm apply it before each request:
 * `[PATH=...]` and `[HOST=...]` sections of php.ini, and `.user.ini` files (user_ini.filename)
 * from the document root down to the script's directory.
 *
 * Parsed `.user.ini` files are kept per directory for user_ini.cache_ttl seconds (300 by
 * default), as php-cgi does: a worker does not read them again for every request.
 */
#define _GNU_SOURCE
#include <string.h>

#include "php.h"
#include "php_ini.h"
#include "SAPI.h"

#include "sapi_internal.h"

typedef struct {
	time_t expires;
	HashTable settings;
} user_ini_dir;

/* Directory -> user_ini_dir, for the life of the worker. */
static HashTable cache;
static int cache_ready;

static void free_dir(zval *zv)
{
	user_ini_dir *dir = Z_PTR_P(zv);
	zend_hash_destroy(&dir->settings);
	free(dir);
}

/* Reads every .user.ini from `root` (a prefix of `dir`) down to `dir`, or only `dir`'s own when
 * the script lies outside the document root. */
static void parse_dirs(char *dir, size_t dir_len, const char *root, size_t root_len, HashTable *into)
{
	const char *name = PG(user_ini_filename);
	int inside = root_len > 0 && dir_len >= root_len && memcmp(dir, root, root_len) == 0 &&
		     (dir_len == root_len || dir[root_len] == '/');
	if (!inside) {
		php_parse_user_ini_file(dir, name, into);
		return;
	}
	for (size_t i = root_len; i <= dir_len; i++) {
		if (i == dir_len || dir[i] == '/') {
			char saved = dir[i];
			dir[i] = '\0';
			php_parse_user_ini_file(i == 0 ? "/" : dir, name, into);
			dir[i] = saved;
		}
	}
}

static void activate_user_ini(char *dir, size_t dir_len, const char *doc_root)
{
	size_t root_len = doc_root ? strlen(doc_root) : 0;
	while (root_len > 0 && doc_root[root_len - 1] == '/') {
		root_len--;
	}
	if (!cache_ready) {
		zend_hash_init(&cache, 8, NULL, free_dir, 1);
		cache_ready = 1;
	}
	user_ini_dir *entry = zend_hash_str_find_ptr(&cache, dir, dir_len);
	if (!entry) {
		entry = calloc(1, sizeof(*entry));
		if (!entry) {
			return;
		}
		zend_hash_init(&entry->settings, 8, NULL, config_zval_dtor, 1);
		zend_hash_str_update_ptr(&cache, dir, dir_len, entry);
	}
	time_t now = (time_t)sapi_get_request_time();
	if (now > entry->expires) {
		zend_hash_clean(&entry->settings);
		parse_dirs(dir, dir_len, doc_root, root_len, &entry->settings);
		entry->expires = now + PG(user_ini_cache_ttl);
	}
	php_ini_activate_config(&entry->settings, PHP_INI_PERDIR, PHP_INI_STAGE_HTACCESS);
}

/* PHP_VALUE, as php-fpm reads it: `name=value` lines, here the `php_value` and `php_flag`
 * directives of the request's `.htaccess` files (the front end sends them). Applied as Apache's
 * mod_php applies those directives: per directory, so a setting a script could not change
 * (php_admin_value, or one only php.ini may set) stays put. PHP restores every setting at the
 * end of the request, so none leaks into the worker's next one (php-fpm keeps them). */
static void activate_php_value(void)
{
	const struct pdk_param *param = pdk_find_param("PHP_VALUE", sizeof("PHP_VALUE") - 1);
	if (!param) {
		return;
	}
	const char *line = param->value;
	const char *end = param->value + param->value_len;
	while (line < end) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol) {
			eol = end;
		}
		const char *eq = memchr(line, '=', (size_t)(eol - line));
		if (eq && eq > line) {
			zend_string *name = zend_string_init(line, (size_t)(eq - line), 0);
			zend_alter_ini_entry_chars(name, eq + 1, (size_t)(eol - eq - 1), PHP_INI_PERDIR,
						   PHP_INI_STAGE_HTACCESS);
			zend_string_release(name);
		}
		line = eol + 1;
	}
}

void pdk_activate_dir_config(const char *script, const char *doc_root, const char *server_name)
{
	if (server_name && php_ini_has_per_host_config()) {
		size_t len = strlen(server_name);
		char *host = estrndup(server_name, len);
		zend_str_tolower(host, len);
		php_ini_activate_per_host_config(host, len);
		efree(host);
	}
	int user_ini = PG(user_ini_filename) && *PG(user_ini_filename);
	const char *slash = script ? strrchr(script, '/') : NULL;
	if (slash && (user_ini || php_ini_has_per_dir_config())) {
		size_t dir_len = slash == script ? 1 : (size_t)(slash - script);
		char *dir = estrndup(script, dir_len);
		php_ini_activate_per_dir_config(dir, dir_len);
		if (user_ini) {
			activate_user_ini(dir, dir_len, doc_root);
		}
		efree(dir);
	}
	/* Last: the .htaccess files are nearer the request than php.ini and .user.ini. */
	activate_php_value();
}
