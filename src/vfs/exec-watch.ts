/** How often, and how long, the processes in a tree are looked at once a program's binary is first read. */
const EXEC_POLL_MS = 10;
const EXEC_WATCH_MS = 5000;

/** What the processes running in a tree are doing. */
export interface TreeProcesses {
  /** The command lines of the processes running in the tree (pid, argv). */
  commandLines(): Promise<{ pid: number; argv: string[] }[]>;
  /** The command line of one of them (undefined once it is gone or out of the tree). */
  commandLineOf(pid: number): Promise<string[] | undefined>;
}

/** The command line `argv` is, or ends with as a wrapper's command (`chroot DIR prog …`, `env X=1 prog …`), for a program `isProgram` knows. */
export function commandEndingWith(argv: readonly string[], isProgram: (argv: readonly string[]) => boolean): string[] | undefined {
  for (let i = 0; i < argv.length; i++) if (isProgram(argv.slice(i))) return argv.slice(i);
  return undefined;
}

/**
 * The program runs a prefetcher has followed, each once: a pid with its command line (a pid that
 * execs again is another run). Only programs' runs are remembered: a shell seen now may exec one
 * later under its pid.
 */
export class FollowedRuns {
  private readonly runs = new Set<string>();

  /** Whether this run is new (it is remembered from now on). */
  add(pid: number, argv: readonly string[]): boolean {
    const key = `${pid}\0${argv.join('\0')}`;
    if (this.runs.has(key)) return false;
    this.runs.add(key);
    return true;
  }
}

/** A tree no process runs in (tests, materialize). */
export const NO_PROCESSES: TreeProcesses = { commandLines: async () => [], commandLineOf: async () => undefined };

/**
 * A program's binary is being read for the first time: the kernel is exec'ing it, and the
 * process doing so is among those in the tree, its old command line still showing until the
 * kernel has read the binary's head. A wrapper's command line (chroot DIR prog …, env …) ends
 * with the program's already; the others are looked at every few milliseconds (one /proc read
 * each, not a scan) until one changes. `commandIn` picks the program's command line out of a
 * process's (undefined: not the program); `found` is told it, and says whether it was new (a
 * process already followed, another instance running, does not end the watch).
 */
export async function watchExec(processes: TreeProcesses, commandIn: (argv: string[]) => string[] | undefined, found: (pid: number, argv: string[]) => boolean): Promise<void> {
  let watched: { pid: number; before: string }[] = [];
  for (const { pid, argv } of await processes.commandLines()) {
    const command = commandIn(argv);
    if (command && found(pid, command)) return;
    watched.push({ pid, before: argv.join('\0') });
  }
  for (const deadline = Date.now() + EXEC_WATCH_MS; watched.length > 0 && Date.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, EXEC_POLL_MS));
    const looks = await Promise.all(watched.map(({ pid }) => processes.commandLineOf(pid)));
    // One binary read, one exec: the first process to show the program ends the watch.
    for (const [i, argv] of looks.entries()) {
      const command = argv && argv.join('\0') !== watched[i]!.before ? commandIn(argv) : undefined;
      if (command && found(watched[i]!.pid, command)) return;
    }
    watched = watched.filter(({ before }, i) => looks[i]?.join('\0') === before);
  }
}
