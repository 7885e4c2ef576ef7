package function

// Handle gets the request body and returns the response body.
func Handle(req []byte) string {
	return "Hello from Go! You said: " + string(req)
}
