#!/bin/sh
# A shell CGI script: echoes a few meta-variables and its stdin.
printf 'Content-Type: text/plain\r\nX-Runner-Pid: %s\r\n\r\n' "$PPID"
printf 'method=%s query=%s script=%s path_info=%s length=%s\n' \
    "$REQUEST_METHOD" "$QUERY_STRING" "$SCRIPT_NAME" "$PATH_INFO" "$CONTENT_LENGTH"
printf 'body='
cat
echo "env.sh ran" >&2
