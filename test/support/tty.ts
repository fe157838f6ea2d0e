import { run, type RunResult } from './run.js';

/**
 * Runs a command on a pseudo-terminal of `columns` × 24, as a person at a terminal would (stdout
 * and stderr are the terminal), through Python's pty module: what it printed, escapes included.
 * `interruptAfter` (ms): Ctrl-C is typed then (SIGINT to the foreground process group).
 */
export function runOnTty(argv: string[], options: { columns: number; env?: NodeJS.ProcessEnv; interruptAfter?: number; timeoutMs?: number }): Promise<RunResult> {
  const script = `
import fcntl, os, pty, select, signal, struct, sys, termios, time, json
argv = json.loads(sys.argv[1]); columns = int(sys.argv[2]); interrupt = float(sys.argv[3])
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 24, columns, 0, 0))
os.kill(pid, signal.SIGWINCH)
start = time.time(); sent = False; out = b''
while True:
    if interrupt > 0 and not sent and time.time() - start >= interrupt / 1000:
        os.write(fd, b'\\x03'); sent = True
    ready, _, _ = select.select([fd], [], [], 0.05)
    if ready:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        out += data
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
`;
  return run('python3', ['-c', script, JSON.stringify(argv), String(options.columns), String(options.interruptAfter ?? 0)], { ...(options.env ? { env: options.env } : {}), timeoutMs: options.timeoutMs ?? 120_000 });
}

/** The lines a terminal shows at some point: escapes dropped, carriage returns and newlines as breaks. */
export function screenLines(output: string): string[] {
  // eslint-disable-next-line no-control-regex
  return output.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').split(/\r?\n|\r/);
}
