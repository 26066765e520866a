// 32-bit string hashing for Maglev: FNV-1a over UTF-16 code units, then the murmur3
// finaliser so that nearby strings ("be1", "be2") land far apart. Not cryptographic:
// a client who can choose keys can choose which back-end they hit, which hashing allows anyway.

export const hash32 = (s: string, seed = 0): number => {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
};
