// The JSON bodies the API accepts, as zod schemas: what the deploy environment sends
// (inventory, progress, events), the installed system's first-boot report, and the
// operator's assign. docs/deploy.md shows each with an example.

import { z } from 'zod'
import type { Inventory } from '../deploy/inventory-types.js'

const hex4 = z.string().regex(/^[0-9a-f]{4}$/, 'expected 4 lowercase hex digits')

/** src/deploy/inventory-types.ts's Inventory (version 1); unknown keys are kept out. */
export const inventorySchema: z.ZodType<Inventory> = z.object({
  version: z.literal(1),
  firmware: z.enum(['bios', 'uefi', 'uefi-secureboot']),
  cpus: z.number().int().min(1),
  memoryBytes: z.number().int().min(0),
  pci: z
    .array(
      z.object({
        address: z.string().max(32),
        vendor: hex4,
        device: hex4,
        subsystemVendor: hex4.optional(),
        subsystemDevice: hex4.optional(),
        class: z.string().regex(/^[0-9a-f]{6}$/, 'expected 6 lowercase hex digits'),
        driver: z.string().max(64).optional(),
        modalias: z.string().max(256).optional(),
      }),
    )
    .max(4096),
  disks: z
    .array(
      z.object({
        path: z.string().max(256),
        name: z.string().max(64),
        sizeBytes: z.number().int().min(0),
        logicalSectorSize: z.number().int().min(1),
        physicalSectorSize: z.number().int().min(1),
        model: z.string().max(256).optional(),
        serial: z.string().max(256).optional(),
        wwn: z.string().max(256).optional(),
        rotational: z.boolean(),
        removable: z.boolean(),
        controller: z.string().max(32).optional(),
      }),
    )
    .max(1024),
  nics: z
    .array(
      z.object({
        name: z.string().max(64),
        mac: z.string().regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/, 'expected a lowercase MAC such as "52:54:00:12:34:56"'),
        link: z.boolean(),
        driver: z.string().max(64).optional(),
        pci: z.string().max(32).optional(),
      }),
    )
    .max(256),
  uptimeSeconds: z.number().min(0).optional(),
})

/** A progress update (the deploy environment sends a few per second at most). */
export const progressSchema = z.object({
  stage: z.string().min(1).max(64),
  done: z.number().min(0),
  total: z.number().min(0).optional(),
  rate: z.number().min(0).optional(),
  resumes: z.number().int().min(0).optional(),
  // The sender's run (any id it keeps for one install) and its count of reports in that run:
  // a report that arrives after a later one of the same run (a slow request overtaken) is
  // not stored, so progress never goes back and no stage event is made twice.
  run: z.string().min(1).max(64).optional(),
  seq: z.number().int().min(0).optional(),
})

/** An event; "installed" carries the install report, "failed" a named error and the log's tail. */
export const eventSchema = z.object({
  kind: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, 'expected a lowercase event name such as "installed"'),
  fields: z.record(z.string(), z.unknown()).default({}),
})

/** The installed system's first-boot report: any JSON object (src/seed/first-boot-script.ts sends one). */
export const firstBootSchema = z.record(z.string(), z.unknown())

/** An operator's assignment. */
export const assignSchema = z
  .object({
    image: z.string().min(1),
    seed_yaml: z
      .string()
      .max(1024 * 1024)
      .optional(),
    disk_hints: z.array(z.string()).optional(),
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/)
      .optional(),
  })
  .strict()
