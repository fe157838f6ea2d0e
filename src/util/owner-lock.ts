import { open, readFile, rm, stat } from 'node:fs/promises';
import { isSameProcess, processStartTime } from './process-identity.js';

/**
 * A lock one process holds on a path, across processes: a file made with O_EXCL that names its
 * owner (PID and start time). A lock whose owner is gone (killed, crashed) is stale and taken
 * over; nothing is ever waited on forever.
 */
export class OwnerLock {
  private constructor(private readonly path: string) {}

  /** Takes the lock, or returns undefined while a live process holds it. */
  static async tryAcquire(path: string): Promise<OwnerLock | undefined> {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fh = await open(path, 'wx');
        await fh.writeFile(`${process.pid} ${processStartTime(process.pid) ?? ''}\n`);
        await fh.close();
        return new OwnerLock(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      if (await OwnerLock.heldByLiveOwner(path)) return undefined;
      // Stale: its owner is gone. Removed, then taken with O_EXCL again (a racing taker loses cleanly).
      await rm(path, { force: true });
    }
    return undefined;
  }

  /** Whether a live process holds the lock at `path` (a missing or unreadable lock file is not held). */
  static async heldByLiveOwner(path: string): Promise<boolean> {
    const text = await readFile(path, 'utf8').catch(() => undefined);
    if (text === undefined) return false;
    // A lock being written this instant has no text yet: held, unless its writer died seconds ago.
    if (text === '') return Date.now() - ((await stat(path).catch(() => undefined))?.mtimeMs ?? 0) < 10_000;
    const [pidText, startText] = text.trim().split(' ');
    const pid = Number(pidText);
    if (!Number.isSafeInteger(pid) || pid <= 0) return false;
    return isSameProcess(pid, startText ? Number(startText) : undefined);
  }

  async release(): Promise<void> {
    await rm(this.path, { force: true });
  }
}
