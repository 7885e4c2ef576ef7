package model;

import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/** The handler's answer: status, headers and body. */
public final class Response {
    private int statusCode = 200;
    private final Map<String, String> headers = new LinkedHashMap<>();
    private byte[] body = new byte[0];

    public Response() {}

    public Response(int statusCode, String body) {
        setStatusCode(statusCode);
        setBody(body);
    }

    public int getStatusCode() { return statusCode; }
    public void setStatusCode(int code) { statusCode = code; }
    public Map<String, String> getHeaders() { return headers; }
    public void setHeader(String name, String value) { headers.put(name, value); }
    public byte[] getBody() { return body; }
    public void setBody(byte[] b) { body = b; }
    public void setBody(String s) { body = s.getBytes(StandardCharsets.UTF_8); }
}
