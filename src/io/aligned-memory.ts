// Page-aligned memory for O_DIRECT I/O. Linux wants the user buffer of an O_DIRECT read
// or write aligned to the device's logical block size (open(2), "O_DIRECT"). Node's
// Buffers are not (malloc gives 16-byte alignment), but a WebAssembly.Memory is reserved
// with mmap and so starts on a page boundary; views at multiples of 4096 bytes stay aligned.

const WASM_PAGE = 65536
/** The alignment every view handed out here has: a page, which covers 512- and 4096-byte sectors. */
export const IO_ALIGN = 4096

// ArrayBuffers known to start on a page boundary (their views at multiples of IO_ALIGN are aligned).
const alignedBuffers = new WeakSet<ArrayBufferLike>()

/** A page-aligned, zero-filled byte array of `size` bytes; `shared`: on a SharedArrayBuffer (other threads can read it where it is). */
export function alignedBytes(size: number, opts: { shared?: boolean } = {}): Uint8Array {
  const pages = Math.max(1, Math.ceil(size / WASM_PAGE))
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: opts.shared === true })
  alignedBuffers.add(memory.buffer)
  return new Uint8Array(memory.buffer, 0, size)
}

/** Whether `bytes` starts on an IO_ALIGN boundary in memory (came from alignedBytes at an aligned offset). */
export function isAligned(bytes: Uint8Array): boolean {
  return alignedBuffers.has(bytes.buffer) && bytes.byteOffset % IO_ALIGN === 0
}

/**
 * A fixed number of equal aligned slots, in shared memory (a thread can hash a slot where
 * it is: hash-thread.ts). acquire() waits while all are in use, which is what bounds the
 * installer's memory: reading stops when writing falls behind.
 */
export class SlotPool {
  private readonly free: Uint8Array[] = []
  private readonly waiters: Array<(slot: Uint8Array) => void> = []

  constructor(
    readonly slotSize: number,
    readonly count: number,
  ) {
    if (slotSize % IO_ALIGN !== 0) throw new RangeError(`slot size ${slotSize} is not a multiple of ${IO_ALIGN}`)
    const all = alignedBytes(slotSize * count, { shared: true })
    for (let i = 0; i < count; i++) this.free.push(all.subarray(i * slotSize, (i + 1) * slotSize))
  }

  /** Slots free right now. */
  get available(): number {
    return this.free.length
  }

  /** A free slot, waiting for one to be released if needed. */
  async acquire(): Promise<Uint8Array> {
    const slot = this.free.pop()
    if (slot) return slot
    return await new Promise<Uint8Array>((resolve) => this.waiters.push(resolve))
  }

  /** Gives a slot back (to the longest waiter first). */
  release(slot: Uint8Array): void {
    const waiter = this.waiters.shift()
    if (waiter) waiter(slot)
    else this.free.push(slot)
  }
}
