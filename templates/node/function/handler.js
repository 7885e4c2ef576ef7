"use strict";

// input: the request body as a string. Returns the response body.
module.exports = async (input) => {
    return "Hello from Node.js! You said: " + input;
};
