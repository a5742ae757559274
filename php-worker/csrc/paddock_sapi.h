/* The interface between paddock's PHP SAPI (C) and the worker (Rust). Mirrored in src/php/ffi.rs. */
#ifndef PADDOCK_SAPI_H
#define PADDOCK_SAPI_H

#include <stddef.h>

/* One FastCGI parameter; name and value are NUL-terminated (the lengths exclude the NUL). */
struct pdk_param {
	char *name;
	size_t name_len;
	char *value;
	size_t value_len;
};

/* A decoded request: every string NUL-terminated or NULL, all owned by Rust. */
struct pdk_request {
	const struct pdk_param *params;
	size_t param_count;
	char *method;
	char *query_string;
	char *script_name;
	char *script_filename;
	char *content_type;
	char *authorization;
	long content_length;
	int proto_num;
	int headers_only;
};

int pdk_startup_php(const char *ini_path, const char *const *defines, size_t define_count,
		    const char *const *admin_names, size_t admin_count);
/* timeout_ms: PHP's timeout error after this long (0: none). */
int pdk_run_request(const struct pdk_request *request, long timeout_ms);
int pdk_engine_check(const char **built, const char **running);
/* The most memory the current request's script has held (memory_get_peak_usage()); after the
 * request, the figure it ended with. */
size_t pdk_request_peak_memory(void);
/* The slow-request log (slowlog.c): installed once with the frames to show; the watcher thread
 * flags a request at its deadline, the worker clears the flag when the request ends. */
void pdk_slowlog_install(int depth);
void pdk_flag_slow_request(void);
void pdk_clear_slow_request(void);

/* user_ini.c: php.ini [PATH=]/[HOST=] sections and .user.ini files for this request. */
void pdk_activate_dir_config(const char *script, const char *doc_root, const char *server_name);

/* Implemented in Rust. Non-zero from a write or flush means the client is gone. */
int pdk_rs_write(const char *bytes, size_t len);
int pdk_rs_flush(void);
size_t pdk_rs_read_body(char *buffer, size_t len);
void pdk_rs_finish(void);
void pdk_rs_log(const char *message, size_t len);

#endif
