package function;

import model.Request;
import model.Response;

public class Handler {
    public Response handle(Request req) {
        Response res = new Response(200,
            "Hello from Java! You said: " + req.getBody());
        res.setHeader("Content-Type", "text/plain; charset=utf-8");
        return res;
    }
}
