// The page's part of the p2pspaces wire format: msgpack, the signed envelope, and the guest's
// own Ed25519 key.  The gateway relays these bytes as they are; the room's authority checks the
// signature, so the node serving this page cannot speak for its guest.
//
// The key: on a secure page (HTTPS) WebCrypto makes it, not extractable, kept in IndexedDB.  On
// the plain-HTTP page WebCrypto is missing (browsers keep it for secure pages), so the audited
// noble-ed25519 and noble-hashes (served by the node, with their licences) sign with a seed from
// crypto.getRandomValues kept in localStorage.  A guest moving from the plain page to the secure
// one takes its seed along in the address's fragment (never sent to any server).

import * as ed from "./vendor/noble-ed25519/index.js";
import { sha512 } from "./vendor/noble-hashes/sha2.js";

ed.hashes.sha512 = sha512;

// The room's own rules and the node's protocol constants: tests/web/test_page_wire.py checks
// that each equals its Python twin.
export const PROTOCOL_VERSION = 6;
export const NAME_MAX = 32;
export const CHAT_MAX = 500;
export const EMOJI = ["👏", "❤️", "😂", "💯", "🙌", "🤔", "🔥", "👋"];
export const DOMAIN_MESSAGE = new TextEncoder().encode("p2pspaces/1 signed message\0");
export const DOMAIN_WEB = new TextEncoder().encode("p2pspaces/1 web guest\0");
const SEED_KEY = "p2pspaces.seed";

// --- msgpack: just what our messages use --------------------------------------------------

export function pack(value) {
  const out = [];
  write(out, value);
  return Uint8Array.from(out);
}

function write(out, v) {
  if (v === null || v === undefined) out.push(0xc0);
  else if (v === true) out.push(0xc3);
  else if (v === false) out.push(0xc2);
  else if (typeof v === "number") writeInt(out, v);
  else if (typeof v === "string") writeStr(out, v);
  else if (v instanceof Uint8Array) writeBin(out, v);
  else if (typeof v === "object") writeMap(out, v);
  else throw new Error("cannot pack " + typeof v);
}

function writeInt(out, n) {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error("only non-negative integers");
  if (n < 0x80) out.push(n);
  else if (n < 0x100) out.push(0xcc, n);
  else if (n < 0x10000) out.push(0xcd, n >> 8, n & 0xff);
  else if (n < 0x100000000) out.push(0xce, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
  else {
    const hi = Math.floor(n / 0x100000000), lo = n >>> 0;
    out.push(0xcf, hi >>> 24, (hi >> 16) & 0xff, (hi >> 8) & 0xff, hi & 0xff,
      lo >>> 24, (lo >> 16) & 0xff, (lo >> 8) & 0xff, lo & 0xff);
  }
}

function writeLength(out, n, fix, fixMax, op8, op16, op32) {
  if (fix !== null && n <= fixMax) out.push(fix | n);
  else if (op8 !== null && n < 0x100) out.push(op8, n);
  else if (n < 0x10000) out.push(op16, n >> 8, n & 0xff);
  else out.push(op32, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
}

function writeStr(out, s) {
  const bytes = new TextEncoder().encode(s);
  writeLength(out, bytes.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
  for (const b of bytes) out.push(b);
}

function writeBin(out, bytes) {
  writeLength(out, bytes.length, null, 0, 0xc4, 0xc5, 0xc6);
  for (const b of bytes) out.push(b);
}

function writeMap(out, obj) {
  const keys = Object.keys(obj);
  writeLength(out, keys.length, 0x80, 15, null, 0xde, 0xdf);
  for (const k of keys) {
    writeStr(out, k);
    write(out, obj[k]);
  }
}

// --- bytes --------------------------------------------------------------------------------

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function unhex(text) {
  if (!/^([0-9a-f]{2})*$/.test(text)) throw new Error("not hex");
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(i * 2, 2), 16);
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

// --- the guest's key ----------------------------------------------------------------------

class SeedKey {
  constructor(seed) { this.seed = seed; this.kind = "noble"; }
  async init() { this.publicKey = ed.getPublicKey(this.seed); return this; }
  async sign(bytes) { return ed.sign(bytes, this.seed); }
  handoff() { return hex(this.seed); }
}

class CryptoKey25519 {
  constructor(pair) { this.pair = pair; this.kind = "webcrypto"; }
  async init() {
    this.publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", this.pair.publicKey));
    return this;
  }
  async sign(bytes) {
    return new Uint8Array(await crypto.subtle.sign("Ed25519", this.pair.privateKey, bytes));
  }
  handoff() { return null; }
}

function idb(run) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open("p2pspaces", 1);
    open.onupgradeneeded = () => open.result.createObjectStore("keys");
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const tx = open.result.transaction("keys", "readwrite");
      const request = run(tx.objectStore("keys"));
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    };
  });
}

async function webCryptoKey() {
  // Only the HTTPS page: a plain page on localhost is a secure context too, but its guest
  // must be able to take its key along to the HTTPS page, and a WebCrypto key cannot go.
  const https = location.protocol === "https:" && window.isSecureContext;
  if (!https || !crypto.subtle || !window.indexedDB) return null;
  try {
    let pair = await idb((store) => store.get("guest"));
    if (!pair) {
      pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
      await idb((store) => store.put(pair, "guest"));
    }
    return await new CryptoKey25519(pair).init();
  } catch (err) {
    console.warn("WebCrypto Ed25519 unavailable, using noble-ed25519", err);
    return null;
  }
}

// A key from a 32-byte seed, kept nowhere (for people testing what the room refuses).
export function keyFromSeed(seedHex) {
  return new SeedKey(unhex(seedHex)).init();
}

// The guest's key: one handed over in the fragment, else the one kept, else a new one.
export async function loadKey(handedSeed) {
  if (handedSeed) {
    localStorage.setItem(SEED_KEY, handedSeed);
    return new SeedKey(unhex(handedSeed)).init();
  }
  const kept = localStorage.getItem(SEED_KEY);
  if (kept && /^[0-9a-f]{64}$/.test(kept)) return new SeedKey(unhex(kept)).init();
  const webcrypto = await webCryptoKey();
  if (webcrypto) return webcrypto;
  const seed = crypto.getRandomValues(new Uint8Array(32));
  localStorage.setItem(SEED_KEY, hex(seed));
  return new SeedKey(seed).init();
}

// --- messages -----------------------------------------------------------------------------

export async function proveKey(key, challenge, gateway) {
  return hex(await key.sign(concat(DOMAIN_WEB, challenge, gateway)));
}

export async function seal(key, message) {
  const payload = pack({ v: PROTOCOL_VERSION, ...message });
  const signature = await key.sign(concat(DOMAIN_MESSAGE, payload));
  return pack({
    v: PROTOCOL_VERSION, t: "signed", signer: key.publicKey, payload, signature,
  });
}

// Each message names the room's epoch and a counter its signer raises with every message: the
// room's authority refuses any the gateway passes on that is not newer than the last (so the
// node serving this page can neither replay nor reorder what the guest signed).

export function request(roomId, epoch, reqId, kind, target = null, text = "", flag = false) {
  return {
    t: "request", room_id: roomId, epoch, req_id: reqId, action: { kind, target, text, flag, via: null },
  };
}

export function chat(roomId, epoch, chatId, text) {
  return { t: "chat", room_id: roomId, epoch, chat_id: chatId, text };
}

export function reaction(roomId, epoch, reactionId, emoji) {
  return { t: "reaction", room_id: roomId, epoch, reaction_id: reactionId, emoji };
}
