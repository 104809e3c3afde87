// An image spec's changes to the server module set, as the spec writes them:
//   kernel:
//     flavor: server
//     modules:
//       add: [hfi1]
//       remove: [cifs]
// Only `kernel.modules` is read here; the rest of the spec belongs to the builder,
// which can embed ModuleExtrasSchema in its own schema.

import { readFile } from 'node:fs/promises'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { InputError } from '../errors.js'
import type { ModuleExtras } from './module-set.js'

/** `kernel.modules` of an image spec: module names to add to and remove from the policy's set. */
export const ModuleExtrasSchema = z.strictObject({
  add: z.array(z.string().min(1)).optional(),
  remove: z.array(z.string().min(1)).optional(),
})

const SpecKernelPart = z.looseObject({
  kernel: z.looseObject({ modules: ModuleExtrasSchema.optional() }).optional(),
})

/** Reads `kernel.modules` from a parsed spec; throws SPEC_INVALID naming the field. */
export function moduleExtrasFromSpec(spec: unknown, source: string): ModuleExtras {
  const r = SpecKernelPart.safeParse(spec ?? {})
  if (!r.success) {
    const issue = r.error.issues[0]!
    const field = issue.path.map(String).join('.') || '(top)'
    throw new InputError('SPEC_INVALID', `Cannot read spec "${source}": ${field}: ${issue.message}`)
  }
  return { add: r.data.kernel?.modules?.add ?? [], remove: r.data.kernel?.modules?.remove ?? [] }
}

/** Reads `kernel.modules` from a spec file (`kernel select --spec`); NOT_FOUND or SPEC_INVALID naming the file. */
export async function readModuleExtras(file: string): Promise<ModuleExtras> {
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new InputError('NOT_FOUND', `Cannot read spec "${file}": ${e.code === 'ENOENT' ? 'no such file' : e.message}`)
  })
  let doc: unknown
  try {
    doc = parseYaml(text)
  } catch (e) {
    throw new InputError('SPEC_INVALID', `Cannot read spec "${file}": ${(e as Error).message.split('\n')[0]}`, {
      cause: e,
    })
  }
  return moduleExtrasFromSpec(doc, file)
}
