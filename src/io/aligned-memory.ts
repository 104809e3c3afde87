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
 * The one buffer pool: a fixed number of equal aligned slots, in shared memory (a thread
 * can hash a slot where it is: hash-thread.ts). acquire() waits while `count` buffers are
 * out, which is what bounds memory: the installer's reading stops when writing falls
 * behind, a seekable .zst's file is read no further ahead of the decompression and the
 * hashing thread than its slots allow. A buffer may have several users (the decompression
 * and the hashing thread share a compressed frame): it comes back after the last one's
 * release(). A request longer than a slot gets memory of its own, which counts as one
 * buffer out until released. Waiters are served in order, as buffers come back.
 */
export class SlotPool {
  private readonly memory: Uint8Array
  private readonly slots: Uint8Array[] = []
  private readonly free: Uint8Array[] = []
  /** Users left per slot (by index); 0: free. */
  private readonly users: number[]
  /** Users left per buffer longer than a slot, out now. */
  private readonly own = new Map<ArrayBufferLike, number>()
  private readonly waiters: Array<{
    length: number
    users: number
    resolve: (b: Uint8Array) => void
    reject: (e: Error) => void
  }> = []
  private out = 0
  private closed = false

  constructor(
    readonly slotSize: number,
    readonly count: number,
  ) {
    if (slotSize % IO_ALIGN !== 0) throw new RangeError(`slot size ${slotSize} is not a multiple of ${IO_ALIGN}`)
    this.memory = alignedBytes(slotSize * count, { shared: true })
    this.users = new Array<number>(count).fill(0)
    for (let i = 0; i < count; i++) this.slots.push(this.memory.subarray(i * slotSize, (i + 1) * slotSize))
    this.free.push(...this.slots)
  }

  /** Buffers that acquire() would hand out right now without waiting. */
  get available(): number {
    return this.count - this.out
  }

  /**
   * A buffer of `length` bytes (a whole slot by default), waiting while `count` are out;
   * it comes back after `users` calls of release(). Rejects once the pool is closed.
   */
  async acquire(length = this.slotSize, users = 1): Promise<Uint8Array> {
    if (this.closed) throw new Error('the reader was closed')
    if (this.out < this.count) return this.grant(length, users)
    return await new Promise<Uint8Array>((resolve, reject) => this.waiters.push({ length, users, resolve, reject }))
  }

  /** One user is done with `bytes` (a view from acquire()); after the last, it goes to the longest waiter. Unknown bytes are ignored. */
  release(bytes: Uint8Array): void {
    if (bytes.buffer === this.memory.buffer && this.slotSize > 0) {
      const i = Math.floor(bytes.byteOffset / this.slotSize)
      if (!(this.users[i]! > 0)) return
      if (--this.users[i]! > 0) return
      this.free.push(this.slots[i]!)
    } else {
      const n = this.own.get(bytes.buffer)
      if (n === undefined) return
      if (n > 1) {
        this.own.set(bytes.buffer, n - 1)
        return
      }
      this.own.delete(bytes.buffer)
    }
    this.out--
    const w = this.waiters.shift()
    if (w) w.resolve(this.grant(w.length, w.users))
  }

  /** Fails every acquire() waiting, and those to come. */
  close(): void {
    this.closed = true
    for (const w of this.waiters.splice(0)) w.reject(new Error('the reader was closed'))
  }

  private grant(length: number, users: number): Uint8Array {
    this.out++
    if (length > this.slotSize) {
      const b = new Uint8Array(new SharedArrayBuffer(length))
      this.own.set(b.buffer, users)
      return b
    }
    const slot = this.free.pop()!
    this.users[Math.floor(slot.byteOffset / this.slotSize)] = users
    return length === this.slotSize ? slot : slot.subarray(0, length)
  }
}
