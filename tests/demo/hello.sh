#!/bin/sh
# The demo function of `make run`: greets whoever the request body names.
name=$(cat)
echo "Hello, ${name:-world}! (${Http_Method:-?} ${Http_Path:-/})"
