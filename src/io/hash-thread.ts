// SHA-256 (or SHA-1, for the ranges of old bmap files) on a thread of its own. The installer's slots live in shared memory
// (SlotPool), so the thread hashes a slot where it is, with no copy, while
// the event loop goes on reading the next slots and writing verified ones; a source file's
// digest is computed by the thread reading the file itself. On the event loop, hashing
// 564 MiB of mapped image plus its 184 MiB .zst took about 0.5 s of one core, during which
// no read or write could be started.
//
// Each digest has an id and an algorithm, given with its first update; updates to one id are
// hashed in the order they were posted, and digest(id) answers after all of them. update() resolves when the thread is done with
// the bytes, so the slot can be reused.

import { Worker } from 'node:worker_threads'

// Plain JavaScript, run with `new Worker(…, { eval: true })`: a worker file would have to
// exist as .js next to this module, which is not so when the tests run the TypeScript.
// Dynamic import() works whether Node evaluates it as a script or as a module
// (--input-type=module is inherited by workers). Messages wait in the port until the
// listener is attached.
const WORKER = `
(async () => {
const { parentPort } = await import('node:worker_threads')
const { createHash } = await import('node:crypto')
const fs = await import('node:fs')
const hashes = new Map()
parentPort.on('message', (m) => {
  try {
    if (m.op === 'update') {
      let h = hashes.get(m.id)
      if (!h) hashes.set(m.id, (h = { alg: m.alg, hash: createHash(m.alg) }))
      else if (h.alg !== m.alg) throw new Error('digest ' + m.id + ' is ' + h.alg + ', not ' + m.alg)
      h.hash.update(new Uint8Array(m.buffer, m.offset, m.length))
      parentPort.postMessage({ seq: m.seq })
    } else if (m.op === 'digest') {
      const h = hashes.get(m.id) ?? { alg: m.alg, hash: createHash(m.alg) }
      hashes.delete(m.id)
      if (h.alg !== m.alg) throw new Error('digest ' + m.id + ' is ' + h.alg + ', not ' + m.alg)
      parentPort.postMessage({ seq: m.seq, hex: h.hash.digest('hex') })
    } else if (m.op === 'file') {
      const h = createHash('sha256')
      const buf = Buffer.allocUnsafe(1 << 20)
      const fd = fs.openSync(m.path, 'r')
      try {
        for (;;) {
          const n = fs.readSync(fd, buf, 0, buf.length, null)
          if (n === 0) break
          h.update(buf.subarray(0, n))
        }
      } finally {
        fs.closeSync(fd)
      }
      parentPort.postMessage({ seq: m.seq, hex: h.digest('hex') })
    }
  } catch (e) {
    parentPort.postMessage({ seq: m.seq, error: String(e && e.message || e), code: e && e.code })
  }
})
})()
`

interface Reply {
  seq: number
  hex?: string
  error?: string
  code?: string
}

/** The digests the thread computes. */
export type HashAlgorithm = 'sha1' | 'sha256'

/** A hashing thread (SHA-256 unless told otherwise); close() it when done. */
export class HashThread {
  private readonly worker: Worker
  private seq = 0
  private readonly waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>()
  private failure: Error | undefined

  constructor() {
    this.worker = new Worker(WORKER, { eval: true })
    this.worker.on('message', (r: Reply) => {
      const w = this.waiting.get(r.seq)
      this.waiting.delete(r.seq)
      if (this.waiting.size === 0) this.worker.unref()
      if (!w) return
      if (r.error !== undefined) w.reject(Object.assign(new Error(r.error), { code: r.code }))
      else w.resolve(r)
    })
    this.worker.on('error', (e) => this.fail(e))
    this.worker.on('exit', () => this.fail(new Error('the hashing thread exited')))
    // Idle, it must not keep the process alive; with requests out, it must.
    this.worker.unref()
  }

  /** Adds `bytes` (a view of shared memory) to digest `id` of `algorithm` (the same for every update of it); resolves once the thread has hashed them. */
  async update(id: number, bytes: Uint8Array, algorithm: HashAlgorithm = 'sha256'): Promise<void> {
    if (!(bytes.buffer instanceof SharedArrayBuffer))
      throw new TypeError('HashThread.update needs bytes in shared memory')
    await this.ask({
      op: 'update',
      id,
      alg: algorithm,
      buffer: bytes.buffer,
      offset: bytes.byteOffset,
      length: bytes.length,
    })
  }

  /** The hex digest of everything added to `id` (of nothing, if nothing was), in the algorithm its updates named; `id` can then be used again. */
  async digest(id: number, algorithm: HashAlgorithm = 'sha256'): Promise<string> {
    return (await this.ask({ op: 'digest', id, alg: algorithm })).hex!
  }

  /** The hex SHA-256 of the file at `path`, read by the thread. */
  async file(path: string): Promise<string> {
    return (await this.ask({ op: 'file', path })).hex!
  }

  /** Stops the thread; pending requests are rejected. */
  async close(): Promise<void> {
    this.fail(new Error('the hashing thread was closed'))
    // Node 20's terminate() can leave its promise pending with nothing keeping the event
    // loop alive (seen under load, for a thread closed within milliseconds of being made,
    // as a dry run does): the caller's await then never returned and the process ended
    // mid-await. The thread's own 'exit' event, or a timer, ends the wait instead.
    const exited = new Promise<void>((resolve) => {
      if (this.worker.threadId === -1) resolve()
      this.worker.once('exit', () => resolve())
    })
    const stopped = this.worker.terminate().catch(() => {})
    let timer: NodeJS.Timeout | undefined
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, 2000)))
    await Promise.race([stopped, exited, bound])
    clearTimeout(timer)
  }

  private ask(message: Record<string, unknown>): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure)
    const seq = ++this.seq
    if (this.waiting.size === 0) this.worker.ref()
    return new Promise<Reply>((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject })
      this.worker.postMessage({ ...message, seq })
    })
  }

  private fail(e: Error): void {
    this.failure ??= e
    for (const w of this.waiting.values()) w.reject(this.failure)
    this.waiting.clear()
  }
}
