#!/usr/bin/env node
// Compiles contracts/ReserveToken.sol with the pinned solc-js and writes the committed
// artifact audits/contracts/ReserveToken.json, which the Python side deploys from (so Python
// never needs a compiler). `--check` recompiles in memory and exits 1 if the committed
// artifact differs, so CI can catch a .sol edit that was not followed by a rebuild.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const solc = require('solc');

const ROOT = path.resolve(__dirname, '..');
const CONTRACT = 'ReserveToken';
const SOURCE_PATH = path.join(ROOT, 'contracts', `${CONTRACT}.sol`);
const ARTIFACT_PATH = path.join(ROOT, 'audits', 'contracts', `${CONTRACT}.json`);

// Fixed settings so the bytecode is reproducible; evmVersion is pinned instead of taking
// the compiler default so a solc bump cannot silently emit opcodes an older node rejects.
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  metadata: { bytecodeHash: 'none' },
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
};

function build() {
  const source = fs.readFileSync(SOURCE_PATH);
  const input = {
    language: 'Solidity',
    sources: { [`${CONTRACT}.sol`]: { content: source.toString('utf8') } },
    settings: SETTINGS,
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === 'error');
  for (const e of output.errors || []) process.stderr.write(`${e.formattedMessage}\n`);
  if (errors.length) throw new Error(`solc reported ${errors.length} error(s)`);
  const compiled = output.contracts[`${CONTRACT}.sol`][CONTRACT];
  const artifact = {
    contractName: CONTRACT,
    sourcePath: `contracts/${CONTRACT}.sol`,
    sourceSha256: crypto.createHash('sha256').update(source).digest('hex'),
    compiler: { name: 'solc-js', version: solc.version() },
    settings: {
      optimizer: SETTINGS.optimizer,
      evmVersion: SETTINGS.evmVersion,
      metadata: SETTINGS.metadata,
    },
    abi: compiled.abi,
    bytecode: `0x${compiled.evm.bytecode.object}`,
    deployedBytecode: `0x${compiled.evm.deployedBytecode.object}`,
  };
  return `${JSON.stringify(artifact, null, 2)}\n`;
}

function main() {
  const text = build();
  if (process.argv.includes('--check')) {
    const current = fs.existsSync(ARTIFACT_PATH) ? fs.readFileSync(ARTIFACT_PATH, 'utf8') : '';
    if (current !== text) {
      process.stderr.write(`${path.relative(ROOT, ARTIFACT_PATH)} is stale: run npm run compile\n`);
      process.exit(1);
    }
    process.stdout.write(`${path.relative(ROOT, ARTIFACT_PATH)} is up to date\n`);
    return;
  }
  fs.mkdirSync(path.dirname(ARTIFACT_PATH), { recursive: true });
  fs.writeFileSync(ARTIFACT_PATH, text);
  process.stdout.write(`wrote ${path.relative(ROOT, ARTIFACT_PATH)}\n`);
}

main();
