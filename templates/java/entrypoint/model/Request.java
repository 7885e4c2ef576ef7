package model;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/** One HTTP request, as the handler sees it. */
public final class Request {
    private final String method;
    private final URI uri;
    private final Map<String, List<String>> headers;
    private final byte[] body;

    public Request(String method, URI uri, Map<String, List<String>> headers,
                   byte[] body) {
        this.method = method;
        this.uri = uri;
        this.headers = headers;
        this.body = body;
    }

    public String getMethod() { return method; }
    public String getPath() { return uri.getPath(); }
    public String getQuery() { return uri.getRawQuery(); }
    public Map<String, List<String>> getHeaders() { return headers; }
    public byte[] getBodyBytes() { return body; }
    public String getBody() { return new String(body, StandardCharsets.UTF_8); }

    /** The first value of a header (any case), or null. */
    public String getHeader(String name) {
        for (Map.Entry<String, List<String>> h : headers.entrySet())
            if (h.getKey().equalsIgnoreCase(name) && !h.getValue().isEmpty())
                return h.getValue().get(0);
        return null;
    }
}
