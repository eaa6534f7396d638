import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";
import { BIN, RosterdockHome, waitFor } from "../support/rosterdock-process.ts";
import { requireTool } from "../support/sftp-client.ts";

/** Runs `rosterdock serve` under util-linux `script`, so that its standard output is a real terminal. */
function serveOnTerminal(home: RosterdockHome) {
  const child = spawn("script", ["-qefc", `exec '${BIN}' serve`, "/dev/null"], { env: { ...home.env, SHELL: "/bin/sh", TERM: "dumb" }, stdio: ["pipe", "pipe", "pipe"] });
  let screen = "";
  child.stdout.on("data", (chunk: Buffer) => (screen += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (screen += chunk.toString("utf8")));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    screen: () => screen.replace(/\r\n/g, "\n"),
    /** Ctrl-C, as the person at the terminal would stop it. */
    interrupt: () => child.stdin.write("\x03"),
    exited,
    kill: () => child.exitCode === null && child.kill("SIGKILL"),
  };
}

describe("rosterdock serve", () => {
  it("on a terminal, prints where it listens, what it uses, its host keys and the next step", { skip: requireTool("script", ["-V"]) }, async () => {
    const home = await RosterdockHome.create();
    const terminal = serveOnTerminal(home);
    try {
      await waitFor(async () => terminal.screen().includes("Stop with Ctrl-C"), 30_000, `the summary, got:\n${terminal.screen()}`);
      const screen = terminal.screen();
      const started = JSON.parse(screen.split("\n").find((line) => line.includes('"server.started"'))!);
      const summary = screen.slice(screen.indexOf("Rosterdock is running.\n"));
      assert.match(summary, new RegExp(`^  SFTP\\s+127\\.0\\.0\\.1:${started.sftpPort}\\s`, "m"));
      assert.match(summary, new RegExp(`^  HTTP\\s+http://127\\.0\\.0\\.1:${started.httpPort}\\s`, "m"));
      assert.match(summary, /^  Public host\s+127\.0\.0\.1\s/m);
      assert.ok(summary.includes(`  Data folder  ${home.dataDir}\n`), summary);
      assert.ok(summary.includes(`  Database     SQLite, ${home.dataDir}/rosterdock.sqlite\n`), summary);
      const keys = await home.json(["hostkey", "show"]);
      for (const key of keys) assert.match(summary, new RegExp(`^    ${key.algorithm}\\s+${key.sha256.replace(/[+/]/g, "\\$&")}$`, "m"));
      assert.doesNotMatch(summary, /MD5:/);
      assert.match(summary, /^Next: Create a district: rosterdock district create SLUG --name NAME$/m);
      // What it says is true: the server answers at the HTTP URL it printed.
      assert.equal((await fetch(`http://127.0.0.1:${started.httpPort}/healthz`)).status, 200);

      terminal.interrupt();
      assert.equal(await terminal.exited, 0);
      assert.match(terminal.screen(), /"event":"server.stopped"/);
    } finally {
      terminal.kill();
      await home.remove();
    }
  });

  it("on a terminal with districts, the next step is about them", { skip: requireTool("script", ["-V"]) }, async () => {
    const home = await RosterdockHome.create();
    await home.createDistrict("lincoln");
    const terminal = serveOnTerminal(home);
    try {
      await waitFor(async () => terminal.screen().includes("Stop with Ctrl-C"), 30_000, `the summary, got:\n${terminal.screen()}`);
      assert.match(terminal.screen(), /^Next: 1 district \(rosterdock district list\); new deliveries appear in: rosterdock syncs SLUG$/m);
      terminal.interrupt();
      assert.equal(await terminal.exited, 0);
    } finally {
      terminal.kill();
      await home.remove();
    }
  });

  it("not on a terminal, writes JSON logs only, and nothing on standard output", async () => {
    const home = await RosterdockHome.create();
    const child = spawn(BIN, ["serve"], { env: home.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      await waitFor(async () => stderr.includes('"event":"server.started"'), 30_000, "server.started");
      child.kill("SIGTERM");
      assert.equal(await exited, 0);
      assert.equal(stdout, "");
      const lines = stderr.trim().split("\n");
      for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), line);
      assert.ok(lines.some((line) => JSON.parse(line).event === "server.stopped"));
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      await home.remove();
    }
  });
});
