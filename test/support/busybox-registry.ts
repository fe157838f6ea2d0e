import { join } from 'node:path';
import { startRegistry, type RunningRegistry } from './registry.js';
import { OciLayoutWriter, skopeoPush } from './oci-layout.js';
import { busyboxImage } from './fixtures.js';
import { tempDir } from './temp.js';

/** A real registry holding the busybox fixture, and a scratch directory: what many tests start from. */
export interface BusyboxSetup {
  registry: RunningRegistry;
  /** A scratch directory removed by stop(). */
  work: string;
  /** `host:port/busybox:latest`. */
  image: string;
  stop(): Promise<void>;
}

export async function startBusyboxRegistry(name: string): Promise<BusyboxSetup> {
  const registry = await startRegistry();
  const work = await tempDir(name);
  const layout = new OciLayoutWriter(join(work.path, 'layout'));
  await layout.addImage('busybox', busyboxImage());
  await layout.finish();
  const image = `${registry.host}/busybox:latest`;
  await skopeoPush(join(work.path, 'layout'), 'busybox', image, 'v2s2');
  return {
    registry,
    work: work.path,
    image,
    async stop() {
      await registry.stop();
      await work.remove();
    },
  };
}
