import pLimit, { type LimitFunction } from "p-limit";

/**
 * File operations (OPEN, CLOSE) of one district at a time, at most this many at once. Each one
 * is several file-system calls on libuv's small shared thread pool: a district opening thousands
 * of files at once (each of its connections and channels at its cap) would otherwise queue them
 * all ahead of every other district's uploads. Queued here, they wait behind their own district only.
 */
export const FILE_OPERATIONS_PER_DISTRICT = 8;

export class DistrictFileGate {
  /** One queue per district that has had a file operation; districts are few, so they are kept. */
  readonly #queues = new Map<number, LimitFunction>();

  constructor(private readonly concurrency = FILE_OPERATIONS_PER_DISTRICT) {}

  run<T>(districtId: number, work: () => Promise<T>): Promise<T> {
    let queue = this.#queues.get(districtId);
    if (queue === undefined) {
      queue = pLimit(this.concurrency);
      this.#queues.set(districtId, queue);
    }
    return queue(work);
  }
}
