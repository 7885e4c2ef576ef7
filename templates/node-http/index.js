// The template's entry point: a long-lived HTTP server on
// 127.0.0.1:$PORT (default 3000) behind the watchdog. Each request becomes
// an event for function/handler.js; the context it answers through (or
// the value it returns) becomes the response.
"use strict";

const http = require("http");
const handler = require("./function/handler");

class Context {
    constructor() {
        this.statusCode = 200;
        this.headerValues = {};
        this.result = undefined;
        this.done = false;
    }
    status(code) {
        this.statusCode = code;
        return this;
    }
    headers(values) {
        Object.assign(this.headerValues, values);
        return this;
    }
    succeed(value) {
        this.result = value;
        this.done = true;
        return this;
    }
    fail(value) {
        this.statusCode = 500;
        return this.succeed(value);
    }
}

function send(res, ctx, value) {
    let body = value === undefined || value === null ? "" : value;
    if (typeof body !== "string" && !Buffer.isBuffer(body)) {
        body = JSON.stringify(body);
        if (!ctx.headerValues["Content-Type"])
            ctx.headerValues["Content-Type"] = "application/json";
    }
    res.writeHead(ctx.statusCode, ctx.headerValues);
    res.end(body);
}

const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", async () => {
        const url = new URL(req.url, "http://localhost");
        const event = {
            body: Buffer.concat(chunks).toString(),
            headers: req.headers,
            method: req.method,
            path: url.pathname,
            query: Object.fromEntries(url.searchParams),
        };
        const ctx = new Context();
        try {
            const value = await handler(event, ctx);
            send(res, ctx, ctx.done ? ctx.result : value);
        } catch (err) {
            console.error(err);
            ctx.statusCode = 500;
            send(res, ctx, "internal error\n");
        }
    });
});

// Never close an idle connection: the watchdog pools them, and a close
// racing a pooled POST would fail that request.
server.keepAliveTimeout = 0;

const port = Number(process.env.PORT || 3000);
server.listen(port, "127.0.0.1", () => {
    console.error(`node-http listening on 127.0.0.1:${port}`);
});
