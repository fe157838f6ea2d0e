import { readdir, readFile, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';

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
  return processesRootedIn(root).commandLines();
}

/**
 * The processes rooted at `root`, looked at again and again (a mount watching an exec): the
 * root's identity is taken once, at the first look (a mountpoint's does not change while it is
 * mounted), and one known process costs one /proc read, not a scan.
 */
export function processesRootedIn(root: string): { commandLines(): Promise<RootedProcess[]>; commandLineOf(pid: number): Promise<string[] | undefined> } {
  let target: Promise<Stats> | undefined;
  const identity = () => (target ??= stat(root));
  return {
    async commandLines() {
      const rootStat = await identity();
      const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid).map(Number);
      const argvs = await Promise.all(pids.map((pid) => commandLineIfRooted(rootStat, pid)));
      return pids.flatMap((pid, i) => (argvs[i] ? [{ pid, argv: argvs[i]! }] : []));
    },
    async commandLineOf(pid) {
      return commandLineIfRooted(await identity(), pid);
    },
  };
}

/** The command line of one process while its root is still `target` (undefined once it is gone, or elsewhere). */
async function commandLineIfRooted(target: Stats, pid: number): Promise<string[] | undefined> {
  try {
    const rootOf = await stat(`/proc/${pid}/root`);
    if (rootOf.dev !== target.dev || rootOf.ino !== target.ino) return undefined;
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    if (argv[argv.length - 1] === '') argv.pop();
    return argv;
  } catch {
    // Gone, or not ours to see.
    return undefined;
  }
}
