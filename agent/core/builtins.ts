/**
 * The Node builtins whose ESM import is slow, loaded through `require` instead. Node 24 builds
 * the ESM view of a builtin by reading every export, lazy getters included: node:http's
 * WebSocket, CloseEvent and MessageEvent getters load undici (with http2 and perf_hooks),
 * node:crypto's load WebCrypto, node:util's and node:tls's more of the same. Measured with the
 * agent's node flags: `import 'node:http'` 63 ms against 12 ms through require, crypto 21 against
 * 0, util 11 against 0, tls 29 against 18; every agent process paid them before its first
 * request (test/unit/layers.test.ts keeps the ESM imports out).
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const http = require('node:http') as typeof import('node:http');
export const https = require('node:https') as typeof import('node:https');
export const { STATUS_CODES } = http;
export const { connect: tlsConnect } = require('node:tls') as typeof import('node:tls');
export const { X509Certificate, createHash, createHmac, createPrivateKey, randomBytes, randomFillSync, timingSafeEqual } = require('node:crypto') as typeof import('node:crypto');
export const { parseArgs } = require('node:util') as typeof import('node:util');
export type X509Certificate = import('node:crypto').X509Certificate;
