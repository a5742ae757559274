#!/usr/bin/env python3
# A Python CGI script: reads a form body.
import os, sys, urllib.parse
body = sys.stdin.read(int(os.environ.get("CONTENT_LENGTH") or 0))
form = urllib.parse.parse_qs(body)
sys.stdout.write("Status: 201 Created\r\nContent-Type: text/plain\r\n\r\n")
sys.stdout.write("hello %s from python\n" % form.get("name", ["nobody"])[0])
