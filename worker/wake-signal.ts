/**
 * Wakes whoever waits for the consume loop's state to change: a message arrived, a batch ended,
 * the database answered, a stop. Each part of the loop checks the state it needs, and waits only
 * when there is nothing to do; whoever changes that state notifies. Nothing is latched: a notify
 * with nobody waiting is lost, which is safe because a part checks the state before it waits and
 * JavaScript runs nothing in between.
 */
export interface WakeSignal {
  /** Resolves at the next `notify()`. */
  wait(): Promise<void>;
  /** Wakes every part waiting now. */
  notify(): void;
}

export function createWakeSignal(): WakeSignal {
  let waiters: (() => void)[] = [];
  return {
    wait: () => new Promise<void>((resolve) => waiters.push(resolve)),
    notify() {
      const woken = waiters;
      waiters = [];
      for (const wake of woken) wake();
    },
  };
}
