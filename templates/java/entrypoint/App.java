// The template's entry point: a long-lived HTTP server on
// 127.0.0.1:$PORT (default 8082) behind the watchdog, on the JDK's own
// com.sun.net.httpserver. Every request goes to function.Handler.
package entrypoint;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import function.Handler;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.util.Map;
import java.util.concurrent.Executors;
import model.Request;
import model.Response;

public final class App {
    private static final Handler HANDLER = new Handler();

    public static void main(String[] args) throws IOException {
        String env = System.getenv("PORT");
        int port = env == null || env.isEmpty() ? 8082 : Integer.parseInt(env);
        HttpServer server =
            HttpServer.create(new InetSocketAddress("127.0.0.1", port), 0);
        server.createContext("/", App::serve);
        server.setExecutor(Executors.newCachedThreadPool());
        server.start();
        System.err.println("java listening on 127.0.0.1:" + port);
    }

    private static void serve(HttpExchange ex) throws IOException {
        Response res;
        try {
            byte[] body = ex.getRequestBody().readAllBytes();
            res = HANDLER.handle(new Request(ex.getRequestMethod(),
                ex.getRequestURI(), ex.getRequestHeaders(), body));
        } catch (Exception e) {
            e.printStackTrace();
            res = new Response(500, "internal error\n");
        }
        byte[] out = res.getBody();
        for (Map.Entry<String, String> h : res.getHeaders().entrySet())
            ex.getResponseHeaders().set(h.getKey(), h.getValue());
        boolean head = "HEAD".equals(ex.getRequestMethod());
        ex.sendResponseHeaders(res.getStatusCode(), head ? -1 : out.length);
        try (OutputStream os = ex.getResponseBody()) {
            if (!head)
                os.write(out);
        }
    }
}
