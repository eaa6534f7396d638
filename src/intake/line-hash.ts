/**
 * A 64-bit hash of a line of text (two 32-bit halves, no BigInt), for recognising lines that
 * are byte for byte the same as an accepted line of the previous night (see sync/line-digest.ts).
 * Not cryptographic: two different lines share a hash with a chance of about 2^-64 per pair.
 * The result is never (0, 0): that value marks a line that must always be read.
 */
export class LineHasher {
  hi = 0;
  lo = 0;

  /** Hashes `text[start, end)`; the result is in `hi` and `lo`. */
  hash(text: string, start: number, end: number): void {
    let h1 = 0x9747b28c ^ (end - start);
    let h2 = 0x2f8a6c1d ^ Math.imul(end - start, 0x27d4eb2f);
    for (let i = start; i < end; i++) {
      const c = text.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0xcc9e2d51);
      h1 = (h1 << 15) | (h1 >>> 17);
      h2 = Math.imul(h2 ^ c, 0x1b873593);
      h2 = (h2 << 13) | (h2 >>> 19);
      h2 = (Math.imul(h2, 5) + 0xe6546b64) | 0;
    }
    h1 = fmix(h1 ^ h2);
    h2 = fmix(h2 ^ Math.imul(h1, 0x85ebca6b));
    this.hi = h1 >>> 0;
    this.lo = h2 >>> 0 || 1;
  }
}

/** MurmurHash3's finaliser: every input bit affects every output bit. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}
