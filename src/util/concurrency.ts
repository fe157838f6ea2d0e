/**
 * Runs tasks with at most `limit` in flight, in the order given, except that an `urgent` task
 * (someone waits on it) goes before the waiting ones that are not.
 */
export function limitConcurrency(limit: number): <T>(task: () => Promise<T>, urgent?: boolean) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  let urgentWaiting = 0;
  return async <T>(task: () => Promise<T>, urgent = false): Promise<T> => {
    if (active >= limit) {
      await new Promise<void>((resolve) => {
        if (!urgent) waiting.push(resolve);
        else {
          // Behind the urgent ones already waiting, before the rest.
          waiting.splice(urgentWaiting++, 0, () => {
            urgentWaiting--;
            resolve();
          });
        }
      });
    }
    active++;
    try {
      return await task();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}
