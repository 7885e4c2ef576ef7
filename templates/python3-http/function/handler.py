def handle(event, context):
    """event: body (bytes), headers, method, path, query.
    Returns {"statusCode", "body", "headers"} or just a body."""
    return {
        "statusCode": 200,
        "body": "Hello from Python (http)! You said: " + event.body.decode(),
        "headers": {"Content-Type": "text/plain; charset=utf-8"},
    }
