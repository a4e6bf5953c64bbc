#!/usr/bin/env node
// The official TypeScript MCP client, remote-controlled by the .NET end-to-end tests
// (tests/ControlPlane.Tests/Clients). It exists because this client, unlike the C# one, validates a tool result's
// structuredContent against the tool's advertised outputSchema (also when isError is true) and throws on a mismatch:
// what users of Claude Code, the MCP Inspector and most agents run into.
//
// Protocol: one JSON step per line on stdin, one JSON answer per line on stdout, in order. Steps arrive one at a time
// (not as one plan) because the tests act between them: they revoke a token mid-session, or approve the approval id
// a refusal named and pass the confirmation token on.
//   {"op":"connect","url","token"}        connects over Streamable HTTP and lists the tools, so that the client holds
//                                         their output schemas and validates results as it does for a user
//   {"op":"callTool","name","arguments"}  the client's ordinary callTool, validation on
//   {"op":"readResource","uri"}           resources/read
//   {"op":"getPrompt","name","arguments"} prompts/get
// Answers: {"ok":true,"result":<the result>} or {"ok":false,"error":{"name","code","message","data"}} when the SDK threw
// (a refused resources/read or prompts/get is a JSON-RPC error whose data is the refusal object).
// End of stdin closes the client and exits.
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

// stdout carries answers only: anything a library logs goes to stderr, which the tests show when a step fails.
console.log = console.info = console.debug = console.error;

const answer = (value) => process.stdout.write(JSON.stringify(value) + "\n");

let client;

async function run(step) {
  switch (step.op) {
    case "connect": {
      client = new Client({ name: "controlplane-ts-client-tests", version: "1.0.0" });
      const transport = new StreamableHTTPClientTransport(new URL(step.url), {
        requestInit: { headers: { Authorization: `Bearer ${step.token}` } },
      });
      await client.connect(transport);
      return await client.listTools();
    }
    case "callTool":
      return await client.callTool({ name: step.name, arguments: step.arguments ?? {} });
    case "readResource":
      return await client.readResource({ uri: step.uri });
    case "getPrompt":
      return await client.getPrompt({ name: step.name, arguments: step.arguments ?? {} });
    default:
      throw new Error(`Unknown op: ${step.op}`);
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  try {
    answer({ ok: true, result: await run(JSON.parse(line)) });
  } catch (error) {
    // McpError carries the JSON-RPC code (-32602 for an output-schema mismatch); transport errors an HTTP status.
    answer({ ok: false, error: { name: error?.constructor?.name ?? "Error", code: error?.code ?? null, message: String(error?.message ?? error), data: error?.data ?? null } });
  }
}

await client?.close();
