#!/bin/bash
# stdin: the request body; stdout: the response body.
set -euo pipefail

printf 'Hello from bash! You said: '
cat
