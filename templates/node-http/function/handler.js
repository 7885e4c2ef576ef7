"use strict";

// event: body (a string), headers, method, path, query.
module.exports = async (event, context) => {
    return context
        .status(200)
        .headers({ "Content-Type": "text/plain; charset=utf-8" })
        .succeed("Hello from Node.js (http)! You said: " + event.body);
};
