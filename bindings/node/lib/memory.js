'use strict';
/**
 * Native scratch memory for the hot path. koffi passes Buffers and BigInt pointers to C
 * without copying, but pointers *inside* structs (the `kw_str` scopes, the `kw_header`
 * array) must hold real addresses: they live in blocks from `koffi.alloc` (stable, never
 * moved by the GC), written through a Buffer view. Calls are synchronous and JavaScript is
 * single-threaded, so one set of blocks per process serves every store.
 * @module keyward/lib/memory
 */

const { koffi } = require('./native');

const TWO_32 = 4294967296;

/** A block of native memory with a Buffer and a Uint32Array view onto it. */
class Block {
  /** @param {number} size bytes (rounded up to 8) */
  constructor(size) {
    this.size = 0;
    this.allocate(size);
  }

  allocate(size) {
    size = Math.ceil(size / 8) * 8;
    const ptr = koffi.alloc('uint8_t', size);
    if (ptr === null || ptr === undefined) throw new Error(`keyward: cannot allocate ${size} bytes`);
    if (this.size) koffi.free(this.ptr);
    /** @type {bigint} the address, as koffi passes pointers */
    this.ptr = ptr;
    /** @type {number} the same address as a number (user-space addresses are below 2^53) */
    this.addr = Number(ptr);
    this.size = size;
    /** @type {Buffer} */
    this.buf = Buffer.from(koffi.view(ptr, size));
    this.u32 = new Uint32Array(this.buf.buffer, this.buf.byteOffset, size >>> 2);
  }

  /** Makes the block at least `size` bytes (the contents are not kept). */
  reserve(size) {
    if (size > this.size) this.allocate(Math.max(size, this.size * 2));
  }

  /** Writes a 64-bit little-endian value at a byte offset (multiple of 8). */
  put64(offset, value) {
    const i = offset >>> 2;
    this.u32[i] = value % TWO_32;
    this.u32[i + 1] = Math.floor(value / TWO_32);
  }

  /** Reads an unsigned 64-bit value at a byte offset (multiple of 8) as a number. */
  get64(offset) {
    const i = offset >>> 2;
    return this.u32[i] + this.u32[i + 1] * TWO_32;
  }

  /** Reads a signed 64-bit value at a byte offset (multiple of 8) as a number. */
  getI64(offset) {
    const i = offset >>> 2;
    return this.u32[i] + (this.u32[i + 1] | 0) * TWO_32;
  }

  /** Zeroes `length` bytes from `offset` (for secrets). */
  wipe(offset, length) {
    this.buf.fill(0, offset, offset + length);
  }

  free() {
    if (this.size) koffi.free(this.ptr);
    this.size = 0;
  }
}

/**
 * Writes a JS string (or bytes) into `block` at `offset` and returns the byte length.
 * Strings are UTF-8 unless `latin1` is set: header values from node:http are one
 * character per byte (latin1), so writing them back as latin1 gives the bytes received.
 * A string with a character above U+00FF is always written as UTF-8. The caller reserved
 * `3 * length` bytes (or the byte length of a Buffer).
 */
function writeText(block, offset, value, latin1) {
  if (typeof value === 'string') {
    // ASCII (the usual case) is the same in both encodings: no need to look further.
    if (latin1 && (value.length === Buffer.byteLength(value, 'utf8') || !ABOVE_LATIN1.test(value))) {
      return block.buf.latin1Write(value, offset);
    }
    return block.buf.utf8Write(value, offset);
  }
  block.buf.set(value, offset);
  return value.byteLength;
}

const ABOVE_LATIN1 = /[^\u0000-\u00ff]/;

/** An upper bound of the bytes `writeText` writes. */
function textBound(value) {
  return typeof value === 'string' ? value.length * 3 : value.byteLength;
}

module.exports = { Block, writeText, textBound, TWO_32 };
