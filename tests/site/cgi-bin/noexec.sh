#!/bin/sh
echo not really a cgi script
