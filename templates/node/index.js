// The template's entry point: one process per request. Reads the whole
// request body from stdin, awaits function/handler.js, writes the answer
// to stdout. A throw exits non-zero, which the watchdog turns into a 500.
"use strict";

const handler = require("./function/handler");

async function main() {
    const chunks = [];
    for await (const chunk of process.stdin)
        chunks.push(chunk);
    const res = await handler(Buffer.concat(chunks).toString());
    if (res === undefined || res === null)
        return;
    process.stdout.write(typeof res === "string" || Buffer.isBuffer(res)
        ? res : JSON.stringify(res));
}

main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
});
