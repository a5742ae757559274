/* What the C files of paddock's SAPI share among themselves (not part of the Rust interface). */
#ifndef PADDOCK_SAPI_INTERNAL_H
#define PADDOCK_SAPI_INTERNAL_H

#include "php.h"
#include "SAPI.h"

#include "paddock_sapi.h"

/* paddock_sapi.c: the request being served (NULL between requests), and a parameter of it. */
extern const struct pdk_request *pdk_current;
const struct pdk_param *pdk_find_param(const char *name, size_t name_len);

/* headers.c: the CGI response head (sapi_module.send_headers). */
int pdk_send_headers(sapi_headers_struct *headers);

/* functions.c: fastcgi_finish_request(), getallheaders(), apache_request_headers(). */
extern const zend_function_entry pdk_functions[];
void pdk_reset_finished(void);

/* timeout.c: PHP's timeout error at the pool's request_timeout, on wall-clock time. */
void pdk_arm_request_timeout(long ms);
void pdk_disarm_request_timeout(void);
int pdk_request_timed_out(void);

#endif
