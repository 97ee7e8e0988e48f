// Pre-render TeX with KaTeX for the Sphinx build (docs/_ext/katex_prerender.py).
// One request per line on stdin, {"tex": "...", "display": true}; one answer per line on
// stdout, {"html": "..."} or {"error": "..."}.
"use strict";
const katex = require(process.argv[2]);
const readline = require("readline");

const lines = readline.createInterface({ input: process.stdin, terminal: false });
lines.on("line", (line) => {
  const request = JSON.parse(line);
  let answer;
  try {
    answer = {
      html: katex.renderToString(request.tex, {
        displayMode: request.display,
        throwOnError: true,
        strict: "error",
        output: "htmlAndMathml",
      }),
    };
  } catch (error) {
    answer = { error: String(error.message || error) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
});
