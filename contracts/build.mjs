#!/usr/bin/env node
// Compile src/CheckpointRegistry.sol with the pinned solc-js (WebAssembly, from npm) through the
// standard JSON interface and write the committed artifact.
//
// Usage: node build.mjs [--out FILE]     (default: artifacts/CheckpointRegistry.json)
//
// The output is deterministic: settings are fixed below, metadata.bytecodeHash is "none" (no
// IPFS/Swarm hash of the metadata, whose source paths would otherwise leak into the bytecode),
// and the JSON is written with sorted settings and a trailing newline. `make contracts-check`
// rebuilds into a temporary file and compares it byte for byte with the committed one.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const PINNED_SOLC = "0.8.37";
const CONTRACT = "CheckpointRegistry";
const SOURCE_NAME = `src/${CONTRACT}.sol`;

const here = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
let out = join(here, "artifacts", `${CONTRACT}.json`);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--out" && i + 1 < argv.length) {
    out = argv[++i];
  } else {
    console.error(`unknown argument: ${argv[i]}\nusage: node build.mjs [--out FILE]`);
    process.exit(2);
  }
}

const version = solc.version();
if (!version.startsWith(`${PINNED_SOLC}+`)) {
  console.error(`solc ${version} found; ${PINNED_SOLC} is pinned (run npm ci in contracts/)`);
  process.exit(1);
}

// London: no PUSH0 (Shanghai), so the bytecode deploys on London-rules consortium chains.
const settings = {
  evmVersion: "london",
  metadata: { bytecodeHash: "none" },
  optimizer: { enabled: true, runs: 200 },
  outputSelection: {
    "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.methodIdentifiers"] },
  },
};

const source = readFileSync(join(here, SOURCE_NAME), "utf8");
const input = { language: "Solidity", sources: { [SOURCE_NAME]: { content: source } }, settings };
const output = JSON.parse(solc.compile(JSON.stringify(input)));

let failed = false;
for (const e of output.errors ?? []) {
  const text = e.formattedMessage ?? e.message;
  if (e.severity === "error") failed = true;
  console.error(text);
}
if (failed) process.exit(1);

const c = output.contracts[SOURCE_NAME][CONTRACT];
const artifact = {
  contractName: CONTRACT,
  sourceName: SOURCE_NAME,
  sourceSha256: createHash("sha256").update(source, "utf8").digest("hex"),
  compiler: {
    name: "solc-js",
    version,
    settings: {
      evmVersion: settings.evmVersion,
      metadata: settings.metadata,
      optimizer: settings.optimizer,
    },
  },
  abi: c.abi,
  methodIdentifiers: c.evm.methodIdentifiers,
  bytecode: `0x${c.evm.bytecode.object}`,
  deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
};

mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(artifact, null, 2)}\n`);
console.log(
  `${CONTRACT}: solc ${version}, ${(artifact.deployedBytecode.length - 2) / 2} bytes deployed -> ${out}`,
);
