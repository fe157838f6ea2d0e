declare module 'fuse-native' {
  type Callback = (...args: unknown[]) => void;
  export default class Fuse {
    constructor(mountpoint: string, ops: Record<string, (...args: never[]) => void>, options?: Record<string, unknown>);
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static unmount(mountpoint: string, cb: Callback): void;
    static isConfigured(cb: (err: Error | null, configured: boolean) => void): void;
  }
}
