/*
 * The CGI response head, as php-cgi writes it: the status goes out as a `Status:` header, which
 * the web server turns into the status line. A script's own `Status:` header wins, then the
 * reason phrase of a status line given with header("HTTP/1.1 ..."), then PHP's standard phrase
 * for the code. A 304 carries no Content-Type. A request ended by the request timeout answers
 * 504 instead of the 500 PHP gives its fatal errors.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "php.h"
#include "SAPI.h"
#include "http_status_codes.h"

#include "sapi_internal.h"

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
int pdk_send_headers(sapi_headers_struct *headers)
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
	if (pdk_request_timed_out() && code == 500) {
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

