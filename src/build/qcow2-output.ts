// disk image → NAME.qcow2 beside it: the whole-disk image OpenStack Glance and Ironic
// take, compressed, made by qemu-img from the raw image (holes and zero blocks stay
// unallocated clusters).
//
// Compression: zstd clusters by default (qcow2 compression_type, QEMU ≥ 5.1 reads them);
// zlib for readers with an older QEMU. Measured on the default image (2 GiB, 564 MiB
// mapped, 2 cores, `qemu-img convert -c -O qcow2`): zlib 18.2 s → 233 MB, zlib with -W
// -m 2 14.3 s, zstd 3.2 s → 229 MB, zstd with -W -m 2 2.5 s. Out-of-order writes (-W)
// place clusters in the order their compression finishes, so two runs give different
// files: they are not used, and the qcow2 is reproducible (docs/build.md).

import { run } from '../tools/run.js'

/** How a build writes its qcow2: the cluster compression, or none at all. */
export type Qcow2Compression = 'zstd' | 'zlib'

/** The qcow2's file name beside NAME.img. */
export function qcow2Name(imageName: string): string {
  return `${imageName}.qcow2`
}

/** qemu-img argv converting a raw image to a compressed qcow2 (in order, so reproducible). */
export function qcow2Argv(image: string, out: string, compression: Qcow2Compression): string[] {
  return [
    'qemu-img',
    'convert',
    '-q',
    '-c',
    '-f',
    'raw',
    '-O',
    'qcow2',
    '-o',
    `compression_type=${compression}`,
    image,
    out,
  ]
}

/** Writes OUT (a compressed qcow2 of IMAGE). */
export async function writeQcow2(
  image: string,
  out: string,
  compression: Qcow2Compression,
  signal?: AbortSignal,
): Promise<string> {
  await run(qcow2Argv(image, out, compression), signal ? { signal } : {})
  return out
}
