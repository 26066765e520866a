// Replays the fuzz corpus (fuzz/corpus/<decoder>/: seeds and minimized crashers) through every
// decoder's fuzz target, then a short seeded mutation burst, so npm test keeps what `npm run
// fuzz` once found. The properties are in fuzz/targets.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readCorpus } from '../fuzz/corpus.ts';
import { Rand, mutate } from '../fuzz/mutate.ts';
import { Crash, DECODERS, TARGETS, typed } from '../fuzz/targets.ts';
import { WireError } from '../src/wire/errors.ts';

const BURST = 2000;

describe('fuzz corpus', () => {
  for (const d of DECODERS) {
    const t = TARGETS[d];
    const corpus = readCorpus(d);

    it(`${d}: every corpus entry passes the target's properties`, () => {
      assert.ok(corpus.length > 0, `fuzz/corpus/${d}/ is empty`);
      for (const e of corpus) {
        assert.doesNotThrow(() => t.check(e.bytes), `${d}/${e.name}`);
      }
    });

    it(`${d}: ${BURST} seeded mutants of the corpus pass`, () => {
      const r = new Rand(0xbad5eed + DECODERS.indexOf(d));
      const pool = corpus.map((e) => e.bytes);
      for (let i = 0; i < BURST; i++) {
        let input = mutate(pool[r.int(pool.length)]!, r, { maxLength: t.maxInput, pool });
        if (t.fixup !== undefined && r.chance(0.5)) input = t.fixup(input);
        try {
          t.check(input);
        } catch (e) {
          assert.fail(`${d}: mutant ${i} (${Buffer.from(input).toString('hex').slice(0, 200)}): ${e instanceof Crash ? e.message : String(e)}`);
        }
      }
    });
  }

  it('turns any exception but the typed refusal into a Crash with a signature', () => {
    assert.equal(typed('x', () => { throw new WireError('BATON_ERR_X', 'a[3].b', 'no'); }), 'err:BATON_ERR_X:a[#].b');
    assert.throws(() => typed('x', () => { throw new RangeError('planted'); }), (e: unknown) => e instanceof Crash && e.signature === 'x:throw:RangeError');
    assert.throws(() => typed('x', () => { throw new WireError('BATON_ERR_X', 'f', 'no'); }, () => false), (e: unknown) => e instanceof Crash && e.signature === 'x:throw:WireError');
  });
});
