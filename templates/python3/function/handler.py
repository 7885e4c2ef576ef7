def handle(req):
    """req: the request body as text. Returns the response body."""
    return "Hello from Python! You said: " + req
