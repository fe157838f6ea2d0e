import { readdir, readFile, stat } from 'node:fs/promises';

export interface RootedProcess {
  pid: number;
  argv: string[];
}

/**
 * The processes whose root directory is `root` (a chroot or a container running on a mount): their
 * command lines, read from /proc. The root is compared by device and inode, so a process in
 * another mount namespace (systemd-nspawn) is found too. Processes that end meanwhile, or that
 * this process may not look at, are left out.
 */
export async function processesRootedAt(root: string): Promise<RootedProcess[]> {
  const target = await stat(root);
  const found: RootedProcess[] = [];
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid);
  await Promise.all(
    pids.map(async (name) => {
      try {
        const rootOf = await stat(`/proc/${name}/root`);
        if (rootOf.dev !== target.dev || rootOf.ino !== target.ino) return;
        const argv = (await readFile(`/proc/${name}/cmdline`, 'utf8')).split('\0');
        if (argv[argv.length - 1] === '') argv.pop();
        found.push({ pid: Number(name), argv });
      } catch {
        // Gone, or not ours to see.
      }
    }),
  );
  return found;
}
