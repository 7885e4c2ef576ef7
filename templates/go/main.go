// The template's entry point: one process per request. Reads the whole
// request body from stdin, calls function.Handle, writes the answer to
// stdout.
package main

import (
	"fmt"
	"io"
	"os"

	"handler/function"
)

func main() {
	req, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "reading the request: %v\n", err)
		os.Exit(1)
	}
	io.WriteString(os.Stdout, function.Handle(req))
}
