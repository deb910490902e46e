// Dawn's instances outlive what made them (engine/node.ts, dawnInstance). Listing adapters, a
// NoAdapterError and a destroyed device each used to leave a Dawn instance to the garbage collector;
// once it ran, the next submit of a live device aborted the process (std::system_error "Invalid
// argument" or SIGSEGV, on lavapipe and SwiftShader alike). This file forces the collector in-process,
// so a regression kills this file's worker: vitest then reports it as an error and the run fails.
// It has a file of its own so that such a crash takes no other test with it.

import { describe, expect, it } from 'vitest';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createNodeDevice, listAdapters, NoAdapterError } from '../../engine/node.js';

setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

describe("Dawn's instances", () => {
  it('a live device keeps working after adapters were listed, a name matched nothing, devices were destroyed, and the collector ran', async () => {
    const device = await createNodeDevice();
    const a = device.tensor(new Float32Array([1, 2, 3, 4]), [2, 2]);
    expect(Array.from(await a.matmul(a).data())).toEqual([7, 10, 15, 22]);
    for (let round = 0; round < 3; round++) {
      const adapters = await listAdapters();
      expect(adapters.length).toBeGreaterThan(0);
      const err = await createNodeDevice({ adapter: 'no-such-gpu-xyz' }).catch((e) => e);
      expect(err).toBeInstanceOf(NoAdapterError);
      const picked = await createNodeDevice({ adapter: adapters[0].name.split(/[\s(]/)[0] });
      expect(Array.from(await picked.ones([3]).mul(2).data())).toEqual([2, 2, 2]);
      picked.destroy();
      const lost = await createNodeDevice();
      const pending = lost.ones([16]).add(1);
      lost.destroy();
      await pending.data().catch(() => undefined);
      collect();
      collect();
      await new Promise((resolve) => setTimeout(resolve, 20));
      // The submit and the map that used to abort the process.
      expect(Array.from(await a.matmul(a).add(round).data())).toEqual([7, 10, 15, 22].map((v) => v + round));
    }
    // A device made afterwards, on the same kept instance, works too.
    const again = await createNodeDevice();
    expect(Array.from(await again.ones([2]).mul(3).data())).toEqual([3, 3]);
    again.destroy();
    device.destroy();
  });
});
