// The template's entry point: a long-lived HTTP server on
// 127.0.0.1:$PORT (default 8082) behind the watchdog; every request goes
// to function.Handle.
package main

import (
	"log"
	"net/http"
	"os"

	"handler/function"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8082"
	}
	addr := "127.0.0.1:" + port
	log.Printf("go-http listening on %s", addr)
	log.Fatal(http.ListenAndServe(addr, http.HandlerFunc(function.Handle)))
}
