#!/bin/sh
# A CGI local redirect (RFC 3875 §6.2.2): only a Location with a local path, no body. The
# server serves that path instead, as a GET without the original body.
printf 'Location: /cgi-bin/env.sh/redirected?from=moved\r\n\r\n'
