#!/usr/bin/env node
// A deliberately misbehaving MCP server (stdio, newline-delimited JSON-RPC, no dependencies) for the gateway's
// tests: it can crash, hang, wait to be cancelled, and report which credential it was started with.
//   LAB_CANCEL_LOG  file to which each notifications/cancelled request id is appended
//   LAB_CALL_LOG    file to which each tools/call's tool name is appended as it arrives
//   LAB_TOKEN       a credential; only its length is ever reported
//   LAB_START_LOG   file to which "started <pid>" is appended when the process starts
//   LAB_PROBE       when set, it also serves 'probe': its working directory, its whole environment, and which of the
//                   control plane's data-directory files it finds where it starts (to test what a child inherits)
//   LAB_READS       when set, it also serves resources, prompts and completions that hold personal data (to test redaction),
//                   and lab://wait, a resource that answers only when cancelled
import { appendFileSync, existsSync } from "node:fs";
import { createInterface } from "node:readline";

if (process.env.LAB_START_LOG) appendFileSync(process.env.LAB_START_LOG, `started ${process.pid}\n`);

const readOnly = { readOnlyHint: true, destructiveHint: false };
const tools = [
  { name: "echo", description: "Echoes its text.", annotations: readOnly,
    inputSchema: { type: "object", properties: { text: { type: "string" } }, required: ["text"] } },
  { name: "crash", description: "Exits the process at once.", annotations: readOnly, inputSchema: { type: "object", properties: {} } },
  { name: "hang", description: "Blocks the process forever: no answer, not even to ping.", annotations: readOnly, inputSchema: { type: "object", properties: {} } },
  { name: "wait", description: "Answers only when cancelled (never, otherwise).", annotations: readOnly, inputSchema: { type: "object", properties: {} } },
  { name: "token_length", description: "Length of the LAB_TOKEN it was started with.", annotations: readOnly, inputSchema: { type: "object", properties: {} } },
  { name: "reset", description: "An action without annotations.", inputSchema: { type: "object", properties: {} } },
];
if (process.env.LAB_PROBE) {
  tools.push({ name: "probe", description: "Reports the working directory, the environment and the data-directory files found from there.",
    annotations: readOnly, inputSchema: { type: "object", properties: {} } });
}
const dataDirFiles = ["audit-hash.key", "demo-credentials.json", "grains.db", "support-desk.db", "keys"];

const send = (message) => process.stdout.write(JSON.stringify(message) + "\n");
const reply = (id, result) => send({ jsonrpc: "2.0", id, result });
const text = (value) => ({ content: [{ type: "text", text: String(value) }] });

createInterface({ input: process.stdin }).on("line", (line) => {
  if (!line.trim()) return;
  const message = JSON.parse(line);
  switch (message.method) {
    case "initialize":
      return reply(message.id, {
        protocolVersion: message.params.protocolVersion,
        capabilities: process.env.LAB_READS ? { tools: { listChanged: true }, resources: {}, prompts: {}, completions: {} } : { tools: { listChanged: true } },
        serverInfo: { name: "lab-upstream", version: "1.0.0" },
      });
    case "ping":
      return reply(message.id, {});
    case "tools/list":
      return reply(message.id, { tools });
    case "resources/list":
      return reply(message.id, { resources: [
        { uri: "lab://customer/ada", name: "ada", mimeType: "text/plain" },
        { uri: "lab://wait", name: "wait", mimeType: "text/plain" },
      ] });
    case "resources/read": {
      const { uri } = message.params;
      if (process.env.LAB_CALL_LOG) appendFileSync(process.env.LAB_CALL_LOG, uri + "\n");
      if (uri === "lab://wait") return; // the answer never comes; cancellation is logged below
      if (uri === "lab://customer/ada") {
        return reply(message.id, { contents: [{ uri, mimeType: "text/plain", text: "Ada Lovelace, ada@example.com, +44 20 7946 0958" }] });
      }
      return send({ jsonrpc: "2.0", id: message.id, error: { code: -32002, message: `Resource not found: ${uri}` } });
    }
    case "prompts/list":
      return reply(message.id, { prompts: [{ name: "contact", description: "Write to a customer." }] });
    case "prompts/get":
      return reply(message.id, {
        description: "Write to ada@example.com",
        messages: [{ role: "user", content: { type: "text", text: "Write a short note to ada@example.com about her refund." } }],
      });
    case "completion/complete": {
      const { ref, argument } = message.params;
      const known = ref.type === "ref/prompt" && ref.name === "contact" && argument.name === "email";
      const values = known ? ["ada@example.com", "grace@example.com"].filter((v) => v.startsWith(argument.value ?? "")) : [];
      return reply(message.id, { completion: { values, total: values.length, hasMore: false } });
    }
    case "notifications/cancelled":
      if (process.env.LAB_CANCEL_LOG) appendFileSync(process.env.LAB_CANCEL_LOG, String(message.params.requestId) + "\n");
      return;
    case "tools/call": {
      const { name, arguments: args } = message.params;
      if (process.env.LAB_CALL_LOG) appendFileSync(process.env.LAB_CALL_LOG, name + "\n");
      if (name === "echo") return reply(message.id, text(args.text));
      if (name === "crash") process.exit(3);
      if (name === "hang") for (;;) { /* blocks the event loop for good */ }
      if (name === "wait") return; // the answer never comes; cancellation is logged above
      if (name === "token_length") return reply(message.id, text((process.env.LAB_TOKEN || "").length));
      if (name === "reset") return reply(message.id, text("reset"));
      if (name === "probe" && process.env.LAB_PROBE) {
        return reply(message.id, text(JSON.stringify({ cwd: process.cwd(), env: process.env, found: dataDirFiles.filter((f) => existsSync(f)) })));
      }
      return send({ jsonrpc: "2.0", id: message.id, error: { code: -32602, message: `Unknown tool ${name}` } });
    }
    default:
      if (message.id !== undefined) send({ jsonrpc: "2.0", id: message.id, error: { code: -32601, message: "Method not found" } });
  }
});
