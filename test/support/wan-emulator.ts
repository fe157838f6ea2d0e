import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface WanOptions {
  /** One-way delay in milliseconds (each direction). */
  delayMs?: number;
  /** Link capacity toward the client, bits per second, shared by all connections. */
  bitsPerSecond?: number;
}

export interface WanEmulator {
  host: string;
  /** Bytes delivered to clients since the start (or the last reset). */
  bytesToClient: number;
  /** Connections clients opened since the start (or the last reset). */
  connections: number;
  reset(): void;
  stop(): Promise<void>;
}

const PIECE = 16 * 1024;
const HIGH_WATER = 4 * 1024 * 1024;

/**
 * A TCP proxy that behaves like a WAN link: every byte is delayed by the one-way delay, a new
 * connection's first bytes by its handshake's round trip too, and the downstream direction is
 * paced to the link's bandwidth (one queue for all connections, as on a real link). Counts what
 * reaches the clients.
 */
export async function startWanEmulator(upstream: string, options: WanOptions = {}): Promise<WanEmulator> {
  const delay = options.delayMs ?? 25;
  const bps = options.bitsPerSecond ?? 100_000_000;
  const [upHost, upPort] = upstream.split(':');
  let linkFreeAt = 0;
  const sockets = new Set<Socket>();
  const emulator: WanEmulator = {
    host: '',
    bytesToClient: 0,
    connections: 0,
    reset() {
      this.bytesToClient = 0;
      this.connections = 0;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };

  /**
   * Forwards `from` → `to`, delayed, and paced when `paced`. One FIFO and one timer per
   * direction: bytes leave in the order they came (separate timers may fire out of order).
   */
  const pipe = (from: Socket, to: Socket, paced: boolean, notBefore = 0) => {
    const queue: { piece: Buffer; sendAt: number }[] = [];
    let queued = 0;
    let ended = false;
    let timer: NodeJS.Timeout | undefined;
    const drain = () => {
      timer = undefined;
      const t = performance.now();
      while (queue.length && queue[0]!.sendAt <= t) {
        const { piece } = queue.shift()!;
        queued -= piece.length;
        if (!to.destroyed) {
          to.write(piece);
          if (paced) emulator.bytesToClient += piece.length;
        }
      }
      if (queued < HIGH_WATER && from.isPaused()) from.resume();
      if (queue.length) timer = setTimeout(drain, Math.max(1, queue[0]!.sendAt - performance.now()));
      else if (ended) to.end();
    };
    from.on('data', (chunk: Buffer) => {
      for (let off = 0; off < chunk.length; off += PIECE) {
        const piece = chunk.subarray(off, off + PIECE);
        const t = performance.now();
        let sendAt = Math.max(t, notBefore) + delay;
        if (paced) {
          linkFreeAt = Math.max(t, linkFreeAt) + (piece.length * 8 * 1000) / bps;
          sendAt = linkFreeAt + delay;
        }
        queue.push({ piece, sendAt });
        queued += piece.length;
      }
      if (queued >= HIGH_WATER) from.pause();
      timer ??= setTimeout(drain, Math.max(1, queue[0]!.sendAt - performance.now()));
    });
    from.on('end', () => {
      ended = true;
      if (!queue.length && !timer) to.end();
    });
    from.on('error', () => to.destroy());
    from.on('close', () => {
      if (!ended) setTimeout(() => to.destroy(), delay);
    });
  };

  const server: Server = createServer((client) => {
    emulator.connections++;
    const up = connect(Number(upPort), upHost);
    sockets.add(client);
    sockets.add(up);
    client.on('close', () => sockets.delete(client));
    up.on('close', () => sockets.delete(up));
    client.setNoDelay(true);
    up.setNoDelay(true);
    // The kernel completed the client's handshake at once: what it sends goes out as it would
    // after a real one, one round trip after connecting (a new connection costs an RTT).
    pipe(client, up, false, performance.now() + 2 * delay);
    pipe(up, client, true);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  emulator.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return emulator;
}
